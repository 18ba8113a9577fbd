"""Report formats, one module each, all rendering the same Assessment (`interface.Format`).

FORMATS is the one registry from format names (what `-f` takes) to formats; the CLI and the
tests use it.
"""

from __future__ import annotations

from mlthreat.report import html, json_report, markdown, sarif
from mlthreat.report.interface import Format

FORMATS: dict[str, Format] = {f.name: f for f in (
    json_report.FORMAT, markdown.FORMAT, sarif.FORMAT, html.FORMAT)}

__all__ = ["FORMATS", "Format"]
