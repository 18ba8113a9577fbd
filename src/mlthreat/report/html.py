"""HTML: one self-contained file that opens offline (inline CSS, inline SVG, no external loads).

Draws the pipeline with findings marked per component in the two family colours, a component x
threat heatmap, the asset view, what the probes measured (with charts), attack paths, integrity
paths and what to do first.
"""

from __future__ import annotations

from collections import defaultdict
from importlib import resources
from typing import Any

from mlthreat.report.charts import svg
from mlthreat.report.common import (
    FAMILY_COLOR,
    FAMILY_LABEL,
    LEVEL_COLOR,
    grouped,
    lead_rows,
    lead_tail,
    reference_url,
)
from mlthreat.report.interface import Format, environment
from mlthreat.report.layout import STAGE
from mlthreat.report.markdown import GAP_TITLES
from mlthreat.results import Assessment, Finding
from mlthreat.vocabulary import RISK_ORDER, Family, Kind

MAX_DRAWN = 400   # components; beyond this the diagram and heatmap would not be readable


def _worst(findings: list[Finding]) -> str | None:
    if not findings:
        return None
    return max((f.level for f in findings), key=RISK_ORDER.index).value


def _diagram(a: Assessment) -> dict[str, Any] | None:
    """The graph the shared renderer (static/diagram.js, also the board's) lays out and draws:
    components in pipeline order (data first), so a flow against that order is feedback."""
    if len(a.components) > MAX_DRAWN:
        return None
    per: dict[str, dict[Family, list[Finding]]] = defaultdict(lambda: defaultdict(list))
    for f in a.findings:
        per[f.component][f.family].append(f)
    order = sorted(range(len(a.components)), key=lambda i: (STAGE[Kind(a.components[i].kind)], i))
    nodes = []
    for c in (a.components[i] for i in order):
        fams = per[c.id]
        nodes.append({
            "id": c.id, "label": c.name or c.id, "sub": c.kind.replace("_", " "),
            "public": c.exposure in ("public", "partner"),
            "title": f"{c.name or c.id} ({c.kind}, {c.exposure}): {len(fams[Family.aml])} "
                     f"adversarial-ML, {len(fams[Family.classical])} classical findings",
            "aml": len(fams[Family.aml]), "classical": len(fams[Family.classical]),
            "amlWorst": _worst(fams[Family.aml]), "classicalWorst": _worst(fams[Family.classical]),
            "evidence": sum(e.component == c.id for e in a.evidence),
            "confirmed": sum(e.component == c.id and e.confirmed for e in a.evidence),
        })
    return {"nodes": nodes, "edges": [{"source": f.source, "target": f.target} for f in a.flows]}


def _script(name: str) -> str:
    """A file of the shared renderer, to inline: the report stays one file that works offline."""
    text = resources.files("mlthreat.report").joinpath(f"static/{name}").read_text("utf-8")
    return text.replace("</script", "<\\/script")


def _heatmap(a: Assessment) -> dict[str, Any] | None:
    if len(a.components) > MAX_DRAWN or not a.findings:
        return None
    threats: dict[str, Finding] = {}
    for f in sorted(a.findings, key=lambda f: (f.family.value, f.threat_id)):
        threats.setdefault(f.threat_id, f)
    cells = {(f.component, f.threat_id): f for f in a.findings}
    rows = [c for c in a.components if any((c.id, t) in cells for t in threats)]
    return {"threats": list(threats.values()), "rows": rows, "cells": cells}


def _measurements(a: Assessment) -> list[dict[str, Any]]:
    """Each probe's evidence once, with its charts and the threats of the findings it reaches."""
    reached: dict[str, list[str]] = defaultdict(list)
    for f in a.findings:
        for i in f.evidence:
            if f.threat_id not in reached[i]:
                reached[i].append(f.threat_id)
    shown = [{"component": e.component, "probe": e.title or e.kind, "item": e,
              "charts": [svg(c) for c in e.curves], "threats": reached[e.id]}
             for e in a.evidence if e.source.startswith("probe:")]
    return sorted(shown, key=lambda m: (m["component"], m["probe"]))


def render(a: Assessment) -> str:
    template = environment().get_template("report.html.j2")
    return template.render(
        a=a, counts=a.counts(), families=list(Family), family_label=FAMILY_LABEL,
        family_color=FAMILY_COLOR, level_color={k.value: v for k, v in LEVEL_COLOR.items()},
        levels=[lvl.value for lvl in reversed(RISK_ORDER[1:])],
        diagram=_diagram(a), heatmap=_heatmap(a),
        diagram_js=_script("diagram.js"), elk_js=_script("vendor/elk.bundled.js"),
        findings_by_family={fam: grouped(a, fam) for fam in Family},
        lead=lead_rows(a), lead_tail=lead_tail(a),
        reference_url=reference_url, max_drawn=MAX_DRAWN, gap_titles=GAP_TITLES,
        measurements=_measurements(a),
    )


FORMAT = Format("html", "html", render)
