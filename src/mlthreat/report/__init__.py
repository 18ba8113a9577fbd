"""Report formats, one module each, all rendering the same Assessment with `render(a) -> str`.

FORMATS is the one registry from format names to modules; the CLI and the tests use it.
"""

from __future__ import annotations

from types import ModuleType

from mlthreat.report import html, json_report, markdown, sarif

FORMATS: dict[str, ModuleType] = {
    "json": json_report,
    "md": markdown,
    "sarif": sarif,
    "html": html,
}

__all__ = ["FORMATS"]
