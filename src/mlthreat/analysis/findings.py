"""Turns one threat placed at one component into a Finding: its path, the controls on it, and
its likelihood, impact and risk with every adjustment explained."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

from mlthreat.analysis.paths import HarmTracer
from mlthreat.analysis.risk import (
    CLEAN_SCAN_STEP,
    CONTROL_STEP,
    EVIDENCE_STEP,
    NETWORK_EXPOSURE_STEP,
    PARTNER_ONLY_STEP,
    clamp_likelihood,
    impact_for,
    level_for,
    score_for,
)
from mlthreat.catalog import Catalog, Control, Threat
from mlthreat.catalog.loader import REFERENCE_SCHEMES, in_words
from mlthreat.pipeline import Component, Pipeline
from mlthreat.pipeline.graph import PipelineGraph
from mlthreat.results import Adjustment, ControlUse, Evidence, Finding, Reference
from mlthreat.vocabulary import Attacker, Criticality, Exposure, Strength

PIPELINE_WIDE = "(pipeline-wide)"


@dataclass(frozen=True, slots=True)
class Mitigation:
    control: Control
    strength: Strength
    step: float
    missing: ControlUse   # the record used wherever this control is absent


@dataclass(frozen=True, slots=True)
class Placement:
    """One threat placed at one component, with its attack path (entry ... harm)."""

    threat: Threat
    component: Component
    path: tuple[str, ...]


@dataclass(frozen=True)
class Context:
    """What every finding of one assessment shares."""

    pipeline: Pipeline
    catalog: Catalog
    graph: PipelineGraph
    tracer: HarmTracer
    _refs: dict[str, tuple[Reference, ...]] = field(default_factory=dict)
    _mitigations: dict[str, tuple[Mitigation, ...]] = field(default_factory=dict)
    _impacts: dict[str, tuple[int, str]] = field(default_factory=dict)

    @functools.cached_property
    def exposure(self) -> dict[str, Exposure]:
        return {c.id: c.exposure for c in self.pipeline.spec.components}

    def impact(self, threat: Threat) -> tuple[int, str]:
        """The threat's impact given its asset's declared criticality, and why: one per threat."""
        if threat.id not in self._impacts:
            criticality = _criticality(self.pipeline, threat.asset)
            self._impacts[threat.id] = (
                impact_for(threat.impact, criticality),
                f"asset '{threat.asset.value}' has criticality {criticality.value}")
        return self._impacts[threat.id]

    def mitigations(self, threat: Threat) -> tuple[Mitigation, ...]:
        """The threat's mitigating controls, resolved once per assessment."""
        if threat.id not in self._mitigations:
            # Strongest first, so that every listing of missing controls leads with the best fix.
            self._mitigations[threat.id] = tuple(sorted(
                (Mitigation(c, s, CONTROL_STEP[s], ControlUse(c.id, s, c.family, c.incidental, ()))
                 for c, s in self.catalog.mitigations(threat.id)),
                key=lambda m: (m.step, m.control.id)))
        return self._mitigations[threat.id]

    def references(self, threat: Threat) -> tuple[Reference, ...]:
        """The threat's references with their names; the same for every placement."""
        if threat.id not in self._refs:
            self._refs[threat.id] = _references(threat, self.catalog)
        return self._refs[threat.id]

    def words(self, text: str) -> str:
        """A catalog text in the spec's words: {about} and {decides} from its `domain`."""
        domain = self.pipeline.spec.domain
        return in_words(text, domain.about, domain.decides)

    def observers(self, nodes: list[str]) -> list[str]:
        """Monitoring components with a flow to or from any of `nodes`: they watch the path."""
        seen, out = set(nodes), []
        for n in nodes:
            for m in self.graph.monitors.get(n, ()):
                if m not in seen:
                    seen.add(m)
                    out.append(m)
        return out


