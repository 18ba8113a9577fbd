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

With `jobs` > 1 (a cluster's workers, or local processes when this is the only probe task) the
points are solved in parallel: what travels is the trees read from the model and the points,
never the model. There a found change is checked against the trees; every input they were asked
about comes back with their answer, and here the model itself is asked about the same inputs. If
it agrees on all of them, the search went exactly as it would have here; a point where it does
not (a tie the trees' float sums break differently) is solved again here, asking the model.

Distances are in standard deviations of the data's own columns (one-hot columns move by 1), as
in the other evasion probes, so their figures divide by these (`benchmarks/exact_trees.py`
reports the ratio). The trees split the model's own input, so the program is solved there, with
per-column weights 1/SD where the model's input is not standardised (`ExactData.weights`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlthreat.adapters import innermost, model_object
from mlthreat.adapters.interface import ModelAdapter
from mlthreat.cluster import fan_out
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
    per point and norm, 10), epsilons (budgets of the robustness curve, in the norm's units),
    jobs (1: points solved one after the other here)."""

    name = "evasion-exact"
    threat_ids = ("aml-evasion-whitebox",)

    parameters = {
        "norms": Param(["l2"], choices=NORMS, doc="norms the smallest change is measured in"),
        "seconds": Param(10.0, 0.05, 86_400.0, doc="time limit per point and norm"),
        "epsilons": Param(list(EPSILONS), 0.0, 1e6, doc="budgets of the robustness curve"),
        "jobs": Param(1, 1, 256, doc="processes (or cluster workers) the points are solved in"),
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
        probe = cls(**{"norms": norms, "seconds": float(settings["exact_seconds"]),
                       "jobs": jobs, **fixed})
        # the defender asks the model itself (in its own units), not the interface
        return Prepared(probe, innermost(target.adapter), data, Budget(seed=seed))

    def title(self) -> str:
        return "evasion-exact (certified minimal change)"

    def curves(self, m: Measurement) -> tuple[Curve, ...]:
        return robustness_curves(m)

    def _measure(self, model: ModelAdapter, data: ExactData, rng: np.random.Generator,
                 meter: Meter) -> Measurement:
        norms = list(self.param("norms"))
        seconds = float(self.param("seconds"))
        start = model.predict(data.x)

        def flips(i: int, rows: np.ndarray) -> np.ndarray:
            """The model's own answer: do these inputs give the wanted outcome for point i?"""
            got = model.predict(np.atleast_2d(rows))
            return np.asarray(got == data.goal if data.goal is not None else got != start[i])

        def here(norm: str, i: int) -> Solution:
            return minimal_change(data.ensemble, data.x[i], data.goal, norm, data.constraints,
                                  weights=data.weights, seconds=seconds, pool=data.pool,
                                  verify=lambda x: bool(flips(i, x)[0]))
        work = [(norm, i) for norm in norms for i in range(len(data.x))]
        jobs = int(self.param("jobs"))
        if jobs > 1 and len(work) > 1:
            solved = _spread(data, work, seconds, jobs, flips, here)
        else:
            solved = [here(norm, i) for norm, i in work]
        found: dict[str, list[Solution]] = {n: [] for n in norms}
        for (norm, _), sol in zip(work, solved, strict=True):
            found[norm].append(sol)
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


def _spread(data: ExactData, work: list[tuple[str, int]], seconds: float, jobs: int,
            flips: Callable[[int, np.ndarray], np.ndarray],
            here: Callable[[str, int], Solution]) -> list[Solution]:
    """The points solved in `jobs` parallel tasks (a Dask cluster's workers, or local
    processes) against the trees; each kept only if the model gives the trees' answer on every
    input they were asked about, else solved again `here`."""
    shared = Shared(data.ensemble, data.goal, data.constraints, data.weights, data.pool, seconds)
    away = fan_out(_against_trees, shared, [(norm, data.x[i]) for norm, i in work], jobs)
    out = []
    for (norm, i), (sol, asked, said) in zip(work, away, strict=True):
        same = not len(asked) or bool(np.array_equal(flips(i, asked), said))
        out.append(sol if same else here(norm, i))
    return out


@dataclass(frozen=True)
class Shared:
    """What every point's search needs, sent once to each worker: the trees, not the model."""

    ensemble: Ensemble
    goal: int | None
    constraints: Constraints | None
    weights: np.ndarray | None
    pool: np.ndarray | None
    seconds: float


def _against_trees(shared: Shared, point: tuple[str, np.ndarray]
                   ) -> tuple[Solution, np.ndarray, np.ndarray]:
    """One point's minimal change where only the trees are at hand: (the solution, every input
    the search asked about, the trees' answers)."""
    norm, x0 = point
    ensemble, goal = shared.ensemble, shared.goal
    current = int(ensemble.predict(np.atleast_2d(x0))[0])
    asked: list[np.ndarray] = []
    said: list[bool] = []

    def verify(x: np.ndarray) -> bool:
        got = int(ensemble.predict(np.atleast_2d(x))[0])
        answer = got == goal if goal is not None else got != current
        asked.append(np.array(x, dtype=float))
        said.append(answer)
        return answer
    sol = minimal_change(ensemble, x0, goal, norm, shared.constraints, weights=shared.weights,
                         seconds=shared.seconds, verify=verify, pool=shared.pool)
    return sol, np.array(asked).reshape(len(asked), len(x0)), np.array(said, dtype=bool)


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
        changed = data.constraints.changed(data.x[i], x_adv)
        weights = np.ones(len(x_adv)) if data.weights is None else data.weights
        out.append({"row": i, "l2": float(np.linalg.norm((x_adv - data.x[i]) * weights)),
                    "distance": float(dist), "certified": sols[i].status == "optimal",
                    "changed": changed})
    return out
