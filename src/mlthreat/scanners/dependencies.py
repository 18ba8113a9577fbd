"""Dependencies: unpinned or loosely pinned requirements, and known-vulnerable versions when a
local advisory database is given (OSV JSON; offline by default, and the report says so).

Reads requirements files (with -r includes), pyproject.toml (PEP 621 and Poetry) and conda
environment files (conda and pip sections).
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from mlthreat.errors import InputError
from mlthreat.scanners.interface import ScanContext, ScanFinding, Scanner

THREAT = "cls-dependency-supply-chain"


@dataclass(frozen=True)
class Dep:
    name: str
    spec: str           # the specifier as written
    line: int | None
    hashed: bool = False
    url: bool = False


def is_dependency_file(path: Path) -> bool:
    n = path.name.lower()
    return (n.startswith("requirements") and n.endswith((".txt", ".in"))) or n in (
        "pyproject.toml", "environment.yml", "environment.yaml", "conda.yaml", "conda.yml")


def read_deps(path: Path, seen: set[Path] | None = None) -> list[tuple[Path, Dep]]:
    seen = seen or set()
    if path in seen or not path.exists():
        return []
    seen.add(path)
    n = path.name.lower()
    if n == "pyproject.toml":
        return [(path, d) for d in _pyproject(path)]
    if n.endswith((".yml", ".yaml")):
        return [(path, d) for d in _conda(path)]
    return _requirements(path, seen)


def _requirements(path: Path, seen: set[Path]) -> list[tuple[Path, Dep]]:
    out: list[tuple[Path, Dep]] = []
    for number, raw in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            out += read_deps(path.parent / line.split(None, 1)[1], seen)
            continue
        if line.startswith("-"):
            continue
        hashed = "--hash=" in line
        line = line.split(" --hash", 1)[0].split(";", 1)[0].strip()
        if "://" in line or line.startswith(("git+", "./", "/")):
            out.append((path, Dep(line, "", number, hashed, url=True)))
            continue
        dep = _parse(line, number, hashed)
        if dep:
            out.append((path, dep))
    return out


def _parse(text: str, line: int | None, hashed: bool = False) -> Dep | None:
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return None
    if req.url:
        return Dep(req.name, "", line, hashed, url=True)
    return Dep(canonicalize_name(req.name), str(req.specifier), line, hashed)


def _line_of(text: str, name: str) -> int | None:
    for i, line in enumerate(text.splitlines(), start=1):
        if re.search(rf"(^|[\s\"'\[]){re.escape(name)}\b", line, re.I):
            return i
    return None


def _pyproject(path: Path) -> list[Dep]:
    text = path.read_text(errors="replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return []
    project = data.get("project", {})
    reqs: list[str] = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    out = [d for r in reqs if (d := _parse(r, _line_of(text, _name(r))))]
    poetry = data.get("tool", {}).get("poetry", {}).get("dependencies", {})
    for name, spec in poetry.items():
        if name.lower() == "python":
            continue
        version = spec.get("version", "") if isinstance(spec, dict) else str(spec)
        out.append(Dep(canonicalize_name(name), _poetry(version), _line_of(text, name)))
    return out


def _name(req: str) -> str:
    return re.split(r"[\s<>=!~\[;@(]", req.strip(), maxsplit=1)[0]


def _poetry(version: str) -> str:
    v = version.strip()
    if v in ("", "*"):
        return ""
    if v[0].isdigit():
        return f"=={v}"
    return v.replace("^", ">=").replace("~", "~=") if v[0] in "^~" else v


def _conda(path: Path) -> list[Dep]:
    text = path.read_text(errors="replace")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return []
    out = []
    for item in data.get("dependencies", []) if isinstance(data, dict) else []:
        if isinstance(item, dict):
            for pip_req in item.get("pip", []):
                if d := _parse(str(pip_req), _line_of(text, _name(str(pip_req)))):
                    out.append(d)
        elif isinstance(item, str):
            name, _, version = item.partition("=")
            name = name.split("::")[-1].strip()
            if name.lower() in ("python", "pip"):
                continue
            spec = "" if not version else ("==" + version.lstrip("=") if "*" not in version
                                           else "==" + version.lstrip("="))
            out.append(Dep(canonicalize_name(name), spec, _line_of(text, name)))
    return out


def pin_problems(path: Path, dep: Dep) -> ScanFinding | None:
    if dep.url:
        if dep.hashed:
            return None
        return _f(path, dep, "medium", "DEP-URL", f"{dep.name}: installed from a URL or path "
                  "without a hash: whatever is there at install time is what runs")
    if not dep.spec:
        return _f(path, dep, "medium", "DEP-UNPINNED", f"{dep.name} is not pinned: any future "
                  "release (or a hijacked one) is installed")
    exact = re.fullmatch(r"===?\s*[\w.+!-]+", dep.spec)
    if not exact:
        return _f(path, dep, "low", "DEP-LOOSE", f"{dep.name}{dep.spec} is loosely pinned: "
                  "pin an exact version (with a hash) for training and serving")
    return None


def _f(path: Path, dep: Dep, severity: str, rule: str, message: str) -> ScanFinding:
    return ScanFinding(scanner="dependencies", rule=rule, threat_id=THREAT, family="classical",
                       severity=severity, file=str(path), line=dep.line, message=message)


def load_advisories(path: Path) -> list[dict[str, Any]]:
    """OSV advisories: one JSON file (an object or a list) or a folder of them."""
    if not path.exists():
        raise InputError(f"{path}: advisory database not found")
    files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
    out: list[dict[str, Any]] = []
    for f in files:
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            raise InputError(f"{f}: not an OSV JSON advisory file ({exc})") from exc
        items = data if isinstance(data, list) else [data]
        if not all(isinstance(i, dict) for i in items):
            raise InputError(f"{f}: OSV advisories are JSON objects (or a list of them)")
        out += items
    return out


def _affected(version: Version, affected: dict[str, Any]) -> bool:
    if str(version) in affected.get("versions", []):
        return True
    for rng in affected.get("ranges", []):
        if rng.get("type") not in ("ECOSYSTEM", "SEMVER"):
            continue
        introduced, inside = None, False
        for event in rng.get("events", []):
            try:
                if "introduced" in event:
                    introduced = Version("0") if event["introduced"] == "0" else Version(
                        event["introduced"])
                    inside = version >= introduced
                elif "fixed" in event and inside and version < Version(event["fixed"]):
                    return True
                elif "fixed" in event:
                    inside = False
                elif "last_affected" in event and inside and version <= Version(
                        event["last_affected"]):
                    return True
            except InvalidVersion:
                continue
        if inside and introduced is not None and not any(
                "fixed" in e or "last_affected" in e for e in rng.get("events", [])):
            return True
    return False


def vulnerable(path: Path, dep: Dep, advisories: list[dict[str, Any]]) -> list[ScanFinding]:
    m = re.fullmatch(r"===?\s*([\w.+!-]+)", dep.spec)
    if not m:
        return []
    try:
        version = Version(m.group(1))
    except InvalidVersion:
        return []
    out = []
    for adv in advisories:
        for affected in adv.get("affected", []):
            pkg = affected.get("package", {})
            if pkg.get("ecosystem") == "PyPI" and canonicalize_name(pkg.get("name", "")) == \
                    dep.name and _affected(version, affected):
                out.append(_f(path, dep, "high", "DEP-VULNERABLE",
                              f"{dep.name}=={version} is affected by {adv.get('id', '?')}: "
                              f"{adv.get('summary', '')}".rstrip(": ")))
    return out


def scan_dependencies(path: Path, advisories: list[dict[str, Any]] | None) -> list[ScanFinding]:
    out = []
    for file, dep in read_deps(path):
        if (problem := pin_problems(file, dep)) is not None:
            out.append(problem)
        if advisories:
            out += vulnerable(file, dep, advisories)
    return out


class DependencyScanner(Scanner):
    """Requirements, pyproject and conda files: unpinned ML dependencies, and known-vulnerable
    versions where an OSV advisory database is given."""

    name = "dependencies"
    threat_ids = (THREAT,)

    def applies_to(self, path: Path) -> bool:
        return is_dependency_file(path)

    def scan(self, path: Path, ctx: ScanContext) -> list[ScanFinding]:
        return scan_dependencies(path, ctx.advisories)
