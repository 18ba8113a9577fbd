"""What every probe shares: its budget, its evidence, and the final `run()` that does the common
work (seeding, timing, budget checks, building the Evidence) around one hook per probe.

Modelled on foolbox's attack base: the model (an adapter), what counts as success, how much the
attacker may spend, and the attack itself are kept apart.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, final

import numpy as np

from mlthreat.errors import BudgetExceeded, InputError
from mlthreat.results import Curve, Evidence

if TYPE_CHECKING:
    from mlthreat.probes.target import Target


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
    confirmed: bool                   # the attack works well enough to count as confirmed
    summary: str
    series: dict[str, list[float]] = field(default_factory=dict)   # raw measured numbers
    extra: dict[str, Any] = field(default_factory=dict)   # further metrics


@dataclass(frozen=True)
class Param:
    """One parameter a probe declares: its default and the values it takes (numbers within
    [low, high], one of `choices`; a list is checked element by element; None and functions,
    such as a training entry point, are not checked)."""

    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    doc: str = ""

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value`, or None."""
        if value is None or callable(value):
            return None
        for v in value if isinstance(value, list | tuple) else [value]:
            if self.choices and v not in self.choices:
                return f"is {v!r}; choose from {', '.join(map(repr, self.choices))}"
            if self.low is None and self.high is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float):
                return f"is {v!r}, not a number"
            if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
                return f"is {v!r}, outside [{self.low}, {self.high}]"
        return None


class Prepared(NamedTuple):
    """A probe configured for one target: what `run` is called with."""

    probe: Probe
    model: Any
    data: Any
    budget: Budget


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
    parameters: ClassVar[dict[str, Param]] = {}
    requires: ClassVar[dict[str, str]] = {}    # capability -> why this probe cannot do without

    @classmethod
    def configure(cls, target: Target, settings: dict[str, int], fixed: dict[str, Any],
                  seed: int, jobs: int) -> Prepared:
        """This probe set up for a prepared component: its parameters (`fixed` ones from the
        registry), the data it attacks and the attacker's budget (`settings`: the budget's
        figures). Raises ProbeError where the target's data rules the probe out."""
        raise NotImplementedError(f"{cls.__name__} cannot be run from a spec")

    def param(self, name: str) -> Any:
        """The parameter as given, else its declared default."""
        return self.params.get(name, self.parameters[name].default)

    def check(self) -> None:
        """Every given parameter is declared and within its range; else InputError."""
        problems = [f"{n}: unknown (declared: {', '.join(self.parameters) or 'none'})"
                    for n in self.params if n not in self.parameters]
        problems += [f"{n} {why}" for n, v in self.params.items() if n in self.parameters
                     and (why := self.parameters[n].problem(v))]
        if problems:
            raise InputError(f"probe {self.name}: {'; '.join(problems)}")

    def __init__(self, **params: Any) -> None:
        self.params = params              # stored, not validated here (STYLE: no work in __init__)

    @final
    def run(self, model: Any, data: Any, budget: Budget, artifact: str = "",
            component: str = "") -> Evidence:
        """Seeded, timed and budgeted; the same inputs and seed give the same Evidence."""
        self.check()
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
            source=f"probe:{self.name}", threat_ids=self.measures(), metric=m.metric,
            value=float(m.value), interval=m.interval, confirmed=m.confirmed, summary=m.summary,
            component=component, artifact=artifact, title=self.title(), reach="path",
            budget={"queries": budget.queries, "seconds": budget.seconds, "seed": budget.seed},
            parameters=shown, seconds=meter.elapsed(), queries=meter.queries, series=m.series,
            curves=self.curves(m), extra=m.extra)

    def measures(self) -> tuple[str, ...]:
        """The threats this run's evidence speaks to (all of `threat_ids` unless a probe's
        parameters narrow it)."""
        return self.threat_ids

    def title(self) -> str:
        """How reports head this run's measurement."""
        return self.name

    def curves(self, m: Measurement) -> tuple[Curve, ...]:
        """What of the measurement is worth drawing (none by default)."""
        return ()

    @abstractmethod
    def _measure(self, model: Any, data: Any, rng: np.random.Generator, meter: Meter
                 ) -> Measurement:
        """Run the attack and say what it measured."""
