"""Realisable records: what an attacker may change in an input, and the projection that turns a
perturbed vector back into a record that could exist.

Features are immutable (age, the recorded past), bounded, integer, or categorical (one-hot
groups). When the model sees encoded features (standardised numbers), `scale` and `offset` say
how a column maps back to the record's units (raw = x * scale + offset): bounds and integrality
are rules about the record, so they are applied in its units. `project(candidate, original)`
applies all of it, so every adversarial example a probe
reports is a record the system could really receive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from mlthreat.errors import InputError


def _none() -> np.ndarray:
    return np.zeros(0, dtype=int)


@dataclass(frozen=True)
class Constraints:
    """Per-column rules over a numeric feature matrix whose column names are `columns`."""

    columns: tuple[str, ...]
    immutable: frozenset[str] = frozenset()
    bounds: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    integer: frozenset[str] = frozenset()
    categorical: tuple[tuple[str, ...], ...] = ()   # one-hot groups: exactly one column is 1
    scale: tuple[float, ...] | None = None           # raw = x * scale + offset, per column
    offset: tuple[float, ...] | None = None
    # derived in __post_init__: positions by name, per-column bounds, the columns each rule covers
    _at: dict[str, int] = field(init=False, repr=False, compare=False, default_factory=dict)
    _low: np.ndarray = field(init=False, repr=False, compare=False, default_factory=_none)
    _high: np.ndarray = field(init=False, repr=False, compare=False, default_factory=_none)
    _bounded: np.ndarray = field(init=False, repr=False, compare=False, default_factory=_none)
    _whole: np.ndarray = field(init=False, repr=False, compare=False, default_factory=_none)
    _fixed: np.ndarray = field(init=False, repr=False, compare=False, default_factory=_none)

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

        for vec in (self.scale, self.offset):
            if vec is not None and len(vec) != len(self.columns):
                raise InputError("constraints: scale/offset need one value per column")
        # positions by name, and the per-column rules as arrays: `project` is vectorised, so an
        # image's thousands of bounded pixels cost one numpy call, not a loop over columns
        at = {name: i for i, name in enumerate(self.columns)}
        lows = np.full(len(self.columns), -np.inf)
        highs = np.full(len(self.columns), np.inf)
        for name, (lo, hi) in self.bounds.items():
            lows[at[name]] = -np.inf if lo is None else lo
            highs[at[name]] = np.inf if hi is None else hi
        object.__setattr__(self, "_at", at)
        object.__setattr__(self, "_low", lows)
        object.__setattr__(self, "_high", highs)
        object.__setattr__(self, "_bounded", np.array(sorted(at[n] for n in self.bounds), int))
        object.__setattr__(self, "_whole", np.array(sorted(at[n] for n in self.integer), int))
        object.__setattr__(self, "_fixed", np.array(sorted(at[n] for n in self.immutable), int))

    def rescaled(self, unit: np.ndarray) -> Constraints:
        """The same rules over columns divided by `unit` (x = z * unit): raw = z * (scale * unit)
        + offset."""
        scale = np.ones(len(self.columns)) if self.scale is None else np.asarray(self.scale)
        offset = np.zeros(len(self.columns)) if self.offset is None else np.asarray(self.offset)
        return replace(self, scale=tuple(float(v) for v in scale * np.asarray(unit)),
                       offset=tuple(float(v) for v in offset))

    def groups(self) -> list[np.ndarray]:
        """Column indices an attacker changes together: each one-hot group, every other
        column alone."""
        grouped = [np.array(self._index(g)) for g in self.categorical]
        inside = {int(i) for g in grouped for i in g}
        return grouped + [np.array([i]) for i in range(len(self.columns)) if i not in inside]

    def _raw(self, x: np.ndarray, i: int) -> np.ndarray:
        if self.scale is None:
            return x[..., i]
        return x[..., i] * self.scale[i] + (self.offset[i] if self.offset else 0.0)

    def _encoded(self, raw: np.ndarray, i: int) -> np.ndarray:
        if self.scale is None:
            return raw
        return (raw - (self.offset[i] if self.offset else 0.0)) / self.scale[i]

    def _index(self, names: Sequence[str] | frozenset[str]) -> list[int]:
        return [self._at[n] for n in names]

    def _raw_all(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        if self.scale is None:
            return np.asarray(x[..., idx])
        off = np.asarray(self.offset)[idx] if self.offset else 0.0
        return np.asarray(x[..., idx] * np.asarray(self.scale)[idx] + off)

    def _encoded_all(self, raw: np.ndarray, idx: np.ndarray) -> np.ndarray:
        if self.scale is None:
            return raw
        off = np.asarray(self.offset)[idx] if self.offset else 0.0
        return np.asarray((raw - off) / np.asarray(self.scale)[idx])

    def project(self, candidate: np.ndarray, original: np.ndarray) -> np.ndarray:
        """The nearest realisable record(s) to `candidate` that keep `original`'s immutables."""
        x = np.array(candidate, dtype=float, copy=True)
        orig = np.asarray(original, dtype=float)
        b = self._bounded
        if len(b):
            x[..., b] = self._encoded_all(np.clip(self._raw_all(x, b), self._low[b],
                                                  self._high[b]), b)
        w = self._whole
        if len(w):
            x[..., w] = self._encoded_all(np.round(self._raw_all(x, w)), w)
        for group in self.categorical:
            idx = self._index(group)
            block = x[..., idx]
            winner = np.argmax(block, axis=-1)
            x[..., idx] = np.eye(len(idx))[winner]
        if len(self._fixed):
            x[..., self._fixed] = orig[..., self._fixed]
        return x

    def records(self, x: np.ndarray) -> list[dict[str, object]]:
        """Encoded rows back as records in the data's own columns and units (what an API that
        takes records receives): numbers through scale/offset, one-hot groups as their
        category (columns named "column=value", as `from_transform` names them)."""
        rows = np.atleast_2d(np.asarray(x, dtype=float))
        grouped = {c for g in self.categorical for c in g}
        out: list[dict[str, object]] = []
        for row in rows:
            rec: dict[str, object] = {}
            for i, name in enumerate(self.columns):
                if name not in grouped:
                    value = float(self._raw(row, i))
                    rec[name] = round(value) if name in self.integer else value
            for group in self.categorical:
                winner = group[int(np.argmax(row[self._index(group)]))]
                column, _, category = winner.partition("=")
                rec[column] = category
            out.append(rec)
        return out

    def changed(self, x: np.ndarray, x_adv: np.ndarray) -> dict[str, list[object]]:
        """What a change does to one record, as the data's own columns: each column whose
        value differs, with [before, after] (a one-hot group as its category)."""
        before, after = self.records(np.vstack([x, x_adv]))
        return {k: [before[k], after[k]] for k in before if before[k] != after[k]}

    def violations(self, x: np.ndarray, original: np.ndarray, tol: float = 1e-9) -> list[str]:
        """Why `x` is not realisable (empty when it is)."""
        x, orig = np.atleast_2d(x), np.atleast_2d(original)
        out = []
        for name in sorted(self.immutable):
            i = self.columns.index(name)
            if np.any(np.abs(x[:, i] - orig[:, i]) > tol):
                out.append(f"{name} changed but is immutable")
        for name, (low, high) in self.bounds.items():
            raw = self._raw(x, self.columns.index(name))
            if (low is not None and np.any(raw < low - tol)) or (
                    high is not None and np.any(raw > high + tol)):
                out.append(f"{name} outside [{low}, {high}]")
        for name in sorted(self.integer):
            raw = self._raw(x, self.columns.index(name))
            if np.any(np.abs(raw - np.round(raw)) > 1e-6):
                out.append(f"{name} is not an integer")
        for group in self.categorical:
            block = x[:, self._index(group)]
            if not np.all((np.abs(block.sum(axis=1) - 1) <= tol) &
                          np.all((np.abs(block) <= tol) | (np.abs(block - 1) <= tol), axis=1)):
                out.append(f"one-hot group {'/'.join(group)} is not exactly one category")
        return out


