"""Progress of probe runs in the terminal: one bar over all probes, a line per running probe
with its elapsed time, and a line per finished probe with what it measured. It is the CLI's
observer of `run_probes` (the engine itself never prints)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text


class ProbeProgress:
    """Use as a context manager around `run_probes(..., observer=...)`."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.total = total
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                                 transient=True)
        self.overall: TaskID | None = None
        self.running: dict[str, TaskID] = {}
        self.finished: list[str] = []

    def __enter__(self) -> ProbeProgress:
        self.progress.__enter__()
        self.overall = self.progress.add_task("probes", total=self.total)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.progress.__exit__(kind, exc, tb)

    def begin(self, label: str) -> None:
        self.running[label] = self.progress.add_task(f"  {label}", total=None)

    def end(self, label: str, outcome: str) -> None:
        task = self.running.pop(label, None)
        if task is not None:
            self.progress.remove_task(task)
        if self.overall is not None and outcome != "interrupted":
            self.progress.advance(self.overall)
            self.finished.append(label)
        mark = "✗" if outcome == "interrupted" else ("–" if outcome.startswith("skipped") else "✓")
        self.progress.console.print(Text(f"{mark} {label}: {outcome}"), overflow="fold")
