"""Every result type of mlthreat, frozen and without logic: Evidence (from probes and scanners
alike, with typed curves), Skipped, Finding, Gap and the Assessment that holds them. Every report
renders an Assessment; each piece of evidence is stored once on it and findings and gaps refer to
it by id.

``to_dict`` gives the canonical JSON form, described by docs/assessment.schema.json (version in
SCHEMA_VERSION); change both together.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from mlthreat.plain import to_plain
from mlthreat.vocabulary import Family, RiskLevel

SCHEMA_VERSION = "2.3"


@dataclass(frozen=True, slots=True)
class Curve:
    """A measured series to draw, y against x, with its interval band where one was measured.
    Report formats draw it knowing nothing of the probe that measured it."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    x_label: str
    y_label: str
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None
    log_x: bool = False
    log_y: bool = False
    x_range: tuple[float, float] | None = None     # None: from the data
    y_range: tuple[float, float] = (0.0, 1.0)
    diagonal: bool = False                         # draw y = x (chance, for ROC curves)


@dataclass(frozen=True, slots=True)
class Location:
    """Where in a file a scanner saw something: a line for text, a byte offset (and an archive
    member or nested stream) for binary files. `file` is relative to the scanned root."""

    file: str
    line: int | None = None
    offset: int | None = None
    member: str = ""


@dataclass(frozen=True)
class Evidence:
    """One measurement, from a probe (an attack run on the real model) or a scanner (a static
    check of an artifact): what, how much, how sure, at what cost, on which artifact.

    `reach` says which findings it speaks to: "component", the findings of its threats placed at
    the component whose artifact was scanned; "path", every finding of its threats whose attack
    path passes through the probed component (for threats that act through training, also
    through a training step the probed model comes from)."""

    source: str                       # "probe:<name>" or "scanner:<name>"
    threat_ids: tuple[str, ...]
    metric: str
    value: float | None
    interval: tuple[float, float] | None
    confirmed: bool                   # the attack works / the check found a real problem
    summary: str
    component: str = ""               # where it was measured
    artifact: str = ""                # the model file (relative to the spec) or endpoint URL
    id: str = ""                      # unique within one Assessment; set by the Assessor
    title: str = ""                   # e.g. "backdoor", shown as the measurement's heading
    reach: Literal["component", "path"] = "path"
    severity: str | None = None       # scanners: low | medium | high | critical | info
    location: Location | None = None  # scanners
    budget: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    queries: int = 0
    series: dict[str, list[float]] = field(default_factory=dict)   # raw measured numbers
    curves: tuple[Curve, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)            # further metrics
    # a scanner read every file of the component where this threat would show and found
    # nothing: lowers the finding's likelihood, and no control is recommended against it
    clears: bool = False

    @property
    def kind(self) -> str:
        """The probe or scanner name, without its family prefix."""
        return self.source.partition(":")[2]


@dataclass(frozen=True, slots=True)
class Skipped:
    """A probe or scanner that did not run on a component, and why: a result, not an error."""

    source: str
    component: str
    reason: str


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
    scheme: str   # atlas | owasp_ml | owasp_llm | cwe | nist
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
    evidence: tuple[str, ...] = ()     # ids of Assessment.evidence


@dataclass(frozen=True, slots=True)
class FindingGroup:
    """Findings of one threat whose attack paths end at the same component (analysis.grouping)."""

    id: str                       # "<threat id>><harm component>"
    threat_id: str
    name: str
    family: Family
    harm_at: str
    findings: tuple[str, ...]     # finding ids, highest risk first
    components: tuple[str, ...]   # where the attacker acts, in the same order
    score: float                  # the highest of its findings
    level: RiskLevel
    confirmed: bool               # evidence confirmed one of its findings


@dataclass(frozen=True, slots=True)
class Lead:
    """The few threats a reader must act on first, and how much is left below them."""

    threats: tuple[tuple[str, ...], ...]   # per threat, in the order to act on them: the ids
    #                                        of its FindingGroups that qualify, worst first
    more_groups: int
    more_findings: int


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
    evidence: tuple[str, ...] = ()     # ids of Assessment.evidence


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


@dataclass(frozen=True, slots=True)
class Suppression:
    """Why a finding does not fail the gate: accepted in a baseline file, or by a comment at
    the place it points to (`# mlthreat: ignore[rule] reason`)."""

    kind: str                 # baseline | inline
    by: str                   # who accepted it (inline: the line's git author, if known)
    reason: str
    where: str                # the baseline file, or file:line of the comment
    until: str | None = None  # ISO date after which it fails again (baselines)


@dataclass(frozen=True, slots=True)
class Triage:
    """What the gate made of one finding (`finding`: a Finding's id, or a scan finding's
    fingerprint): new, unchanged or updated (worse) against the baseline, and suppressed or
    not. `note` says why it is worse, or that an acceptance expired."""

    finding: str
    fingerprint: str
    state: str                # new | unchanged | updated   (SARIF baselineState)
    suppression: Suppression | None = None
    note: str = ""


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
    evidence: tuple[Evidence, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    triage: tuple[Triage, ...] = ()     # the CI gate's verdicts (docs/ci.md), if it ran
    compared_with: str | None = None    # the baseline or git ref the states are against
    groups: tuple[FindingGroup, ...] = ()   # findings of one threat reaching one component
    lead: Lead = Lead((), 0, 0)
    schema_version: str = SCHEMA_VERSION
    _index: dict[str, Finding] = field(default_factory=dict, init=False, compare=False, repr=False)
    _evidence: dict[str, Evidence] = field(default_factory=dict, init=False, compare=False,
                                           repr=False)
    _groups: dict[str, FindingGroup] = field(default_factory=dict, init=False, compare=False,
                                             repr=False)

    def __post_init__(self) -> None:
        self._index.update({f.id: f for f in self.findings})
        self._evidence.update({e.id: e for e in self.evidence})
        self._groups.update({g.id: g for g in self.groups})

    def finding(self, finding_id: str) -> Finding:
        return self._index[finding_id]

    def group(self, group_id: str) -> FindingGroup:
        return self._groups[group_id]

    def lead_groups(self) -> list[list[FindingGroup]]:
        """Per lead threat, its groups that qualify, worst first."""
        return [[self._groups[i] for i in ids] for ids in self.lead.threats]

    def evidence_of(self, item: Finding | Gap) -> list[Evidence]:
        """The evidence a finding or gap refers to, in the order it names it."""
        return [self._evidence[i] for i in item.evidence]

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
