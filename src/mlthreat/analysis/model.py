"""The results of an assessment, as frozen dataclasses. Every report renders an Assessment.

``to_dict`` gives the canonical JSON form, described by docs/assessment.schema.json (version in
SCHEMA_VERSION); change both together.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mlthreat.plain import to_plain
from mlthreat.vocabulary import Family, RiskLevel

SCHEMA_VERSION = "1.1"


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One reason the likelihood moved away from the catalog's base value."""

    delta: float
    reason: str
    control: str | None = None
    component: str | None = None


@dataclass(frozen=True, slots=True)
class ControlUse:
    control: str
    strength: str
    family: str
    incidental: bool
    components: tuple[str, ...] = ()  # where it sits; empty for pipeline-wide or missing


@dataclass(frozen=True, slots=True)
class Reference:
    scheme: str   # atlas | owasp_ml | cwe | nist
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Finding:
    id: str
    threat_id: str
    name: str
    family: Family
    goal: str
    asset: str
    attacker: str
    component: str            # where the attacker acts
    entry: str                # where the attacker comes in
    path: tuple[str, ...]     # entry ... component ... where harm lands
    harm_at: str
    base_likelihood: float
    likelihood: float
    adjustments: tuple[Adjustment, ...]
    base_impact: int
    impact: int
    impact_reason: str
    score: float
    level: RiskLevel
    controls_present: tuple[ControlUse, ...]
    controls_missing: tuple[ControlUse, ...]
    references: tuple[Reference, ...]
    description: str
    recommendation: str
    measured_by: tuple[str, ...]
    spec_line: int
    spec_column: int
    evidence: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class AssetGroup:
    """Findings of both families that aim at the same asset and security goal."""

    asset: str
    goal: str
    criticality: str
    aml: tuple[str, ...]          # finding ids
    classical: tuple[str, ...]
    max_level: RiskLevel
    summary: str

    @property
    def linked(self) -> bool:
        return bool(self.aml) and bool(self.classical)


@dataclass(frozen=True, slots=True)
class IntegrityPath:
    """A route from untrusted data into training, with the gates and watchers on it."""

    entry: str
    training: str
    path: tuple[str, ...]
    gates: tuple[ControlUse, ...]
    monitored_by: tuple[ControlUse, ...]
    verdict: str              # open | ungated | unwatched | guarded
    explanation: str


@dataclass(frozen=True, slots=True)
class IncidentalMitigation:
    control: str
    name: str
    family: str
    components: tuple[str, ...]
    helps_against: tuple[str, ...]   # threat ids with findings it lowers
    explanation: str


@dataclass(frozen=True, slots=True)
class Recommendation:
    rank: int
    control: str
    name: str
    family: str
    where: tuple[str, ...]
    risk_reduction: float
    findings: int
    threats: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Gap:
    """A difference between what one person believes and what mlthreat finds."""

    kind: str                 # see perception/gaps.py: GAP_KINDS
    respondent: str
    component: str            # component id, or "*" for the whole pipeline
    threat_id: str | None
    control: str | None
    level: str                # risk level of the finding concerned, or "info"
    explanation: str
    evidence: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class TextMapping:
    text: str
    target: str | None
    score: float
    how: str


@dataclass(frozen=True, slots=True)
class PerceptionReport:
    respondent: str
    role: str | None
    team: str | None
    file: str
    complete: bool
    components_answered: tuple[str, ...]
    components_not_answered: tuple[str, ...]
    mappings: tuple[TextMapping, ...]
    gaps: tuple[Gap, ...]

    def count(self, kind: str) -> int:
        return sum(g.kind == kind for g in self.gaps)


@dataclass(frozen=True, slots=True)
class ComponentInfo:
    id: str
    name: str
    kind: str
    exposure: str
    owner: str | None
    controls: tuple[str, ...]
    personal_data: bool
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class FlowInfo:
    source: str
    target: str
    data: str | None
    line: int


@dataclass(frozen=True)
class Assessment:
    pipeline_name: str
    pipeline_description: str | None
    spec_file: str
    components: tuple[ComponentInfo, ...]
    flows: tuple[FlowInfo, ...]
    pipeline_controls: tuple[str, ...]
    findings: tuple[Finding, ...]
    asset_groups: tuple[AssetGroup, ...]
    integrity_paths: tuple[IntegrityPath, ...]
    incidental_mitigations: tuple[IncidentalMitigation, ...]
    recommendations: tuple[Recommendation, ...]
    catalog_atlas_version: str
    tool_version: str
    warnings: tuple[str, ...] = ()
    perception: tuple[PerceptionReport, ...] = ()
    schema_version: str = SCHEMA_VERSION
    _index: dict[str, Finding] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({f.id: f for f in self.findings})

    def finding(self, finding_id: str) -> Finding:
        return self._index[finding_id]

    def counts(self) -> dict[str, dict[str, int]]:
        """Findings per family and risk level."""
        out = {fam.value: {lvl.value: 0 for lvl in RiskLevel} for fam in Family}
        for f in self.findings:
            out[f.family.value][f.level.value] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        data = {k.name: to_plain(getattr(self, k.name)) for k in dataclasses.fields(self)
                if not k.name.startswith("_")}
        data["counts"] = self.counts()
        for group, raw in zip(data["asset_groups"], self.asset_groups, strict=True):
            group["linked"] = raw.linked
        return data