def build_finding(placement: Placement, ctx: Context, evidence: Sequence[Evidence]) -> Finding:
    """The finding of one placement, scored with the evidence attributed to it."""
    threat, comp, path = placement.threat, placement.component, list(placement.path)
    approach = path[: path.index(comp.id) + 1]
    present, missing, adjustments = _controls(threat, approach, path, ctx)
    adjustments = _exposure_adjustments(threat, comp, approach, ctx) + adjustments
    confirmed = [e for e in evidence if e.confirmed]
    if confirmed:
        adjustments.append(Adjustment(EVIDENCE_STEP, f"measured: {confirmed[0].summary}"
                                      + (f" (+{len(confirmed) - 1} more)" if len(confirmed) > 1
                                         else ""), component=comp.id))
    clean = [e for e in evidence if e.clears]
    if clean and not [e for e in evidence if e.source.startswith("scanner:") and not e.clears
                      and e.severity != "info"]:
        adjustments.append(Adjustment(CLEAN_SCAN_STEP, f"scanned clean: {clean[0].summary}",
                                      component=comp.id))
    likelihood = clamp_likelihood(threat.likelihood + sum(a.delta for a in adjustments))
    goal = threat.goal_if_personal_data if (comp.personal_data and threat.goal_if_personal_data) \
        else threat.goal
    impact, impact_reason = ctx.impact(threat)
    score = score_for(likelihood, impact)
    line, column = ctx.pipeline.component_positions[comp.id]
    return Finding(
        id=f"{threat.id}@{comp.id}", threat_id=threat.id, name=threat.name, family=threat.family,
        goal=goal.value, asset=threat.asset.value, attacker=threat.attacker.value,
        component=comp.id, entry=path[0], path=tuple(path), harm_at=path[-1],
        base_likelihood=float(threat.likelihood), likelihood=likelihood,
        adjustments=tuple(adjustments), base_impact=threat.impact, impact=impact,
        impact_reason=impact_reason,
        score=score, level=level_for(score), controls_present=tuple(present),
        controls_missing=tuple(missing), references=ctx.references(threat),
        description=ctx.words(threat.description), recommendation=ctx.words(threat.recommendation),
        measured_by=threat.measured_by, spec_line=line, spec_column=column,
        evidence=tuple(e.id for e in evidence),
    )


def _criticality(pipeline: Pipeline, asset: object) -> Criticality:
    info = pipeline.spec.assets.get(asset)  # type: ignore[call-overload]
    return info.criticality if info else Criticality.medium


def _controls(threat: Threat, approach: list[str], path: list[str], ctx: Context
              ) -> tuple[list[ControlUse], list[ControlUse], list[Adjustment]]:
    on_approach = _controls_on(approach, ctx)
    on_path = _controls_on(path + ctx.observers(path), ctx)
    present, missing, adjustments = [], [], []
    for m in ctx.mitigations(threat):
        scope = on_approach if m.control.scope == "approach" else on_path
        if m.control.id in ctx.pipeline.pipeline_controls:
            where = [PIPELINE_WIDE]
        else:
            where = scope.get(m.control.id, [])
        if not where:
            if not any(c in scope or c in ctx.pipeline.pipeline_controls
                       for c in m.control.covered_by):
                missing.append(m.missing)
            continue
        present.append(ControlUse(m.control.id, m.strength, m.control.family, m.control.incidental,
                                  tuple(where)))
        adjustments.append(Adjustment(m.step, f"{m.control.name} ({m.strength}) on {', '.join(where)}",
                                      control=m.control.id, component=where[0]))
    return present, missing, adjustments


def _controls_on(nodes: list[str], ctx: Context) -> dict[str, list[str]]:
    """Control id -> the nodes (in path order) that have it."""
    out: dict[str, list[str]] = {}
    for n in nodes:
        for cid in ctx.pipeline.controls[n]:
            out.setdefault(cid, []).append(n)
    return out


def _exposure_adjustments(threat: Threat, comp: Component, approach: list[str], ctx: Context
                          ) -> list[Adjustment]:
    if threat.attacker == Attacker.network:
        step = NETWORK_EXPOSURE_STEP[comp.exposure]
        if step:
            return [Adjustment(step, f"{comp.id} is {comp.exposure.value}-facing",
                               component=comp.id)]
    partner_only = all(ctx.exposure[n] != Exposure.public for n in approach)
    if threat.attacker == Attacker.external and partner_only:
        return [Adjustment(PARTNER_ONLY_STEP,
                           f"reachable only through a partner-facing component ({approach[0]})",
                           component=approach[0])]
    return []


def _references(threat: Threat, catalog: Catalog) -> tuple[Reference, ...]:
    refs = [Reference(scheme, rid, catalog.reference_name(scheme, rid))
            for scheme in REFERENCE_SCHEMES for rid in getattr(threat.references, scheme)]
    if threat.references.nist:
        nist = threat.references.nist
        refs.append(Reference("nist", nist, catalog.reference_name("nist", nist)))
    return tuple(refs)
