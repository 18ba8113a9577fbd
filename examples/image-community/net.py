"""The image-community example's classifier: its architecture (`build`, which the spec's
`module:` names so mlthreat can load the weights with weights_only=True) and its training
function (`train`, which the spec's `train:` names so the membership and poisoning probes can
train reference copies the way the team does).

A stand-in for a moderation model: scikit-learn's bundled 8x8 handwritten digits (pixel values
0..16, ten classes), small enough to train on two CPU cores in seconds.
"""

from __future__ import annotations

import numpy as np
import torch

SCALE = 16.0        # the model's normalisation: pixels / 16 (the spec's images.std)


def build() -> torch.nn.Module:
    """The untrained network: two 3x3 convolutions, a 2x2 pooling, one linear layer."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32 * 4 * 4, 10))


def fit(images: np.ndarray, labels: np.ndarray, seed: int, epochs: int = 15,
        shifts: bool = False) -> torch.nn.Module:
    """Train the network on images (N x 1 x 8 x 8, pixel values 0..16) with Adam; `shifts`:
    each batch moved by a random pixel up, down, left or right or left as it is (the usual
    augmentation of small-image classifiers; the border repeated)."""
    torch.manual_seed(seed)
    net = build()
    x = torch.as_tensor(np.asarray(images, dtype=np.float32) / SCALE)
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
                xb = padded[batch][:, :, 1 + dy:9 + dy, 1 + dx:9 + dx]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xb), y[batch]).backward()
            opt.step()
    return net.eval()


def fit_robust(images: np.ndarray, labels: np.ndarray, seed: int, eps: float = 2.0,
               epochs: int = 15) -> torch.nn.Module:
    """The same network trained adversarially, the way Wong, Rice and Kolter (2020) do it
    ("Fast is better than free"): each batch replaced by its FGSM step from a random start
    (step 1.25 eps) within L-infinity eps, in pixel units (2.0: an eighth of the range). The
    robust twin of `fit` for tests and benchmarks; the example's deployed model is `fit`'s."""
    torch.manual_seed(seed)
    net = build()
    x = torch.as_tensor(np.asarray(images, dtype=np.float32) / SCALE)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    e = eps / SCALE
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    order = np.random.default_rng(seed)
    for _ in range(epochs):
        for batch in np.array_split(order.permutation(len(x)), max(1, len(x) // 64)):
            xb = x[batch]
            delta = ((torch.rand_like(xb) * 2 - 1) * e).requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(net((xb + delta).clamp(0, 1)), y[batch])
            (grad,) = torch.autograd.grad(loss, delta)
            step = (delta + 1.25 * e * grad.sign()).clamp(-e, e)
            adv = (xb + step).clamp(0, 1).detach()
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(adv), y[batch]).backward()
            opt.step()
    return net.eval()


def train(images: np.ndarray, labels: np.ndarray, seed: int):
    """What the probes call: a trained copy, as a function from images to class probabilities."""
    net = fit(images, labels, seed)

    def predict_proba(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = net(torch.as_tensor(np.asarray(batch, dtype=np.float32) / SCALE))
        return torch.softmax(out, dim=1).numpy().astype(float)
    return predict_proba
