"""Score-based black-box evasion of an image model: the Square attack (Andriushchenko et al.,
ECCV 2020), L-infinity.

The attacker sees the model's scores, not its gradients. Each image starts from vertical stripes
of ±ε (one sign per column and channel); then, query by query, a random square of the image is
set to ±ε around the original (one sign per channel) and kept when the margin (the log
probability of the model's answer minus the best other) falls; a square that would change
nothing (already at those values, or clipped by the range or the mask) is drawn again before it
costs a query. The square's share of the image starts at `p_init` and halves on the paper's
schedule. Every candidate is projected onto the pixel range and keeps the pixels outside the
mask, so every image sent is one the spec allows.
Reported: the success rate at each budget of the L-infinity curve (pixel units) within the query
budget per image, with Wilson intervals, and the queries the flipped images needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mlthreat.adapters.interface import ModelAdapter
from mlthreat.errors import ProbeError
from mlthreat.probes.evasion import (
    SUCCESS_RATE,
    EvasionData,
    log_margin,
    points_to_attack,
    robustness_curves,
)
from mlthreat.probes.interface import Budget, Measurement, Meter, Param, Prepared, Probe
from mlthreat.probes.stats import robustness
from mlthreat.results import Curve

if TYPE_CHECKING:
    from mlthreat.probes.target import Target

# the paper's schedule: the square's share of the image halves at these shares of 10,000 queries
HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
REDRAWS = 10          # draws of a square before a candidate that changes nothing is sent anyway


def share_at(p_init: float, query: int, budget: int) -> float:
    """The square's share of the image at `query` of `budget` (the schedule rescaled to it)."""
    at = int(query / budget * 10_000)
    return float(p_init / 2 ** sum(at > h for h in HALVINGS))


