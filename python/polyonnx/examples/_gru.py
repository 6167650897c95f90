"""gru_tagger: a GRU tagging every step of a variable-length token sequence.

With torch 2.13 the dynamo exporter meets a constraint on the GRU's time axis, retries with the
axis fixed to the example length and still labels the input 'time': the graph then runs at other
lengths with wrong output metadata. polyonnx must catch this and fall back to the legacy exporter.
"""

from __future__ import annotations

import torch
from torch import nn

VOCAB = 100
TAGS = 8


class GRUTagger(nn.Module):
    polyonnx_spec = {
        "description": "GRU sequence tagger (8 tags per step) over token ids, dynamic batch and time.",
        "inputs": ["tokens:int64[batch,time]"],
        "outputs": ["tags"],
        "dims": {"batch": 2, "time": 7},
        "value_ranges": {"tokens": [0, VOCAB - 1]},
        "class_axes": {"tags": 2},
    }

    def __init__(self, dim: int = 32, hidden: int = 64):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, dim)
        self.gru = nn.GRU(dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, TAGS)

    def forward(self, tokens):
        h, _ = self.gru(self.embed(tokens))
        return self.out(h)


def build() -> GRUTagger:
    torch.manual_seed(0)
    return GRUTagger().eval()
