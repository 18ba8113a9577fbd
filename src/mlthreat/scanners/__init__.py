"""Static scanners of what a pipeline is made of. Nothing scanned is imported or executed.

SCANNERS is the one registry from names to scanner functions; `scan_paths` runs them over files
and folders and says which were skipped and why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlthreat.scanners.dependencies import is_dependency_file, scan_dependencies
from mlthreat.scanners.interface import ScanFinding
from mlthreat.scanners.modelfile import scan_path as scan_model_path
from mlthreat.scanners.secrets import is_text_candidate, scan_secrets
from mlthreat.scanners.serving import scan_python, scan_torchserve

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


def _files(paths: Iterable[Path]) -> Iterable[Path]:
    for path in paths:
        if path.is_file():
            yield path
        elif path.is_dir():
            for sub in sorted(path.rglob("*")):
                if sub.is_file() and not sub.is_symlink() and not (
                        SKIP_DIRS & set(sub.relative_to(path).parts[:-1])):
                    yield sub


def _modelfile(path: Path, ctx: dict[str, Any]) -> list[ScanFinding]:
    return scan_model_path(path)


def _secrets(path: Path, ctx: dict[str, Any]) -> list[ScanFinding]:
    return scan_secrets(path) if is_text_candidate(path) else []


def _dependencies(path: Path, ctx: dict[str, Any]) -> list[ScanFinding]:
    return scan_dependencies(path, ctx.get("advisories")) if is_dependency_file(path) else []


def _serving(path: Path, ctx: dict[str, Any]) -> list[ScanFinding]:
    if path.suffix == ".py":
        return scan_python(path)
    if path.name == "config.properties":
        return scan_torchserve(path)
    return []


SCANNERS: dict[str, Callable[[Path, dict[str, Any]], list[ScanFinding]]] = {
    "modelfile": _modelfile, "secrets": _secrets, "dependencies": _dependencies,
    "serving": _serving,
}


def scan_paths(paths: list[Path], only: list[str] | None = None,
               advisories: list[dict[str, Any]] | None = None,
               progress: Callable[[Path], None] | None = None) -> ScanReport:
    names = only or list(SCANNERS)
    report = ScanReport([str(p) for p in paths], names)
    ctx = {"advisories": advisories}
    for n, path in enumerate(_files(paths)):
        if n >= MAX_FILES:
            report.notes.append(f"stopped after {MAX_FILES} files")
            break
        report.files += 1
        if progress:
            progress(path)
        for name in names:
            report.findings += SCANNERS[name](path, ctx)
    if "dependencies" in names and not advisories:
        report.notes.append("known-vulnerable versions were not checked: no advisory database "
                            "given (--advisories FILE|DIR with OSV JSON); mlthreat stays offline")
    report.findings.sort(key=lambda f: (f.file, f.line or 0, f.offset or 0, f.rule))
    return report


__all__ = ["SCANNERS", "ScanFinding", "ScanReport", "scan_paths"]
