"""digits_cnn: a small CNN trained on scikit-learn's bundled 8x8 digits (no download).

Training is deterministic (fixed seed, one thread, fixed split) and takes a few seconds on a
laptop CPU, so the weights are rebuilt at export time instead of being shipped.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

SEED = 0
EPOCHS = 25
HELD_OUT = 360  # the last 360 of sklearn's 1797 digits (about 20%), never trained on


def load_split():
    """(x_train, y_train, x_test, y_test), pixels scaled to [0, 1], shape [n, 1, 8, 8] float32."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = data.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(x))
    x, y = x[order], y[order]
    return x[:-HELD_OUT], y[:-HELD_OUT], x[-HELD_OUT:], y[-HELD_OUT:]


class DigitsCNN(nn.Module):
    polyonnx_spec = {
        "description": "CNN classifier for 8x8 handwritten digits (scikit-learn digits), pixels in [0, 1].",
        "inputs": ["pixels:float32[batch,1,8,8]"],
        "outputs": ["logits"],
        "dims": {"batch": 4},
        "value_ranges": {"pixels": [0.0, 1.0]},
        "class_axes": {"logits": 1},
    }

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, pixels):
        return self.classifier(self.features(pixels))

    # -- what polyonnx asks a model for (all optional) ----------------------------------------
    def polyonnx_calibration(self):
        """Representative feeds for static quantization: training digits, 64 per batch.

        Convolutions are only quantized by static QDQ (dynamic int8 leaves them fp32), so
        `--quantize auto` can try static candidates on this data."""
        x_train, _, _, _ = load_split()
        for i in range(0, 512, 64):
            yield {"pixels": x_train[i:i + 64]}

    def polyonnx_evaluation(self):
        """Held-out digits with labels: polyonnx reports each variant's accuracy on them."""
        _, _, x_test, y_test = load_split()
        return {"feeds": {"pixels": x_test}, "labels": y_test, "output": "logits",
                "metric": "accuracy", "dataset": f"sklearn digits, {HELD_OUT} held-out images"}


def train(model: DigitsCNN) -> float:
    """Train in place; returns held-out accuracy in torch."""
    x_train, y_train, x_test, y_test = load_split()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: bit-for-bit the same weights on every machine of a kind
    try:
        torch.manual_seed(SEED)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
        gen = torch.Generator().manual_seed(SEED)
        model.train()
        for _ in range(EPOCHS):
            perm = torch.randperm(len(xt), generator=gen)
            for i in range(0, len(xt), 64):
                idx = perm[i:i + 64]
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(torch.from_numpy(x_test)).argmax(1).numpy()
    finally:
        torch.set_num_threads(threads)
    return float((pred == y_test).mean())


def build() -> DigitsCNN:
    torch.manual_seed(SEED)
    model = DigitsCNN()
    model.torch_accuracy = train(model)
    return model.eval()
