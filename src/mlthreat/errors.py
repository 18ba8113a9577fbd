"""The whole exception tree of mlthreat, in one place. Each class knows the exit code the command
line gives it (docs/reports.md lists them)::

    MlthreatError            base of everything mlthreat raises on purpose            exit 3
    ├── InputError           the user's input is wrong                                exit 2
    │   ├── SpecError        a pipeline spec has problems: each a Problem, file:line:column
    │   ├── DataError        a data file cannot be used as the spec says (row, column, what to do)
    │   ├── ModelError       a model file cannot be loaded, or does not fit its data
    │   └── OutputError      an output cannot be written (exists, folder missing, clashing options)
    ├── Interrupted          Ctrl-C stopped a long run; says what finished             exit 130
    ├── ProbeError           a probe cannot run on this target; the runner records it as a
    │   │                    Skipped result with this message, so it reaches no user as an error
    │   └── BudgetExceeded   the simulated attacker's query or time budget ran out
    └── ToolError            mlthreat itself is broken                                exit 3
        └── CatalogError     the packaged threat/control catalog failed its schema check

Errors from other libraries (PyYAML, pydantic, pandas, the ML frameworks, OS errors) are
translated where they enter and keep the original as ``__cause__``. The library never prints and
never exits: only the command line (``mlthreat.cli``) does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT, EXIT_TOOL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in an input file: where, what, and what to do about it."""

    file: str
    line: int | None
    column: int | None
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class MlthreatError(Exception):
    """Base of every error mlthreat raises on purpose."""

    exit_code = EXIT_TOOL


class InputError(MlthreatError):
    """The user's input is wrong. Exit code 2."""

    exit_code = EXIT_INPUT


class SpecError(InputError):
    """A pipeline spec has one or more problems, each located in the file."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class DataError(InputError):
    """A data file cannot be used as the spec says: which file, row or column, and what to do."""


class ModelError(InputError):
    """A model file cannot be loaded safely, is not a model, or does not fit its data."""


class OutputError(InputError):
    """An output cannot be written where the user asked."""


class Interrupted(MlthreatError):
    """The user stopped a long run (Ctrl-C); the message says what finished and what not."""

    exit_code = EXIT_INTERRUPTED


def from_interrupt(exc: BaseException) -> bool:
    """Ctrl-C itself, or an error raised while Python unwound it: a KeyboardInterrupt that lands
    inside a lock's `with` (threading, Dask's client) turns into "RuntimeError: cannot release
    un-acquired lock", whose context is the interrupt."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__context__
    return False


@contextmanager
def interrupts_as(message: Callable[[], str]) -> Iterator[None]:
    """Ctrl-C (`from_interrupt`) inside the block raised as `Interrupted(message())`."""
    try:
        yield
    except BaseException as exc:    # noqa: BLE001 - Ctrl-C, however it arrives
        if not from_interrupt(exc):
            raise
        raise Interrupted(message()) from exc


class ProbeError(MlthreatError):
    """A probe cannot run on this target (unusable data, a precondition the planner cannot see
    in advance); the runner turns it into a Skipped result."""


class BudgetExceeded(ProbeError):
    """The attacker's query or time budget ran out; what was measured so far still counts."""


class ToolError(MlthreatError):
    """mlthreat itself failed. Exit code 3."""


class CatalogError(ToolError):
    """The threat/control catalog is invalid."""


def brief(exc: BaseException) -> str:
    """A foreign error in one line, for a message that wraps it: its type and first line."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else repr(exc)}"
