"""Small helpers shared by the report formats; no I/O."""

from __future__ import annotations

from mlthreat.results import Assessment, Finding, FindingGroup
from mlthreat.vocabulary import Family, RiskLevel

FAMILY_LABEL = {Family.aml: "Adversarial ML", Family.classical: "Classical security"}
FAMILY_COLOR = {Family.aml: "#7c3aed", Family.classical: "#0e7490"}
LEVEL_COLOR = {
    RiskLevel.critical: "#b91c1c", RiskLevel.high: "#c2410c", RiskLevel.medium: "#a16207",
    RiskLevel.low: "#4d7c0f", RiskLevel.info: "#64748b",
}
REFERENCE_URL = {
    "atlas": "https://atlas.mitre.org/{kind}/{id}",
    "owasp_ml": "https://owasp.org/www-project-machine-learning-security-top-10/",
    "owasp_llm": "https://genai.owasp.org/llm-top-10/",
    "cwe": "https://cwe.mitre.org/data/definitions/{num}.html",
}


def fmt(value: float) -> str:
    """A score or likelihood without a useless '.0'."""
    return f"{value:.1f}".removesuffix(".0")


def by_family(assessment: Assessment, family: Family) -> list[Finding]:
    return [f for f in assessment.findings if f.family == family]


def reference_url(scheme: str, ref_id: str) -> str | None:
    pattern = REFERENCE_URL.get(scheme)
    if pattern is None:
        return None
    kind = "mitigations" if ref_id.startswith("AML.M") else "techniques"
    return pattern.format(kind=kind, id=ref_id, num=ref_id.removeprefix("CWE-"))


def path_text(finding: Finding, arrow: str = " → ") -> str:
    return arrow.join(finding.path)


def group_where(group: FindingGroup, arrow: str = " → ") -> str:
    """Where the attacker acts and where the harm lands: 'a, b → harm', or 'at a' when one
    component is both."""
    if group.components == (group.harm_at,):
        return f"at {group.harm_at}"
    return f"{', '.join(group.components)}{arrow}{group.harm_at}"


def lead_rows(a: Assessment) -> list[tuple[FindingGroup, str, int]]:
    """Per lead threat: its worst group, where it acts and lands (all its qualifying groups), and
    how many findings those groups hold."""
    rows = []
    for gs in a.lead_groups():
        at = [g.harm_at for g in gs if g.components == (g.harm_at,)]
        parts: list[str] = []
        for g in gs:                 # worst first; the groups acting where they harm as one part
            if g.components != (g.harm_at,):
                parts.append(group_where(g))
            elif g.harm_at == at[0]:
                parts.append(f"at {', '.join(at)}")
        rows.append((gs[0], "; ".join(parts), sum(len(g.findings) for g in gs)))
    return rows


def lead_tail(a: Assessment) -> str:
    """What the lead leaves out, in words."""
    total = len(a.findings)
    if not a.lead.threats:
        return (f"Nothing at high or critical risk and nothing confirmed by a measurement: "
                f"{total} findings in {len(a.groups)} groups, all below.")
    shown = total - a.lead.more_findings
    return (f"{len(a.lead.threats)} threats ({shown} of {total} findings); "
            f"{a.lead.more_findings} more findings in {a.lead.more_groups} groups below.")


def grouped(a: Assessment, family: Family) -> list[tuple[Finding, bool]]:
    """The family's findings group by group (worst group first, worst finding first within it);
    True marks a finding that follows the first of its group."""
    if not a.groups:   # an Assessment built without groups: one finding a group
        return [(f, False) for f in by_family(a, family)]
    return [(a.finding(fid), i > 0) for g in a.groups if g.family == family
            for i, fid in enumerate(g.findings)]
