"""Dependencies: unpinned or loosely pinned requirements, and known-vulnerable versions when a
local advisory database is given (OSV JSON; offline by default, and the report says so).

Reads requirements files (with -r includes), pyproject.toml (PEP 621 and Poetry), conda
environment files (conda match specs and pip sections) and lock files (poetry.lock, uv.lock,
pdm.lock, pylock.toml, Pipfile.lock: exact versions, so a project's ranges resolved by its lock
file are pinned, and advisories are checked against what is really installed).
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


# lock files: every package at an exact version (most with hashes); a project with one has its
# pyproject's ranges resolved by it, so those ranges are not unpinned installs
LOCK_FILES = ("poetry.lock", "uv.lock", "pdm.lock", "pylock.toml", "Pipfile.lock")


# conda environment files go by many names (Azure ML's conda_dependencies.yml, a CI's
# ci_dependencies.yml, MLflow's conda.yaml, environment-gpu.yml); `_conda` reads only those
# whose YAML is an environment (a `dependencies` list)
CONDA_NAME_PARTS = ("conda", "environment", "dependencies")


def is_dependency_file(path: Path) -> bool:
    n = path.name.lower()
    return (n.startswith("requirements") and n.endswith((".txt", ".in"))) or \
        n == "pyproject.toml" or path.name in LOCK_FILES or \
        (n.endswith((".yml", ".yaml")) and any(part in n for part in CONDA_NAME_PARTS))


def read_deps(path: Path, seen: set[Path] | None = None) -> list[tuple[Path, Dep]]:
    seen = seen or set()
    if path in seen or not path.exists():
        return []
    seen.add(path)
    n = path.name.lower()
    if path.name in LOCK_FILES:
        return [(path, d) for d in _lock(path)]
    if n == "pyproject.toml":
        return [(path, d) for d in _pyproject(path)]
    if n.endswith((".yml", ".yaml")):
        return [(path, d) for d in _conda(path)]
    return _requirements(path, seen)


def locked_names(folder: Path) -> tuple[Path, set[str]] | None:
    """The first lock file in `folder` and the packages it pins."""
    for name in LOCK_FILES:
        if (folder / name).is_file():
            return folder / name, {d.name for d in _lock(folder / name)}
    return None


def _lock(path: Path) -> list[Dep]:
    """A lock file's packages at their exact versions (unreadable: none)."""
    text = path.read_text(errors="replace")
    try:
        if path.name == "Pipfile.lock":
            data = json.loads(text)
            rows = [(name, str(info.get("version", "")).lstrip("="), bool(info.get("hashes")))
                    for section in ("default", "develop")
                    for name, info in (data.get(section) or {}).items() if isinstance(info, dict)]
        else:
            data = tomllib.loads(text)
            packages = data.get("package", data.get("packages", []))
            rows = [(str(p.get("name", "")), str(p.get("version", "")),
                     bool(p.get("files") or p.get("wheels") or p.get("sdist")
                          or p.get("archive")))
                    for p in packages if isinstance(p, dict)]
    except (ValueError, tomllib.TOMLDecodeError, AttributeError):
        return []
    return [Dep(canonicalize_name(name), f"=={version}" if version else "",
                _line_of(text, name), hashed) for name, version, hashed in rows if name]


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
            # a git URL at a full commit is pinned by the commit's hash
            pinned = hashed or bool(re.search(r"git\+\S*@[0-9a-f]{40}(\b|$)", line))
            out.append((path, Dep(line, "", number, pinned, url=True)))
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
        pinned = hashed or bool(re.search(r"^git\+\S*@[0-9a-f]{40}(\b|$)", req.url))
        return Dep(req.name, "", line, pinned, url=True)
    return Dep(canonicalize_name(req.name), str(req.specifier), line, hashed)


def _line_of(text: str, name: str) -> int | None:
    """The line that names `name` as a requirement (in a list, a table key, a lock entry), not
    in a comment; `-`, `_` and `.` are the same in a package name."""
    parts = [re.escape(p) for p in re.split(r"[-_.]+", name) if p]
    if not parts:
        return None
    pattern = re.compile(r"(^|[\s\"'\[,:])" + r"[-_.]+".join(parts) + r"""($|[\s"'<>=!~\[;,@:)])""",
                         re.I)
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.lstrip().startswith("#") and pattern.search(line.split(" #", 1)[0]):
            return i
    return None


