"""Static scanners of what a pipeline is made of. Nothing scanned is imported or executed.

SCANNERS is the one registry from names to Scanners (`interface.py`); `scan_paths` runs each
over the files it applies to, in files and folders, and says what it could not scan.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import Any

from mlthreat.errors import InputError
from mlthreat.plain import display_path
from mlthreat.results import Triage
from mlthreat.scanners.dependencies import DependencyScanner
from mlthreat.scanners.interface import ScanContext, ScanFinding, Scanner, is_test_file
from mlthreat.scanners.modelfile import ModelFileScanner, walk
from mlthreat.scanners.remote import filesystem, is_url, local_of, scan_remote
from mlthreat.scanners.secrets import SecretsScanner
from mlthreat.scanners.serving import ServingScanner
from mlthreat.scanners.spread import on_cluster
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
    fetched: int = 0                # bytes read from object stores (URLs)


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


@dataclass(frozen=True)
class FileJob:
    """One file to scan: where it is (a local path or a URL), the name findings give it, the
    scanners that read it, and where a link to it leads outside the scanned folder."""

    where: str
    name: str
    scanners: tuple[str, ...]
    outside: str | None = None
    base: str = ""              # the folder other files' findings are named relative to


def plan_files(paths: Sequence[Path | str], names: Sequence[str], exclude: Sequence[str] = (),
               notes: list[str] | None = None) -> Iterator[FileJob]:
    """Every file the scan reads, in a fixed order: local files and folders as `scan_targets`
    walks them, URLs through fsspec (every object under a prefix). Objects behind a URL are
    read by the model-file scanner only (the code scanners read a checkout)."""
    for path in paths:
        text = str(path)
        if is_url(text):
            yield from _remote_jobs(text, names, exclude, notes)
        else:
            yield from _local_jobs([Path(local_of(text))], names, exclude)


def _local_jobs(paths: list[Path], names: Sequence[str], exclude: Sequence[str]
                ) -> Iterator[FileJob]:
    for root, path, hidden, outside in scan_targets(paths, exclude):
        # virtual environments, caches and dot folders are not the project's code, but a model
        # file hidden there is loaded all the same: only the model-file scanner reads them
        wanted = [m for m in names if not hidden or SCANNERS[m].reads_hidden_folders]
        if root != path and is_test_file(path.relative_to(root)):
            wanted = [m for m in wanted if SCANNERS[m].reads_tests]
        if wanted:
            base = root if root.is_dir() else root.parent
            yield FileJob(str(path), display_path(path, base), tuple(wanted), outside,
                          str(base))


def _remote_jobs(url: str, names: Sequence[str], exclude: Sequence[str],
                 notes: list[str] | None) -> list[FileJob]:
    wanted = tuple(n for n in names if n == "modelfile")
    if notes is not None and set(names) - {"modelfile"}:
        notes.append(f"{url}: objects in a store are read by the model-file scanner only; "
                     "scan a checkout for secrets, dependencies, serving code and workflows")
    if not wanted:
        return []
    fs, root = filesystem(url)
    try:
        if fs.isdir(root):
            found = sorted(fs.find(root))
        elif fs.isfile(root):
            found = [root]
        else:
            raise InputError(f"not found: {url}; check the URL (a CI gate on a wrong path "
                             "must not pass)")
    except OSError as exc:               # PermissionError too: credentials
        raise InputError(f"{url}: cannot list ({exc}); check the URL and the credentials "
                         "this machine (and every Dask worker) uses for it") from None
    out = []
    for key in found:
        inner = key[len(root.rstrip("/")) + 1:] if key != root else PurePosixPath(key).name
        if excluded(inner, exclude):
            continue
        full = fs.unstrip_protocol(key)
        out.append(FileJob(full, full, wanted))
    return out


def scan_file(job: FileJob, ctx: ScanContext) -> tuple[list[ScanFinding], list[str], int]:
    """(findings, notes, bytes fetched) of one file, each finding named as `job` names it."""
    if is_url(job.where):
        found, fetched = scan_remote(job.where)
        return [replace(f, file=job.name) for f in found], [], fetched
    path, base = Path(job.where), Path(job.base)
    out: list[ScanFinding] = []
    for name in job.scanners:
        if SCANNERS[name].applies_to(path):
            out += [replace(f, file=job.name) if f.file == job.where else
                    replace(f, file=display_path(Path(f.file), base))
                    for f in SCANNERS[name].scan(path, ctx)]
    notes = [f"{job.name} is a link to {job.outside}, outside the scanned folder: its findings "
             "are in that file"] if job.outside and out else []
    return out, notes, 0


def scan_paths(paths: Sequence[Path | str], only: list[str] | None = None,
               advisories: list[dict[str, Any]] | None = None,
               progress: Callable[[str], None] | None = None,
               exclude: Sequence[str] = (), cluster: Any = None) -> ScanReport:
    """Scan files, folders and URLs with the `only` scanners (default: all). `cluster`: a Dask
    Client whose workers scan the files (`scanners.spread`); the report is the same, sorted
    the same way, whatever order the files end in."""
    names = only or list(SCANNERS)
    report = ScanReport([str(p) for p in paths], names)
    jobs = list(islice(plan_files(paths, names, exclude, report.notes), MAX_FILES + 1))
    if len(jobs) > MAX_FILES:
        report.notes.append(f"stopped after {MAX_FILES} files")
        jobs = jobs[:MAX_FILES]
    report.files = len(jobs)
    ctx = ScanContext(advisories)
    if cluster is not None:
        results = on_cluster(jobs, scan_file, ctx, cluster, progress, lambda j: j.name)
    else:
        results = []
        for job in jobs:
            if progress:
                progress(job.name)
            results.append(scan_file(job, ctx))
    for found, notes, fetched in results:
        report.findings += found
        report.notes += notes
        report.fetched += fetched
    remote = sum(is_url(job.where) for job in jobs)
    if remote:
        report.notes.append(f"{remote} object(s) read from stores: {report.fetched / 1e6:.1f} MB "
                            "fetched (byte ranges where the format allows)")
    if "dependencies" in names and not advisories:
        report.notes.append("known-vulnerable versions were not checked: no advisory database "
                            "given (--advisories FILE|DIR with OSV JSON); mlthreat stays offline")
    # a file read twice (requirements included with -r and scanned on their own) counts once
    report.findings = sorted(set(report.findings),
                             key=lambda f: (f.file, f.line or 0, f.offset or 0, f.rule, f.message))
    return report


__all__ = ["SCANNERS", "FileJob", "ScanContext", "ScanFinding", "ScanReport", "Scanner",
           "excluded", "plan_files", "scan_file", "scan_paths", "scan_targets"]
