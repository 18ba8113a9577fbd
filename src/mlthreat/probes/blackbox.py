"""Black-box evasion: how small a change flips the decision of a model the attacker can only
query (an API), within a budget of queries per point?

Two attacks share one refinement:
- `decision` (labels only): start from adversarial points, as Brendel et al.'s boundary attack
  does: suggestions of a copy the attacker trains on their own labelled rows (PGD on the copy at
  a few budgets; no queries to train it), and the attacker's own rows of the other class,
  nearest first (their labels are known to them); the model's answers decide.
- `score` (class scores visible): walk from the point itself along coordinates, keeping a step
  when the score of the current class falls (SimBA, Guo et al., 2019), until the label flips.
The decision attack first tries a few tiny random moves: XGBoost and LightGBM put split
thresholds at values seen in the data (LightGBM splits one-hot and other mostly-zero columns at
1e-35), and points sitting on one flip with almost no change, if the right coordinates move
together. If enough points do (`tiny_move_flips` of the evidence), the model splits at the
data's own values, and the attack spends more on such "hair" moves: more random ones, and near
the first refined change it asks which hairs tip the label (`helpful_hairs`).
Refinement (the Pointwise attack of Schott et al., 2019): reset coordinates (or whole one-hot
groups) to a hair off their original values while the label stays flipped, binary-search along
the line back to the point, then shrink each remaining coordinate by binary search. Tree
ensembles cut the input space along coordinates, so the sparse, per-coordinate search is where
their decision boundaries are near; this is what makes a few hundred queries enough.
The sparse search ends on one or two long moves; an ensemble often flips cheaper where several
columns each cross a nearby threshold. So the decision attack keeps part of its queries to
learn which columns tip the label near the boundary and to spread its change over them
(`tipping_signs`, `spread`), keeping the smaller change.

Every candidate is projected onto realisable records (`Constraints`) before it is sent. Each
point's attack is a generator that yields the rows it wants labelled; the driver answers all
points' rows in one model call per round, so the model sees batches, while each point's queries
are counted against its own budget. Reported: the median smallest flipping L2 change (with a
distribution-free interval), the success rate over a grid of budgets (robustness curve, Wilson
intervals) and the queries spent per point.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.neural_network import MLPClassifier

from mlthreat.adapters.interface import ModelAdapter
from mlthreat.adapters.sklearn import SklearnAdapter
from mlthreat.errors import ProbeError
from mlthreat.probes.constraints import Constraints
from mlthreat.probes.copies import balanced
from mlthreat.probes.evasion import (
    ROWS_ONLY,
    EvasionData,
    WhiteBoxEvasion,
    points_to_attack,
    robustness_curves,
)
from mlthreat.probes.interface import Budget, Measurement, Meter, Param, Prepared, Probe
from mlthreat.probes.minimal import minimal_change
from mlthreat.probes.stats import median_interval, robustness
from mlthreat.probes.trees import read
from mlthreat.results import Curve

if TYPE_CHECKING:
    from mlthreat.probes.target import Target

SUCCESS_RATE = 0.5
EPSILONS = (0.1, 0.25, 0.5, 1.0, 2.0)
POLISH = 30    # queries kept back to sharpen the best change found
SCALES = (0.2, 0.4, 0.6, 0.8, 1.0, 1.5)   # L2 budgets of the copy's suggestions per point
GUESS_KEEP = 3  # suggestions that flip the model and are refined
COPY_TREES = 50            # iterations of the attacker's tree copy
COPY_SECONDS = 1.0         # time for the copy's exact smallest change, per point
COPY_SCALES = (1.0, 1.15, 1.4, 2.0)   # the copy's change, stretched
NUDGES = 16    # tiny random moves tried first: points on a split threshold flip with one
NUDGE = 1e-3   # size of the first, tiny random moves (from a spec: standard deviations)
HAIR = 1e-6   # what a reset coordinate keeps of its move, relative to its value (see `_hair`)
TIES = 0.05   # a value this share of the attacker's rows hold exactly is a likely split point
MORE_NUDGES = 32    # more tiny moves for the points still standing, if ...
EXACT_SPLITS = 0.1  # ... at least this share of points flipped with the first ones
DENSE_SHARE = 0.4   # of a point's queries kept back for the spread-out change (`spread`) ...
DENSE_FROM = 100    # ... when it has at least this many
TIP = 0.6           # a column's trial move at the boundary, as a share of the best change
SCAN = (0.3, 0.5, 0.7, 0.85, 1.0, 1.3, 1.7, 2.5)  # steps along the spread ray, x the best's size

# A point's attack: yields rows to label, receives their labels, returns (best delta or None,
# queries spent).
Attack = Generator[np.ndarray, np.ndarray, tuple[np.ndarray | None, int]]


@dataclass
class _Point:
    """One point's attack state: where it starts, its class, what it may spend."""

    x: np.ndarray
    label: int
    budget: int
    flipped: Callable[[np.ndarray], np.ndarray]   # labels -> was the attack's goal reached?
    project: Callable[[np.ndarray], np.ndarray]   # candidate -> realisable record
    groups: Sequence[np.ndarray]
    used: int = 0
    hair: np.ndarray = field(init=False)        # `_hair(x)`, once

    def __post_init__(self) -> None:
        self.hair = _hair(self.x)

    def left(self) -> int:
        return self.budget - self.used

    def ask(self, rows: np.ndarray) -> Generator[np.ndarray, np.ndarray, np.ndarray]:
        rows = self.project(np.atleast_2d(rows))
        self.used += len(rows)
        labels = yield rows
        return self.flipped(labels)


