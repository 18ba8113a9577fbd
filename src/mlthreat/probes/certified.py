"""Exact evasion of tree ensembles: per point, the smallest change that flips the model's
decision, certified (no smaller realisable change flips it), when the team holds the model file.

Where the other evasion probes say what an attack found (an upper bound on the smallest
change), this one solves the minimal-change problem exactly (`minimal.py`, `exact.py`) under the
spec's constraints: immutable columns, bounds, integers and one-hot groups are constraints of the
program. What it reports is the model's certified robust radius per point: the smallest
flipping change in L2 (and in L-infinity and L1 on the thorough budget), its distribution with
intervals, the success rate an optimal attacker has at each budget, and the before/after
records of the smallest changes. A point whose program hits the time limit reports the best
change found and the radius certified so far; the summary says how many.

Distances are in standard deviations of the data's own columns (one-hot columns move by 1), as
in the other evasion probes, so their figures divide by these (`benchmarks/exact_trees.py`
reports the ratio). The trees split the model's own input, so the program is solved there, with
per-column weights 1/SD where the model's input is not standardised (`ExactData.weights`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlthreat.adapters import model_object
from mlthreat.adapters.interface import ModelAdapter
from mlthreat.errors import ProbeError
from mlthreat.probes.constraints import Constraints
from mlthreat.probes.evasion import few_points, points_to_attack, robustness_curves
from mlthreat.probes.interface import Budget, Measurement, Meter, Param, Prepared, Probe
from mlthreat.probes.minimal import NORMS, Solution, minimal_change
from mlthreat.probes.stats import median_interval, robustness
from mlthreat.probes.trees import Ensemble, read
from mlthreat.results import Curve

if TYPE_CHECKING:
    from mlthreat.probes.target import Target

SUCCESS_RATE = 0.5
EPSILONS = (0.1, 0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class ExactData:
    x: np.ndarray                   # points (in the model's own input units)
    ensemble: Ensemble
    constraints: Constraints | None
    goal: int | None
    pool: np.ndarray | None         # the defender's rows: where the search starts
    weights: np.ndarray | None = None   # per column: distances in standard deviations (1/unit)
    asked: int | None = None            # points the budget asked for


class ExactEvasion(Probe):
    """Parameters: norms (["l2"]; "linf" and "l1" as well on request), seconds (time limit
    per point and norm, 10), epsilons (budgets of the robustness curve, in the norm's units)."""

    name = "evasion-exact"
    threat_ids = ("aml-evasion-whitebox",)

    parameters = {
        "norms": Param(["l2"], choices=NORMS, doc="norms the smallest change is measured in"),
        "seconds": Param(10.0, 0.05, 86_400.0, doc="time limit per point and norm"),
        "epsilons": Param(list(EPSILONS), 0.0, 1e6, doc="budgets of the robustness curve"),
    }
    requires = {"trees": "exact evasion solves the minimal change for tree ensembles held as a "
                         "model file (scikit-learn forests and boosting, XGBoost, LightGBM); "
                         "this model is none of them"}

    @classmethod
    def configure(cls, target: Target, settings: dict[str, int], fixed: dict[str, Any],
                  seed: int, jobs: int) -> Prepared:
        model = model_object(target.adapter)
        if model is None:
            raise ProbeError("exact evasion needs the model file (not an endpoint)")
        attacked = points_to_attack(target, {"points": settings["exact_points"]})
        # the trees split the model's own input: solve there, measuring in standard deviations
        unit = np.ones(target.x.shape[1]) if target.unit is None else target.unit
        constraints = (target.constraints if target.unit is None
                       else target.constraints.rescaled(1.0 / unit))
        ensemble = read(model, target.x[target.test][:500] * unit)
        data = ExactData(attacked.x * unit, ensemble, constraints, target.goal,
                         target.x[target.train] * unit,
                         None if target.unit is None else 1.0 / unit, attacked.asked)
        norms = list(NORMS[:settings["exact_norms"]])
        probe = cls(**{"norms": norms, "seconds": float(settings["exact_seconds"]), **fixed})
        inner: Any = target.adapter
        while isinstance(getattr(inner, "inner", None), ModelAdapter):
            inner = inner.inner     # the defender asks the model itself (in its own units),
            # not the interface
        return Prepared(probe, inner, data, Budget(seed=seed))

    def title(self) -> str:
        return "evasion-exact (certified minimal change)"

    def curves(self, m: Measurement) -> tuple[Curve, ...]:
        return robustness_curves(m)

    def _measure(self, model: ModelAdapter, data: ExactData, rng: np.random.Generator,
                 meter: Meter) -> Measurement:
        norms = list(self.param("norms"))
        seconds = float(self.param("seconds"))
        start = model.predict(data.x)

        def wanted(i: int) -> Any:
            goal = data.goal
            return lambda x: bool((model.predict(np.atleast_2d(x))[0] == goal) if goal is not None
                                  else model.predict(np.atleast_2d(x))[0] != start[i])
        found: dict[str, list[Solution]] = {n: [] for n in norms}
        for norm in norms:
            for i, x0 in enumerate(data.x):
                found[norm].append(minimal_change(
                    data.ensemble, x0, data.goal, norm, data.constraints,
                    weights=data.weights, seconds=seconds, verify=wanted(i), pool=data.pool))
        return self._summarise(data, found, norms[0])

    def _summarise(self, data: ExactData, found: dict[str, list[Solution]], main: str
                   ) -> Measurement:
        sols = found[main]
        dist = np.array([s.distance for s in sols])
        bound = np.array([s.bound for s in sols])
        n = len(sols)
        epsilons = [float(e) for e in self.param("epsilons")]
        rates = [float(np.mean(dist <= e)) for e in epsilons]
        curve = robustness(epsilons, rates, n)
        at = epsilons.index(0.5) if 0.5 in epsilons else len(epsilons) // 2
        optimal = sum(s.status == "optimal" for s in sols)
        never = sum(s.status == "no flip possible" for s in sols)
        median, (lo, hi) = float(np.median(dist)), median_interval(dist)
        open_ = n - optimal - never
        summary = (f"exact evasion ({data.ensemble.kind}, {len(data.ensemble.trees)} trees): "
                   f"the smallest realisable change that flips a point has median "
                   f"{main.upper()} {median:.3f} (95% CI {lo:.3f}–{hi:.3f}) over {n} points; "
                   f"{rates[at]:.0%} flip within {epsilons[at]}; "
                   f"{optimal} of {n} solved to optimality"
                   + (f", {never} cannot be flipped by any allowed change" if never else "")
                   + (f", {open_} hit the time limit (their change lies between the certified "
                      "radius and the best found)" if open_ else ""))
        extra: dict[str, Any] = {
            "norm": main, "points": n, "median_minimal_perturbation": median,
            "median_interval": [lo, hi], "minimal": [float(d) for d in dist],
            "certified": [float(b) for b in bound], "optimal": optimal,
            "unflippable": never, "time_limited": open_,
            "seconds_per_point": [float(s.seconds) for s in sols],
            "norms": {k: _per_norm(v) for k, v in found.items()},
            "warnings": few_points(n, data.asked),
        }
        if data.constraints is not None:
            extra["examples"] = _examples(data, sols)
        return Measurement("success_rate", rates[at],
                           (curve["success_low"][at], curve["success_high"][at]),
                           rates[at] >= SUCCESS_RATE, summary, curve, extra)


def _per_norm(sols: list[Solution]) -> dict[str, Any]:
    dist = np.array([s.distance for s in sols])
    lo, hi = median_interval(dist)
    finite = dist[np.isfinite(dist)]
    return {"median": float(np.median(dist)), "median_interval": [lo, hi],
            "p10": float(np.quantile(finite, 0.1)) if len(finite) else float("inf"),
            "p90": float(np.quantile(dist, 0.9)),
            "optimal": sum(s.status == "optimal" for s in sols),
            "minimal": [float(d) for d in dist], "certified": [float(s.bound) for s in sols]}


def _examples(data: ExactData, sols: list[Solution], n: int = 3) -> list[dict[str, Any]]:
    """The smallest certified changes as the records before and after (what changed)."""
    assert data.constraints is not None
    ranked = sorted((s.distance, i) for i, s in enumerate(sols) if s.x is not None)
    out = []
    for dist, i in ranked[:n]:
        x_adv = sols[i].x
        assert x_adv is not None
        before, after = data.constraints.records(np.vstack([data.x[i], x_adv]))
        changed = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
        weights = np.ones(len(x_adv)) if data.weights is None else data.weights
        out.append({"row": i, "l2": float(np.linalg.norm((x_adv - data.x[i]) * weights)),
                    "distance": float(dist), "certified": sols[i].status == "optimal",
                    "changed": changed})
    return out
