"""Turning result dataclasses into plain JSON-ready values, for every JSON report."""

from __future__ import annotations

import dataclasses
import math
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
