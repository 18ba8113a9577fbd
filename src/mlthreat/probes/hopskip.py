"""A decision-based attack for images: HopSkipJump (Chen, Jordan and Wainwright, "HopSkipJumpAttack:
A query-efficient decision-based attack", IEEE S&P 2020) in L2, started where an attacker who
holds images of their own starts it.

The model answers labels only. From a flipping image, a binary search along the line back to the
original finds the decision boundary; at the boundary, the signs of the decision at `evals`
random nearby images (a Monte Carlo estimate with the mean sign as a baseline) give the
direction that leaves the original's class fastest; a step along it, halved until the decision
stays flipped, then another binary search back towards the original, lands on the boundary
nearer the original. The number of sign queries grows with the square root of the iteration,
as in the paper; the step starts at the distance over the square root of the iteration.

Where this differs from the paper's (and ART's) attack: the start is not uniform noise but the
nearest of the attacker's own images the model puts in another class (the boundary attack's
start, Brendel et al. 2018), and the sign queries per iteration start from the point's budget
(a fifteenth of it, between 8 and 100) instead of a fixed 100, so that a few hundred queries
go through several iterations. Every image sent is projected onto the valid range and the mask
(`_Point.project`), and the random directions move only the pixels the attacker may touch.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Protocol

import numpy as np


class _Point(Protocol):
    """What the attack needs of a point's state (`blackbox._Point`, the black-box probe's):
    where it starts, what it may spend, and a query that counts and projects."""

    x: np.ndarray
    budget: int
    used: int

    def left(self) -> int: ...

    def ask(self, rows: np.ndarray) -> Generator[np.ndarray, np.ndarray, np.ndarray]: ...

    def project(self, rows: np.ndarray) -> np.ndarray: ...


# yields rows to label, receives their labels, returns (best change or None, queries spent)
Attack = Generator[np.ndarray, np.ndarray, tuple[np.ndarray | None, int]]

START_BATCH = 8        # the attacker's own images asked at once for a flipping start
START_ROUNDS = 4       # batches of them at most
MAX_HALVINGS = 10      # of the step along the estimated direction
MAX_SEARCH = 12        # binary search steps at most
STARTS = 3             # flipping images of the attacker's searched to the boundary
MIN_EVALS = 8          # sign queries an iteration needs at least


def hopskip_attack(p: _Point, pool: np.ndarray, prefer: np.ndarray, movable: np.ndarray,
                   rng: np.random.Generator) -> Attack:
    """The smallest flipping change found (L2) for one point, and the queries spent."""
    d = max(1, int(movable.sum()))
    theta = 1.0 / (d * math.sqrt(d))
    steps = min(MAX_SEARCH, max(4, math.ceil(math.log2(1.0 / theta))))
    evals0 = int(np.clip(p.budget // 15, 8, 100))
    order = np.argsort(np.linalg.norm(pool - p.x, axis=1) + prefer)
    starts: list[np.ndarray] = []
    for i in range(0, min(len(order), START_ROUNDS * START_BATCH), START_BATCH):
        if p.left() < START_BATCH + steps:
            break
        rows = pool[order[i:i + START_BATCH]]
        hit = yield from p.ask(rows)
        if hit.any():
            sent = p.project(rows)[hit]
            starts = list(sent[np.argsort(np.linalg.norm(sent - p.x, axis=1))][:STARTS])
            break
    if not starts:
        return None, p.used
    boundary = yield from _search(p, starts[0], steps)
    for other in starts[1:]:        # another image of another class may lie nearer
        if p.left() < steps + 2 * evals0:
            break
        there = yield from _search(p, other, steps)
        if np.linalg.norm(there - p.x) < np.linalg.norm(boundary - p.x):
            boundary = there
    best = boundary - p.x
    for t in range(1, 10_000):
        evals = int(min(evals0 * math.sqrt(t), 10 * evals0, p.left() - 2 - steps))
        if evals < MIN_EVALS:
            break
        dist = float(np.linalg.norm(boundary - p.x))
        if dist == 0.0:
            break
        delta = math.sqrt(d) * theta * dist if t > 1 else 0.1 * dist
        direction = yield from _gradient(p, boundary, delta, evals, movable, rng)
        if direction is None:
            break
        step = dist / math.sqrt(t)
        moved = None
        for _ in range(MAX_HALVINGS):
            if p.left() < 1 + steps:
                break
            candidate = boundary + step * direction
            if (yield from p.ask(candidate))[0]:
                moved = p.project(candidate)[0]
                break
            step /= 2
        if moved is None:
            break
        boundary = yield from _search(p, moved, steps)
        if np.linalg.norm(boundary - p.x) < np.linalg.norm(best):
            best = boundary - p.x
    return best, p.used


def _search(p: _Point, flipping: np.ndarray, steps: int
            ) -> Generator[np.ndarray, np.ndarray, np.ndarray]:
    """Binary search on the line from the point to a flipping image: the flipping end, as
    near the point as `steps` halvings find (a generator: `yield from` it)."""
    lo, hi = 0.0, 1.0
    for _ in range(steps):
        if p.left() < 1:
            break
        mid = (lo + hi) / 2
        if (yield from p.ask(p.x + mid * (flipping - p.x)))[0]:
            hi = mid
        else:
            lo = mid
    return np.asarray(p.project(p.x + hi * (flipping - p.x))[0], dtype=float)


def _gradient(p: _Point, at: np.ndarray, delta: float, evals: int, movable: np.ndarray,
              rng: np.random.Generator
              ) -> Generator[np.ndarray, np.ndarray, np.ndarray | None]:
    """The direction out of the original class at the boundary point `at`, from the decision
    at `evals` images a distance `delta` away in random directions (movable pixels only), each
    sign less their mean (the paper's baseline); None when the projection left no direction."""
    u = rng.standard_normal((evals, len(at))) * movable
    u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
    rows = at + delta * u
    hit = yield from p.ask(rows)
    u = (p.project(rows) - at) / delta             # the directions the projection let through
    signs = np.where(hit, 1.0, -1.0)
    if abs(signs.mean()) < 1.0:
        signs = signs - signs.mean()
    g = (signs[:, None] * u).mean(axis=0)
    norm = float(np.linalg.norm(g))
    return None if norm == 0.0 or not np.isfinite(norm) else g / norm