def from_transform(transform: Callable[[pd.DataFrame], np.ndarray], frame: pd.DataFrame,
                   immutable: Sequence[str] = (), bounds: dict[str, tuple[float | None,
                                                                         float | None]] | None = None,
                   integer: Sequence[str] = ()) -> Constraints:
    """Constraints over the encoded columns a model sees, from rules about the record's columns.

    Which encoded columns a record column becomes is found by encoding one row with that column
    changed (any preprocessing works, a scikit-learn ColumnTransformer or a user's own): a number
    becomes one column with its affine map (standardisation), a category a one-hot group. The
    affine assumption is checked (`_check_affine`): a number the preprocessing maps non-linearly
    (log, quantile, binning) is refused with the column's name, since changes of the model's input
    could not be turned back into records.
    """
    bounds = bounds or {}
    named = set(immutable) | set(bounds) | set(integer)
    unknown = sorted(named - set(frame.columns))
    if unknown:
        raise InputError(f"constraints name unknown column(s): {', '.join(unknown)}; columns: "
                         f"{', '.join(map(str, frame.columns))}")
    base = frame.iloc[[0]].copy()
    for col in frame.columns:   # a row without missing values: imputers must not hide changes
        if base[col].isna().any():
            base[col] = frame[col].dropna().iloc[0]
    encoded = np.asarray(transform(base), dtype=float)[0]
    width = len(encoded)
    names = [f"x{i}" for i in range(width)]
    scale, offset = [1.0] * width, [0.0] * width
    groups: list[tuple[str, ...]] = []
    owners: dict[str, list[str]] = {}
    coded: set[str] = set()          # numeric columns the preprocessing one-hot encodes
    for col in frame.columns:
        block, values = _one_hot_block(transform, frame, base, col)
        if block is None and pd.api.types.is_numeric_dtype(frame[col]):
            moved = base.copy()
            moved[col] = base[col].astype(float) + 1.0
            diff = np.asarray(transform(moved), dtype=float)[0] - encoded
            changed = np.flatnonzero(np.abs(diff) > 1e-12)
            if len(changed) == 1:
                j = int(changed[0])
                names[j] = str(col)
                scale[j] = 1.0 / diff[j]
                offset[j] = float(base[col].iloc[0]) - encoded[j] * scale[j]
            owners[str(col)] = [names[int(j)] for j in changed]
            continue
        if block is None:           # a category stored as text: `values` are its values
            rows = pd.concat([base] * len(values), ignore_index=True)
            rows[col] = values
            block = np.asarray(transform(rows), dtype=float)
        elif pd.api.types.is_numeric_dtype(frame[col]):
            coded.add(str(col))
        changed = np.flatnonzero(block.std(axis=0) > 1e-12)
        for k in changed:
            hot = np.flatnonzero(block[:, k] == 1.0)
            names[int(k)] = f"{col}={values[hot[0]]}" if len(hot) == 1 else f"{col}#{k}"
        if len(changed) > 1:
            groups.append(tuple(names[int(j)] for j in changed))
        owners[str(col)] = [names[int(j)] for j in changed]
    for col in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[col]) and str(col) not in coded:
            _check_affine(transform, frame, base, str(col))
    for col in integer:
        if len(owners.get(col, [])) != 1:
            raise InputError(f"constraints: {col} is declared integer but is not one numeric "
                             "feature of the model's input")
    missing = [c for c in bounds if len(owners.get(c, [])) != 1]
    if missing:
        raise InputError(f"constraints: bounds need numeric columns; {', '.join(missing)} is not")
    return Constraints(
        columns=tuple(names),
        immutable=frozenset(n for c in immutable for n in owners.get(c, [])),
        bounds={owners[c][0]: b for c, b in bounds.items()},
        integer=frozenset(owners[c][0] for c in integer),
        categorical=tuple(groups), scale=tuple(scale), offset=tuple(offset))


