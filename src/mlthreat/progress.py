"""How progress leaves the library: an Observer told of each step of an assessment and of each
probe run, so that the terminal's progress bars, a notebook or a web board follow the same engine
unchanged. The library itself never prints."""

from __future__ import annotations

from typing import Protocol


class RunObserver(Protocol):
    """What the probe runner tells: `begin`/`end` around each probe run."""

    def begin(self, label: str) -> None: ...

    def end(self, label: str, outcome: str) -> None: ...


class Observer(RunObserver, Protocol):
    """Where an assessment's progress goes: `stage` as each step starts (with the number of
    probes for "probe"), and each probe run."""

    def stage(self, name: str, total: int = 0) -> None: ...


class Steps:
    """Passes progress on to the observer, remembering which steps ended (for Ctrl-C)."""

    def __init__(self, observer: Observer) -> None:
        self.observer, self.current, self.done = observer, "loading the spec", list[str]()

    def stage(self, name: str, total: int = 0) -> None:
        self.observer.stage(name, total)      # first: it may stop the run before this step
        self.done.append(self.current)
        self.current = STEPS.get(name, name)

    def begin(self, label: str) -> None:
        self.observer.begin(label)

    def end(self, label: str, outcome: str) -> None:
        self.observer.end(label, outcome)


STEPS = {"scan": "scanning the artifacts", "place": "placing the threats",
         "probe": "probing", "score": "scoring the findings", "perception": "comparing perceptions"}


class Silent:
    """The observer that reports nothing (the default)."""

    def stage(self, name: str, total: int = 0) -> None: ...

    def begin(self, label: str) -> None: ...

    def end(self, label: str, outcome: str) -> None: ...
