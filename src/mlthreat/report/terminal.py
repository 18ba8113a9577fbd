"""The terminal summary: rich renderables built from an Assessment; the CLI prints them."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mlthreat.analysis.model import Assessment, Finding
from mlthreat.report.common import FAMILY_COLOR, FAMILY_LABEL, LEVEL_COLOR, by_family, fmt
from mlthreat.report.markdown import GAP_TITLES
from mlthreat.vocabulary import RISK_ORDER, Family, RiskLevel

TOP = 8


def _level(level: RiskLevel) -> Text:
    return Text(f" {level.value} ", style=f"bold white on {LEVEL_COLOR[level]}")


def _counts(a: Assessment) -> Table:
    table = Table(title="Findings by family and risk", title_justify="left", box=None)
    table.add_column("family")
    levels = list(reversed(RISK_ORDER[1:]))
    for lvl in levels:
        table.add_column(lvl.value, justify="right")
    counts = a.counts()
    for fam in Family:
        table.add_row(Text(FAMILY_LABEL[fam], style=f"bold {FAMILY_COLOR[fam]}"),
                      *(str(counts[fam.value][lvl.value]) for lvl in levels))
    return table


def _top(findings: list[Finding], fam: Family) -> Table:
    table = Table(title=f"{FAMILY_LABEL[fam]}: top findings", title_justify="left",
                  title_style=f"bold {FAMILY_COLOR[fam]}", show_lines=False, expand=True)
    table.add_column("risk", no_wrap=True)
    table.add_column("threat", ratio=3)
    table.add_column("attack path", ratio=4)
    for f in findings[:TOP]:
        table.add_row(Group(_level(f.level), Text(fmt(f.score), style="dim")),
                      Text(f.name), Text(" → ".join(f.path), style="cyan"))
    if len(findings) > TOP:
        table.caption = f"… and {len(findings) - TOP} more in the reports"
    return table


def summary(a: Assessment) -> list[RenderableType]:
    """What a person should see first, in order."""
    out: list[RenderableType] = [Panel.fit(
        f"[bold]{a.pipeline_name}[/]: {len(a.components)} components, {len(a.flows)} flows, "
        f"{len(a.findings)} findings", title="mlthreat threat model", border_style="blue"),
        _counts(a)]
    for fam in Family:
        findings = by_family(a, fam)
        if findings:
            out.append(_top(findings, fam))
    linked = [g for g in a.asset_groups if g.linked]
    if linked:
        out.append(Text("Assets attacked by both families", style="bold"))
        out += [Text(f"  • {g.summary}") for g in linked[:5]]
    bad = [p for p in a.integrity_paths if p.verdict != "guarded"]
    if bad:
        out.append(Text("Pipeline integrity", style="bold"))
        out += [Text(f"  • [{p.verdict}] {' → '.join(p.path)}: {p.explanation}") for p in bad]
    if a.incidental_mitigations:
        names = ", ".join(m.control for m in a.incidental_mitigations)
        out.append(Text(f"Defences you already run without counting them: {names}", style="green"))
    for r in a.perception:
        counts = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind in GAP_TITLES
                           if (n := r.count(kind)))
        out.append(Text(f"Perception of {r.respondent}: {counts or 'no gaps'}", style="bold"))
        shown = [g for g in r.gaps if g.kind != "blind_spot"][:4]
        out += [Text(f"  • [{g.kind.replace('_', ' ')}] {g.explanation}") for g in shown]
    if a.recommendations:
        out.append(Text("What to do first", style="bold"))
        out += [Text(f"  {r.rank}. {r.name} ({r.family}) at {', '.join(r.where[:4])}"
                     f"{' …' if len(r.where) > 4 else ''}: removes {fmt(r.risk_reduction)} risk "
                     f"points across {r.findings} findings") for r in a.recommendations[:5]]
    return out
