"""text_transformer: an nn.TransformerEncoder classifier over int64 token ids.

d_model 256 and 4 layers (7.4M parameters) make int8 speed-ups visible; dynamic batch and
sequence. The legacy TorchScript exporter bakes the example sequence length into this model's
reshapes (measured with torch 2.13), the dynamo exporter gets it right: verification decides.
Weights are a seeded random initialisation: the example exists to exercise export, parity
and quantization, not to classify anything meaningful.
"""

from __future__ import annotations

import torch
from torch import nn

VOCAB = 8000
MAX_SEQ = 512


class TextTransformer(nn.Module):
    polyonnx_spec = {
        "description": "Transformer encoder classifier (d_model 256, 4 layers, 7.4M parameters, 4 classes) over token ids.",
        "inputs": ["input_ids:int64[batch,seq]"],
        "outputs": ["logits"],
        "dims": {"batch": 2, "seq": 16},
        "dim_limits": {"seq": [1, MAX_SEQ]},
        "value_ranges": {"input_ids": [0, VOCAB - 1]},
        "class_axes": {"logits": 1},
        # Latency of quantized candidates is measured at batch 1, seq 128.
        "latency_dims": {"seq": 128},
    }

    def __init__(self, d_model: int = 256, layers: int = 4, heads: int = 4, classes: int = 4):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d_model)
        self.position = nn.Embedding(MAX_SEQ, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, dropout=0.0, batch_first=True)
        # enable_nested_tensor=False: the nested-tensor fast path is a different program under export.
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, classes)

    def forward(self, input_ids):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        h = self.encoder(self.embed(input_ids) + self.position(positions)[None])
        return self.head(h.mean(dim=1))


def build() -> TextTransformer:
    torch.manual_seed(0)
    model = TextTransformer()
    # Larger head weights spread the logits, so argmax is well defined on random inputs.
    with torch.no_grad():
        model.head.weight.mul_(8.0)
    return model.eval()
