"""What every scanner is and returns: a Scanner says which files it reads (`applies_to`) and
which catalog threats its findings are evidence for, and `scan` returns ScanFindings, located in
a file (line, or byte offset and archive member for binary files). Scanners read bytes and text;
nothing scanned is ever imported or executed."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, ClassVar

from mlthreat.vocabulary import RISK_ORDER, RiskLevel


@dataclass(frozen=True, slots=True)
class ScanFinding:
    scanner: str            # modelfile | secrets | dependencies | serving
    rule: str               # stable id of the check, e.g. MF-PICKLE-CODE_EXECUTION
    threat_id: str          # the catalog threat this is evidence for
    family: str             # aml | classical
    severity: str           # low | medium | high | critical
    file: str
    line: int | None
    message: str
    offset: int | None = None
    member: str = ""        # archive member or nested stream

    @property
    def level(self) -> RiskLevel:
        return RiskLevel(self.severity)

    def at_least(self, level: RiskLevel) -> bool:
        return RISK_ORDER.index(self.level) >= RISK_ORDER.index(level)

    @property
    def where(self) -> str:
        loc = self.file
        if self.line is not None:
            loc += f":{self.line}"
        if self.member:
            loc += f" [{self.member}]"
        if self.offset is not None:
            loc += f" @byte {self.offset}"
        return loc


def is_test_file(path: PurePath) -> bool:
    """A test suite's file, by its path below the scanned folder: tests/ or test/ folders,
    test_*.py, *_test.py, conftest.py."""
    name = path.name
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py" or \
        bool({"tests", "test", "testing"} & set(path.parts[:-1]))


@dataclass(frozen=True)
class ScanContext:
    """What a whole scan shares: the advisory database, if the user gave one."""

    advisories: list[dict[str, Any]] | None = field(default=None)


class Scanner(ABC):
    """Base of every scanner: a name, the threats it finds evidence for, which files it reads,
    and `scan` over one of them."""

    name: ClassVar[str]
    threat_ids: ClassVar[tuple[str, ...]]
    # whether it reads files in virtual environments, caches and dot folders (SKIP_DIRS)
    reads_hidden_folders: ClassVar[bool] = False
    # whether it reads a test suite's files found in a scanned folder (tests/, test_*.py, ...):
    # a serving app or a model load there is a fixture, not what the team deploys
    reads_tests: ClassVar[bool] = True

    @abstractmethod
    def applies_to(self, path: Path) -> bool:
        """Whether this scanner reads `path` (decided without executing anything)."""

    @abstractmethod
    def scan(self, path: Path, ctx: ScanContext) -> list[ScanFinding]:
        """The findings in `path`, sorted as the scanner sees them."""
