"""Regulation views of an Assessment (`mlthreat model --view eu-ai-act|nist-ai-rmf`): per clause,
which of its threats apply to this pipeline, what was measured and with what result, which
controls are in place, and what is missing. In Markdown, JSON and self-contained HTML.

A view is evidence for an auditor or for technical documentation, in the words of the clause; it
is not a conformity assessment, and every rendering says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mlthreat.catalog import Catalog, load_catalog
from mlthreat.catalog.views import Mapped, View, load_view
from mlthreat.report.common import LEVEL_COLOR
from mlthreat.report.interface import environment
from mlthreat.results import Assessment, Evidence, Finding, Suppression
from mlthreat.vocabulary import RISK_ORDER, RiskLevel

FORMATS = ("md", "json", "html")
NOTE = ("What mlthreat placed, measured and found for each clause of this pipeline: evidence for "
        "the technical documentation and an auditor's questions, not a conformity assessment or "
        "legal advice. A clause is only as covered as the pipeline spec is complete.")
HIGH = RISK_ORDER.index(RiskLevel.high)


@dataclass(frozen=True)
class ControlRow:
    control: str
    name: str
    components: tuple[str, ...]
    incidental: bool = False


@dataclass(frozen=True)
class ClauseResult:
    mapped: Mapped
    findings: tuple[Finding, ...]                 # of this pipeline, worst first
    accepted: dict[str, Suppression]              # finding id -> its acceptance
    measured: tuple[Evidence, ...]                # probes' measurements of those findings
    scanned: tuple[Evidence, ...]                 # scanners' evidence of those findings
    in_place: tuple[ControlRow, ...]
    missing: tuple[ControlRow, ...]               # controls that would lower these findings
    unmeasured: tuple[tuple[str, tuple[str, ...]], ...]   # (finding id, what could measure it)
    not_placed: tuple[str, ...]                   # threats of the clause nowhere here

    @property
    def measured_findings(self) -> int:
        """Findings that a probe or scanner can measure and did."""
        return sum(bool(f.measured_by) for f in self.findings) - len(self.unmeasured)

    @property
    def worst(self) -> RiskLevel | None:
        return self.findings[0].level if self.findings else None

    @property
    def open_high(self) -> tuple[Finding, ...]:
        """Findings at high or above that nobody has accepted."""
        return tuple(f for f in self.findings if RISK_ORDER.index(f.level) >= HIGH
                     and f.id not in self.accepted)

    @property
    def status(self) -> str:
        if not self.findings:
            return "none of its threats applies to this pipeline"
        if self.open_high:
            return f"{len(self.open_high)} at high or above, not accepted"
        return "no finding at high or above left open"


def evaluate(assessment: Assessment, view: View, catalog: Catalog) -> list[ClauseResult]:
    accepted = {t.finding: t.suppression for t in assessment.triage if t.suppression}
    out = []
    for mapped in view.rows:
        wanted = set(mapped.threats)
        findings = sorted((f for f in assessment.findings if f.threat_id in wanted),
                          key=lambda f: (-RISK_ORDER.index(f.level), -f.score, f.id))
        evidence = _unique(e for f in findings for e in assessment.evidence_of(f))
        measured = tuple(e for e in evidence if e.source.startswith("probe:"))
        unmeasured = tuple((f.id, f.measured_by) for f in findings if f.measured_by and not any(
            e.source in f.measured_by for e in assessment.evidence_of(f)))
        out.append(ClauseResult(
            mapped, tuple(findings), {f.id: accepted[f.id] for f in findings if f.id in accepted},
            measured, tuple(e for e in evidence if e.source.startswith("scanner:")),
            _controls(catalog, (u for f in findings for u in f.controls_present)),
            _controls(catalog, (u for f in findings for u in f.controls_missing)),
            unmeasured,
            tuple(t for t in mapped.threats if not any(f.threat_id == t for f in findings))))
    return out


def _unique(evidence: Iterable[Evidence]) -> tuple[Evidence, ...]:
    seen: dict[str, Evidence] = {}
    for e in evidence:
        seen.setdefault(e.id, e)
    return tuple(seen.values())


def _controls(catalog: Catalog, uses: Iterable[Any]) -> tuple[ControlRow, ...]:
    where: dict[str, set[str]] = {}
    incidental: dict[str, bool] = {}
    for u in uses:
        where.setdefault(u.control, set()).update(u.components)
        incidental[u.control] = incidental.get(u.control, True) and u.incidental
    rows = []
    for cid in sorted(where):
        control = catalog.control(cid)
        rows.append(ControlRow(cid, control.name if control else cid, tuple(sorted(where[cid])),
                               incidental[cid]))
    return tuple(rows)


# ---------------------------------------------------------------------------------- formats
def render(assessment: Assessment, name: str, fmt_name: str) -> str:
    catalog = load_catalog()
    view = load_view(name, catalog)
    results = evaluate(assessment, view, catalog)
    if fmt_name == "json":
        return json.dumps(_data(assessment, view, results, catalog), indent=2) + "\n"
    if fmt_name == "md":
        return _md(assessment, view, results, catalog)
    if fmt_name == "html":
        return environment().get_template("view.html.j2").render(
            a=assessment, view=view, results=results, note=NOTE, catalog=catalog,
            level_color={lvl.value: c for lvl, c in LEVEL_COLOR.items()},
            nist=_nist_class)
    raise ValueError(f"no {fmt_name} rendering of a view; formats: {', '.join(FORMATS)}")


def _nist_class(catalog: Catalog, threat_id: str) -> str:
    return catalog.threat(threat_id).references.nist or ""


def _data(a: Assessment, view: View, results: list[ClauseResult], catalog: Catalog
          ) -> dict[str, Any]:
    fw = view.framework
    return {
        "view": fw.id, "framework": fw.title, "source": fw.source, "applies_to": fw.applies_to,
        "note": NOTE, "pipeline": a.pipeline_name, "spec": a.spec_file,
        "tool_version": a.tool_version, "compared_with": a.compared_with,
        "clauses": [{
            "clause": r.mapped.clause.id, "ref": r.mapped.clause.ref,
            "title": r.mapped.clause.title, "why": r.mapped.why, "status": r.status,
            "threats": list(r.mapped.threats), "not_placed": list(r.not_placed),
            "worst_level": r.worst.value if r.worst else None,
            "findings": [{
                "id": f.id, "threat": f.threat_id, "component": f.component,
                "level": f.level.value, "score": f.score,
                "nist_ai_100_2": _nist_class(catalog, f.threat_id) or None,
                "accepted": _accepted(r.accepted.get(f.id))} for f in r.findings],
            "measured": [{
                "evidence": e.id, "source": e.source, "component": e.component,
                "metric": e.metric, "value": e.value,
                "interval": list(e.interval) if e.interval else None,
                "confirmed": e.confirmed, "summary": e.summary} for e in r.measured],
            "scanned": [{"evidence": e.id, "source": e.source, "severity": e.severity,
                         "summary": e.summary} for e in r.scanned],
            "controls_in_place": [{"control": c.control, "name": c.name,
                                   "components": list(c.components),
                                   "incidental": c.incidental} for c in r.in_place],
            "missing": {
                "controls": [{"control": c.control, "name": c.name,
                              "components": list(c.components)} for c in r.missing],
                "not_measured": [{"finding": fid, "probes": list(p)}
                                 for fid, p in r.unmeasured]},
        } for r in results]}


def _accepted(s: Suppression | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {"by": s.by, "reason": s.reason, "until": s.until, "where": s.where}


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def _md(a: Assessment, view: View, results: list[ClauseResult], catalog: Catalog) -> str:
    fw = view.framework
    out = [f"# {fw.title}: {a.pipeline_name}", "",
           f"Source: {fw.source}. Applies to: {fw.applies_to}.", "", f"> {NOTE}", "",
           "| clause | status | findings | worst | measured (findings) | controls in place | "
           "missing controls |", "|---|---|---|---|---|---|---|"]
    for r in results:
        out.append(f"| {r.mapped.clause.ref} | {r.status} | {len(r.findings)} | "
                   f"{r.worst.value if r.worst else '-'} | "
                   f"{r.measured_findings}/{r.measured_findings + len(r.unmeasured)} | "
                   f"{len(r.in_place)} | {len(r.missing)} |")
    for r in results:
        c = r.mapped.clause
        out += ["", f"## {c.ref}", "", f"*{c.title}.* Mapped because: {r.mapped.why}.", "",
                f"**Status:** {r.status}."]
        if r.findings:
            out += ["", "| level | threat | at | NIST AI 100-2 | accepted |", "|---|---|---|---|---|"]
            for f in r.findings:
                s = r.accepted.get(f.id)
                out.append(f"| {f.level.value} | {f.threat_id} | {f.component} | "
                           f"{_nist_class(catalog, f.threat_id) or '-'} | "
                           + (_cell(f"by {s.by}: {s.reason}") if s else "-") + " |")
        if r.measured:
            out += ["", "**Measured on the real model:**", ""]
            out += [f"- {e.component}: {_cell(e.summary)}" for e in r.measured]
        if r.scanned:
            out += ["", f"**Scanner evidence:** {len(r.scanned)} findings of "
                    + ", ".join(sorted({e.source.removeprefix('scanner:') for e in r.scanned}))]
        if r.in_place:
            out += ["", "**Controls in place:** " + "; ".join(
                f"{x.name} ({', '.join(x.components) or 'pipeline-wide'}"
                + (", incidental" if x.incidental else "") + ")" for x in r.in_place)]
        if r.missing:
            out += ["", "**Missing controls** (they would lower these findings): "
                    + "; ".join(x.name for x in r.missing)]
        if r.unmeasured:
            tools = sorted({p for _, ps in r.unmeasured for p in ps})
            out += ["", f"**Not measured:** {len(r.unmeasured)} findings that a probe or scanner "
                    f"could measure ({', '.join(tools)}; `mlthreat assess` with the model, data "
                    "and code the spec names): " + ", ".join(fid for fid, _ in r.unmeasured)]
        if r.not_placed:
            out += ["", "Not placed on this pipeline: " + ", ".join(r.not_placed) + "."]
    return "\n".join(out) + "\n"


__all__ = ["FORMATS", "ClauseResult", "evaluate", "render"]
