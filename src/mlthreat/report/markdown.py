"""Markdown: the assessment as a document for reviews and pull requests."""

from __future__ import annotations

from mlthreat.report.common import (
    FAMILY_LABEL,
    fmt,
    grouped,
    lead_rows,
    lead_tail,
    path_text,
    reference_url,
)
from mlthreat.report.interface import Format
from mlthreat.results import Assessment, Finding
from mlthreat.vocabulary import Family, RiskLevel


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _refs(f: Finding) -> str:
    parts = []
    for r in f.references:
        url = reference_url(r.scheme, r.id)
        parts.append(f"[{r.id}]({url})" if url else r.id)
    return ", ".join(parts)


def _summary(a: Assessment) -> list[str]:
    counts = a.counts()
    lines = ["| family | critical | high | medium | low |", "|---|---|---|---|---|"]
    for fam in Family:
        c = counts[fam.value]
        lines.append(f"| {FAMILY_LABEL[fam]} | {c['critical']} | {c['high']} | {c['medium']} "
                     f"| {c['low']} |")
    return lines


def _findings(findings: list[tuple[Finding, bool]]) -> list[str]:
    lines = ["| risk | threat | acts at | path | likelihood × impact | missing controls | references |",
             "|---|---|---|---|---|---|---|"]
    for f, follows in findings:
        missing = ", ".join(c.control for c in f.controls_missing[:4])
        name = f"↳ same threat, also harms `{f.harm_at}`" if follows else \
            f"{_cell(f.name)} (`{f.threat_id}`)"
        lines.append(
            f"| **{f.level.value}** {fmt(f.score)} | {name} "
            f"| `{f.component}` | {path_text(f)} | {fmt(f.likelihood)} × {f.impact} "
            f"| {missing} | {_refs(f)} |")
    return lines


def _adjustments(findings: list[Finding]) -> list[str]:
    lines = []
    for f in findings:
        if not f.adjustments:
            continue
        steps = "; ".join(f"{a.delta:+g} {a.reason}" for a in f.adjustments)
        lines.append(f"- `{f.id}`: base {fmt(f.base_likelihood)} → {fmt(f.likelihood)} ({steps})")
    return lines


GAP_TITLES = {
    "blind_spot": "Blind spots", "misattributed_defense": "Misattributed defenses",
    "overconfidence": "Overconfidence", "externalised_responsibility": "Responsibility pushed away",
    "attacker_doubt": "Doubt about the attacker", "unnoticed_incidental": "Defenses run without knowing",
    "linked_concepts": "Linked concepts (observation)",
}


def _perception(a: Assessment) -> list[str]:
    out: list[str] = []
    for r in a.perception:
        who = ", ".join(x for x in (r.role, r.team) if x)
        out += [f"## Perception gaps: {r.respondent}" + (f" ({who})" if who else ""), ""]
        if not r.complete:
            out += ["*Interview not finished: gaps cover the answered components only.*", ""]
        if r.components_not_answered:
            out += [f"Not asked about: {', '.join(r.components_not_answered)}.", ""]
        if r.mappings:
            out += ["Free text mapped to the catalog:", ""]
            out += [f"- \u201c{m.text}\u201d → `{m.target}` (similarity {m.score:.2f})" if m.target
                    else f"- \u201c{m.text}\u201d → not mapped (nearest similarity {m.score:.2f})"
                    for m in r.mappings]
            out.append("")
        for kind, title in GAP_TITLES.items():
            gaps = [g for g in r.gaps if g.kind == kind]
            if gaps:
                out += [f"### {title} ({len(gaps)})", ""]
                out += [f"- **{g.level}** `{g.component}`: {g.explanation}" for g in gaps]
                out.append("")
        if not r.gaps:
            out += ["No gaps: this view matches the threat model.", ""]
    return out


