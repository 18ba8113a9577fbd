"""Black-box evasion: how small a change flips the decision of a model the attacker can only
query (an API), within a budget of queries per point?

Two attacks share one refinement:
- `decision` (labels only): start from adversarial points, as Brendel et al.'s boundary attack
  does: suggestions of a copy the attacker trains on their own labelled rows (PGD on the copy at
  a few budgets; no queries to train it), and the attacker's own rows of the other class,
  nearest first (their labels are known to them); the model's answers decide.
- `score` (class scores visible): walk from the point itself along coordinates, keeping a step
  when the score of the current class falls (SimBA, Guo et al., 2019), until the label flips.
The decision attack first tries a few tiny random moves: tree ensembles put split thresholds at
values seen in the data, and points sitting on one flip with almost no change.
Refinement (the Pointwise attack of Schott et al., 2019): reset coordinates (or whole one-hot
groups) to their original values while the label stays flipped, binary-search along the line
back to the point, then shrink each remaining coordinate by binary search. Tree ensembles cut
the input space along coordinates, so the sparse, per-coordinate search is where their decision
boundaries are near; this is what makes a few hundred queries enough.

Every candidate is projected onto realisable records (`Constraints`) before it is sent. Each
point's attack is a generator that yields the rows it wants labelled; the driver answers all
points' rows in one model call per round, so the model sees batches, while each point's queries
are counted against its own budget. Reported: the median smallest flipping L2 change (with a
distribution-free interval), the success rate over a grid of budgets (robustness curve, Wilson
intervals) and the queries spent per point.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.neural_network import MLPClassifier

from mlthreat.probes.adapters import ModelAdapter, SklearnAdapter
from mlthreat.probes.constraints import Constraints
from mlthreat.probes.evasion import EvasionData, WhiteBoxEvasion
from mlthreat.probes.interface import Measurement, Meter, Probe, ProbeError
from mlthreat.probes.stats import median_interval, robustness

SUCCESS_RATE = 0.5
EPSILONS = (0.1, 0.25, 0.5, 1.0, 2.0)
POLISH = 30    # queries kept back to sharpen the best change found
SCALES = (0.2, 0.4, 0.6, 0.8, 1.0, 1.5)   # L2 budgets of the copy's suggestions per point
GUESS_KEEP = 3  # suggestions that flip the model and are refined
NUDGES = 16    # tiny random moves tried first: points on a split threshold flip with one
NUDGE = 1e-3   # size of the first, tiny random moves (in the model's input units)

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


def refine(p: _Point, delta: np.ndarray, steps: int = 3) -> Attack:
    """Pointwise refinement of a flipping change `delta`: fewer coordinates, then smaller."""
    for group in sorted(p.groups, key=lambda g: float(np.abs(delta[g]).sum())):
        if not np.any(delta[group]) or p.left() < 1:
            continue
        trial = delta.copy()
        trial[group] = 0.0
        if (yield from p.ask(p.x + trial))[0]:
            delta = p.project(p.x + trial)[0] - p.x
    lo, hi = 0.0, 1.0
    for _ in range(8):
        if p.left() < 1:
            break
        mid = (lo + hi) / 2
        if (yield from p.ask(p.x + mid * delta))[0]:
            hi = mid
        else:
            lo = mid
    delta = p.project(p.x + hi * delta)[0] - p.x
    delta = yield from shrink(p, delta, steps)
    return delta, p.used


def shrink(p: _Point, delta: np.ndarray, steps: int
           ) -> Generator[np.ndarray, np.ndarray, np.ndarray]:
    """Each non-zero coordinate in turn, binary-searched towards the original value."""
    for i in np.flatnonzero(delta):
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


def decision_attack(p: _Point, pool: np.ndarray, prefer: np.ndarray, starts: int,
                    rng: np.random.Generator, batch: int = 8,
                    guesses: np.ndarray | None = None) -> Attack:
    """Labels only: refine from `guesses` (a copy's adversarial suggestions) that flip the
    model and from the nearest of the attacker's rows that the model puts in another class
    (rows with a small `prefer` first: those the attacker knows to be of the wanted class);
    keep the smallest change found."""
    order = np.argsort(np.linalg.norm(pool - p.x, axis=1) + prefer)
    # Trees split at values seen in the data (XGBoost) or just above zero (LightGBM's one-hot
    # splits): points on such a threshold flip with a nudge in the right directions.
    found: list[np.ndarray] = []
    if p.left() >= 2 * NUDGES:
        nudges = NUDGE * rng.choice([-1.0, 1.0], size=(NUDGES, len(p.x)))
        hit = yield from p.ask(p.x + nudges)
        found += [r - p.x for r in p.project(p.x + nudges)[hit]][:1]
    if guesses is not None and 0 < len(guesses) <= p.left():
        hit = yield from p.ask(guesses)
        found += [r - p.x for r in p.project(guesses)[hit]][:GUESS_KEEP]
    for i in range(0, min(len(order), 8 * batch), batch):
        if len(found) >= starts or p.left() < batch:
            break
        rows = pool[order[i:i + batch]]
        hit = yield from p.ask(rows)
        found += [r - p.x for r in p.project(rows)[hit]]
    best: np.ndarray | None = None
    for delta in found[:starts]:
        if best is not None and p.left() < 8 + POLISH:
            break
        delta = yield from _refined(p, delta)
        if best is None or np.linalg.norm(delta) < np.linalg.norm(best):
            best = delta
    while best is not None and p.left() > 0:   # what is left sharpens the best change found
        before = p.used
        best = yield from shrink(p, best, 8)
        if p.used == before:
            break
    return best, p.used


def _refined(p: _Point, delta: np.ndarray) -> Generator[np.ndarray, np.ndarray, np.ndarray]:
    out, _ = yield from refine(p, delta)
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
        before, after = constraints.records(np.vstack([x[i], x[i] + delta]))
        changed = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
        out.append({"row": i, "l2": dist, "changed": changed})
    return out


def _first_column(flipped: Callable[[np.ndarray], np.ndarray]
                  ) -> Callable[[np.ndarray], np.ndarray]:
    return lambda answer: flipped(np.asarray(answer)[:, 0].astype(int))


def _own_score(own: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda answer: np.asarray(answer)[:, 1 + own]


class BlackBoxEvasion(Probe):
    """Parameters: method ("decision" or "score"), queries (per point, 200), starts (natural
    starting points refined, decision method, 5), step (coordinate step of the score method,
    0.25), epsilons (L2 budgets of the robustness curve)."""

    name = "evasion-blackbox"
    threat_ids = ("aml-evasion-blackbox",)

    def _measure(self, model: ModelAdapter, data: EvasionData, rng: np.random.Generator,
                 meter: Meter) -> Measurement:
        method = self.params.get("method", "decision")
        per_point = int(self.params.get("queries", 200))
        x = np.asarray(data.x, dtype=float)
        if method == "score" and not model.capabilities.scores:
            raise ProbeError("score-based evasion needs scores; this interface returns labels")
        if method == "decision" and (data.pool is None or not len(data.pool)):
            raise ProbeError("decision-based evasion needs rows the attacker holds (a pool)")
        start = model.predict(x)
        points = [self._point(x[i], int(start[i]), per_point, data) for i in range(len(x))]
        if method == "decision":
            pool = np.asarray(data.pool, dtype=float)
            starts = int(self.params.get("starts", 5))
            guesses = self._guesses(x, data, rng)
            attacks = [decision_attack(p, pool, self._preference(data, p), starts, rng,
                                       guesses=g) for p, g in zip(points, guesses, strict=True)]
            results = drive(attacks, model)
        elif method == "score":
            results = self._score(model, points, rng)
        else:
            raise ProbeError(f"unknown black-box method {method!r}")
        measured = self._summarise(method, results, len(x), per_point)
        if data.constraints is not None:
            measured.extra["examples"] = _examples(x, results, data.constraints)
        return measured

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
            data.pool, data.pool_y))
        pgd = WhiteBoxEvasion(steps=20)
        own = copy.predict(x)
        tried = [pgd.pgd(copy, x, own, np.full(len(x), scale), "l2", data, early=False)[1]
                 for scale in SCALES]
        return [np.stack([adv[i] for adv in tried]) for i in range(len(x))]

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
        step = float(self.params.get("step", 0.25))
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
        epsilons = [float(e) for e in self.params.get("epsilons", EPSILONS)]
        rates = [float(np.mean(dist <= e)) for e in epsilons]
        curve = robustness(epsilons, rates, n)
        median, (m_lo, m_hi) = float(np.median(dist)), median_interval(dist)
        at = epsilons.index(0.5) if 0.5 in epsilons else len(epsilons) // 2
        kind = "labels only" if method == "decision" else "scores"
        summary = (f"black-box evasion ({kind}, ≤{per_point} queries per point): "
                   f"{rates[at]:.0%} of {n} points flipped within L2 {epsilons[at]}, "
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

