"""Turning result dataclasses into plain JSON-ready values, for every JSON report."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any


def to_plain(value: Any) -> Any:
    """Dataclasses to dicts, tuples to lists, recursively; NaN (not valid JSON) to None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def display_path(path: str | Path, root: Path | None = None) -> str:
    """How reports name a file: relative to the working directory where it lies below it (as
    code-scanning services map paths onto a repository); else relative to `root` (the folder a
    scan started from) where it lies below that; else as given if relative; else its name alone.
    A report never carries an absolute path of the machine it was made on."""
    given = Path(path)
    try:
        full = given.resolve()
        for base in (Path.cwd(), root):
            if base is not None and full.is_relative_to(base.resolve()):
                return full.relative_to(base.resolve()).as_posix()
    except OSError:
        pass
    return given.as_posix() if not given.is_absolute() and root is None else given.name
