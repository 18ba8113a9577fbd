"""Reports of `mlthreat scan`: JSON, Markdown, SARIF 2.1.0 (results at file and line, or byte
offset in binary files) and self-contained HTML. `render(report, fmt) -> str`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import PurePath
from typing import Any

from mlthreat.gate import SCAN_KEY, scan_fingerprint
from mlthreat.report.common import LEVEL_COLOR
from mlthreat.report.interface import environment
from mlthreat.report.sarif import SCHEMA_URI, sarif_gate
from mlthreat.results import Triage
from mlthreat.scanners import ScanReport
from mlthreat.scanners.interface import ScanFinding
from mlthreat.version import __version__

FORMATS = ("json", "md", "sarif", "html")
SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}


def counts(report: ScanReport) -> dict[str, int]:
    out = {lvl: 0 for lvl in ("critical", "high", "medium", "low")}
    for f in report.findings:
        out[f.severity] += 1
    return out


def _verdicts(report: ScanReport) -> list[Triage | None]:
    """The gate's verdict on each finding, in the findings' order (None without a gate)."""
    return list(report.triage) if len(report.triage) == len(report.findings) \
        else [None] * len(report.findings)


def _json(report: ScanReport) -> str:
    findings = []
    for f, t in zip(report.findings, _verdicts(report), strict=True):
        row = dataclasses.asdict(f)
        if t is not None:
            row["fingerprint"] = t.fingerprint
            row["baseline_state"] = t.state if report.compared else None
            row["suppression"] = dataclasses.asdict(t.suppression) if t.suppression else None
            row["gate_note"] = t.note or None
        findings.append(row)
    data: dict[str, Any] = {
        "tool": f"mlthreat {__version__}", "paths": report.paths, "scanners": report.scanners,
        "files": report.files, "notes": report.notes, "counts": counts(report),
        "suppressed": sum(t is not None and t.suppression is not None
                          for t in _verdicts(report)),
        "findings": findings}
    return json.dumps(data, indent=2) + "\n"


def suppressed_rows(report: ScanReport) -> list[tuple[ScanFinding, Triage]]:
    return [(f, t) for f, t in zip(report.findings, _verdicts(report), strict=True)
            if t is not None and t.suppression is not None]


def _md(report: ScanReport) -> str:
    c = counts(report)
    out = [f"# mlthreat scan: {', '.join(report.paths)}", "",
           f"{report.files} files · scanners {', '.join(report.scanners)} · "
           + " · ".join(f"{n} {lvl}" for lvl, n in c.items()), ""]
    out += [f"> {n}" for n in report.notes]
    hidden = {id(f) for f, _ in suppressed_rows(report)}
    out += ["", "| severity | where | scanner | threat | finding |", "|---|---|---|---|---|"]
    out += [f"| **{f.severity}** | `{f.where}` | {f.scanner} | `{f.threat_id}` ({f.family}) "
            f"| {f.message.replace('|', '/')} |" for f in report.findings if id(f) not in hidden]
    if len(hidden) == len(report.findings):
        out.append("| | | | | nothing found |" if not hidden else "| | | | | nothing new |")
    if hidden:
        out += ["", "## Suppressed", "", "| severity | where | rule | by | why | until |",
                "|---|---|---|---|---|---|"]
        for f, t in suppressed_rows(report):
            s = t.suppression
            assert s is not None
            out.append(f"| {f.severity} | `{f.where}` | {f.rule} | {s.by} ({s.kind}: "
                       f"{s.where}) | {s.reason.replace('|', '/')} | {s.until or '-'} |")
    return "\n".join(out) + "\n"


def _uri(path: str) -> str:
    p = PurePath(path)
    return p.as_uri() if p.is_absolute() else p.as_posix()


def _sarif_result(f: ScanFinding, index: int, verdict: Triage | None, compared: bool
                  ) -> dict[str, Any]:
    region: dict[str, Any] = {}
    if f.line is not None:
        region["startLine"] = f.line
    elif f.offset is not None:
        region["byteOffset"] = f.offset
    location: dict[str, Any] = {"artifactLocation": {"uri": _uri(f.file)}}
    if region:
        location["region"] = region
    result: dict[str, Any] = {
        "ruleId": f.rule, "ruleIndex": index, "level": SARIF_LEVEL[f.severity],
        "message": {"text": f.message + (f" [{f.member}]" if f.member else "")},
        "locations": [{"physicalLocation": location}],
        "partialFingerprints": {SCAN_KEY: verdict.fingerprint if verdict
                                else scan_fingerprint(f)},
        "properties": {"family": f.family, "threat": f.threat_id, "severity": f.severity,
                       "scanner": f.scanner, "member": f.member},
    }
    result.update(sarif_gate(verdict, compared))
    return result


def _sarif(report: ScanReport) -> str:
    rules: dict[str, dict[str, Any]] = {}
    for f in report.findings:
        rule = rules.setdefault(f.rule, {
            "id": f.rule, "shortDescription": {"text": f"{f.scanner}: {f.rule}"},
            "properties": {"tags": ["security", f"family:{f.family}", f.threat_id],
                           "security-severity": SECURITY_SEVERITY[f.severity]}})
        if float(SECURITY_SEVERITY[f.severity]) > float(rule["properties"]["security-severity"]):
            rule["properties"]["security-severity"] = SECURITY_SEVERITY[f.severity]
    index = {rid: i for i, rid in enumerate(rules)}
    log = {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "mlthreat", "version": __version__,
                            "semanticVersion": __version__, "rules": list(rules.values())}},
        "results": [_sarif_result(f, index[f.rule], t, report.compared)
                    for f, t in zip(report.findings, _verdicts(report), strict=True)],
        "properties": {"notes": report.notes, "files": report.files}}]}
    return json.dumps(log, indent=2) + "\n"


def _html(report: ScanReport) -> str:
    suppressed = suppressed_rows(report)
    hidden = {id(f) for f, _ in suppressed}
    return environment().get_template("scan.html.j2").render(
        r=report, counts=counts(report), shown=[f for f in report.findings if id(f) not in hidden],
        suppressed=suppressed, level_color={k.value: v for k, v in LEVEL_COLOR.items()})


def render(report: ScanReport, fmt: str) -> str:
    return {"json": _json, "md": _md, "sarif": _sarif, "html": _html}[fmt](report)
