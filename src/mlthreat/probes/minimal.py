"""The certified smallest flipping change of one point, found by solving the exact program
(`exact.py`) inside a growing radius.

The program grows with every interval a column may move to and every leaf those intervals can
reach; most of it is far away. So the search first finds a flipping change cheaply (`nearby`:
the defender's own rows that the model puts in the wanted class, pulled back towards the point
along the line and column by column, with the model answering), whose distance U bounds the
answer. Then it solves the program restricted to changes of at most r = U/8, U/4, U/2, U:
intervals whose own cost exceeds r leave the program and whole subtrees with them, so the small
programs are quick. A restricted program that is infeasible certifies that no change of at most
r flips the point; the first feasible one is the global optimum (anything smaller was in it).
With a time limit, what is reported is the best change found and the largest radius certified,
so a hard point still says "nothing smaller than r flips it".

Every change reported is checked against the model itself; if the model's own float sums
disagree at a tie, the program asks for a wider win and solves again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlthreat.probes.constraints import Constraints
from mlthreat.probes.exact import Attempt, Domain, margin_of, solve
from mlthreat.probes.trees import Ensemble

NORMS = ("l2", "l1", "linf")
FIRST_CAP = 1 / 8      # the first radius tried, as a share of the start's distance
NEARBY = 24            # the defender's rows pulled towards the point for the start


@dataclass(frozen=True)
class Solution:
    x: np.ndarray | None   # the smallest flipping input found (None: none found)
    distance: float        # its distance from the point (inf when none)
    bound: float           # certified: no change smaller than this flips the point
    status: str            # "optimal", "time limit", "no flip possible"
    seconds: float


def distance(norm: str, d: np.ndarray) -> float:
    if norm == "l2":
        return float(np.linalg.norm(d))
    if norm == "l1":
        return float(np.abs(d).sum())
    return float(np.abs(d).max(initial=0.0))


@dataclass
class Search:
    """One point's search: what counts as a flip and how far things are."""

    ensemble: Ensemble
    x0: np.ndarray
    goal: int | None
    norm: str
    constraints: Constraints | None
    weights: np.ndarray
    verify: Callable[[np.ndarray], bool]
    started: float

    def __post_init__(self) -> None:
        self.current = int(self.ensemble.predict(self.x0)[0])

    def dist(self, x: np.ndarray) -> float:
        return distance(self.norm, self.weights * (x - self.x0))

    def flips(self, rows: np.ndarray) -> np.ndarray:
        """The ensemble's decisions (fast, batched) on rows: the wanted outcome?"""
        got = self.ensemble.predict(rows)
        return np.asarray(got == self.goal if self.goal is not None else got != self.current)

    def left(self, seconds: float) -> float:
        return seconds - (time.perf_counter() - self.started)


def minimal_change(ensemble: Ensemble, x0: np.ndarray, goal: int | None = None,
                   norm: str = "l2", constraints: Constraints | None = None,
                   weights: np.ndarray | None = None, seconds: float = 10.0,
                   verify: Callable[[np.ndarray], bool] | None = None,
                   pool: np.ndarray | None = None) -> Solution:
    """The smallest change of x0 (in `norm`, per-column `weights`) after which the model
    decides for the class `goal`, or (None) for any class but its current one; realisable
    under `constraints`. `verify` is the model's own check of a found input (the ensemble's
    decision if None); `pool`, rows the defender holds, gives the search its start."""
    x0 = np.asarray(x0, dtype=float)
    s = Search(ensemble, x0, goal, norm, constraints,
               np.ones(len(x0)) if weights is None else np.asarray(weights, dtype=float),
               verify or (lambda x: bool(np.all(Search.flips(s, x)))), time.perf_counter())
    domain = Domain(ensemble, x0, constraints, s.weights)
    start = nearby(s, pool) if pool is not None and len(pool) else None
    if start is None:
        return _finish(s, _within(s, domain, np.inf, seconds), None, 0.0)
    reach = s.dist(start)
    cap, certified = reach * FIRST_CAP, 0.0
    while True:
        cap = min(cap, reach)
        found = _within(s, domain, cap, seconds)
        if found.x is not None or not found.infeasible or cap >= reach:
            return _finish(s, found, start, certified)
        certified = cap
        cap *= 2
        if s.left(seconds) <= 0:       # out of time: the start, and the radius certified
            return _finish(s, Attempt(None, False, False, certified), start, certified)


