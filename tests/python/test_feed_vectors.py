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
