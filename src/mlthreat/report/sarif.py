"""SARIF 2.1.0 for code-scanning tools: one rule per catalog threat, one result per finding,
each pointing at the spec line of the component where the attacker acts."""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

from mlthreat.gate import FINDING_KEY, finding_fingerprint, measurements
from mlthreat.report.common import FAMILY_LABEL, fmt, path_text, reference_url
from mlthreat.report.interface import Format
from mlthreat.results import Assessment, Evidence, Finding, Triage
from mlthreat.vocabulary import RiskLevel

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVEL = {RiskLevel.critical: "error", RiskLevel.high: "error", RiskLevel.medium: "warning",
         RiskLevel.low: "note", RiskLevel.info: "none"}


def _reference_line(scheme: str, ref_id: str, name: str) -> str:
    url = reference_url(scheme, ref_id)
    return f"- {scheme} {ref_id}: {name}" + (f" <{url}>" if url else "")


def _rule(finding: Finding, worst: float) -> dict[str, Any]:
    refs = "\n".join(_reference_line(r.scheme, r.id, r.name) for r in finding.references)
    tags = ["security", f"family:{finding.family.value}", f"asset:{finding.asset}",
            *(r.id for r in finding.references if r.scheme != "nist")]
    return {
        "id": finding.threat_id,
        "name": "".join(w.capitalize() for w in finding.threat_id.split("-")),
        "shortDescription": {"text": finding.name},
        "fullDescription": {"text": finding.description},
        "help": {"text": f"{finding.recommendation}\n\nReferences:\n{refs}",
                 "markdown": f"{finding.recommendation}\n\n**References**\n\n{refs}"},
        "properties": {"tags": tags, "family": finding.family.value,
                       "security-severity": f"{worst / 2.5:.1f}"},
    }


def sarif_gate(verdict: Triage | None, compared: bool) -> dict[str, Any]:
    """A result's baselineState (when a baseline or earlier run was compared) and its
    suppression (SARIF 2.1.0 §3.27.23-24; code scanning hides suppressed results)."""
    out: dict[str, Any] = {}
    if verdict is None:
        return out
    if compared:
        out["baselineState"] = verdict.state
    s = verdict.suppression
    if s is not None:
        out["suppressions"] = [{
            "kind": "external" if s.kind == "baseline" else "inSource", "status": "accepted",
            "justification": f"{s.reason} (by {s.by}"
                             + (f", until {s.until}" if s.until else "") + f"; {s.where})",
            "properties": {"by": s.by, "until": s.until, "where": s.where}}]
    return out


def _result(finding: Finding, index: int, uri: str, evidence: list[Evidence],
            verdict: Triage | None, compared: bool, leads: frozenset[str] = frozenset()
            ) -> dict[str, Any]:
    group = f"{finding.threat_id}>{finding.harm_at}"
    measured = [e.summary for e in evidence if e.summary]
    message = (f"[{FAMILY_LABEL[finding.family]}] {finding.name} at '{finding.component}' "
               f"(risk {finding.level.value}, score {fmt(finding.score)}). "
               f"Path: {path_text(finding, ' -> ')}.")
    missing = [c.control for c in finding.controls_missing]
    if missing:
        message += f" Missing controls: {', '.join(missing)}."
    if measured:
        message += f" Measured: {'; '.join(measured)}."
    return {
        "ruleId": finding.threat_id,
        "ruleIndex": index,
        "level": LEVEL[finding.level],
        "message": {"text": message},
        "locations": [{
            "physicalLocation": {
                "artifactLocation": {"uri": uri},
                "region": {"startLine": finding.spec_line, "startColumn": finding.spec_column},
            },
            "logicalLocations": [{"name": finding.component, "kind": "module"}],
        }],
        "partialFingerprints": {FINDING_KEY: finding_fingerprint(finding)},
        "properties": {
            "family": finding.family.value, "asset": finding.asset, "goal": finding.goal,
            "risk": finding.level.value, "score": finding.score,
            "likelihood": finding.likelihood, "impact": finding.impact,
            "path": list(finding.path), "controlsMissing": missing,
            "measured": measurements(evidence),      # what the gate compares with
            "group": group, "lead": group in leads,  # docs/risk.md, groups and the lead
        },
        **sarif_gate(verdict, compared),
    }


def _uri(spec_file: str) -> str:
    path = PurePath(spec_file)
    return path.as_uri() if path.is_absolute() else path.as_posix()


def render(assessment: Assessment) -> str:
    rule_index: dict[str, int] = {}
    worst: dict[str, float] = {}
    first: dict[str, Finding] = {}
    for f in assessment.findings:
        worst[f.threat_id] = max(worst.get(f.threat_id, 0.0), f.score)
        first.setdefault(f.threat_id, f)
    rules: list[dict[str, Any]] = []
    for threat_id in sorted(first):
        rule_index[threat_id] = len(rules)
        rules.append(_rule(first[threat_id], worst[threat_id]))
    uri = _uri(assessment.spec_file)
    verdicts = {t.finding: t for t in assessment.triage}
    compared = assessment.compared_with is not None
    leads = frozenset(i for ids in assessment.lead.threats for i in ids)
    log = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "mlthreat", "version": assessment.tool_version,
                "semanticVersion": assessment.tool_version,
                "rules": rules}},
            "artifacts": [{"location": {"uri": uri}, "roles": ["analysisTarget"]}],
            "results": [_result(f, rule_index[f.threat_id], uri, assessment.evidence_of(f),
                                 verdicts.get(f.id), compared, leads)
                         for f in assessment.findings],
            "properties": {"pipeline": assessment.pipeline_name},
        }],
    }
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


FORMAT = Format("sarif", "sarif", render)
