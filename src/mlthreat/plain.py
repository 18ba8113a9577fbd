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


def display_path(path: str | Path) -> str:
    """How reports name a file the user gave: relative to the working directory where it lies
    below it, as given where it is relative, else its name alone, so that a report carries no
    absolute path of the machine it was made on."""
    given = Path(path)
    try:
        return given.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (OSError, ValueError):
        return given.as_posix() if not given.is_absolute() else given.name