class SquareEvasion(Probe):
    """Parameters: epsilons (L-infinity budgets in pixel units), queries (per image and budget,
    500), p_init (the first square's share of the image, 0.05), shape (the images')."""

    name = "evasion-square"
    threat_ids = ("aml-evasion-blackbox",)
    parameters = {
        "epsilons": Param([0.1], 0.0, 1e6, doc="L-infinity budgets in pixel units"),
        "queries": Param(500, 1, 1_000_000, doc="model calls per image and budget"),
        "p_init": Param(0.05, 1e-4, 1.0, doc="the first square's share of the image"),
        "shape": Param(None, doc="channels, height, width of the images (from the spec)"),
    }
    requires = {"scores": "the Square attack reads the model's scores; with labels only the "
                          "label-only black-box probe measures evasion",
                "images": "the Square attack changes square patches of an image; tables and "
                          "text have evasion probes of their own"}

    @classmethod
    def configure(cls, target: Target, settings: dict[str, int], fixed: dict[str, Any],
                  seed: int, jobs: int) -> Prepared:
        from mlthreat.probes.images import image_epsilons
        assert target.spec.images is not None
        data = points_to_attack(target, settings)
        epsilons = [e for i, e in enumerate(image_epsilons(target.spec.images, "linf"))
                    if i in (2, 4, 6)]                  # 8/255, 0.1 and 0.3 of the range
        probe = cls(**{"epsilons": epsilons, "queries": settings["per_point"] * 2,
                       "shape": target.spec.images.shape, **fixed})
        n = len(data.x)
        return Prepared(probe, target.adapter, data,
                        Budget(queries=n * (len(epsilons) * (probe.param("queries") + 1) + 1),
                               seed=seed))

    def curves(self, m: Measurement) -> tuple[Curve, ...]:
        return robustness_curves(m)

    def _measure(self, model: ModelAdapter, data: EvasionData, rng: np.random.Generator,
                 meter: Meter) -> Measurement:
        if not model.capabilities.scores:
            raise ProbeError("the Square attack needs the model's scores")
        shape = self.param("shape")
        if shape is None:
            raise ProbeError("the Square attack needs the images' shape (channels, height, "
                             "width)")
        x = np.asarray(data.x, dtype=float)
        start = model.predict(x)
        epsilons = [float(e) for e in self.param("epsilons")]
        rates, spent = [], []
        for eps in epsilons:
            flipped, used = self.attack(model, x, start, eps, tuple(shape), data, rng)
            rates.append(float(flipped.mean()))
            spent += [float(u) for u in used[flipped]]
        curve = robustness(epsilons, rates, len(x))
        mid = len(epsilons) // 2
        median = float(np.median(spent)) if spent else float("nan")
        summary = (f"Square attack (L∞, scores, ≤{self.param('queries')} queries per image): "
                   f"{rates[mid]:.0%} of {len(x)} images flipped within {epsilons[mid]:.4g}, "
                   f"{rates[-1]:.0%} within {epsilons[-1]:.4g}"
                   + (f"; median {median:.0f} queries per flipped image" if spent else ""))
        return Measurement("success_rate", rates[-1],
                           (curve["success_low"][-1], curve["success_high"][-1]),
                           rates[-1] >= SUCCESS_RATE, summary, curve,
                           {"norm": "linf", "points": len(x), "median_queries": median,
                            "warnings": data.warnings()})

    def attack(self, model: ModelAdapter, x: np.ndarray, start: np.ndarray, eps: float,
               shape: tuple[int, int, int], data: EvasionData, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
        """(flipped?, queries used) per image, each candidate within ε, the range and the mask."""
        c, h, w = shape
        n, budget = len(x), int(self.param("queries"))
        project = (data.constraints.project if data.constraints is not None
                   else (lambda cand, orig: cand))
        stripes = rng.choice([-eps, eps], size=(n, c, 1, w)) * np.ones((1, 1, h, 1))
        best = project(x + stripes.reshape(n, -1), x)
        loss = self._margin(model, best, start, data)
        used = np.ones(n, dtype=int)
        for query in range(1, budget):
            active = np.flatnonzero(loss >= 0)
            if not len(active):
                break
            side = max(1, min(h, w, int(round(np.sqrt(
                share_at(float(self.param("p_init")), query, budget) * h * w)))))
            cand_rows = self._candidates(best[active], x[active], side, eps, shape, project, rng)
            new = self._margin(model, cand_rows, start[active], data)
            used[active] += 1
            better = new < loss[active]
            best[active[better]] = cand_rows[better]
            loss[active[better]] = new[better]
        return loss < 0, used

    @staticmethod
    def _candidates(best: np.ndarray, x: np.ndarray, side: int, eps: float,
                    shape: tuple[int, int, int], project: Any, rng: np.random.Generator
                    ) -> np.ndarray:
        """Per image, its best so far with a random square of side `side` set to ±ε around the
        original (one sign per channel), projected. A candidate the projection makes equal to
        the best (the square already at those values, clipped by the range, or outside the
        mask) would spend a query on nothing: its square and signs are drawn again, up to
        REDRAWS times, as the authors' implementation does (ART's sends it; on 28×28 digits
        about 45 % of its queries)."""
        c, h, w = shape
        cand = best.copy()
        todo = np.arange(len(best))
        for _ in range(REDRAWS):
            top = rng.integers(0, h - side + 1, size=len(todo))
            left = rng.integers(0, w - side + 1, size=len(todo))
            signs = rng.choice([-eps, eps], size=(len(todo), c))
            drawn = best[todo].reshape(-1, c, h, w).copy()
            orig = x[todo].reshape(-1, c, h, w)
            for k in range(len(todo)):
                window = (slice(None), slice(top[k], top[k] + side),
                          slice(left[k], left[k] + side))
                drawn[k][window] = orig[k][window] + signs[k][:, None, None]
            cand[todo] = project(drawn.reshape(len(todo), -1), x[todo])
            todo = todo[np.all(cand[todo] == best[todo], axis=1)]
            if not len(todo):
                break
        return cand

    @staticmethod
    def _margin(model: ModelAdapter, rows: np.ndarray, start: np.ndarray,
                data: EvasionData) -> np.ndarray:
        """Below zero once the attacker has what it wants: the start class's log probability
        minus the best other's (with a goal: the best other's minus the goal's)."""
        proba = model.predict_proba(rows)
        if data.target is not None:
            return -log_margin(proba, np.full(len(rows), data.target))
        return log_margin(proba, start)
