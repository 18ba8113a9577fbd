"""JSON: the canonical form of an Assessment (schema: docs/assessment.schema.json)."""

from __future__ import annotations

import json

from mlthreat.report.interface import Format
from mlthreat.results import Assessment


def render(assessment: Assessment) -> str:
    return json.dumps(assessment.to_dict(), indent=2, ensure_ascii=False) + "\n"


FORMAT = Format("json", "json", render)
