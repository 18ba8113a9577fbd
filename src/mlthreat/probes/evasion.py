"""White-box evasion: how small a change to an input flips the model's decision, when the
attacker has the model's gradients (a model shipped to devices, or a stolen copy)?

Projected gradient descent (Madry et al., 2018) on the decision margin, under an L-infinity or L2
budget, with every step projected onto realisable records (`Constraints`) as well as onto the
budget. Reported: the success rate over a grid of budgets (the robustness curve) with Wilson
intervals, and the median smallest budget that flips each point (binary search on PGD), where
features are on the scale the model sees (for standardised data: standard deviations).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlthreat.probes.adapters import TorchAdapter, torch_gradient
from mlthreat.probes.constraints import Constraints
from mlthreat.probes.extraction import _wilson
from mlthreat.probes.interface import Measurement, Meter, Probe, ProbeError

SUCCESS_RATE = 0.5


@dataclass(frozen=True)
class EvasionData:
    x: np.ndarray                        # points to attack (the model's input scale)
    constraints: Constraints | None = None
    target: int | None = None            # the class the attacker wants; None: any other class


def _project_ball(delta: np.ndarray, eps: np.ndarray, norm: str) -> np.ndarray:
    """Each row of `delta` into its own ball of radius eps[row]."""
    radius = eps[:, None]
    if norm == "linf":
        return np.asarray(np.clip(delta, -radius, radius), dtype=float)
    size = np.linalg.norm(delta, axis=1, keepdims=True)
    return np.asarray(delta * np.minimum(1.0, radius / np.maximum(size, 1e-12)), dtype=float)


def _step(grad: np.ndarray, size: np.ndarray, norm: str) -> np.ndarray:
    if norm == "linf":
        return np.asarray(size[:, None] * np.sign(grad), dtype=float)
    length = np.linalg.norm(grad, axis=1, keepdims=True)
    return np.asarray(size[:, None] * grad / np.maximum(length, 1e-12), dtype=float)


class WhiteBoxEvasion(Probe):
    """Parameters: norm ("linf" or "l2"), epsilons (budgets for the curve), steps (40),
    search (binary-search steps for the minimal budget, 12), max_epsilon (upper end of the
    search, 4.0)."""

    name = "evasion"
    threat_ids = ("aml-evasion-whitebox", "aml-evasion-blackbox", "aml-evasion-transfer")

    def _measure(self, model: TorchAdapter, data: EvasionData, rng: np.random.Generator,
                 meter: Meter) -> Measurement:
        if not model.capabilities.gradients:
            raise ProbeError("white-box evasion needs gradients (a PyTorch model)")
        norm = self.params.get("norm", "linf")
        if norm not in ("linf", "l2"):
            raise ProbeError(f"unknown norm {norm!r}")
        x = np.asarray(data.x, dtype=float)
        start = model.predict(x)
        epsilons = [float(e) for e in self.params.get("epsilons", [0.05, 0.1, 0.3, 0.5, 1.0])]
        rates = []
        for eps in epsilons:
            flipped, _ = self.pgd(model, x, start, np.full(len(x), eps), norm, data)
            rates.append(float(flipped.mean()))
        minimal = self.minimal(model, x, start, norm, data)
        found = minimal[np.isfinite(minimal)]
        median = float(np.median(found)) if len(found) else float("inf")
        lo, hi = _wilson(rates[-1], len(x))
        mid = epsilons[len(epsilons) // 2]
        summary = (f"PGD ({norm}): {rates[len(epsilons) // 2]:.0%} of {len(x)} points flipped "
                   f"within {mid}, {rates[-1]:.0%} within {epsilons[-1]}; median smallest "
                   f"flipping change {median:.3f} ({len(found)} of {len(x)} flipped at all)")
        return Measurement("success_rate", rates[-1], (lo, hi), rates[-1] >= SUCCESS_RATE,
                           summary, {"epsilon": epsilons, "success_rate": rates},
                           {"median_minimal_perturbation": median, "norm": norm,
                            "minimal": [float(m) for m in minimal]})

    def pgd(self, model: TorchAdapter, x: np.ndarray, start: np.ndarray, eps: np.ndarray,
            norm: str, data: EvasionData) -> tuple[np.ndarray, np.ndarray]:
        """(flipped?, adversarial points), each row within its own budget eps[row]."""
        steps = int(self.params.get("steps", 40))
        size = 2.5 * eps / steps
        adv = x.copy()
        flipped = np.zeros(len(x), dtype=bool)
        for _ in range(steps):
            active = ~flipped
            if not active.any():
                break
            grad = torch_gradient(model, adv[active], start[active])   # margin of the start class
            moved = adv[active] - _step(grad, size[active], norm)       # descend the margin
            moved = x[active] + _project_ball(moved - x[active], eps[active], norm)
            if data.constraints is not None:
                moved = data.constraints.project(moved, x[active])
                moved = x[active] + _project_ball(moved - x[active], eps[active], norm)
            adv[active] = moved
            now = model.predict(adv[active])
            hit = (now != start[active]) if data.target is None else (now == data.target)
            flipped[np.flatnonzero(active)[hit]] = True
        return flipped, adv

    def minimal(self, model: TorchAdapter, x: np.ndarray, start: np.ndarray, norm: str,
                data: EvasionData) -> np.ndarray:
        """Per point, the smallest budget (to the search's precision) at which PGD flips it."""
        lo, hi = np.zeros(len(x)), np.full(len(x), float(self.params.get("max_epsilon", 4.0)))
        reachable, _ = self.pgd(model, x, start, hi, norm, data)
        rows = np.flatnonzero(reachable)
        for _ in range(int(self.params.get("search", 12))):
            if not len(rows):
                break
            mid = (lo[rows] + hi[rows]) / 2
            flipped, _ = self.pgd(model, x[rows], start[rows], mid, norm, data)
            hi[rows] = np.where(flipped, mid, hi[rows])
            lo[rows] = np.where(flipped, lo[rows], mid)
        return np.where(reachable, hi, np.inf)
