"""Scanner results as evidence for the threat model: the artifacts a spec names are scanned, and
each scanner finding is attached to the finding of the same threat at the same component.

Rule (docs/risk.md): a scanner finding of high or critical severity confirms the threat at that
component and raises its likelihood by one step; lower ones are attached without changing it. A
model file that scans clean is recorded as evidence too, without changing the likelihood: the
format can still carry code if someone replaces the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlthreat.pipeline import Pipeline
from mlthreat.scanners import scan_paths
from mlthreat.scanners.interface import ScanFinding

Evidence = dict[tuple[str, str], list[dict[str, Any]]]   # (threat id, component) -> items
CONFIRMING = ("high", "critical")


def _local(pipeline: Pipeline, paths: list[str]) -> tuple[list[Path], list[str]]:
    """Existing local files among `paths` (relative to the spec), and the ones not found."""
    found: list[Path] = []
    missing: list[str] = []
    for p in paths:
        if "://" in p:
            continue
        path = (pipeline.base_dir / p).resolve()
        if path.exists():
            found.append(path)
        else:
            missing.append(p)
    return found, missing


def _item(f: ScanFinding) -> dict[str, Any]:
    where = f.where
    return {"source": f"scanner:{f.scanner}", "rule": f.rule, "severity": f.severity,
            "file": f.file, "line": f.line, "offset": f.offset, "member": f.member,
            "succeeded": f.severity in CONFIRMING, "summary": f"{f.message} ({where})"}


def scan_evidence(pipeline: Pipeline) -> tuple[Evidence, list[str]]:
    """Evidence per (threat, component), and notes on what could not be scanned."""
    evidence: Evidence = {}
    notes: list[str] = []
    for comp in pipeline.spec.components:
        arts = comp.artifacts
        models, missing_m = _local(pipeline, arts.model)
        code, missing_c = _local(pipeline, arts.code)
        notes += [f"{comp.id}: artifact {m} not found, not scanned" for m in missing_m + missing_c]
        report = scan_paths(models, ["modelfile"]) if models else None
        if report is not None:
            for f in report.findings:
                evidence.setdefault((f.threat_id, comp.id), []).append(_item(f))
            if not report.findings:
                evidence.setdefault(("cls-unsafe-deserialization", comp.id), []).append({
                    "source": "scanner:modelfile", "severity": "info", "succeeded": False,
                    "summary": f"{report.files} model file(s) scanned: nothing beyond what "
                               "real models need"})
        if code:
            for f in scan_paths(code, ["secrets", "serving", "dependencies"]).findings:
                evidence.setdefault((f.threat_id, comp.id), []).append(_item(f))
    return evidence, notes