def drive(attacks: list[Attack], model: ModelAdapter) -> list[tuple[np.ndarray | None, int]]:
    """Run every point's attack, answering all their pending rows with one model call a round."""
    results: list[tuple[np.ndarray | None, int]] = [(None, 0)] * len(attacks)
    pending: dict[int, np.ndarray] = {}
    for i, attack in enumerate(attacks):
        try:
            pending[i] = next(attack)
        except StopIteration as stop:
            results[i] = stop.value
    while pending:
        ids = list(pending)
        labels = model.predict(np.concatenate([pending[i] for i in ids]))
        cuts = np.cumsum([len(pending[i]) for i in ids])[:-1]
        for i, answer in zip(ids, np.split(labels, cuts), strict=True):
            try:
                pending[i] = attacks[i].send(answer)
            except StopIteration as stop:
                results[i] = stop.value
                del pending[i]
    return results


def refine(p: _Point, delta: np.ndarray, steps: int = 3, largest_first: bool = True) -> Attack:
    """Pointwise refinement of a flipping change `delta`: fewer coordinates, then smaller.
    A coordinate taken back keeps a hair of its move (`_hair`): free for the distance, and a
    split just off the point's value (LightGBM's at zero) stays crossed."""
    sign = -1.0 if largest_first else 1.0
    for group in sorted(p.groups, key=lambda g: sign * float(np.abs(delta[g]).sum())):
        if not np.any(np.abs(delta[group]) > p.hair[group]) or p.left() < 1:
            continue
        trial = delta.copy()
        trial[group] = np.sign(delta[group]) * p.hair[group]
        if (yield from p.ask(p.x + trial))[0]:
            delta = p.project(p.x + trial)[0] - p.x
    lo, hi = yield from _line(p, delta)
    delta = p.project(p.x + hi * delta)[0] - p.x
    delta = yield from shrink(p, delta, steps)
    return delta, p.used


def _line(p: _Point, delta: np.ndarray, steps: int = 8, lo: float = 0.0, hi: float = 1.0
          ) -> Generator[np.ndarray, np.ndarray, tuple[float, float]]:
    """Binary search along the line from the point to the flipping `p.x + hi * delta` (`lo`: a
    multiple known not to flip): the largest multiple found that does not flip and the smallest
    that does."""
    for _ in range(steps):
        if p.left() < 1:
            break
        mid = (lo + hi) / 2
        if (yield from p.ask(p.x + mid * delta))[0]:
            hi = mid
        else:
            lo = mid
    return lo, hi


def helpful_hairs(p: _Point, delta: np.ndarray, moves: np.ndarray
                  ) -> Generator[np.ndarray, np.ndarray, np.ndarray | None]:
    """Which hair moves (`moves`, one coordinate and sign each) push towards the other class,
    given the flipping change `delta`? Far from the boundary none flips the label, so ask just
    inside it: on the line to `p.x + delta`, at the last fraction that does not flip, toggle
    each hair (add it where `delta` does not have it, take it away where it does); a helpful
    toggle tips the label over. Returns the hair pattern with every helpful toggle made (None
    if none helped, or no budget): one query per move and a line search."""
    free = np.abs(delta) <= p.hair       # coordinates `delta` moves by a hair at most
    j = np.argmax(moves != 0, axis=1)
    keep = free[j]
    moves, j = moves[keep], j[keep]
    if not len(moves) or p.left() < 8 + len(moves) + 1:
        return None
    pattern = np.where(free, delta, 0.0)
    value = moves[np.arange(len(j)), j]
    value = np.where(pattern[j] == value, 0.0, value)     # toggled: a hair it has goes
    lo, _ = yield from _line(p, delta)
    rows = np.repeat((lo * delta)[None], len(j), axis=0)
    rows[np.arange(len(j)), j] = value
    hit = yield from p.ask(p.x + rows)
    if not hit.any():
        return None
    pattern[j[hit]] = value[hit]
    return pattern