def _pyproject(path: Path) -> list[Dep]:
    text = path.read_text(errors="replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return []
    project = data.get("project", {})
    if _published(project) and locked_names(path.parent) is None:
        # a package's declared dependencies are ranges by design (PEP 621): what gets installed
        # is pinned by whoever deploys it (their lock file or requirements), not here
        return []
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
    lock = locked_names(path.parent)
    if lock is not None:          # resolved by the lock file: pinned there, not here
        out = [d if d.name not in lock[1] or d.url else Dep(d.name, "==locked", d.line, True)
               for d in out]
    return out


def _library_requirements(path: Path, deps: list[tuple[Path, Dep]]) -> bool:
    """A requirements file beside a published package's pyproject that lists only what the
    package declares (or that the pyproject reads as its dependencies): library metadata."""
    if not path.name.lower().startswith("requirements"):
        return False
    if _read_by_setup_py(path):
        return True
    pyproject = path.parent / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text(errors="replace")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return False
    if not _published(project) or locked_names(path.parent) is not None:
        return False
    if "dependencies" in project.get("dynamic", []):
        return True
    declared = {d.name for r in project.get("dependencies", []) if (d := _parse(r, None))}
    return bool(deps) and {d.name for _, d in deps} <= declared


def _read_by_setup_py(path: Path) -> bool:
    """A published package's setup.py (classifiers, url or keywords) that names this file and
    passes install_requires: the file is the package's declared dependencies (read as text;
    setup.py is never run)."""
    try:
        text = (path.parent / "setup.py").read_text(errors="replace")
    except OSError:
        return False
    return ("install_requires" in text and re.search(
        r"[\"']" + re.escape(path.name) + r"[\"']", text) is not None
        and re.search(r"\b(classifiers|url|keywords)\s*=", text) is not None
        and locked_names(path.parent) is None)


def _published(project: dict[str, Any]) -> bool:
    """A pyproject that describes a package for an index (classifiers, project URLs, keywords):
    its dependencies are what it is compatible with, not what a deployment installs."""
    return bool(project.get("classifiers") or project.get("urls") or project.get("keywords"))


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
    listed = data.get("dependencies") if isinstance(data, dict) else None
    if not isinstance(listed, list):     # not a conda environment (another YAML of that name)
        return []
    out = []
    for item in listed:
        if isinstance(item, dict):
            pips = item.get("pip")
            for pip_req in pips if isinstance(pips, list) else []:
                if d := _parse(str(pip_req), _line_of(text, _name(str(pip_req)))):
                    out.append(d)
        elif isinstance(item, str):
            name, spec = conda_spec(item)
            if not name or name.lower() in ("python", "pip"):
                continue
            out.append(Dep(canonicalize_name(name), spec, _line_of(text, name)))
    return out


def conda_spec(item: str) -> tuple[str, str]:
    """A conda match spec as (name, pip-style specifier): `numpy`, `numpy=1.11` (1.11.*: loose),
    `numpy=1.11.1` and `numpy==1.11.1` and `numpy=1.11.1=py36_0` (exact), `numpy>=1.14.3`,
    `numpy 1.11.*`, `numpy >=1.8,<2`, `conda-forge::numpy`, `numpy[version='>=1.8']`."""
    text = item.split("::")[-1].strip()
    m = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)$", text)
    if m is None:
        return "", ""
    name, rest = m.group(1), m.group(2).strip()
    bracket = re.search(r"version\s*=\s*['\"]?([^'\",\]]+(?:,[^'\"\]]+)*)", rest)
    if rest.startswith("["):
        rest = bracket.group(1) if bracket else ""
    rest = rest.replace(" ", "")
    if not rest:
        return name, ""
    if rest.startswith("=") and not rest.startswith("=="):
        version, _, build = rest[1:].partition("=")
        exact = build or (version.count(".") >= 2 and "*" not in version)
        return name, f"=={version.rstrip('.*')}" if exact else f"=={version.rstrip('.*')}.*"
    if rest[0].isdigit():                     # `numpy 1.11.*` or `numpy 1.11.1 py36_0`
        version = re.split(r"[\s=]", rest, maxsplit=1)[0]
        return name, f"=={version}"
    if rest.startswith("=="):                 # `numpy==1.11.1` or `numpy==1.11.1=py36_0`
        return name, "==" + rest[2:].split("=")[0]
    return name, rest


def pin_problems(path: Path, dep: Dep) -> ScanFinding | None:
    if dep.url:
        if dep.hashed:
            return None
        return _f(path, dep, "medium", "DEP-URL", f"{dep.name}: installed from a URL or path "
                  "without a hash: whatever is there at install time is what runs")
    if not dep.spec:
        return _f(path, dep, "medium", "DEP-UNPINNED", f"{dep.name} is not pinned: any future "
                  "release (or a hijacked one) is installed")
    if dep.spec == "==locked":
        return None
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
    deps = read_deps(path)
    if _library_requirements(path, deps):
        return []
    for file, dep in deps:
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