def _gate(a: Assessment) -> list[str]:
    """The CI gate: what is new or worse against the baseline, and what was suppressed."""
    out: list[str] = []
    changed = [t for t in a.triage if t.state != "unchanged" or t.note]
    if a.compared_with is not None:
        out += [f"## New or worse since `{a.compared_with}` ({len(changed)})", ""]
        out += [f"- `{t.finding}`: {t.state}" + (f" ({t.note})" if t.note else "")
                for t in changed] or ["None."]
        out.append("")
    quiet = [t for t in a.triage if t.suppression is not None]
    if quiet:
        out += [f"## Suppressed findings ({len(quiet)})", "",
                "| finding | risk | how | by | why | until |", "|---|---|---|---|---|---|"]
        for t in quiet:
            s = t.suppression
            assert s is not None
            out.append(f"| `{t.finding}` | {a.finding(t.finding).level.value} | {s.kind} "
                       f"(`{s.where}`) | {_cell(s.by)} | {_cell(s.reason)} | {s.until or '-'} |")
        out.append("")
    return out


def _lead(a: Assessment) -> list[str]:
    out = ["## Act on these first", ""]
    rows = lead_rows(a)
    if rows:
        out += ["| risk | threat | family | where the attacker acts → where it harms | findings |",
                "|---|---|---|---|---|"]
        out += [f"| **{g.level.value}** {fmt(g.score)} | {_cell(g.name)} (`{g.threat_id}`)"
                f"{' · confirmed' if g.confirmed else ''} | {FAMILY_LABEL[g.family]} "
                f"| {_cell(where)} | {n} |" for g, where, n in rows]
        out.append("")
    return out + [lead_tail(a), ""]


def render(a: Assessment) -> str:
    out = [f"# Threat model: {a.pipeline_name}", ""]
    if a.pipeline_description:
        out += [a.pipeline_description, ""]
    out += [f"Spec: `{a.spec_file}` · {len(a.components)} components · {len(a.flows)} flows · "
            f"{len(a.findings)} findings · mlthreat {a.tool_version}, MITRE ATLAS "
            f"{a.catalog_atlas_version}", "", "## Summary", "", *_summary(a), "", *_lead(a)]
    if a.recommendations:
        out += ["## What to do first", "",
                "| # | control | family | where | risk removed | findings |", "|---|---|---|---|---|---|"]
        out += [f"| {r.rank} | {r.name} (`{r.control}`) | {r.family} | {', '.join(r.where)} "
                f"| {fmt(r.risk_reduction)} | {r.findings} |" for r in a.recommendations]
        out.append("")
    out += ["## Assets: both families side by side", ""]
    for g in a.asset_groups:
        link = " — **linked: both families**" if g.linked else ""
        out += [f"### {g.asset} · {g.goal} (criticality {g.criticality}, worst {g.max_level.value})"
                f"{link}", "", g.summary, ""]
        for label, ids in (("Adversarial ML", g.aml), ("Classical security", g.classical)):
            if ids:
                out.append(f"- {label}: " + ", ".join(f"`{i}`" for i in ids))
        out.append("")
    if a.integrity_paths:
        out += ["## Pipeline integrity: untrusted data into training", ""]
        for p in a.integrity_paths:
            out += [f"- **{p.verdict}** `{' → '.join(p.path)}`: {p.explanation}"]
        out.append("")
    if a.incidental_mitigations:
        out += ["## Defences you already run (incidental mitigations)", ""]
        out += [f"- **{m.name}** (`{m.control}`): {m.explanation}" for m in a.incidental_mitigations]
        out.append("")
    for fam in Family:
        rows = grouped(a, fam)
        groups = sum(not follows for _, follows in rows)
        out += [f"## {FAMILY_LABEL[fam]} findings ({len(rows)} in {groups} groups)", ""]
        out += (_findings(rows) if rows else ["None."]) + [""]
    out += _gate(a)
    out += _perception(a)
    adjusted = _adjustments(list(a.findings))
    if adjusted:
        out += ["## Why each likelihood moved", "", *adjusted, ""]
    if a.warnings:
        out += ["## Warnings", "", *[f"- {w}" for w in a.warnings], ""]
    out += ["---", f"Risk = likelihood (1-5) × impact (1-5); critical ≥ 16, high ≥ 10, "
            f"medium ≥ 5. Levels: {', '.join(lvl.value for lvl in RiskLevel)}. See docs/risk.md.", ""]
    return "\n".join(out)


FORMAT = Format("md", "md", render)