def _hair(x: np.ndarray) -> np.ndarray:
    """A move too small to matter for the distance but not for a tree: LightGBM splits one-hot
    and other sparse columns just above zero (1e-35), XGBoost at values seen in the data, so a
    coordinate kept a hair off its value can keep a split crossed at no cost. Relative to the
    value, so that float32 models (XGBoost, ONNX) still see it."""
    return np.asarray(HAIR * np.maximum(1.0, np.abs(x)), dtype=float)


def shrink(p: _Point, delta: np.ndarray, steps: int
           ) -> Generator[np.ndarray, np.ndarray, np.ndarray]:
    """Each non-zero coordinate in turn, binary-searched towards the original value."""
    for i in np.flatnonzero(np.abs(delta) > p.hair):
        lo, hi = 0.0, 1.0
        for _ in range(steps):
            if p.left() < 1:
                break
            mid = (lo + hi) / 2
            trial = delta.copy()
            trial[i] *= mid
            if (yield from p.ask(p.x + trial))[0]:
                hi = mid
            else:
                lo = mid
        trial = delta.copy()
        trial[i] *= hi
        delta = p.project(p.x + trial)[0] - p.x
    return delta


def nudge(p: _Point, count: int, rng: np.random.Generator) -> Attack:
    """Tiny random moves in every coordinate (random signs). Trees split at values seen in the
    data (XGBoost) or just above zero (LightGBM's splits on one-hot and other sparse columns):
    a point on such a threshold flips when the right coordinates move by almost nothing, and
    which ones is a combination no single-coordinate search finds."""
    if count < 1 or p.left() < 2 * count:
        return None, p.used
    moves = NUDGE * rng.choice([-1.0, 1.0], size=(count, len(p.x)))
    hit = yield from p.ask(p.x + moves)
    found = [r - p.x for r in p.project(p.x + moves)[hit]]
    return (found[0] if found else None), p.used


def decision_attack(p: _Point, pool: np.ndarray, prefer: np.ndarray, starts: int,
                    rng: np.random.Generator, batch: int = 8,
                    guesses: np.ndarray | None = None,
                    nudged: np.ndarray | None = None,
                    hairs: np.ndarray | None = None) -> Attack:
    """Labels only: refine from `nudged` (a tiny flipping move `nudge` found), from `guesses`
    (a copy's adversarial suggestions) that flip the model and from the nearest of the
    attacker's rows that the model puts in another class (rows with a small `prefer` first:
    those the attacker knows to be of the wanted class); keep the smallest change found.
    Half the starts drop their largest moves first, half their smallest: two kinds of
    sparse change. `hairs`, for a model that splits at the data's own values (`_nudged`): hair
    moves (`_hair`) that every start gets a random pattern of, and whose helpful pattern near
    the first refined change then goes into all the rest (`helpful_hairs`)."""
    # kept for `spread` once the sparse search is done; not where the model splits at the
    # data's own values (`hairs`): there the hair search needs the queries
    kept = int(DENSE_SHARE * p.budget) if p.budget >= DENSE_FROM and hairs is None else 0
    p.budget -= kept
    order = np.argsort(np.linalg.norm(pool - p.x, axis=1) + prefer)
    found: list[np.ndarray] = [] if nudged is None else [nudged]
    if guesses is not None and 0 < len(guesses) <= p.left():
        hit = yield from p.ask(guesses)
        found += [r - p.x for r in p.project(guesses)[hit]][:GUESS_KEEP]
    for i in range(0, min(len(order), 8 * batch), batch):
        if len(found) >= starts or p.left() < batch:
            break
        rows = pool[order[i:i + batch]]
        hit = yield from p.ask(rows)
        found += [r - p.x for r in p.project(rows)[hit]]
    queue = found[:starts]
    if hairs is not None and len(hairs):
        patterns = (rng.random((len(queue), len(hairs))) < 0.5).astype(float) @ hairs
        queue = [_with_pattern(p, d, np.where(h != 0, h, d))
                 for d, h in zip(queue, patterns, strict=True)]
    best: np.ndarray | None = None
    for k in itertools.count():
        if not queue or best is not None and (p.left() < 8 + POLISH or _is_hair(p, best)):
            break
        delta = yield from _refined(p, queue.pop(0), largest_first=k % 2 == 0)
        if best is None or np.linalg.norm(delta) < np.linalg.norm(best):
            best = delta
        if hairs is not None and len(hairs) and not _is_hair(p, best):
            pattern = yield from helpful_hairs(p, best, hairs)
            hairs = None    # once: the first refined change is near the point
            if pattern is not None:
                queue = [_with_pattern(p, d, pattern) for d in [best, *queue]]
    p.budget += kept
    if best is not None and not _is_hair(p, best) and kept:
        signs = yield from tipping_signs(p, best)
        best = yield from spread(p, best, signs)
    p.budget -= 1   # kept back for `_drop_hairs`
    while best is not None and p.left() > 0 and not _is_hair(p, best):
        before = p.used   # what is left sharpens the best change found
        best = yield from shrink(p, best, 8)
        if p.used == before:
            break
    p.budget += 1
    if best is not None:
        best = yield from _drop_hairs(p, best)
    return best, p.used


