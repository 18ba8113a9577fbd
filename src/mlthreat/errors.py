"""The whole exception tree of mlthreat, in one place.

::

    MlthreatError            base of everything mlthreat raises on purpose
    ├── InputError           the user's input is wrong; the CLI exits 2
    │   ├── SpecError        a pipeline spec has problems: each one a Problem with file:line:column
    │   └── OutputError      an output file cannot be written (exists, or its folder is missing)
    ├── Interrupted          Ctrl-C stopped a long run; says what finished; the CLI exits 130
    └── ToolError            mlthreat itself is broken; the CLI exits 3
        └── CatalogError     the packaged threat/control catalog failed its schema check

Errors from other libraries (PyYAML, pydantic, OS errors) are translated where they enter and keep
the original as ``__cause__``. The library never prints and never exits: only ``cli.py`` does.
"""

from __future__ import annotations

from dataclasses import dataclass


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


class InputError(MlthreatError):
    """The user's input is wrong. Exit code 2."""


class SpecError(InputError):
    """A pipeline spec has one or more problems, each located in the file."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class OutputError(InputError):
    """An output cannot be written where the user asked."""


class ToolError(MlthreatError):
    """mlthreat itself failed. Exit code 3."""


class CatalogError(ToolError):
    """The threat/control catalog is invalid."""


class Interrupted(MlthreatError):
    """The user stopped a long run (Ctrl-C); the message says what finished and what not."""
