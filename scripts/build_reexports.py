"""Build src/mlthreat/scanners/data/reexports.json: where names in trusted packages really lead.

A pickle names an object by module and attribute path, and the unpickler imports the module and
walks the path. A trusted package (scikit-learn, PyTorch, ...) re-exports objects of other
modules, so `torch.multiprocessing.Process` is multiprocessing's Process and
`torch.utils.collect_env.subprocess` is the subprocess module. The scanner cannot import what it
judges, so this script, run by a developer (never at scan time), imports the trusted packages and
the standard library and records every attribute that leads out of the trusted packages:

  "module.attr": "module:<name>"      the attribute is a module
  "module.attr": "<home>:<qualname>"  the attribute is an object defined elsewhere

Only attributes whose target lies outside the trusted packages are kept (inside them the scanner
judges names as they are). Run: `.venv/bin/python scripts/build_reexports.py` after upgrading a
trusted library; the test suite checks the table against the installed libraries' samples.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import warnings
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src/mlthreat/scanners/data"
# standard-library modules with side effects on import, or only for other platforms
SKIP = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "__main__",
        "lib2to3", "ensurepip", "venv", "pydoc_data", "msvcrt", "winreg", "winsound", "_winapi",
        "nt", "_msi", "msilib", "_overlapped", "_scproxy", "xxsubtype", "test"}


def _trusted() -> list[str]:
    policy = yaml.safe_load((DATA / "pickle_policy.yaml").read_text())
    return sorted(policy["class_packages"])


def _import_all(packages: list[str]) -> None:
    warnings.simplefilter("ignore")
    for name in sorted(sys.stdlib_module_names - SKIP):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - platform modules missing here
            continue
    for top in packages:
        try:
            pkg = importlib.import_module(top)
        except Exception:  # noqa: BLE001 - an optional library not installed
            continue
        for info in pkgutil.walk_packages(getattr(pkg, "__path__", []), top + "."):
            if any(part in {"tests", "testing", "_testing", "test", "__main__"}
                   for part in info.name.split(".")):
                continue
            try:
                importlib.import_module(info.name)
            except BaseException:  # noqa: BLE001 - submodules needing optional extras
                continue


def _dangerous_modules() -> set[str]:
    policy = yaml.safe_load((DATA / "pickle_policy.yaml").read_text())
    out = set(policy["deny_modules"])
    for group in policy["dangerous"].values():
        out |= set(group.get("modules", []))
    return out


def build() -> dict[str, str]:
    trusted = _trusted()
    dangerous = _dangerous_modules()
    _import_all(trusted)

    def bad(module: str) -> bool:
        return any(module == d or module.startswith(d + ".") for d in dangerous)

    def inside(module: str) -> bool:
        return module.split(".")[0] in trusted

    table: dict[str, str] = {}
    for name, mod in sorted(sys.modules.items()):
        if mod is None or name.split(".")[0] in SKIP:
            continue
        std = name.split(".")[0] in sys.stdlib_module_names
        if not (inside(name) or std):
            continue
        try:
            items = list(vars(mod).items())
        except TypeError:
            continue
        for attr, value in items:
            if attr.startswith("__"):
                continue
            if isinstance(value, type(sys)):
                target = value.__name__
                # module aliases matter where they lead somewhere dangerous (posixpath.os)
                if not inside(target) and target != name and bad(target):
                    table[f"{name}.{attr}"] = f"module:{target}"
                continue
            try:
                home = getattr(value, "__module__", None)
                qual = getattr(value, "__qualname__", None)
            except BaseException:  # noqa: BLE001 - lazy attributes that fail on this machine
                continue
            if not isinstance(home, str) or not isinstance(qual, str) or inside(home):
                continue
            if std and (home == name or not bad(home)):
                continue
            if (home, qual) != (name, attr):
                table[f"{name}.{attr}"] = f"{home}:{qual}"
    return table


def main() -> None:
    table = build()
    out = {"about": "built by scripts/build_reexports.py; see its docstring",
           "python": sys.version.split()[0], "reexports": dict(sorted(table.items()))}
    (DATA / "reexports.json").write_text(json.dumps(out, indent=0, sort_keys=False) + "\n")
    print(f"{len(table)} entries", file=sys.stderr)


if __name__ == "__main__":
    main()