def tipping_signs(p: _Point, best: np.ndarray
                  ) -> Generator[np.ndarray, np.ndarray, np.ndarray]:
    """Which columns, moved which way, help the flip? The ones `best` moves (its signs), and
    each other free column (one a single coordinate; not one-hot or fixed) whose move of
    `TIP` times the best's size, made at the last point on the line to `best` that does not
    flip yet, tips the label over: one query per column and sign; a column that tips both ways
    is left out."""
    lo, _ = yield from _line(p, best)
    at = p.x + lo * best
    size = TIP * float(np.linalg.norm(best))
    signs = np.where(np.abs(best) > p.hair, np.sign(best), 0.0)
    rows, moves = [], []
    for g in p.groups:
        j = int(g[0])
        if len(g) != 1 or signs[j] != 0:
            continue
        for sign in (1.0, -1.0):
            row = at.copy()
            row[j] += sign * size
            if p.project(row)[0, j] != at[j]:
                rows.append(row)
                moves.append((j, sign))
    if not rows or p.left() < len(rows) + 2 * len(SCAN):
        return signs
    hit = yield from p.ask(np.array(rows))
    tipped: dict[int, list[float]] = {}
    for (j, sign), h in zip(moves, hit, strict=True):
        if h:
            tipped.setdefault(j, []).append(sign)
    for j, ways in tipped.items():
        if len(ways) == 1:
            signs[j] = ways[0]
    return signs


def spread(p: _Point, best: np.ndarray, signs: np.ndarray
           ) -> Generator[np.ndarray, np.ndarray, np.ndarray]:
    """A change spread over every helpful column (`signs`), then cut back: the ray from the
    point moving each of them by the same amount, stepped out (`SCAN`) to the first flip and
    bisected; then each column reset where the flip holds without it, and the rest shrunk.
    Tree ensembles, forests most, flip at a corner where several columns cross a nearby
    threshold each: cheaper in L2 than the one or two long moves the sparse search keeps. The
    smaller of this and `best` is returned."""
    length = float(np.linalg.norm(signs))
    if length == 0.0:
        return best
    unit = float(np.linalg.norm(best)) / length
    lo, hi = 0.0, None
    for f in SCAN:
        if p.left() < 1:
            return best
        if (yield from p.ask(p.x + f * unit * signs))[0]:
            hi = f * unit
            break
        lo = f * unit
    if hi is None:
        return best
    _, hi = yield from _line(p, signs, 8, lo, hi)
    delta = p.project(p.x + hi * signs)[0] - p.x
    for i in np.argsort(-np.abs(delta)):
        if abs(delta[i]) <= p.hair[i] or p.left() < 1:
            continue
        trial = delta.copy()
        trial[i] = 0.0
        if (yield from p.ask(p.x + trial))[0]:
            delta = p.project(p.x + trial)[0] - p.x
    delta = yield from shrink(p, delta, 6)
    return delta if np.linalg.norm(delta) < np.linalg.norm(best) else best


