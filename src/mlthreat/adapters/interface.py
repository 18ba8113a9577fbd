"""What every model adapter shares: the capabilities it declares (scores, labels, gradients),
`predict_proba`/`predict` over rows, each row counted against the meter a probe attaches, and
the views an interface gives an attacker (rounded scores, labels only).

Probes talk to models only through an adapter, so the same attack runs on a scikit-learn
Pipeline, a PyTorch module or an HTTP endpoint, and its queries are budgeted and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from mlthreat.errors import ProbeError


class Meter(Protocol):
    """What counts an adapter's rows: a probe's budget (`probes.interface.Meter`)."""

    def spend(self, rows: int) -> None: ...


@dataclass(frozen=True)
class Capabilities:
    scores: bool          # class probabilities (or scores) are observable
    labels: bool = True   # the decision is observable
    gradients: bool = False


class ModelAdapter:
    """Base: `predict_proba` and `predict` over rows, counted against the attached meter."""

    capabilities = Capabilities(scores=True)

    def __init__(self) -> None:
        self._meter: Meter | None = None
        self.queries = 0

    def attach(self, meter: Meter | None) -> None:
        self._meter = meter

    def _count(self, rows: int) -> None:
        self.queries += rows
        if self._meter is not None:
            self._meter.spend(rows)

    def predict_proba(self, x: Any) -> np.ndarray:
        if not self.capabilities.scores:
            raise ProbeError("this model returns labels only; the probe needs scores")
        self._count(len(x))
        return np.asarray(self._proba(x), dtype=float)

    def predict(self, x: Any) -> np.ndarray:
        self._count(len(x))
        return np.asarray(self._labels(x))

    def _proba(self, x: Any) -> Any:
        raise NotImplementedError

    def gradient(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Gradient of the margin of class `target` (its score minus the best other) w.r.t. x,
        for adapters with `capabilities.gradients`."""
        raise ProbeError(f"{type(self).__name__} offers no gradients")

    def _labels(self, x: Any) -> Any:
        return np.argmax(self._proba(x), axis=1)


class RoundedAdapter(ModelAdapter):
    """What an API that rounds its scores (or returns the label only) shows the attacker."""

    def __init__(self, inner: ModelAdapter, decimals: int | None) -> None:
        super().__init__()
        self.inner = inner
        self.decimals = decimals
        self.capabilities = Capabilities(scores=decimals is not None and
                                         inner.capabilities.scores)

    def _proba(self, x: Any) -> Any:
        return np.round(self.inner._proba(x), self.decimals or 0)

    def _labels(self, x: Any) -> Any:
        return self.inner._labels(x)


class ScaledAdapter(ModelAdapter):
    """The model seen in standard deviations of its input columns: a row z is sent as z * unit
    (`unit`: the model's input units per standard deviation, per column). Probes then measure
    every change in the data's own standard deviations whatever scaling the model applies.
    Gradients follow the chain rule; rows are counted once, here (the meter is shared with the
    model's own adapter for the gradients it counts)."""

    def __init__(self, inner: ModelAdapter, unit: np.ndarray) -> None:
        super().__init__()
        self.inner = inner
        self.unit = np.asarray(unit, dtype=float)
        self.capabilities = inner.capabilities

    def attach(self, meter: Meter | None) -> None:
        super().attach(meter)
        self.inner.attach(meter)

    def _proba(self, x: Any) -> Any:
        return self.inner._proba(np.asarray(x, dtype=float) * self.unit)

    def _labels(self, x: Any) -> Any:
        return self.inner._labels(np.asarray(x, dtype=float) * self.unit)

    def gradient(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        moved = np.asarray(x, dtype=float) * self.unit
        return np.asarray(self.inner.gradient(moved, target) * self.unit, dtype=float)


class PositiveAdapter(ModelAdapter):
    """A two-class model fitted on the target's own values ("bad"/"good", "spam"/"ham") as the
    probes number them: column 1 and label 1 are the spec's positive value, 0 the other."""

    def __init__(self, inner: ModelAdapter, classes: Any, positive: str | int) -> None:
        super().__init__()
        self.inner = inner
        self.classes = np.asarray(classes)
        self.positive = str(positive)
        self.at = [str(c) for c in self.classes].index(self.positive)
        self.capabilities = inner.capabilities

    def attach(self, meter: Meter | None) -> None:
        super().attach(meter)
        self.inner.attach(meter)

    def _proba(self, x: Any) -> Any:
        p = np.asarray(two_columns(self.inner._proba(x)))
        return p[:, ::-1] if self.at == 0 else p

    def _labels(self, x: Any) -> Any:
        return (np.asarray(self.inner._labels(x)).astype(str) == self.positive).astype(int)

    def gradient(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        values = np.where(np.asarray(target) == 1, self.classes[self.at],
                          self.classes[1 - self.at])
        return self.inner.gradient(x, values)


def positive_view(adapter: ModelAdapter, model: Any, positive: str | int) -> ModelAdapter:
    """`adapter` as the probes number classes (1: the positive value): wrapped where the model's
    two classes are the target's own values, unchanged where they already are 0 and 1 (or
    False and True) in that order."""
    classes = getattr(model, "classes_", None)
    if classes is None or len(classes) != 2:
        return adapter
    names = [str(c) for c in classes]
    if str(positive) not in names or names in (["0", "1"], ["False", "True"]) and \
            names[1] == str(positive):
        return adapter
    return PositiveAdapter(adapter, classes, positive)


def two_columns(p: np.ndarray) -> np.ndarray:
    """Binary models answer P(class 1) alone; probes want one column per class."""
    p = np.asarray(p, dtype=float)
    return np.column_stack([1.0 - p, p]) if p.ndim == 1 else p
