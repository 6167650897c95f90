"""The Python runtime's feed checks against the shared vectors js/feeds.mjs also passes
(shared-schemas/vectors/feeds.json): the same feeds accepted, the same refused with the same words."""

import json
from pathlib import Path

import numpy as np
import pytest

from polyonnx.errors import FeedError
from polyonnx.feeds import NUMPY_DTYPES, check_feeds

CASES = json.loads((Path(__file__).resolve().parents[2] / "shared-schemas" / "vectors" / "feeds.json")
                   .read_text(encoding="utf-8"))["cases"]


def _array(t):
    data = [float("nan") if v == "NaN" else v for v in t["data"]]
    return np.array(data, dtype=NUMPY_DTYPES[t["dtype"]]).reshape(t["shape"])


@pytest.mark.parametrize("case", CASES, ids=[c["why"] for c in CASES])
def test_feed_vector_is_accepted_or_refused_with_the_shared_message(case):
    feeds = {k: _array(v) for k, v in case["feeds"].items()}
    if case["error"] is None:
        sizes = check_feeds(feeds, case["inputs"], case["dims"])
        for spec in case["inputs"]:
            for axis, d in enumerate(spec["shape"]):
                if isinstance(d, str):
                    assert sizes[d] == feeds[spec["name"]].shape[axis]
        return
    with pytest.raises(FeedError) as e:
        check_feeds(feeds, case["inputs"], case["dims"])
    assert e.value.code == case["error"]["code"]
    assert e.value.message == case["error"]["message"]


def test_python_reads_plain_lists_by_the_js_rule():
    # js/feeds.mjs: booleans only for bool inputs, which take true/false or 1/0; numbers per dtype.
    from polyonnx.feeds import as_arrays

    ins = [{"name": "i", "dtype": "int64", "shape": [2]}, {"name": "b", "dtype": "bool", "shape": [2]}]
    got = as_arrays({"i": [1, 2], "b": [True, 0]}, ins)
    assert got["i"].dtype == np.int64 and got["b"].tolist() == [True, False]
    for bad in ({"i": [True, False], "b": [1, 0]}, {"i": [1, 2], "b": [2, 0]}, {"i": [1.5, 2], "b": [1, 0]},
                {"i": [[1], [1, 2]], "b": [1, 0]}):
        with pytest.raises(FeedError):
            as_arrays(bad, ins)
