"""Reports for the team view (`mlthreat team`) and the research mode (`mlthreat codes`):
JSON, Markdown and one self-contained HTML file with heatmaps; `render(view, fmt) -> str`."""

from __future__ import annotations

import json
import math

from mlthreat.perception.codes import CodesReport
from mlthreat.perception.team import TeamView
from mlthreat.plain import to_plain
from mlthreat.report.interface import environment

FORMATS = ("json", "md", "html")


def k(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def shade(value: float | None, low: float = -1.0, high: float = 1.0) -> str:
    """Background colour for a heatmap cell: red (low) to green (high), grey when undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "#e2e8f0"
    t = max(0.0, min(1.0, (value - low) / (high - low))) if high > low else 1.0
    r, g = int(220 - 150 * t), int(80 + 120 * t)
    # 45 % white: the dark text on it keeps a contrast of 4.5:1 or more (WCAG AA)
    r, g, b = (int(0.55 * c + 0.45 * 255) for c in (r, g, 90))
    return f"rgb({r},{g},{b})"


def heat(value: int, top: int) -> str:
    if not value:
        return "#f1f5f9"
    t = value / max(top, 1)
    return f"rgba(124,58,237,{0.1 + 0.45 * t:.2f})"   # at most 0.55: dark text stays 4.5:1


environment().filters.update(k=k, shade=shade)
environment().globals.update(heat=heat)


def render_team(view: TeamView, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(to_plain(view), indent=2) + "\n"
    if fmt == "html":
        pairs = {(p.a, p.b): p.kappa for p in view.pairs}
        pairs.update({(p.b, p.a): p.kappa for p in view.pairs})
        top = max((max(r) for r in view.cooccurrence if r), default=0)
        return environment().get_template("team.html.j2").render(v=view, pairs=pairs, top=top)
    return _team_md(view)


def _team_md(v: TeamView) -> str:
    out = [f"# Team view: {len(v.respondents)} respondents", "",
           f"Fleiss' kappa: {k(v.fleiss_kappa)} over {v.fleiss_items} items every respondent "
           f"rated · Krippendorff's alpha (nominal): {k(v.krippendorff_alpha)} over "
           f"{len(v.items)} threat × component items", "", "## Pairwise Cohen's kappa", "",
           "| a | b | kappa | items |", "|---|---|---|---|"]
    out += [f"| {p.a} | {p.b} | {k(p.kappa)} | {p.items} |" for p in v.pairs]
    out += ["", "## Each respondent against mlthreat (findings at medium or above)", "",
            "| respondent | kappa | items |", "|---|---|---|"]
    out += [f"| {p.a} | {k(p.kappa)} | {p.items} |" for p in v.model_agreement]
    out += ["", "## Where the team disagrees most", "",
            "| component | threat | mlthreat | sees it | does not |", "|---|---|---|---|---|"]
    out += [f"| {d.component} | {d.threat} | {d.level or '—'} | {', '.join(d.yes)} "
            f"| {', '.join(d.no)} |" for d in v.disagreements]
    out += ["", "## Adversarial-ML × classical concepts named by the same respondent", ""]
    if v.aml_concepts and v.classical_concepts:
        out += ["| | " + " | ".join(v.classical_concepts) + " |",
                "|---" * (len(v.classical_concepts) + 1) + "|"]
        out += [f"| {a} | " + " | ".join(str(n) for n in row) + " |"
                for a, row in zip(v.aml_concepts, v.cooccurrence, strict=True)]
    else:
        out.append("No respondent named concepts of both families.")
    return "\n".join(out) + "\n"


def render_codes(report: CodesReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(to_plain(report), indent=2) + "\n"
    if fmt == "html":
        top = max((max(r) for r in report.cooccurrence if r), default=0)
        ftop = max((max(r) for r in report.frequency if r), default=0)
        return environment().get_template("codes.html.j2").render(
            r=report, top=top, ftop=ftop, views=VIEWS, scopes=SCOPES)
    return _codes_md(report)


VIEWS = {"consensus": "the consensus coding",
         "majority": "a code counts where most coders who read the segment applied it",
         "single": "the one coder's coding"}
SCOPES = {"all": "every segment counts for every coder (a segment left without a code is 'not "
                 "coded')",
          "seen": "only segments a coder has a row for count for that coder"}


def _codes_md(r: CodesReport) -> str:
    coders = [c.coder for c in r.by_coder]
    out = [f"# Coded interviews: {r.source}", "",
           f"{len(r.participants)} participants · {r.segments} segments · {len(r.codes)} codes · "
           f"coders: {', '.join(r.coders)}"
           f"{f' · consensus coding: {r.consensus}' if r.consensus else ''} · co-occurrence counted per "
           f"{r.unit}", "", "## Codes", "",
           f"Headline: {VIEWS[r.view]}; then each coder's own participants (segments).", "",
           "| code | participants | segments | " + " | ".join(coders) + " |",
           "|---" * (3 + len(coders)) + "|"]
    for i, (c, n, row) in enumerate(zip(r.codes, r.participants_per_code, r.frequency,
                                         strict=True)):
        own = [f"{cc.participants_per_code[i]} ({sum(cc.frequency[i])})" for cc in r.by_coder]
        out.append(f"| {c} | {n} | {sum(row)} | " + " | ".join(own) + " |")
    if r.overall:
        out += ["", "## Coder agreement", "", f"Scope: {SCOPES[r.scope]}.", "",
                "| coders | code | Cohen's kappa | segments |", "|---|---|---|---|"]
        out += [f"| {' / '.join(a.coders)} | all codes | {k(a.kappa)} | {a.segments} |"
                for a in r.overall]
        out += [f"| {' / '.join(a.coders)} | {a.code} | {k(a.kappa)} | {a.segments} |"
                for a in r.agreement]
        out += ["", f"Krippendorff's alpha over all coders: {k(r.alpha)}"]
    if r.fleiss:
        out += ["", "## Fleiss' kappa (all coders)", "", "| code | Fleiss' kappa | segments |",
                "|---|---|---|"]
        out += [f"| {f.code} | {k(f.kappa)} | {f.segments} |" for f in r.fleiss]
    out += ["", f"## Co-occurrence (per {r.unit}; diagonal: {r.unit}s with the code)", "",
            "| | " + " | ".join(r.codes) + " |", "|---" * (len(r.codes) + 1) + "|"]
    out += [f"| {c} | " + " | ".join(str(n) for n in row) + " |"
            for c, row in zip(r.codes, r.cooccurrence, strict=True)]
    return "\n".join(out) + "\n"