def _within(s: Search, domain: Domain, cap: float, seconds: float) -> Attempt:
    """The smallest flip of at most `cap`, over every class that could win, checked against
    the model; its bound holds for all changes within the cap."""
    classes = s.ensemble.classes
    rivals = [s.goal] if s.goal is not None else [c for c in range(classes) if c != s.current]
    best: Attempt | None = None
    bound, infeasible, optimal = np.inf, True, True
    for rival in rivals:
        if s.left(seconds) <= 0:
            return Attempt(None if best is None else best.x, False, False, 0.0)
        got = _checked(s, domain, rival, cap, seconds)
        bound = min(bound, got.bound)
        infeasible &= got.infeasible
        optimal &= got.optimal
        if got.x is not None and (best is None or s.dist(got.x) < s.dist(best.x)):  # type: ignore[arg-type]
            best = got
    return Attempt(None if best is None else best.x, infeasible, optimal, float(bound))


def _checked(s: Search, domain: Domain, rival: int, cap: float, seconds: float) -> Attempt:
    margin = margin_of(s.ensemble)
    for _ in range(3):
        got = solve(domain, s.norm, rival, s.current, s.goal is not None,
                    max(0.05, s.left(seconds)), cap, margin)
        if got.x is None or s.verify(got.x):
            return got
        margin *= 100      # the model's float sums disagree at a tie: ask for a wider win
    return Attempt(None, False, False, got.bound)


def _finish(s: Search, found: Attempt, start: np.ndarray | None, certified: float) -> Solution:
    """The best of the program's answer and the start; the bound is the best certified."""
    took = time.perf_counter() - s.started
    best = found.x
    if start is not None and (best is None or s.dist(start) < s.dist(best)):
        best = start
    bound = max(certified, found.bound)
    if best is None:
        status = "no flip possible" if found.infeasible else "time limit"
        return Solution(None, np.inf, np.inf if found.infeasible else bound, status, took)
    dist = s.dist(best)
    if found.infeasible:           # nothing within the start's own distance but the start
        bound = dist
    exact = found.optimal or found.infeasible
    status = "optimal" if exact and dist <= bound * (1 + 1e-6) + 1e-12 else "time limit"
    return Solution(best, dist, min(bound, dist), status, took)


def nearby(s: Search, pool: np.ndarray) -> np.ndarray | None:
    """A flipping input near x0, cheaply: the nearest pool rows the model puts in the wanted
    class (made realisable around x0: its immutable columns kept), each pulled back along the
    line to x0, then column group by column group reset to x0's values while it still flips.
    None if no pool row flips."""
    rows = np.asarray(pool, dtype=float)
    if s.constraints is not None:
        rows = s.constraints.project(rows, np.broadcast_to(s.x0, rows.shape))
    rows = rows[s.flips(rows)]
    if not len(rows):
        return None
    order = np.argsort([s.dist(r) for r in rows])[:NEARBY]
    cands = _pulled(s, rows[order])
    groups = s.constraints.groups() if s.constraints is not None else [
        np.array([i]) for i in range(len(s.x0))]
    for g in groups:
        trial = cands.copy()
        trial[:, g] = s.x0[g]
        keep = s.flips(trial)
        cands[keep] = trial[keep]
    cands = _pulled(s, cands)
    ok = [c for c in cands if s.verify(c)]
    return min(ok, key=s.dist) if ok else None


def _pulled(s: Search, cands: np.ndarray, steps: int = 12) -> np.ndarray:
    """Each candidate moved to the flipping end of a bisection of its line to x0."""
    lo, hi = np.zeros(len(cands)), np.ones(len(cands))
    for _ in range(steps):
        mid = (lo + hi) / 2
        rows = s.x0 + mid[:, None] * (cands - s.x0)
        if s.constraints is not None:
            rows = s.constraints.project(rows, np.broadcast_to(s.x0, rows.shape))
        hit = s.flips(rows)
        hi, lo = np.where(hit, mid, hi), np.where(hit, lo, mid)
    rows = s.x0 + hi[:, None] * (cands - s.x0)
    if s.constraints is not None:
        rows = s.constraints.project(rows, np.broadcast_to(s.x0, rows.shape))
    return np.where(s.flips(rows)[:, None], rows, cands)
