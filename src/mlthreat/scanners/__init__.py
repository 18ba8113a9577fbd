"""Static scanners of what a pipeline is made of. Nothing scanned is imported or executed.

SCANNERS is the one registry from names to Scanners (`interface.py`); `scan_paths` runs each
over the files it applies to, in files and folders, and says what it could not scan.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from mlthreat.plain import display_path
from mlthreat.results import Triage
from mlthreat.scanners.dependencies import DependencyScanner
from mlthreat.scanners.interface import ScanContext, ScanFinding, Scanner, is_test_file
from mlthreat.scanners.modelfile import ModelFileScanner, walk
from mlthreat.scanners.secrets import SecretsScanner
from mlthreat.scanners.serving import ServingScanner
from mlthreat.scanners.workflows import WorkflowScanner

# folders that are not the project's own code: only the model-file scanner reads them
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache",
             ".pytest_cache", ".ruff_cache", ".tox", ".dvc", "site-packages"}
MAX_FILES = 50_000


@dataclass
class ScanReport:
    paths: list[str]
    scanners: list[str]
    findings: list[ScanFinding] = field(default_factory=list)
    files: int = 0
    notes: list[str] = field(default_factory=list)
    triage: list[Triage] = field(default_factory=list)   # set by the CI gate, if any
    compared: bool = False          # a baseline or an earlier run was compared with (gate)


def scan_targets(paths: Iterable[Path], exclude: Sequence[str] = ()
                 ) -> Iterable[tuple[Path, Path, bool, str | None]]:
    """(scanned root, file, inside a skipped folder, where a link leads outside the root) for
    every file to scan and not excluded (a glob on its path relative to the scanned folder, on
    its path as reached from the paths given, or on the file's own name). Links are followed
    (each real file once); `.git` is never entered."""
    for path in paths:
        if path.is_file():
            if not excluded(path.as_posix(), exclude):     # as given (pre-commit: from the root)
                yield path, path, False, None
        elif path.is_dir():
            for sub, outside in walk(path):
                inner = sub.relative_to(path)
                if excluded(inner.as_posix(), exclude) or excluded(sub.as_posix(), exclude):
                    continue
                hidden = bool(SKIP_DIRS & set(inner.parts[:-1]))
                yield path, sub, hidden, outside


def excluded(name: str, patterns: Sequence[str]) -> bool:
    """Whether a file (its path as given or below the scanned folder) matches an --exclude
    pattern, on the whole path or on its name."""
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(PurePosixPath(name).name, p)
               for p in patterns)


# the one registry from names to scanners, in the order they run on each file
SCANNERS: dict[str, Scanner] = {s.name: s for s in (
    ModelFileScanner(), SecretsScanner(), DependencyScanner(), ServingScanner(),
    WorkflowScanner())}


def scan_paths(paths: list[Path], only: list[str] | None = None,
               advisories: list[dict[str, Any]] | None = None,
               progress: Callable[[Path], None] | None = None,
               exclude: Sequence[str] = ()) -> ScanReport:
    names = only or list(SCANNERS)
    report = ScanReport([str(p) for p in paths], names)
    ctx = ScanContext(advisories)
    for n, (root, path, hidden, outside) in enumerate(scan_targets(paths, exclude)):
        if n >= MAX_FILES:
            report.notes.append(f"stopped after {MAX_FILES} files")
            break
        # virtual environments, caches and dot folders are not the project's code, but a model
        # file hidden there is loaded all the same: only the model-file scanner reads them
        wanted = [m for m in names if not hidden or SCANNERS[m].reads_hidden_folders]
        if root != path and is_test_file(path.relative_to(root)):
            wanted = [m for m in wanted if SCANNERS[m].reads_tests]
        if not wanted:
            continue
        report.files += 1
        if progress:
            progress(path)
        base = root if root.is_dir() else root.parent
        name_of = display_path(path, base)
        before = len(report.findings)
        for name in wanted:
            if SCANNERS[name].applies_to(path):
                report.findings += [replace(f, file=name_of) if f.file == str(path) else
                                    replace(f, file=display_path(Path(f.file), base))
                                    for f in SCANNERS[name].scan(path, ctx)]
        if outside and len(report.findings) > before:
            report.notes.append(f"{name_of} is a link to {outside}, outside the scanned folder: "
                                "its findings are in that file")
    if "dependencies" in names and not advisories:
        report.notes.append("known-vulnerable versions were not checked: no advisory database "
                            "given (--advisories FILE|DIR with OSV JSON); mlthreat stays offline")
    # a file read twice (requirements included with -r and scanned on their own) counts once
    report.findings = sorted(set(report.findings),
                             key=lambda f: (f.file, f.line or 0, f.offset or 0, f.rule, f.message))
    return report


__all__ = ["SCANNERS", "ScanContext", "ScanFinding", "ScanReport", "Scanner", "excluded",
           "scan_paths", "scan_targets"]
