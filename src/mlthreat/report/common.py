"""Small helpers shared by the report formats; no I/O."""

from __future__ import annotations

from mlthreat.results import Assessment, Finding
from mlthreat.vocabulary import Family, RiskLevel

FAMILY_LABEL = {Family.aml: "Adversarial ML", Family.classical: "Classical security"}
FAMILY_COLOR = {Family.aml: "#7c3aed", Family.classical: "#0e7490"}
LEVEL_COLOR = {
    RiskLevel.critical: "#b91c1c", RiskLevel.high: "#ea580c", RiskLevel.medium: "#ca8a04",
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
