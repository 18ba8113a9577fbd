"""What every report format is: a name (what `-f` takes), the extension of the file it writes,
and `render(assessment) -> str`, which does no I/O (the command line decides where text goes).
The HTML formats share one Jinja environment (`environment()`), loaded once."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlthreat.results import Assessment

if TYPE_CHECKING:
    from jinja2 import Environment


@dataclass(frozen=True)
class Format:
    name: str
    extension: str
    render: Callable[[Assessment], str]


@functools.cache
def environment() -> Environment:
    """The one Jinja environment of every template (autoescaped HTML, trimmed blocks)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    from mlthreat.report.common import fmt
    env = Environment(loader=PackageLoader("mlthreat.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["fmt"] = fmt
    return env
