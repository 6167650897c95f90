"""compare.metrics / passes on the edge values real graphs produce."""

import numpy as np

from polyonnx.compare import metrics, passes, tolerance


def test_a_sign_flip_of_huge_values_is_not_a_pass():
    # An ONNX backend case holds values near 5.9e199: squared norms overflow unless scaled.
    a = np.array([[5e199, -3e199, 1e-300]])
    flipped = metrics(-a, a)
    assert flipped["cosine"] < -0.99
    for kind in ("int8", "fp16"):
        assert not passes(flipped, tolerance(kind, "fp32"), a)
        assert passes(metrics(a.copy(), a), tolerance(kind, "fp32"), a)


def test_nan_at_the_same_positions_is_equal_and_elsewhere_is_not():
    ref = np.array([1.0, np.nan, 3.0], dtype=np.float32)
    assert passes(metrics(ref.copy(), ref), tolerance("fp32", "python"), ref)
    moved = np.array([np.nan, 2.0, 3.0], dtype=np.float32)
    assert not passes(metrics(moved, ref), tolerance("fp32", "python"), ref)


def test_an_output_within_atol_everywhere_passes_whatever_its_cosine():
    ref = np.full(100, 1e-7, dtype=np.float32)
    noisy = ref + np.random.default_rng(0).standard_normal(100).astype(np.float32) * 1e-7
    m = metrics(noisy, ref)
    assert m["cosine"] < 0.999999 and passes(m, tolerance("fp32", "python"), ref)
