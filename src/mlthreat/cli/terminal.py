"""The terminal summary: rich renderables built from an Assessment; the CLI prints them."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mlthreat.perception.codes import CodesReport
from mlthreat.perception.team import TeamView
from mlthreat.report.common import FAMILY_COLOR, FAMILY_LABEL, LEVEL_COLOR, fmt, lead_rows, lead_tail
from mlthreat.report.markdown import GAP_TITLES
from mlthreat.results import Assessment
from mlthreat.scanners import ScanReport
from mlthreat.scanners.interface import ScanFinding
from mlthreat.vocabulary import RISK_ORDER, Family, RiskLevel


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


def _lead(a: Assessment) -> RenderableType:
    """The few threats to act on first (analysis.grouping), and what is left below."""
    rows = lead_rows(a)
    if not rows:
        return Text(lead_tail(a).replace("below", "in the reports"), style="bold green")
    table = Table(title="Act on these first", title_justify="left", title_style="bold",
                  expand=True, caption=lead_tail(a).replace("below", "in the reports"),
                  caption_justify="left")
    table.add_column("risk", no_wrap=True)
    table.add_column("threat", ratio=3)
    table.add_column("where the attacker acts → where it harms", ratio=4)
    for g, where, n in rows:
        name = Text(g.name, style=f"bold {FAMILY_COLOR[g.family]}")
        name.append(f"\n{FAMILY_LABEL[g.family]}" + (" · confirmed" if g.confirmed else "")
                    + (f" · {n} findings" if n > 1 else ""), style="dim")
        table.add_row(Group(_level(g.level), Text(fmt(g.score), style="dim")), name,
                      Text(where, style="cyan"))
    return table


def _gate_line(a: Assessment) -> list[RenderableType]:
    """What the CI gate made of the findings, when it compared or suppressed anything."""
    quiet = [t for t in a.triage if t.suppression is not None]
    if not quiet and a.compared_with is None:
        return []
    states = {s: sum(t.state == s for t in a.triage) for s in ("new", "updated", "unchanged")}
    against = f" against {a.compared_with}: " + ", ".join(f"{n} {s}" for s, n in states.items()) \
        if a.compared_with else ""
    return [Text(f"Gate{against}; {len(quiet)} suppressed "
                 f"({sum(t.suppression.kind == 'baseline' for t in quiet if t.suppression)} "
                 "accepted in the baseline, "
                 f"{sum(t.suppression.kind == 'inline' for t in quiet if t.suppression)} by "
                 "inline comments; each listed with who and why in the reports)", style="dim")]


def summary(a: Assessment) -> list[RenderableType]:
    """What a person should see first, in order."""
    out: list[RenderableType] = [Panel.fit(
        f"[bold]{a.pipeline_name}[/]: {len(a.components)} components, {len(a.flows)} flows, "
        f"{len(a.findings)} findings", title="mlthreat threat model", border_style="blue"),
        _counts(a)]
    out += _gate_line(a)
    out.append(_lead(a))
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


def _k(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def team_summary(v: TeamView) -> list[RenderableType]:
    table = Table(title="Agreement (Cohen's kappa)", title_justify="left")
    for col in ("respondent", "respondent", "kappa", "items"):
        table.add_column(col)
    for p in v.pairs:
        table.add_row(p.a, p.b, _k(p.kappa), str(p.items))
    for p in v.model_agreement:
        table.add_row(p.a, Text("mlthreat", style="dim"), _k(p.kappa), str(p.items))
    out: list[RenderableType] = [
        Panel.fit(f"{len(v.respondents)} respondents · Fleiss' kappa {_k(v.fleiss_kappa)} "
                  f"({v.fleiss_items} items rated by all) · Krippendorff's alpha "
                  f"{_k(v.krippendorff_alpha)}", title="team view", border_style="blue"),
        table, Text("Where the team disagrees most", style="bold")]
    out += [Text(f"  • {d.threat} at {d.component}: {', '.join(d.yes)} see it, "
                 f"{', '.join(d.no)} do not (mlthreat: {d.level or 'not a finding'})")
            for d in v.disagreements[:8]]
    linked = [(a, c, n) for a, row in zip(v.aml_concepts, v.cooccurrence, strict=True)
              for c, n in zip(v.classical_concepts, row, strict=True) if n]
    if linked:
        linked.sort(key=lambda x: (-x[2], x[0], x[1]))
        out.append(Text("Concepts named together (respondents)", style="bold"))
        out += [Text(f"  • {a} + {c}: {n}") for a, c, n in linked[:8]]
    return out


def codes_summary(r: CodesReport) -> list[RenderableType]:
    out: list[RenderableType] = [Panel.fit(
        f"{r.source}: {len(r.participants)} participants, {r.segments} segments, "
        f"{len(r.codes)} codes, coders {', '.join(r.coders)}"
        f"{f' (consensus coding: {r.consensus})' if r.consensus else ''}", title="coded interviews",
        border_style="blue")]
    from mlthreat.report.research import SCOPES, VIEWS
    table = Table(title=f"Codes (headline: {VIEWS[r.view]}; then each coder: participants "
                        "(segments))", title_justify="left")
    for col in ("code", "participants", "segments", *(c.coder for c in r.by_coder)):
        table.add_column(col)
    for i, (code, n, row) in enumerate(zip(r.codes, r.participants_per_code, r.frequency,
                                           strict=True)):
        table.add_row(code, str(n), str(sum(row)),
                      *(f"{c.participants_per_code[i]} ({sum(c.frequency[i])})"
                        for c in r.by_coder))
    out.append(table)
    for a in r.overall:
        out.append(Text(f"Coder agreement {' / '.join(a.coders)}: Cohen's kappa {_k(a.kappa)} "
                        f"over {a.segments} segments; Krippendorff's alpha {_k(r.alpha)}"))
    if r.overall:
        out.append(Text(f"  scope: {SCOPES[r.scope]} (--scope)", style="dim"))
    for f in r.fleiss:
        out.append(Text(f"Fleiss' kappa, {f.code}: {_k(f.kappa)} over {f.segments} segments"))
    pairs = [(a, b, r.cooccurrence[i][j]) for i, a in enumerate(r.codes)
             for j, b in enumerate(r.codes) if j > i and r.cooccurrence[i][j]]
    pairs.sort(key=lambda x: (-x[2], x[0], x[1]))
    out.append(Text(f"Codes together (per {r.unit})", style="bold"))
    out += [Text(f"  • {a} + {b}: {n}") for a, b, n in pairs[:10]]
    return out


def scan_summary(r: ScanReport, width: int = 120) -> list[RenderableType]:
    """The counts and the findings the gate did not suppress (those are counted), worst first,
    one entry per rule and message with every place it occurs. A table where it fits the
    terminal (`width` columns); else a list, so that no file:line is cut."""
    sev = {"critical": 0, "high": 0, "medium": 0, "low": 0}
    quiet = {t.fingerprint for t in r.triage if t.suppression is not None}
    states = {t.fingerprint: t.state for t in r.triage}
    shown = [(f, t.fingerprint) for f, t in zip(r.findings, r.triage, strict=True)
             if t.fingerprint not in quiet] if r.triage else [(f, "") for f in r.findings]
    for f, _ in shown:
        sev[f.severity] += 1
    out: list[RenderableType] = [Panel.fit(
        f"{r.files} files scanned ({', '.join(r.scanners)}): "
        + ", ".join(f"{n} {k}" for k, n in sev.items())
        + (f"; {len(quiet)} suppressed" if quiet else ""), title="mlthreat scan",
        border_style="blue")]
    groups = _scan_groups(shown, states if r.compared else {})
    if groups:
        longest = max(len(places[0]) for _, places in groups)
        out.append(_scan_table(groups) if longest + 2 <= width * 3 // 11 - 3
                   else _scan_list(groups))
    out += [Text(n, style="yellow") for n in r.notes]
    return out


def _scan_groups(shown: list[tuple[ScanFinding, str]], states: dict[str, str]
                 ) -> list[tuple[ScanFinding, list[str]]]:
    """(finding, its places) per rule and message, worst first; a place new since the
    comparison is marked."""
    order = sorted(shown, key=lambda p: (-RISK_ORDER.index(RiskLevel(p[0].severity)),
                                         p[0].rule, p[0].file, p[0].line or 0))
    groups: dict[tuple[str, str, str], tuple[ScanFinding, list[str]]] = {}
    for f, fp in order:
        mark = " (new)" if states.get(fp) == "new" else ""
        groups.setdefault((f.severity, f.rule, f.message), (f, []))[1].append(f.where + mark)
    return list(groups.values())


def _scan_table(groups: list[tuple[ScanFinding, list[str]]]) -> Table:
    table = Table(expand=True)
    for col, ratio in (("severity", 1), ("where", 3), ("rule", 2), ("finding", 5)):
        table.add_column(col, ratio=ratio)
    for f, places in groups[:40]:
        more = f"\n(+{len(places) - 1} more: {', '.join(places[1:4])}" \
            + (", …" if len(places) > 4 else "") + ")" if len(places) > 1 else ""
        table.add_row(_level(RiskLevel(f.severity)), Text(places[0] + more, style="cyan"),
                      Text(f"{f.rule}\n{f.threat_id}"), Text(f.message))
    if len(groups) > 40:
        table.caption = f"… and {len(groups) - 40} more in the reports"
    return table


def _scan_list(groups: list[tuple[ScanFinding, list[str]]]) -> Group:
    lines: list[RenderableType] = []
    for f, places in groups[:40]:
        lines.append(Text.assemble(_level(RiskLevel(f.severity)), " ", (f.rule, "bold"),
                                   f" ({f.threat_id})"))
        for place in places[:5]:
            lines.append(Text(f"    {place}", style="cyan", no_wrap=True, overflow="ignore"))
        if len(places) > 5:
            lines.append(Text(f"    … and {len(places) - 5} more places"))
        lines.append(Padding(Text(f.message), (0, 0, 0, 4)))
    if len(groups) > 40:
        lines.append(Text(f"… and {len(groups) - 40} more in the reports"))
    return Group(*lines)


def view_table(a: Assessment, name: str) -> RenderableType:
    """A regulation view in the terminal: one row per clause (the reports have the detail)."""
    from mlthreat.catalog import load_catalog
    from mlthreat.catalog.views import load_view
    from mlthreat.report.regulation import NOTE, evaluate
    catalog = load_catalog()
    view = load_view(name, catalog)
    table = Table(title=f"{view.framework.title}: {a.pipeline_name}", caption=NOTE
                  + " Columns: findings placed, the worst level, open = at high or above and "
                  "not accepted, findings measured / that a probe or scanner could measure, "
                  "controls in place, controls missing; -f html|md|json has each clause in "
                  "full.", caption_justify="left")
    table.add_column("clause", no_wrap=True)
    for head in ("found", "worst", "open", "measured", "controls", "missing"):
        table.add_column(head, no_wrap=True)
    for r in evaluate(a, view, catalog):
        table.add_row(r.mapped.clause.short, str(len(r.findings)),
                      _level(r.worst) if r.worst else Text("-"),
                      Text(str(len(r.open_high)), style="bold red" if r.open_high else "green"),
                      f"{r.measured_findings}/{r.measured_findings + len(r.unmeasured)}",
                      str(len(r.in_place)), str(len(r.missing)))
    return table