def _with_pattern(p: _Point, delta: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """`delta` with the hair moves of `pattern` (and none other) where it moves by a hair at
    most; its larger moves stay."""
    return np.asarray(np.where(np.abs(delta) <= p.hair, pattern, delta), dtype=float)


def _is_hair(p: _Point, delta: np.ndarray) -> bool:
    return bool(np.all(np.abs(delta) <= p.hair))


def _drop_hairs(p: _Point, delta: np.ndarray) -> Generator[np.ndarray, np.ndarray, np.ndarray]:
    """The coordinates `refine` left a hair off their value, back on it if the change still
    flips without them (one query): a hair costs next to nothing, but not nothing."""
    hairs = (delta != 0) & (np.abs(delta) <= p.hair)
    if not hairs.any() or p.left() < 1:
        return delta
    trial = np.where(hairs, 0.0, delta)
    if (yield from p.ask(p.x + trial))[0]:
        return np.asarray(p.project(p.x + trial)[0] - p.x, dtype=float)
    return delta


def _refined(p: _Point, delta: np.ndarray, largest_first: bool = True
             ) -> Generator[np.ndarray, np.ndarray, np.ndarray]:
    out, _ = yield from refine(p, delta, largest_first=largest_first)
    assert out is not None
    return out


def score_attack(p: _Point, scores: Callable[[np.ndarray], np.ndarray], step: float,
                 rng: np.random.Generator) -> Attack:
    """Scores visible: SimBA along random coordinates until the label flips, then refine.
    `scores` maps the model's answers to the score of the point's own class (lower is better
    for the attacker); `ask` here returns whether each row flipped, and the scores are read
    from the same answer through the model's probabilities (see `BlackBoxEvasion`)."""
    delta = np.zeros_like(p.x)
    current = np.inf
    while True:
        for i in rng.permutation(len(p.x)).tolist():
            if p.left() < 10:
                return None, p.used
            for sign in (1.0, -1.0):
                trial = delta.copy()
                trial[i] += sign * step
                answer = yield p.project(np.atleast_2d(p.x + trial))
                p.used += 1
                flipped, score = p.flipped(answer[:1])[0], float(scores(answer)[0])
                if flipped:
                    delta = p.project(p.x + trial)[0] - p.x
                    return (yield from refine(p, delta))
                if score < current:
                    current, delta = score, p.project(p.x + trial)[0] - p.x
                    break


def _examples(x: np.ndarray, results: list[tuple[np.ndarray | None, int]],
              constraints: Constraints, n: int = 3) -> list[dict[str, Any]]:
    """The smallest flipping changes found, as the records before and after (only what
    changed), so a reader sees a realisable application that gets the other decision."""
    found = [(float(np.linalg.norm(d)), i, d) for i, (d, _) in enumerate(results)
             if d is not None]
    out = []
    for dist, i, delta in sorted(found, key=lambda t: t[0])[:n]:
        out.append({"row": i, "l2": dist, "changed": constraints.changed(x[i], x[i] + delta)})
    return out


def _joined(*parts: list[np.ndarray | None]) -> list[np.ndarray | None]:
    """Per point, the starting points of every source, first source first."""
    out: list[np.ndarray | None] = []
    for rows in zip(*parts, strict=True):
        got = [r for r in rows if r is not None]
        out.append(np.vstack(got) if got else None)
    return out


def _better(a: tuple[np.ndarray | None, int], b: tuple[np.ndarray | None, int]
            ) -> tuple[np.ndarray | None, int]:
    """Of one point's two attacks, the smaller change found (None: not flipped), with the
    queries of both."""
    size = [np.inf if d is None else float(np.linalg.norm(d)) for d, _ in (a, b)]
    return (a[0] if size[0] <= size[1] else b[0]), a[1] + b[1]


def _first_column(flipped: Callable[[np.ndarray], np.ndarray]
                  ) -> Callable[[np.ndarray], np.ndarray]:
    return lambda answer: flipped(np.asarray(answer)[:, 0].astype(int))


def _own_score(own: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda answer: np.asarray(answer)[:, 1 + own]


class BlackBoxEvasion(Probe):
    """Parameters: method ("decision", "score" or "both"), queries (per point, 200), starts (natural
    starting points refined, decision method, 5), step (coordinate step of the score method,
    0.25), epsilons (L2 budgets of the robustness curve)."""

    name = "evasion-blackbox"
    threat_ids = ("aml-evasion-blackbox", "aml-insider-evasion")
    requires = ROWS_ONLY

    parameters = {
        "method": Param("decision", choices=("decision", "score", "both"),
                        doc="labels only, walking the class score, or both (half the queries "
                            "each, the smaller change kept per point)"),
        "queries": Param(200, 1, 1_000_000, doc="model calls per point"),
        "starts": Param(5, 1, 100, doc="starting points per point (decision)"),
        "labels_attack": Param("pointwise", choices=("pointwise", "hopskip"),
                               doc="the labels-only attack: pointwise refinement (tables) or "
                                   "HopSkipJump (images)"),
        "step": Param(0.25, 1e-6, 100.0, doc="coordinate step (score)"),
        "epsilons": Param(list(EPSILONS), 0.0, 1e6, doc="budgets of the robustness curve"),
    }

    @classmethod
    def configure(cls, target: Target, settings: dict[str, int], fixed: dict[str, Any],
                  seed: int, jobs: int) -> Prepared:
        """Where the interface shows scores, both attacks (the score walk and the labels-only
        attack, half the queries each; the smaller change kept per point), else labels alone."""
        data = points_to_attack(target, settings)
        per_point, n = settings["per_point"], len(data.x)
        method = "both" if target.adapter.capabilities.scores else "decision"
        params: dict[str, Any] = {"method": method, "queries": per_point}
        if target.spec.images is not None:      # L2 budgets in pixel units
            from mlthreat.probes.images import image_epsilons
            params["epsilons"] = image_epsilons(target.spec.images, "l2")
            params["labels_attack"] = "hopskip"
        probe = cls(**{**params, **fixed})
        return Prepared(probe, target.adapter, data,
                        Budget(queries=per_point * n + n, seed=seed))

    def curves(self, m: Measurement) -> tuple[Curve, ...]:
        return robustness_curves(m)

    def _measure(self, model: ModelAdapter, data: EvasionData, rng: np.random.Generator,
                 meter: Meter) -> Measurement:
        method = self.param("method")
        per_point = int(self.param("queries"))
        x = np.asarray(data.x, dtype=float)
        if method in ("score", "both") and not model.capabilities.scores:
            raise ProbeError("score-based evasion needs scores; this interface returns labels")
        if method == "decision" and (data.pool is None or not len(data.pool)):
            raise ProbeError("decision-based evasion needs rows the attacker holds (a pool)")
        if method == "both" and (data.pool is None or not len(data.pool)):
            method = "score"          # no rows to start the decision attack from
        start = model.predict(x)

        def points(budget: int) -> list[_Point]:
            return [self._point(x[i], int(start[i]), budget, data) for i in range(len(x))]
        tiny: dict[str, Any] = {}
        if method == "decision":
            results, tiny = self._decision(model, x, points(per_point), data, rng)
        elif method == "score":
            results = self._score(model, points(per_point), rng)
        elif method == "both":      # scores visible: both attacks, half the queries each
            # without the tree copy's exact solves (about 0.3 s a point): with scores to walk,
            # the labels-only half is the second opinion, not the main search
            by_labels, tiny = self._decision(model, x, points(per_point // 2), data, rng,
                                             tree_copy=False)
            by_scores = self._score(model, points(per_point - per_point // 2), rng)
            results = [_better(a, b) for a, b in zip(by_labels, by_scores, strict=True)]
        else:
            raise ProbeError(f"unknown black-box method {method!r}")
        measured = self._summarise(method, results, len(x), per_point)
        measured.extra.update(tiny, warnings=data.warnings())
        if tiny.get("splits_at_data_values"):
            measured = dataclasses.replace(measured, summary=measured.summary + (
                f"; {tiny['tiny_move_flips']:.0%} of points flip when coordinates move by "
                f"{NUDGE:g} or less: the model splits at the data's own values, so inputs "
                "a hair off a common value (a one-hot column at 1e-6, an amount of 0.000001) "
                "get another decision"))
        if data.constraints is not None:
            measured.extra["examples"] = _examples(x, results, data.constraints)
        return measured

    def _decision(self, model: ModelAdapter, x: np.ndarray, points: list[_Point],
                  data: EvasionData, rng: np.random.Generator, tree_copy: bool = True
                  ) -> tuple[list[tuple[np.ndarray | None, int]], dict[str, Any]]:
        """The labels-only attack on every point, and what its first tiny moves showed."""
        pool = np.asarray(data.pool, dtype=float)
        if self.param("labels_attack") == "hopskip":
            from mlthreat.probes.hopskip import hopskip_attack
            c = data.constraints
            movable = np.array([0.0 if c is not None and n in c.immutable else 1.0
                                for n in (c.columns if c is not None else range(x.shape[1]))])
            return drive([hopskip_attack(p, pool, self._preference(data, p), movable, rng)
                          for p in points], model), {}
        starts = int(self.param("starts"))
        trees: list[np.ndarray | None] = (self._tree_guesses(x, data, rng) if tree_copy
                                           else [None] * len(x))
        guesses = _joined(trees, self._guesses(x, data, rng))
        nudged, exact = self._nudged(model, points, rng)
        sample, low, high = pool[:2000], pool.min(axis=0), pool.max(axis=0)
        attacks = [decision_attack(p, pool, self._preference(data, p), starts, rng,
                                   guesses=g, nudged=n,
                                   hairs=self._hairs(p, sample, low, high) if exact else None)
                   for p, g, n in zip(points, guesses, nudged, strict=True)]
        tiny = {"tiny_move_flips": sum(n is not None for n in nudged) / max(len(x), 1),
                "splits_at_data_values": exact}
        return drive(attacks, model), tiny

    def _point(self, x0: np.ndarray, label: int, budget: int, data: EvasionData) -> _Point:
        c = data.constraints
        groups = c.groups() if c is not None else [np.array([i]) for i in range(len(x0))]
        target = data.target

        def flipped(labels: np.ndarray) -> np.ndarray:
            labels = np.asarray(labels)
            return np.asarray(labels != label if target is None else labels == target)

        def project(rows: np.ndarray) -> np.ndarray:
            rows = np.atleast_2d(rows)
            return rows if c is None else c.project(rows, np.broadcast_to(x0, rows.shape))
        return _Point(x0, label, budget, flipped, project, groups)

    def _guesses(self, x: np.ndarray, data: EvasionData, rng: np.random.Generator
                 ) -> list[np.ndarray | None]:
        """Starting points from a copy the attacker trains on their own labelled rows (no
        queries to the model): PGD on the copy at a few L2 budgets gives each point candidates
        near the copy's boundary, realisable like every other row sent."""
        if data.pool is None or data.pool_y is None or len(np.unique(data.pool_y)) < 2:
            return [None] * len(x)
        copy = SklearnAdapter(MLPClassifier((64, 64), max_iter=300, early_stopping=True,
                                            random_state=int(rng.integers(2**31))).fit(
            data.pool, data.pool_y, sample_weight=balanced(data.pool_y)))
        pgd = WhiteBoxEvasion(steps=20)
        own = copy.predict(x)
        tried = [pgd.pgd(copy, x, own, np.full(len(x), scale), "l2", data, early=False)[1]
                 for scale in SCALES]
        return [np.stack([adv[i] for adv in tried]) for i in range(len(x))]

    @staticmethod
    def _tree_guesses(x: np.ndarray, data: EvasionData, rng: np.random.Generator
                      ) -> list[np.ndarray | None]:
        """Starting points from a tree copy the attacker trains on their own labelled rows (no
        queries): the copy's exact smallest flipping change (`minimal.py`) under the same
        constraints, and that change stretched a little (the model's boundary is near the
        copy's, not on it). Tree models cut the space into boxes; a PGD step on a smooth copy
        lands in the wrong box as often as not, the copy's exact optimum in a neighbouring one."""
        if data.pool is None or data.pool_y is None or len(np.unique(data.pool_y)) < 2:
            return [None] * len(x)
        copy = HistGradientBoostingClassifier(max_iter=COPY_TREES,
                                              random_state=int(rng.integers(2**31)))
        copy.fit(data.pool, data.pool_y)
        ens = read(copy, data.pool[:500])
        own = copy.predict(x)
        out: list[np.ndarray | None] = []
        for x0, mine in zip(x, own, strict=True):
            if data.target is not None and mine == data.target:
                out.append(None)
                continue
            sol = minimal_change(ens, x0, data.target, "l2", data.constraints,
                                 seconds=COPY_SECONDS, pool=data.pool)
            out.append(None if sol.x is None else
                       np.stack([x0 + s * (sol.x - x0) for s in COPY_SCALES]))
        return out

    @staticmethod
    def _nudged(model: ModelAdapter, points: list[_Point], rng: np.random.Generator
                ) -> tuple[list[np.ndarray | None], bool]:
        """Tiny random moves for every point; if they flip enough points (the model splits at
        the data's own values, as XGBoost and LightGBM do), twice as many more for the points
        still standing. Which kind of model it is, the attacker learns from these answers:
        also returned, as whether hair moves are worth trying (`helpful_hairs`)."""
        hits = [d for d, _ in drive([nudge(p, NUDGES, rng) for p in points], model)]
        exact = bool(hits) and bool(np.mean([d is not None for d in hits]) >= EXACT_SPLITS)
        if exact:
            more = drive([nudge(p, MORE_NUDGES if d is None else 0, rng)
                          for p, d in zip(points, hits, strict=True)], model)
            hits = [d if d is not None else m for d, (m, _) in zip(hits, more, strict=True)]
        return hits, exact

    @staticmethod
    def _hairs(p: _Point, sample: np.ndarray, low: np.ndarray, high: np.ndarray
               ) -> np.ndarray:
        """Hair moves (one coordinate, one sign each) where a split is likely: the point's
        value is one many of the attacker's rows (`sample`) share exactly (a one-hot column, a
        zero, a round amount), towards the side where their rows go on (to `low`, `high`);
        none that the constraints would undo (a one-hot group or an integer stays as it was)."""
        hair = p.hair
        moves = []
        for j in np.flatnonzero(np.mean(sample == p.x, axis=0) >= TIES):
            for sign, beyond in ((1.0, high[j] > p.x[j]), (-1.0, low[j] < p.x[j])):
                if beyond:
                    move = np.zeros_like(p.x)
                    move[j] = sign * hair[j]
                    if p.project(p.x + move)[0, j] != p.x[j]:
                        moves.append(move)
        return np.array(moves).reshape(-1, len(p.x))

    @staticmethod
    def _preference(data: EvasionData, p: _Point) -> np.ndarray:
        """Rows the attacker knows to be of the wanted class go first (their labels are the
        attacker's own); the model's answer decides."""
        assert data.pool is not None
        if data.pool_y is None:
            return np.zeros(len(data.pool))
        want = (data.pool_y != p.label) if data.target is None else (data.pool_y == data.target)
        return np.where(want, 0.0, 1e9)

    def _score(self, model: ModelAdapter, points: list[_Point], rng: np.random.Generator
               ) -> list[tuple[np.ndarray | None, int]]:
        step = float(self.param("step"))
        labels = [p.label for p in points]

        class Scored(ModelAdapter):
            """Answers with the label and the own-class score side by side (one query)."""

            def predict(self, rows: np.ndarray) -> np.ndarray:
                proba = model.predict_proba(rows)
                return np.column_stack([proba.argmax(axis=1), proba])

        out = []
        for p, own in zip(points, labels, strict=True):
            p.flipped = _first_column(p.flipped)
            seeds = np.random.default_rng(rng.integers(2**32))
            out.append(score_attack(p, _own_score(own), step, seeds))
        return drive(out, Scored())

    def _summarise(self, method: str, results: list[tuple[np.ndarray | None, int]], n: int,
                   per_point: int) -> Measurement:
        dist = np.array([np.linalg.norm(d) if d is not None else np.inf for d, _ in results])
        used = np.array([q for _, q in results])
        epsilons = [float(e) for e in self.param("epsilons")]
        rates = [float(np.mean(dist <= e)) for e in epsilons]
        curve = robustness(epsilons, rates, n)
        median, (m_lo, m_hi) = float(np.median(dist)), median_interval(dist)
        at = epsilons.index(0.5) if 0.5 in epsilons else len(epsilons) // 2
        kind = {"decision": "labels only", "score": "scores",
                "both": "scores and labels-only attacks, the better per point"}[method]
        summary = (f"black-box evasion ({kind}, ≤{per_point} queries per point): "
                   f"{rates[at]:.0%} of {n} points flipped within L2 {epsilons[at]:.4g}, "
                   f"median smallest flipping change {median:.2f} (95% CI {m_lo:.2f}–{m_hi:.2f}), "
                   f"{used.mean():.0f} queries per point on average")
        return Measurement(
            "success_rate", rates[at], (curve["success_low"][at], curve["success_high"][at]),
            rates[at] >= SUCCESS_RATE, summary, curve,
            {"median_minimal_perturbation": median, "median_interval": [m_lo, m_hi],
             "norm": "l2", "method": method, "points": n, "queries_per_point": float(used.mean()),
             "max_queries_per_point": int(used.max(initial=0)),
             "success_any": float(np.mean(np.isfinite(dist))),
             "minimal": [float(d) for d in dist]})

