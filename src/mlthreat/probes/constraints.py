"""Realisable records: what an attacker may change in an input, and the projection that turns a
perturbed vector back into a record that could exist.

Features are immutable (age, the recorded past), bounded, integer, or categorical (one-hot
groups). `project(candidate, original)` applies all of it, so every adversarial example a probe
reports is a record the system could really receive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mlthreat.errors import InputError


@dataclass(frozen=True)
class Constraints:
    """Per-column rules over a numeric feature matrix whose column names are `columns`."""

    columns: tuple[str, ...]
    immutable: frozenset[str] = frozenset()
    bounds: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    integer: frozenset[str] = frozenset()
    categorical: tuple[tuple[str, ...], ...] = ()   # one-hot groups: exactly one column is 1

    def __post_init__(self) -> None:
        known = set(self.columns)
        named = set(self.immutable) | set(self.bounds) | set(self.integer) | {
            c for group in self.categorical for c in group}
        unknown = sorted(named - known)
        if unknown:
            raise InputError(f"constraints name unknown feature(s): {', '.join(unknown)}")
        for name, (low, high) in self.bounds.items():
            if low is not None and high is not None and low > high:
                raise InputError(f"bounds of {name}: lower {low} is above upper {high}")

    def _index(self, names: Sequence[str] | frozenset[str]) -> list[int]:
        return [self.columns.index(n) for n in names]

    def project(self, candidate: np.ndarray, original: np.ndarray) -> np.ndarray:
        """The nearest realisable record(s) to `candidate` that keep `original`'s immutables."""
        x = np.array(candidate, dtype=float, copy=True)
        orig = np.asarray(original, dtype=float)
        for name, (low, high) in self.bounds.items():
            i = self.columns.index(name)
            x[..., i] = np.clip(x[..., i], -np.inf if low is None else low,
                                np.inf if high is None else high)
        for i in self._index(self.integer):
            x[..., i] = np.round(x[..., i])
        for group in self.categorical:
            idx = self._index(group)
            block = x[..., idx]
            winner = np.argmax(block, axis=-1)
            x[..., idx] = np.eye(len(idx))[winner]
        for i in self._index(self.immutable):
            x[..., i] = orig[..., i]
        return x

    def violations(self, x: np.ndarray, original: np.ndarray, tol: float = 1e-9) -> list[str]:
        """Why `x` is not realisable (empty when it is)."""
        x, orig = np.atleast_2d(x), np.atleast_2d(original)
        out = []
        for name in sorted(self.immutable):
            i = self.columns.index(name)
            if np.any(np.abs(x[:, i] - orig[:, i]) > tol):
                out.append(f"{name} changed but is immutable")
        for name, (low, high) in self.bounds.items():
            i = self.columns.index(name)
            if (low is not None and np.any(x[:, i] < low - tol)) or (
                    high is not None and np.any(x[:, i] > high + tol)):
                out.append(f"{name} outside [{low}, {high}]")
        for name in sorted(self.integer):
            i = self.columns.index(name)
            if np.any(np.abs(x[:, i] - np.round(x[:, i])) > tol):
                out.append(f"{name} is not an integer")
        for group in self.categorical:
            block = x[:, self._index(group)]
            if not np.all((np.abs(block.sum(axis=1) - 1) <= tol) &
                          np.all((np.abs(block) <= tol) | (np.abs(block - 1) <= tol), axis=1)):
                out.append(f"one-hot group {'/'.join(group)} is not exactly one category")
        return out
