"""The smallest change that flips a tree ensemble's decision, solved exactly as a mixed-integer
linear program (Kantchelian, Tygar and Joseph, "Evasion and hardening of tree ensemble
classifiers", ICML 2016), with scipy's HiGHS.

A tree ensemble sees each input column only through the interval between consecutive split
thresholds its value falls in. So per column, a binary variable p_k says "value <= t_k" (or
"< t_k" for XGBoost) for each of the column's thresholds, ordered p_k <= p_{k+1}; per tree,
continuous leaf weights sum to one, and each split keeps the weight of its left subtree under
p and of its right subtree under 1 - p, which puts all weight on the leaf the chosen intervals
reach. The class scores are linear in the leaf weights, so "the attacker's class wins" is linear,
and so is the cost: each interval has one concrete value nearest the original (`Domain.values`,
within the spec's bounds, on the integer grid, representable in the model's float32 where the
model compares float32), and the distance to it, raised to the norm's power (L1, squared L2),
is a constant per interval; for L-infinity one more variable bounds every column's cost. One-hot
groups choose one category (binary per column, summing to one), and their splits follow from the
choice. Immutable columns and intervals outside the bounds are fixed, which prunes whole
subtrees before the program is built.

The answer is a concrete input (checked against the model itself) and HiGHS's lower bound: with
a time limit, the best change found and the certified radius below which no change flips the
point, the gap between them said. Distances use per-column weights (1 in the model's units; 1/SD
for changes in standard deviations).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from mlthreat.probes.constraints import Constraints
from mlthreat.probes.trees import Ensemble
from mlthreat.processes import c_stdout_discarded


@dataclass(frozen=True)
class Column:
    """What a column may take, as the program sees it: per interval between the column's
    thresholds, the concrete value nearest the original (NaN where the interval holds no value
    the attacker may choose)."""

    thresholds: np.ndarray
    values: np.ndarray       # (len(thresholds) + 1,)
    home: int                # the interval of the original value


class Domain:
    """The realisable records around one point: per column its intervals' values, and the
    one-hot groups, from the spec's constraints (bounds and integers in the record's units)."""

    def __init__(self, ensemble: Ensemble, x0: np.ndarray, constraints: Constraints | None,
                 weights: np.ndarray) -> None:
        self.ensemble, self.x0, self.c, self.w = ensemble, np.asarray(x0, float), constraints, weights
        self.thresholds = thresholds = _thresholds(ensemble)
        self.groups = self._groups()
        grouped = {j for g in self.groups for j in g}
        fixed = self._immutable()
        self.columns = {j: self._column(j, t, j in fixed) for j, t in thresholds.items()
                        if j not in grouped}
        self.group_fixed = [bool(set(g) & fixed) for g in self.groups]

    def side(self, j: int, v: np.ndarray | float, t: np.ndarray) -> np.ndarray:
        """The interval index of value(s) v among thresholds t, as the model compares."""
        v = np.asarray(v, dtype=float)
        if self.ensemble.float32:
            v = v.astype(np.float32).astype(float)
        return np.searchsorted(t, v, side="right" if self.ensemble.strict else "left")

    def _groups(self) -> list[list[int]]:
        if self.c is None:
            return []
        return [[self.c.columns.index(n) for n in g] for g in self.c.categorical]

    def _immutable(self) -> set[int]:
        return set() if self.c is None else {self.c.columns.index(n) for n in self.c.immutable}

    def _column(self, j: int, t: np.ndarray, fixed: bool) -> Column:
        home = int(self.side(j, self.x0[j], t))
        values = np.full(len(t) + 1, np.nan)
        if fixed:                  # an immutable column keeps its value, as `project` does
            values[home] = self.x0[j]
            return Column(t, values, home)
        for m in range(len(t) + 1):
            values[m] = self._nearest(j, t, m, below=m < home) if m != home else self._own(j, t, m)
        return Column(t, values, home)

    def _own(self, j: int, t: np.ndarray, m: int) -> float:
        """The original value made realisable as `project` makes it (into the bounds, onto the
        integer grid), if that stays in its interval; else the nearest such value there."""
        low, high = self._bounds(j)
        v = self._grid(j, float(np.clip(self.x0[j], low, high)), down=True, nearest=True)
        if int(self.side(j, v, t)) == m and low - 1e-12 <= v <= high + 1e-12:
            return v
        below = self._nearest(j, t, m, below=True)
        above = self._nearest(j, t, m, below=False)
        options = [u for u in (below, above) if not np.isnan(u)]
        return min(options, key=lambda u: abs(u - self.x0[j])) if options else float("nan")

    def _nearest(self, j: int, t: np.ndarray, m: int, below: bool) -> float:
        """The value in interval m nearest the original (its upper end when the interval lies
        below it), within bounds and on the integer grid; NaN if there is none."""
        v = float(t[m] if below else t[m - 1])
        low, high = self._bounds(j)
        v = min(v, high) if below else max(v, low)
        v = self._grid(j, v, down=below)
        for _ in range(4):          # float32 and the open end: step to the interval's inside
            at = int(self.side(j, v, t))
            if at == m:
                break
            v = self._step(j, v, up=at < m)
        ok = int(self.side(j, v, t)) == m and low - 1e-12 <= v <= high + 1e-12
        return v if ok else float("nan")

    def _bounds(self, j: int) -> tuple[float, float]:
        """The column's bounds in the model's units."""
        if self.c is None or self.c.columns[j] not in self.c.bounds:
            return -np.inf, np.inf
        low, high = self.c.bounds[self.c.columns[j]]
        ends = [self._encoded(j, e) for e in (low, high)]
        ends = [(-np.inf if low is None else ends[0]), (np.inf if high is None else ends[1])]
        if self._scale(j) < 0:
            ends = [ends[1], ends[0]]
        return float(ends[0]), float(ends[1])

    def _scale(self, j: int) -> float:
        return 1.0 if self.c is None or self.c.scale is None else float(self.c.scale[j])

    def _encoded(self, j: int, raw: float | None) -> float:
        if raw is None:
            return float("nan")
        off = 0.0 if self.c is None or self.c.offset is None else float(self.c.offset[j])
        return (raw - off) / self._scale(j)

    def _integer(self, j: int) -> bool:
        return self.c is not None and self.c.columns[j] in self.c.integer

    def _raw(self, j: int, v: float) -> float:
        off = 0.0 if self.c is None or self.c.offset is None else float(self.c.offset[j])
        return v * self._scale(j) + off

    def _grid(self, j: int, v: float, down: bool, nearest: bool = False) -> float:
        """v moved onto the integer grid of the record's units (towards the original); a
        value within float error of an integer is that integer (a float32 threshold at a
        value of the data)."""
        if not self._integer(j):
            return v
        raw = self._raw(j, v)
        if nearest or abs(raw - round(raw)) <= 1e-6 * max(1.0, abs(raw)):
            return self._encoded(j, float(round(raw)))
        step = np.floor if down == (self._scale(j) > 0) else np.ceil
        return self._encoded(j, float(step(raw)))

    def _step(self, j: int, v: float, up: bool) -> float:
        """The next value up (or down) the column can take: the next integer of the record,
        else the next float the model tells apart."""
        if self._integer(j):
            unit = 1.0 if up == (self._scale(j) > 0) else -1.0
            return self._encoded(j, float(round(self._raw(j, v))) + unit)
        return float(np.nextafter(np.float32(v) if self.ensemble.float32 else v,
                                  np.inf if up else -np.inf))


def _thresholds(ensemble: Ensemble) -> dict[int, np.ndarray]:
    found: dict[int, list[np.ndarray]] = {}
    for tree in ensemble.trees:
        inner = tree.feature >= 0
        for j in np.unique(tree.feature[inner]):
            found.setdefault(int(j), []).append(tree.threshold[inner & (tree.feature == j)])
    return {j: np.unique(np.concatenate(v)) for j, v in found.items()}


@dataclass
class Program:
    """Rows and columns of the MILP as they are built."""

    cost: list[float]
    integer: list[int]
    lower: list[float]
    upper: list[float]
    rows: list[tuple[dict[int, float], float, float]]   # (coefficients, lower, upper)
    constant: float = 0.0

    def var(self, cost: float = 0.0, integer: bool = True, lo: float = 0.0, hi: float = 1.0
            ) -> int:
        self.cost.append(cost)
        self.integer.append(int(integer))
        self.lower.append(lo)
        self.upper.append(hi)
        return len(self.cost) - 1

    def row(self, coef: dict[int, float], lo: float, hi: float) -> None:
        self.rows.append((coef, lo, hi))


# a split's literal "value goes left": constant (var -1) or const + coef * variable
Literal = tuple[int, float, float]


class Builder:
    """The program for one point, norm and wanted outcome."""

    def __init__(self, domain: Domain, norm: str, cap: float = np.inf) -> None:
        self.d, self.norm, self.cap = domain, norm, cap
        self.prog = Program([], [], [], [], [])
        self.worst = self.prog.var(1.0, integer=False, hi=cap) if norm == "linf" else -1
        self.literals: dict[tuple[int, float], Literal] = {}
        self.chosen: dict[int, tuple[list[Literal], np.ndarray]] = {}  # column -> (p, values)
        self.group_vars: list[list[int]] = []
        self.impossible = False     # a column has no value the attacker may choose
        self.thresholds = domain.thresholds
        self._columns()
        self._groups()
        if norm != "linf" and np.isfinite(cap):     # no change beyond the cap
            used = {v: c for v, c in enumerate(self.prog.cost) if c}
            self.prog.row(used, -np.inf,
                          float(self._power(np.array(cap))) * (1 + 1e-9) - self.prog.constant)

    def _power(self, dist: np.ndarray) -> np.ndarray:
        return np.asarray(dist ** 2 if self.norm == "l2" else dist, dtype=float)

    def _cost(self, coef: dict[int, float], constant: float) -> None:
        """Add a column's (or group's) cost: to the objective, or under the L-inf bound."""
        if self.norm == "linf":
            self.prog.row({**coef, self.worst: -1.0}, -np.inf, -constant)
            return
        for v, c in coef.items():
            self.prog.cost[v] += c
        self.prog.constant += constant

    def _columns(self) -> None:
        """Per column, one binary per threshold between its first and last allowed interval.
        Oriented from `base`, the allowed interval nearest the original (its own, unless the
        bounds or the grid move it): below base a binary says "value <= t_k" (moved down past
        t_k), above it "value > t_k". Each is 1 only for a move away, so costs are increments
        and the objective has no large constant to cancel (HiGHS's gaps are relative to the
        objective: a large constant would hide small distances)."""
        for j, col in self.d.columns.items():
            cost_all = self.d.w[j] * np.abs(col.values - self.d.x0[j])
            values = np.where(cost_all > self.cap * (1 + 1e-9), np.nan, col.values)
            allowed = np.flatnonzero(~np.isnan(values))
            if not len(allowed):
                self.impossible = True
                continue
            first, last = int(allowed.min()), int(allowed.max())
            base = int(allowed[np.argmin(cost_all[allowed])])
            cost = self._power(self.d.w[j] * np.abs(_filled(values, base) - self.d.x0[j]))
            y = {k: self.prog.var() for k in range(first, last)}
            lit: dict[int, Literal] = {k: ((y[k], 1.0, 0.0) if k < base else (y[k], -1.0, 1.0))
                                       for k in y}
            for k, t in enumerate(col.thresholds):
                self.literals[(j, float(t))] = lit.get(k, (-1, 0.0, float(k >= last)))
            for a in range(first, last - 1):
                self._affine_row([(lit[a], 1.0), (lit[a + 1], -1.0)], -np.inf, 0.0)  # p_a <= p_b
            for m in range(first + 1, last):
                if np.isnan(values[m]):                                # no value there
                    self._affine_row([(lit[m], 1.0), (lit[m - 1], -1.0)], 0.0, 0.0)
            step = {y[k]: float(cost[k] - cost[k + 1] if k < base else cost[k + 1] - cost[k])
                    for k in y}
            self._cost({v: c for v, c in step.items() if c}, float(cost[base]))
            self.chosen[j] = ([lit[k] for k in range(first, last)], values[first:last + 1])

    def _affine_row(self, terms: list[tuple[Literal, float]], lo: float, hi: float) -> None:
        coef: dict[int, float] = {}
        shift = 0.0
        for (var, a, const), weight in terms:
            coef[var] = coef.get(var, 0.0) + weight * a
            shift += weight * const
        self.prog.row(coef, lo - shift, hi - shift)

    def _groups(self) -> None:
        for g, fixed in zip(self.d.groups, self.d.group_fixed, strict=True):
            x0 = self.d.x0[g]
            dist = np.array([self._group_cost(g, c) for c in range(len(g))])
            reach = np.asarray(dist if self.norm != "l2" else np.sqrt(dist)) <= self.cap * (1 + 1e-9)
            own = int(np.argmax(x0))
            options = [own] if fixed else [c for c in range(len(g)) if reach[c] or c == own]
            gv = {c: self.prog.var() for c in options}
            self.prog.row({v: 1.0 for v in gv.values()}, 1.0, 1.0)
            self._cost({v: float(dist[c]) for c, v in gv.items() if dist[c]}, 0.0)
            self.group_vars.append([gv.get(c, -1) for c in range(len(g))])
            for pos, j in enumerate(g):
                for t in self.thresholds.get(j, []):
                    on, off = (int(self.d.side(j, v, np.array([t]))) for v in (1.0, 0.0))
                    if on == off:       # both values on one side of t
                        self.literals[(j, float(t))] = (-1, 0.0, float(on == 0))
                    elif pos in gv:     # left (<= t) exactly when not chosen
                        self.literals[(j, float(t))] = (gv[pos], -1.0, 1.0)
                    else:
                        self.literals[(j, float(t))] = (-1, 0.0, 1.0)

    def _group_cost(self, g: list[int], chosen: int) -> float:
        diff = self.d.w[g] * np.abs(np.eye(len(g))[chosen] - self.d.x0[g])
        if self.norm == "linf":
            return float(diff.max(initial=0.0))
        return float(self._power(diff).sum())

    def literal(self, j: int, t: float) -> Literal:
        return self.literals[(j, t)]   # every split column's thresholds got one

    def leaves(self) -> list[tuple[int, np.ndarray]]:
        """Leaf variables of every tree and their values. Each reachable node (pruned where a
        split's side is fixed) carries a flow: one at the root, a node's flow splits between
        its children, the left child's flow is at most the split's literal and the right
        child's at most its complement; binary literals then put the whole flow on the one
        leaf the chosen intervals reach (the per-split constraints of Kantchelian et al. with
        a row per node instead of one per subtree)."""
        out = []
        for tree in self.d.ensemble.trees:
            flow: dict[int, int] = {}
            stack = [0]
            while stack:
                n = stack.pop()
                flow[n] = self.prog.var(integer=False)
                if tree.feature[n] < 0:
                    out.append((flow[n], tree.value[n]))
                    continue
                var, coef, const = self.literal(int(tree.feature[n]), float(tree.threshold[n]))
                if var < 0:     # the side is fixed: the flow goes on to that child alone
                    stack.append(int(tree.left[n] if const == 1.0 else tree.right[n]))
                    continue
                stack += [int(tree.left[n]), int(tree.right[n])]
            self.prog.lower[flow[0]] = 1.0
            for n, v in flow.items():
                if tree.feature[n] < 0:
                    continue
                kids = [flow[int(c)] for c in (tree.left[n], tree.right[n]) if int(c) in flow]
                self.prog.row({v: 1.0, **{k: -1.0 for k in kids}}, 0.0, 0.0)
                if len(kids) == 2:
                    var, coef, const = self.literal(int(tree.feature[n]),
                                                    float(tree.threshold[n]))
                    self.prog.row({kids[0]: 1.0, var: -coef}, -np.inf, const)
                    self.prog.row({kids[1]: 1.0, var: coef}, -np.inf, 1.0 - const)
        return out

    def input_of(self, z: np.ndarray) -> np.ndarray:
        """The concrete input a solution's variables choose."""
        x = self.d.x0.copy()
        for j, (p, values) in self.chosen.items():
            m = sum(const + coef * z[var] < 0.5 for var, coef, const in p)
            x[j] = values[m]
        for g, gv in zip(self.d.groups, self.group_vars, strict=True):
            pick = max(range(len(g)), key=lambda c: z[gv[c]] if gv[c] >= 0 else -1.0)
            x[g] = np.eye(len(g))[pick]
        return x


def _filled(values: np.ndarray, home: int) -> np.ndarray:
    """Interval values with the gaps (NaN: no allowed value) given their outer neighbour's
    value, so that costs grow away from the original and every step is non-negative."""
    out = values.copy()
    for m in range(home + 1, len(out)):
        if np.isnan(out[m]):
            out[m] = out[m - 1]
    for m in range(home - 1, -1, -1):
        if np.isnan(out[m]):
            out[m] = out[m + 1]
    return out


@dataclass(frozen=True)
class Attempt:
    """One solve of the program."""

    x: np.ndarray | None    # the input the solution chooses (None: none found)
    infeasible: bool        # proved: no allowed change within the cap gives the class
    optimal: bool
    bound: float            # lower bound on the distance of changes within the cap


def solve(domain: Domain, norm: str, rival: int, current: int, targeted: bool, seconds: float,
          cap: float = np.inf, margin: float | None = None) -> Attempt:
    """Build and solve the program: the smallest change (at most `cap`) after which `rival`
    beats the current class (targeted: beats every other class)."""
    b = Builder(domain, norm, cap)
    if b.impossible:
        return Attempt(None, True, True, cap)
    leaves = b.leaves()
    _decision(b, leaves, rival, current, targeted,
              margin_of(domain.ensemble) if margin is None else margin)
    res = _run(b.prog, seconds)
    if res.status == 2:
        return Attempt(None, True, True, cap)
    dual = getattr(res, "mip_dual_bound", None)
    bound = _distance(norm, np.nan if dual is None else float(dual))
    bound = 0.0 if not np.isfinite(bound) else min(bound, cap)
    if res.x is None:
        return Attempt(None, False, False, bound)
    return Attempt(b.input_of(res.x), False, res.status == 0, bound)


def margin_of(ensemble: Ensemble) -> float:
    """How much the wanted class must win by: float32 sums (XGBoost) round coarser."""
    scale = 1.0 + sum(float(np.abs(t.value).max(initial=0.0)) for t in ensemble.trees)
    return (1e-6 if ensemble.float32 and ensemble.strict else 1e-9) * scale


def _decision(b: Builder, leaves: list[tuple[int, np.ndarray]], rival: int, current: int,
              targeted: bool, margin: float) -> None:
    """The wanted class beats the others: targeted, `rival` beats every class; else `rival`
    beats the current one. On a tie the lower class index wins (argmax), so beating a lower
    class takes a margin."""
    base = b.d.ensemble.base
    others = [c for c in range(b.d.ensemble.classes) if c != rival] if targeted else [current]
    for c in others:
        coef = {v: float(val[rival] - val[c]) for v, val in leaves if val[rival] != val[c]}
        need = float(base[c] - base[rival]) + (margin if c < rival else 0.0)
        b.prog.row(coef, need, np.inf)


def _run(prog: Program, seconds: float) -> Any:
    n = len(prog.cost)
    r, c, v, lo, hi = [], [], [], [], []
    for i, (coef, a, z) in enumerate(prog.rows):
        r += [i] * len(coef)
        c += list(coef)
        v += list(coef.values())
        lo.append(a)
        hi.append(z)
    matrix = coo_array((v, (r, c)), shape=(len(prog.rows), n)).tocsr()
    with c_stdout_discarded():     # HiGHS prints a debug line at random, even with disp off
        res = milp(np.asarray(prog.cost), integrality=np.asarray(prog.integer),
                   bounds=Bounds(np.asarray(prog.lower), np.asarray(prog.upper)),
                   constraints=LinearConstraint(matrix, np.asarray(lo), np.asarray(hi)),
                   options={"time_limit": max(0.05, seconds), "mip_rel_gap": 1e-6,
                            "disp": False})
    _shift(res, prog.constant)
    return res


def _shift(res: object, constant: float) -> None:
    """The solver's dual bound in the program's own terms (its objective has a constant)."""
    bound = getattr(res, "mip_dual_bound", None)
    if bound is not None:
        res.mip_dual_bound = float(bound) + constant  # type: ignore[attr-defined]


def _distance(norm: str, objective: float) -> float:
    if not np.isfinite(objective):
        return objective
    return float(np.sqrt(max(objective, 0.0))) if norm == "l2" else max(objective, 0.0)
