"""Bundled example models: real, small, and built without downloads.

Each is a zero-argument factory usable as ``polyonnx.examples:NAME`` on the command line:

- ``digits_cnn``: a CNN trained (deterministically, in seconds) on scikit-learn's bundled
  8x8 handwritten digits; dynamic batch; static int8 calibrated on training digits.
- ``text_transformer``: an ``nn.TransformerEncoder`` classifier (d_model 256, 4 layers)
  on int64 token ids with dynamic batch and sequence.
- ``gru_tagger``: a GRU tagger over a dynamic time axis: the dynamo exporter silently fixes
  that axis, so polyonnx must fall back to the legacy exporter.

Each model declares its own input spec in a ``polyonnx_spec`` attribute (see README,
"Declaring inputs on the model"), so exporting it needs no flags.
"""

from __future__ import annotations

EXAMPLES = ("digits_cnn", "text_transformer", "gru_tagger")


def digits_cnn():
    from ._digits import build

    return build()


def text_transformer():
    from ._text import build

    return build()


def gru_tagger():
    from ._gru import build

    return build()