def _one_hot_block(transform: Callable[[pd.DataFrame], np.ndarray], frame: pd.DataFrame,
                   base: pd.DataFrame, col: str) -> tuple[np.ndarray | None, np.ndarray]:
    """For a column of whole numbers with few values (at most 1,000) that the preprocessing
    one-hot encodes (an integer-coded category: region 1-9), the encoded rows of its values and
    the values; else (None, values). A category stored as text is found by the caller."""
    values = frame[col].dropna().unique()
    if not pd.api.types.is_numeric_dtype(frame[col]) or not 2 <= len(values) <= 1000:
        return None, values
    numbers = np.asarray(values, dtype=float)
    if not np.all(numbers == np.round(numbers)):
        return None, values
    rows = pd.concat([base] * len(values), ignore_index=True)
    rows[col] = values
    block = np.asarray(transform(rows), dtype=float)
    changed = block[:, block.std(axis=0) > 1e-12]
    one_hot = (changed.shape[1] > 1 and np.all((changed == 0) | (changed == 1))
               and np.all(changed.sum(axis=1) <= 1))
    return (block, values) if one_hot else (None, values)


def _check_affine(transform: Callable[[pd.DataFrame], np.ndarray], frame: pd.DataFrame,
                  base: pd.DataFrame, col: str) -> None:
    """The encoding changes linearly in `col`, the same way wherever the record sits: at rows
    whose `col` is at its quartiles, a step of a tenth of the column's spread and a step twice as
    large move the encoded row by d and 2d, with the same d at every row. A log, quantile or
    binning transform fails this and is refused (InputError naming the column)."""
    values = frame[col].dropna().astype(float)
    if values.nunique() < 2:
        return
    step = float(values.std()) / 10 or 1.0
    rows = pd.concat([base] * 3, ignore_index=True)
    rows[col] = np.quantile(values, [0.25, 0.5, 0.75])
    try:
        at = [np.asarray(transform(rows.assign(**{col: rows[col] + k * step})), dtype=float)
              for k in (0, 1, 2)]
    except Exception as exc:  # the team's own transform, any error type: refused, not assumed
        raise InputError(
            f"constraints: the model's preprocessing refused {col!r} moved by {2 * step:.3g} "
            f"from its quartiles ({type(exc).__name__}: {exc}), so whether it maps the column "
            "linearly cannot be checked; the probes need to change records a little") from exc
    one, two = at[1] - at[0], at[2] - at[0]
    tol = 1e-6 * max(1.0, float(np.abs(two).max()))
    if np.abs(two - 2 * one).max() > tol or np.abs(one - one[0]).max() > tol:
        raise InputError(
            f"constraints: the model's preprocessing changes {col!r} non-linearly (a step of "
            f"{step:.3g} moves the model's input differently at different values: a log, "
            "quantile or binning transform?). The probes turn changes of the model's input back "
            "into records through an affine map and cannot invert this one; save the model "
            "without that step and give the data with the column already transformed")
