"""White-box evasion: how small a change to an input flips the model's decision, when the
attacker has the model's gradients (a model shipped to devices, or a stolen copy)?

Projected gradient descent (Madry et al., 2018) on the decision margin, under an L-infinity or L2
budget, with every step projected onto realisable records (`Constraints`) as well as onto the
budget. Reported: the success rate over a grid of budgets (the robustness curve) with Wilson
intervals, and the median smallest budget that flips each point (binary search on PGD). From a
spec, budgets and distances are in standard deviations of the data's own columns whatever scaling
the model applies (the target works in those units: `target.deviation_unit`); one-hot columns
move by 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlthreat.adapters.interface import ModelAdapter
from mlthreat.errors import ProbeError
from mlthreat.probes.constraints import Constraints
from mlthreat.probes.interface import Budget, Measurement, Meter, Param, Prepared, Probe
from mlthreat.probes.stats import median_interval, robustness, wilson
from mlthreat.results import Curve

if TYPE_CHECKING:
    from mlthreat.probes.target import Target

SUCCESS_RATE = 0.5
# what the probes that move a model's input rows require: a text model's rows are its
# vectoriser's features, which no text need give
ROWS_ONLY = {"records": "it moves the model's input rows, and no text need give the features it "
                        "would find (evasion-text misspells the words instead)"}


@dataclass(frozen=True)
class EvasionData:
    x: np.ndarray                        # points to attack (the model's input scale)
    constraints: Constraints | None = None
    target: int | None = None            # the class the attacker wants; None: any other class
    pool: np.ndarray | None = None       # rows the attacker holds (black-box starting points)
    pool_y: np.ndarray | None = None     # their labels, as the attacker knows them
    asked: int | None = None             # points the budget asked for (from a spec)

    def warnings(self) -> list[str]:
        """Too few points for the figures to rest on much: fewer than the budget asked for and
        under MIN_POINTS."""
        return few_points(len(self.x), self.asked)


MIN_POINTS = 30


def few_points(n: int, asked: int | None) -> list[str]:
    if asked is None or n >= min(asked, MIN_POINTS):
        return []
    return [f"only {n} held-out rows to attack (the budget asks for {asked}; the model already "
            "gives the others the attacker's goal, or few rows are held out): the success "
            "rates' intervals are wide; a larger test_size narrows them"]


def _project_ball(delta: np.ndarray, eps: np.ndarray, norm: str) -> np.ndarray:
    """Each row of `delta` into its own ball of radius eps[row]."""
    radius = eps[:, None]
    if norm == "linf":
        return np.asarray(np.clip(delta, -radius, radius), dtype=float)
    size = np.linalg.norm(delta, axis=1, keepdims=True)
    return np.asarray(delta * np.minimum(1.0, radius / np.maximum(size, 1e-12)), dtype=float)


def _size(delta: np.ndarray, norm: str) -> np.ndarray:
    if norm == "linf":
        return np.asarray(np.abs(delta).max(axis=1, initial=0.0), dtype=float)
    return np.asarray(np.linalg.norm(delta, axis=1), dtype=float)


def realisable_within(c: Constraints, x: np.ndarray, moved: np.ndarray, eps: np.ndarray,
                      norm: str, halvings: int = 12) -> np.ndarray:
    """Records the spec allows that stay within each row's budget: `moved` projected onto the
    constraints; where rounding a whole number or switching a category takes a row out of its
    ball, the largest share of the move (by bisection) whose projection stays inside, the
    original itself at worst. (Projecting onto the ball after the constraints, as before, gave
    rows between two whole numbers or two categories: no record at all.)"""
    delta = moved - x
    best = c.project(moved, x)
    inside = _size(best - x, norm) <= eps * (1 + 1e-9)
    if inside.all():
        return best
    rows = np.flatnonzero(~inside)
    best[rows] = x[rows]
    lo, hi = np.zeros(len(rows)), np.ones(len(rows))
    for _ in range(halvings):
        mid = (lo + hi) / 2
        trial = c.project(x[rows] + mid[:, None] * delta[rows], x[rows])
        ok = _size(trial - x[rows], norm) <= eps[rows] * (1 + 1e-9)
        best[rows[ok]] = trial[ok]
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    return best


def _random_in_ball(rng: np.random.Generator, n: int, d: int, eps: np.ndarray, norm: str
                    ) -> np.ndarray:
    """n points drawn uniformly from the L-infinity or L2 ball of radius eps[row] (for L2: a
    uniform direction, radius eps * U^(1/d))."""
    if norm == "linf":
        return np.asarray(rng.uniform(-1.0, 1.0, (n, d)) * eps[:, None], dtype=float)
    direction = rng.normal(size=(n, d))
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
    radius = eps * rng.uniform(size=n) ** (1.0 / d)
    return np.asarray(direction * radius[:, None], dtype=float)


def _step(grad: np.ndarray, size: np.ndarray, norm: str) -> np.ndarray:
    if norm == "linf":
        return np.asarray(size[:, None] * np.sign(grad), dtype=float)
    length = np.linalg.norm(grad, axis=1, keepdims=True)
    return np.asarray(size[:, None] * grad / np.maximum(length, 1e-12), dtype=float)


def log_margin(proba: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Per row, the log probability of class `classes[row]` minus the best other class's (below
    zero once another class wins)."""
    logp = np.log(np.clip(np.asarray(proba, dtype=float), 1e-30, None))
    idx = np.arange(len(logp))
    mine = logp[idx, classes].copy()
    logp[idx, classes] = -np.inf
    return np.asarray(mine - logp.max(axis=1), dtype=float)


