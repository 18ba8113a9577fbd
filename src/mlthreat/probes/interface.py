"""What every probe shares: its budget, its evidence, and the final `run()` that does the common
work (seeding, timing, budget checks, building the Evidence) around one hook per probe.

Modelled on foolbox's attack base: the model (an adapter), what counts as success, how much the
attacker may spend, and the attack itself are kept apart.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlthreat.errors import MlthreatError


class ProbeError(MlthreatError):
    """A probe could not run (unsupported model capability, unusable data)."""


class BudgetExceeded(ProbeError):
    """The attacker's query or time budget ran out; what was measured so far still counts."""


@dataclass(frozen=True)
class Budget:
    """How much the simulated attacker may spend."""

    queries: int | None = None        # model calls (rows), None for no limit
    seconds: float | None = None
    seed: int = 0

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)


@dataclass(frozen=True)
class Measurement:
    """What a probe's hook returns; `run()` wraps it into Evidence."""

    metric: str
    value: float
    interval: tuple[float, float] | None
    succeeded: bool                   # the attack works well enough to count as confirmed
    summary: str
    curves: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)   # further metrics


@dataclass(frozen=True)
class Evidence:
    """One measurement: what, how much, how sure, at what cost, on which artifact."""

    probe: str
    threat_ids: tuple[str, ...]
    metric: str
    value: float
    interval: tuple[float, float] | None
    succeeded: bool                   # the attack works well enough to count as confirmed
    summary: str
    budget: dict[str, Any]
    parameters: dict[str, Any]
    artifact: str = ""
    seconds: float = 0.0
    queries: int = 0
    curves: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_item(self) -> dict[str, Any]:
        """The form findings carry (see analysis: `assess(..., evidence=...)`)."""
        return {"source": f"probe:{self.probe}", "metric": self.metric, "value": self.value,
                "interval": list(self.interval) if self.interval else None,
                "succeeded": self.succeeded, "summary": self.summary, "budget": self.budget,
                "parameters": self.parameters, "extra": self.extra, "artifact": self.artifact,
                "seconds": round(self.seconds, 3), "queries": self.queries,
                "curves": self.curves}


@dataclass
class Meter:
    """Counts what a run spends and stops it when the budget is gone."""

    budget: Budget
    started: float = field(default_factory=time.perf_counter)
    queries: int = 0

    def spend(self, rows: int) -> None:
        self.queries += rows
        if self.budget.queries is not None and self.queries > self.budget.queries:
            raise BudgetExceeded(f"query budget of {self.budget.queries} exhausted")
        if self.budget.seconds is not None and self.elapsed() > self.budget.seconds:
            raise BudgetExceeded(f"time budget of {self.budget.seconds} s exhausted")

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


class Probe(ABC):
    """Base of every probe. Subclasses set `name` and `threat_ids` and implement `_measure`."""

    name: str = "probe"
    threat_ids: tuple[str, ...] = ()

    def __init__(self, **params: Any) -> None:
        self.params = params              # stored, not validated here (STYLE: no work in __init__)

    def run(self, model: Any, data: Any, budget: Budget, artifact: str = "") -> Evidence:
        """Seeded, timed and budgeted; the same inputs and seed give the same Evidence."""
        meter = Meter(budget)
        if hasattr(model, "attach"):
            model.attach(meter)
        try:
            m = self._measure(model, data, budget.rng(), meter)
        finally:
            if hasattr(model, "attach"):
                model.attach(None)
        shown = {k: v for k, v in self.params.items() if not callable(v)}
        return Evidence(
            probe=self.name, threat_ids=self.measures(), metric=m.metric, value=float(m.value),
            interval=m.interval, succeeded=m.succeeded, summary=m.summary,
            budget={"queries": budget.queries, "seconds": budget.seconds, "seed": budget.seed},
            parameters=shown, artifact=artifact, seconds=meter.elapsed(),
            queries=meter.queries, curves=m.curves, extra=m.extra)

    def measures(self) -> tuple[str, ...]:
        """The threats this run's evidence speaks to (all of `threat_ids` unless a probe's
        parameters narrow it)."""
        return self.threat_ids

    @abstractmethod
    def _measure(self, model: Any, data: Any, rng: np.random.Generator, meter: Meter
                 ) -> Measurement:
        """Run the attack and say what it measured."""
