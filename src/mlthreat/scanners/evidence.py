"""Scanner results as evidence for the threat model: the artifacts a spec names are scanned, and
each scanner finding becomes Evidence for the same threat at the same component (reach
"component"), with its file named relative to the spec's folder.

Rule (docs/risk.md): a scanner finding of high or critical severity confirms the threat at that
component and raises its likelihood by one step; lower ones are attached without changing it.
Clean scans are evidence too: code in which the secrets scanner read every file and found nothing
clears "secrets in code" there (lowered, no control recommended against it); a model file or a CI
workflow that scans clean is recorded without changing the likelihood (a replaced file, an
insider with write access, are not ruled out by a scan).
"""

from __future__ import annotations

from pathlib import Path

from mlthreat.pipeline import Pipeline
from mlthreat.results import Evidence, Location
from mlthreat.scanners import SCANNERS, scan_paths, scan_targets
from mlthreat.scanners.interface import ScanFinding

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


def relative(file: str, root: Path) -> str:
    """`file` relative to `root` where it lies below it (as reports show it), else as given."""
    path, base = Path(file).resolve(), root.resolve()
    return path.relative_to(base).as_posix() if path.is_relative_to(base) else file


def as_evidence(f: ScanFinding, component: str, root: Path) -> Evidence:
    """One scanner finding as evidence for its threat at `component`."""
    where = Location(relative(f.file, root), f.line, f.offset, f.member)
    shown = f"{where.file}" + (f":{f.line}" if f.line is not None else "") + \
        (f" [{f.member}]" if f.member else "") + \
        (f" @byte {f.offset}" if f.offset is not None else "")
    return Evidence(source=f"scanner:{f.scanner}", threat_ids=(f.threat_id,), metric=f.rule,
                    value=None, interval=None, confirmed=f.severity in CONFIRMING,
                    summary=f"{f.message} ({shown})", component=component,
                    artifact=where.file, title=f.rule, reach="component", severity=f.severity,
                    location=where)


def scan_evidence(pipeline: Pipeline) -> tuple[list[Evidence], list[str]]:
    """Evidence from scanning each component's artifacts, and notes on what was not scanned."""
    evidence: list[Evidence] = []
    notes: list[str] = []
    root = pipeline.base_dir
    for comp in pipeline.spec.components:
        arts = comp.artifacts
        models, missing_m = _local(pipeline, arts.model)
        code, missing_c = _local(pipeline, arts.code)
        notes += [f"{comp.id}: artifact {m} not found, not scanned" for m in missing_m + missing_c]
        if models:
            report = scan_paths(models, ["modelfile"])
            evidence += [as_evidence(f, comp.id, root) for f in report.findings]
            if not report.findings:
                evidence.append(Evidence(
                    source="scanner:modelfile", threat_ids=("cls-unsafe-deserialization",),
                    metric="files_scanned", value=float(report.files), interval=None,
                    confirmed=False, component=comp.id, reach="component", severity="info",
                    artifact=", ".join(sorted(relative(str(m), root) for m in models)),
                    summary=f"{report.files} model file(s) scanned: nothing beyond what real "
                            "models need"))
        if code:
            found = scan_paths(code, CODE_SCANNERS).findings
            evidence += [as_evidence(f, comp.id, root) for f in found]
            evidence += _clean(code, found, comp.id, root)
    return evidence, notes


CODE_SCANNERS = ["secrets", "serving", "dependencies", "workflows"]
# what a clean run of a scanner over a component's code says: (threat, whether it clears it)
CLEAN_MEANS = {"secrets": ("cls-secrets-in-code", True),
               "workflows": ("cls-cicd-tampering", False)}


def _clean(code: list[Path], found: list[ScanFinding], component: str, root: Path
           ) -> list[Evidence]:
    """Evidence that a scanner read the component's files for a threat and found nothing."""
    out = []
    for name, (threat, clears) in CLEAN_MEANS.items():
        if any(f.scanner == name for f in found):
            continue
        files = sorted({relative(str(path), root) for _, path, hidden, _ in scan_targets(code)
                        if not hidden and SCANNERS[name].applies_to(path)})
        if not files:
            continue
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        out.append(Evidence(
            source=f"scanner:{name}", threat_ids=(threat,), metric="files_scanned",
            value=float(len(files)), interval=None, confirmed=False, component=component,
            reach="component", severity="info", artifact=shown, clears=clears,
            summary=f"{len(files)} file(s) scanned by {name}, nothing found ({shown})"))
    return out