def checkpoints(steps: int) -> list[int]:
    """The iterations at which APGD (Croce and Hein, 2020) may halve its step: the shares
    p_1 = 0.22, p_(j+1) = p_j + max(p_j - p_(j-1) - 0.03, 0.06) (p_0 = 0) of the steps, rounded
    up, while they are at most 1: the paper's 22, 41, 57, 70, 80, 87, 93, 99 of 100 steps."""
    shares = [0.0, 0.22]
    while shares[-1] + max(shares[-1] - shares[-2] - 0.03, 0.06) <= 1.0:
        shares.append(shares[-1] + max(shares[-1] - shares[-2] - 0.03, 0.06))
    return sorted({int(np.ceil(round(p * steps, 9))) for p in shares if p > 0})


def points_to_attack(t: Target, settings: dict[str, int]) -> EvasionData:
    """Held-out rows the model does not already put in the attacker's class (at most the
    budget's number of points); the attacker's own rows are the training rows, with labels."""
    x = t.x[t.test]
    if t.goal is not None:
        x = x[t.adapter.predict(x) != t.goal]
    x = x[:settings["points"]]
    if not len(x):
        raise ProbeError("no held-out row to attack: the model already gives every one the "
                         "attacker's goal")
    return EvasionData(x, t.constraints, t.goal, pool=t.x[t.train], pool_y=t.y[t.train],
                       asked=settings["points"])


def robustness_curves(m: Measurement) -> tuple[Curve, ...]:
    """Success rate against the perturbation budget, with its Wilson band where measured: the
    chart every evasion probe draws."""
    eps, rate = m.series.get("epsilon"), m.series.get("success_rate")
    if not eps or not rate:
        return ()
    lo, hi = m.series.get("success_low"), m.series.get("success_high")
    n = int(m.extra.get("points") or 0)
    if lo is None and n:
        lo, hi = (list(b) for b in zip(*(wilson(r, n) for r in rate), strict=True))
    norm = str(m.extra.get("norm", "l2")).upper()
    return (Curve(tuple(eps), tuple(rate), f"perturbation budget ({norm})", "success rate",
                  tuple(lo) if lo else None, tuple(hi) if hi else None,
                  x_range=(0.0, max(eps))),)


