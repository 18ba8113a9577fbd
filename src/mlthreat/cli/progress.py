"""Progress of an assessment in the terminal: the current step, and during probes one bar over
all of them, a line per running probe with its elapsed time and a line per finished probe with
what it measured. It is the command line's Observer of the Assessor (the engine never prints)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from mlthreat.cli import pressed
from mlthreat.progress import STEPS


class TerminalProgress:
    """Use as a context manager around `Assessor(..., observer=...).assess(...)`."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.fields[count]}"), TimeElapsedColumn(),
                                 console=console, transient=True)
        self.overall: TaskID | None = None
        self.running: dict[str, TaskID] = {}
        self.finished: list[str] = []

    def __enter__(self) -> TerminalProgress:
        self.progress.__enter__()
        self.overall = self.progress.add_task("starting", total=None, count="")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.progress.__exit__(kind, exc, tb)

    def stage(self, name: str, total: int = 0) -> None:
        if pressed():         # a Ctrl-C Python dropped (see mlthreat.cli): stop at this step
            raise KeyboardInterrupt
        if self.overall is not None:
            self.progress.update(self.overall, description=STEPS.get(name, name),
                                 total=total or None, completed=0,
                                 count=f"0/{total}" if total else "")

    def begin(self, label: str) -> None:
        self.running[label] = self.progress.add_task(f"  {label}", total=None, count="")

    def end(self, label: str, outcome: str) -> None:
        task = self.running.pop(label, None)
        if task is not None:
            self.progress.remove_task(task)
        if self.overall is not None and outcome != "interrupted":
            self.finished.append(label)
            total = self.progress.tasks[0].total
            self.progress.update(self.overall, completed=len(self.finished),
                                 count=f"{len(self.finished)}/{int(total or 0)}")
        mark = "✗" if outcome == "interrupted" else ("–" if outcome.startswith("skipped") else "✓")
        self.progress.console.print(Text(f"{mark} {label}: {outcome}"), overflow="fold")
