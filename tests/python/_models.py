"""Small models for export tests, importable by the CLI as tests/python/_models.py:NAME."""

import torch
from torch import nn


class TinyMLP(nn.Module):
    polyonnx_spec = {"inputs": ["x:float32[batch,4]"], "outputs": ["y"], "class_axes": {"y": 1}}

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))

    def forward(self, x):
        return self.net(x)


def tiny_mlp():
    return TinyMLP().eval()


class NoSpec(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, x):
        return self.lin(x)


class FixedBatch(nn.Module):
    """Declares a dynamic batch, but forward() branches on the batch size in Python: tracers
    keep only the branch taken at the example size (2)."""

    polyonnx_spec = {"inputs": ["x:float32[batch,6]"], "outputs": ["y"]}

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 3)

    def forward(self, x):
        if x.shape[0] == 2:
            return self.lin(x)
        return self.lin(x) * 2


class PureCNN(nn.Module):
    polyonnx_spec = {"inputs": ["image:float32[batch,3,16,16]"], "outputs": ["features"]}

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, image):
        return self.body(image)


class TwoInputs(nn.Module):
    """Token ids plus a float mask sharing batch and seq."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(50, 8)
        self.head = nn.Linear(8, 5)

    def forward(self, ids, mask):
        h = self.embed(ids) * mask.unsqueeze(-1)
        return self.head(h.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)), h


not_a_model = 42


class NearTie(nn.Module):
    """Classes 0 and 1 differ by about 1e-4 of their logits: int8 (and fp16) rounding flips
    which one wins, so any quantized variant loses accuracy against labels from fp32."""

    polyonnx_spec = {"inputs": ["x:float32[batch,16]"], "outputs": ["y"], "class_axes": {"y": 1}}

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        w = torch.randn(4, 16, generator=g)
        w[1] = w[0] + 1e-4 * torch.randn(16, generator=g)
        self.lin = nn.Linear(16, 4, bias=False)
        with torch.no_grad():
            self.lin.weight.copy_(w)

    def forward(self, x):
        return self.lin(x)