class WhiteBoxEvasion(Probe):
    """Parameters: norm ("linf" or "l2"), epsilons (budgets for the curve), steps (40),
    search (binary-search steps for the minimal budget, 12), max_epsilon (upper end of the
    search, 4.0)."""

    name = "evasion-whitebox"
    threat_ids = ("aml-evasion-whitebox",)

    parameters = {
        "norm": Param("linf", choices=("linf", "l2")),
        "epsilons": Param([0.05, 0.1, 0.3, 0.5, 1.0], 0.0, 1e6,
                          doc="perturbation budgets of the robustness curve"),
        "steps": Param(40, 1, 10_000, doc="PGD steps"),
        "max_epsilon": Param(4.0, 0.0, 1e6, doc="largest change the minimal search tries"),
        "search": Param(12, 0, 64, doc="bisection steps of the minimal change per point"),
        "restarts": Param(1, 1, 100, doc="PGD runs per budget: the first from the point itself, "
                                         "the others from a random point of the budget's ball"),
        "targets": Param(0, 0, 100, doc="then runs towards each of this many runner-up classes "
                                        "for points still not flipped"),
        "schedule": Param("fixed", choices=("fixed", "apgd"),
                          doc="step size: fixed (2.5 budgets over the steps) or APGD's (twice the "
                              "budget, momentum, halved where the margin stops improving)"),
    }
    requires = {"gradients": "white-box evasion needs gradients; this model has none (the "
                             "black-box and transfer probes cover it)",
                **ROWS_ONLY}

    @classmethod
    def configure(cls, target: Target, settings: dict[str, int], fixed: dict[str, Any],
                  seed: int, jobs: int) -> Prepared:
        data = points_to_attack(target, settings)
        params: dict[str, Any] = {"norm": "l2", "epsilons": [0.25, 0.5, 1.0, 2.0], "search": 8}
        if target.images:       # pixel units: the field's L-infinity budgets, random restarts
            from mlthreat.probes.images import image_epsilons
            assert target.spec.images is not None
            low, high = target.spec.images.range
            params.update(norm="linf", epsilons=image_epsilons(target.spec.images, "linf"),
                          max_epsilon=float(high - low), restarts=3, targets=3,
                          schedule="apgd")
        probe = cls(**{**params, **fixed})
        return Prepared(probe, target.adapter, data, Budget(seed=seed))

    def curves(self, m: Measurement) -> tuple[Curve, ...]:
        return robustness_curves(m)

    def _measure(self, model: ModelAdapter, data: EvasionData, rng: np.random.Generator,
                 meter: Meter) -> Measurement:
        if not model.capabilities.gradients:
            raise ProbeError("white-box evasion needs gradients (a PyTorch model, a scikit-learn "
                             "MLP or linear model)")
        norm = self.param("norm")
        x = np.asarray(data.x, dtype=float)
        start = model.predict(x)
        epsilons = [float(e) for e in self.param("epsilons")]
        rates = []
        for eps in epsilons:
            flipped, _ = self.pgd(model, x, start, np.full(len(x), eps), norm, data, rng=rng)
            rates.append(float(flipped.mean()))
        minimal = self.minimal(model, x, start, norm, data, rng)
        found = minimal[np.isfinite(minimal)]
        median = float(np.median(found)) if len(found) else float("inf")
        curve = robustness(epsilons, rates, len(x))
        median_lo, median_hi = median_interval(minimal)
        mid = epsilons[len(epsilons) // 2]
        steps = ", APGD's step schedule" if self.param("schedule") == "apgd" else ""
        summary = (f"PGD ({norm}{steps}): {rates[len(epsilons) // 2]:.0%} of {len(x)} points flipped "
                   f"within {mid:.4g}, {rates[-1]:.0%} within {epsilons[-1]:.4g}; median smallest "
                   f"flipping change {median:.3f} ({len(found)} of {len(x)} flipped at all)")
        return Measurement("success_rate", rates[-1],
                           (curve["success_low"][-1], curve["success_high"][-1]),
                           rates[-1] >= SUCCESS_RATE, summary, curve,
                           {"median_minimal_perturbation": median, "norm": norm,
                            "median_interval": [median_lo, median_hi], "points": len(x),
                            "minimal": [float(m) for m in minimal],
                            "warnings": data.warnings()})

    def pgd(self, model: ModelAdapter, x: np.ndarray, start: np.ndarray, eps: np.ndarray,
            norm: str, data: EvasionData, early: bool = True,
            rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(flipped?, adversarial points), each row within its own budget eps[row]. With
        `early`, a row stops moving once it flips (minimal changes); without, every row takes
        all steps (changes that cross the boundary by a margin, as transfer attacks want).
        With `restarts` above 1 (and an `rng`), rows not flipped run again from a random point
        of their ball (Madry et al.'s random restarts)."""
        flipped, adv = self._pgd_once(model, x, start, eps, norm, data, early, None)
        for _ in range(int(self.param("restarts")) - 1):
            rows = np.flatnonzero(~flipped)
            if rng is None or not len(rows):
                break
            noise = _random_in_ball(rng, len(rows), x.shape[1], eps[rows], norm)
            hit, moved = self._pgd_once(model, x[rows], start[rows], eps[rows], norm, data,
                                        early, noise)
            flipped[rows[hit]] = True
            adv[rows[hit]] = moved[hit]
        targets = int(self.param("targets"))
        rows = np.flatnonzero(~flipped)
        if targets and data.target is None and len(rows) and model.capabilities.scores:
            # then towards each of the runner-up classes in turn (as APGD-T does): climbing one
            # class's margin finds changes the start class's own margin misses
            order = np.argsort(-model.predict_proba(x[rows]), axis=1, kind="stable")
            for rank in range(1, min(targets, order.shape[1] - 1) + 1):
                left = ~flipped[rows]
                if not left.any():
                    break
                sub = rows[left]
                hit, moved = self._pgd_once(model, x[sub], start[sub], eps[sub], norm, data,
                                            early, None, toward=order[left, rank])
                flipped[sub[hit]] = True
                adv[sub[hit]] = moved[hit]
        return flipped, adv

    def _pgd_once(self, model: ModelAdapter, x: np.ndarray, start: np.ndarray, eps: np.ndarray,
                  norm: str, data: EvasionData, early: bool, noise: np.ndarray | None,
                  toward: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        adv = x.copy()
        if noise is not None:
            adv = x + noise
            if data.constraints is not None:
                adv = realisable_within(data.constraints, x, adv, eps, norm)
        if self.param("schedule") == "apgd" and model.capabilities.scores:
            return self._apgd(model, x, start, eps, norm, data, early, adv, toward)
        steps = int(self.param("steps"))
        size = 2.5 * eps / steps
        flipped = np.zeros(len(x), dtype=bool)
        for _ in range(steps):
            active = ~flipped
            if not active.any():
                break
            aim = None if toward is None else toward[active]
            moved = self._project(x[active], adv[active] + self._ascent(
                model, adv[active], start[active], size[active], norm, aim),
                eps[active], norm, data)
            adv[active] = moved
            if early:
                flipped[np.flatnonzero(active)[self._hit(model, adv[active], start[active],
                                                         data)]] = True
        if not early:
            flipped = self._hit(model, adv, start, data)
        return flipped, adv

    @staticmethod
    def _ascent(model: ModelAdapter, adv: np.ndarray, start: np.ndarray, size: np.ndarray,
                norm: str, toward: np.ndarray | None) -> np.ndarray:
        """One step of `size` up the attacker's objective: down the start class's margin, or up
        the chosen class's (`toward`, per row)."""
        if toward is None:
            return -_step(model.gradient(adv, start), size, norm)
        return _step(model.gradient(adv, toward), size, norm)

    @staticmethod
    def _project(x: np.ndarray, moved: np.ndarray, eps: np.ndarray, norm: str,
                 data: EvasionData) -> np.ndarray:
        moved = x + _project_ball(moved - x, eps, norm)
        if data.constraints is not None:
            moved = realisable_within(data.constraints, x, moved, eps, norm)
        return moved

    @staticmethod
    def _hit(model: ModelAdapter, adv: np.ndarray, start: np.ndarray,
             data: EvasionData) -> np.ndarray:
        now = model.predict(adv)
        return np.asarray((now != start) if data.target is None else (now == data.target))

    @staticmethod
    def _objective(model: ModelAdapter, adv: np.ndarray, start: np.ndarray,
                   toward: np.ndarray | None) -> np.ndarray:
        """What the attacker climbs, from the scores: minus the start class's margin, or the
        chosen class's margin (`log_margin`)."""
        proba = model.predict_proba(adv)
        if toward is None:
            return -log_margin(proba, start)
        return log_margin(proba, toward)

    def _apgd(self, model: ModelAdapter, x: np.ndarray, start: np.ndarray, eps: np.ndarray,
              norm: str, data: EvasionData, early: bool, adv: np.ndarray,
              toward: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """APGD's schedule (Croce and Hein, 2020) on the margin: the step starts at twice the
        budget, each move keeps a quarter of the previous one (momentum 0.75), and at each of
        `checkpoints` a row's step halves and it goes back to its best point when fewer than
        three quarters of the steps since the last checkpoint raised the objective, or when the
        last checkpoint kept the step and the best did not rise since. The best point per row
        (the highest objective, or the first that flips) is what is returned."""
        steps = int(self.param("steps"))
        marks = set(checkpoints(steps))
        n = len(x)
        eta = 2.0 * eps
        rows = np.arange(n)
        value = self._objective(model, adv, start, toward)
        best, best_value = adv.copy(), value.copy()
        flipped = self._hit(model, adv, start, data) if early else np.zeros(n, dtype=bool)
        previous = adv.copy()
        rises = np.zeros(n, dtype=int)
        last_mark, mark_best = 0, best_value.copy()
        mark_kept = np.ones(n, dtype=bool)          # no halving at the (virtual) first mark
        for k in range(steps):
            active = rows[~flipped]
            if not len(active):
                break
            aim = None if toward is None else toward[active]
            z = self._project(x[active], adv[active] + self._ascent(
                model, adv[active], start[active], eta[active], norm, aim),
                eps[active], norm, data)
            if k == 0:
                moved = z
            else:
                moved = self._project(x[active], adv[active] + 0.75 * (z - adv[active])
                                      + 0.25 * (adv[active] - previous[active]),
                                      eps[active], norm, data)
            previous[active] = adv[active]
            adv[active] = moved
            new = self._objective(model, moved, start[active], aim)
            rises[active] += new > value[active]
            value[active] = new
            better = new > best_value[active]
            best[active[better]] = moved[better]
            best_value[active[better]] = new[better]
            if early:
                hit = self._hit(model, moved, start[active], data)
                flipped[active[hit]] = True
                best[active[hit]] = moved[hit]
            if k + 1 in marks:
                span = k + 1 - last_mark
                stalled = rises < 0.75 * span
                stuck = mark_kept & (best_value <= mark_best)
                halve = (stalled | stuck) & ~flipped
                eta[halve] /= 2.0
                adv[halve] = best[halve]
                previous[halve] = best[halve]
                value[halve] = best_value[halve]
                mark_kept = ~halve
                mark_best = best_value.copy()
                rises[:] = 0
                last_mark = k + 1
        if not early:
            flipped = self._hit(model, best, start, data)
        return flipped, best

    def minimal(self, model: ModelAdapter, x: np.ndarray, start: np.ndarray, norm: str,
                data: EvasionData, rng: np.random.Generator | None = None) -> np.ndarray:
        """Per point, the smallest budget (to the search's precision) at which PGD flips it."""
        lo, hi = np.zeros(len(x)), np.full(len(x), float(self.param("max_epsilon")))
        reachable, _ = self.pgd(model, x, start, hi, norm, data, rng=rng)
        rows = np.flatnonzero(reachable)
        for _ in range(int(self.param("search"))):
            if not len(rows):
                break
            mid = (lo[rows] + hi[rows]) / 2
            flipped, _ = self.pgd(model, x[rows], start[rows], mid, norm, data, rng=rng)
            hi[rows] = np.where(flipped, mid, hi[rows])
            lo[rows] = np.where(flipped, lo[rows], mid)
        return np.where(reachable, hi, np.inf)
