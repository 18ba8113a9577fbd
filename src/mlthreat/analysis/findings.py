"""Turns one threat placed at one component into a Finding: its path, the controls on it, and
its likelihood, impact and risk with every adjustment explained."""

from __future__ import annotations

from dataclasses import dataclass

from mlthreat.analysis.model import Adjustment, ControlUse, Finding, Reference
from mlthreat.analysis.paths import HarmTracer
from mlthreat.analysis.risk import (
    CONTROL_STEP,
    NETWORK_EXPOSURE_STEP,
    PARTNER_ONLY_STEP,
    clamp_likelihood,
    impact_for,
    level_for,
    score_for,
)
from mlthreat.catalog import Catalog, Control, Threat
from mlthreat.pipeline import Component, Pipeline
from mlthreat.pipeline.graph import PipelineGraph
from mlthreat.vocabulary import Attacker, Criticality, Exposure, Kind

PIPELINE_WIDE = "(pipeline-wide)"


@dataclass(frozen=True)
class Context:
    """What every finding of one assessment shares."""

    pipeline: Pipeline
    catalog: Catalog
    graph: PipelineGraph
    tracer: HarmTracer

    def observers(self, nodes: list[str]) -> list[str]:
        """Monitoring components with a flow to or from any of `nodes`: they watch the path."""
        g, seen, out = self.graph.graph, set(nodes), []
        for n in nodes:
            for m in (*g.successors(n), *g.predecessors(n)):
                if m not in seen and g.nodes[m]["kind"] == Kind.monitoring:
                    seen.add(m)
                    out.append(m)
        return out


def build_finding(threat: Threat, comp: Component, ctx: Context) -> Finding:
    path = ctx.tracer.attack_path(comp.id, threat.reaches, threat.attacker == Attacker.external,
                                  threat.via)
    approach = path[: path.index(comp.id) + 1]
    present, missing, adjustments = _controls(threat, approach, path, ctx)
    adjustments = _exposure_adjustments(threat, comp, approach, ctx) + adjustments
    likelihood = clamp_likelihood(threat.likelihood + sum(a.delta for a in adjustments))
    goal = threat.goal_if_personal_data if (comp.personal_data and threat.goal_if_personal_data) \
        else threat.goal
    criticality = _criticality(ctx.pipeline, threat.asset)
    impact = impact_for(threat.impact, criticality)
    score = score_for(likelihood, impact)
    line, column = ctx.pipeline.component_positions[comp.id]
    return Finding(
        id=f"{threat.id}@{comp.id}", threat_id=threat.id, name=threat.name, family=threat.family,
        goal=goal.value, asset=threat.asset.value, attacker=threat.attacker.value,
        component=comp.id, entry=path[0], path=tuple(path), harm_at=path[-1],
        base_likelihood=float(threat.likelihood), likelihood=likelihood,
        adjustments=tuple(adjustments), base_impact=threat.impact, impact=impact,
        impact_reason=f"asset '{threat.asset.value}' has criticality {criticality.value}",
        score=score, level=level_for(score), controls_present=tuple(present),
        controls_missing=tuple(missing), references=_references(threat, ctx.catalog),
        description=threat.description, recommendation=threat.recommendation,
        measured_by=threat.measured_by, spec_line=line, spec_column=column,
    )


def _criticality(pipeline: Pipeline, asset: object) -> Criticality:
    info = pipeline.spec.assets.get(asset)  # type: ignore[call-overload]
    return info.criticality if info else Criticality.medium


def _controls(threat: Threat, approach: list[str], path: list[str], ctx: Context
              ) -> tuple[list[ControlUse], list[ControlUse], list[Adjustment]]:
    watched = path + ctx.observers(path)
    present, missing, adjustments = [], [], []
    for control, strength in ctx.catalog.mitigations(threat.id):
        where = _where(control, approach if control.scope == "approach" else watched, ctx)
        use = ControlUse(control.id, strength.value, control.family.value, control.incidental,
                         tuple(where))
        if not where:
            missing.append(use)
            continue
        present.append(use)
        adjustments.append(Adjustment(
            CONTROL_STEP[strength], f"{control.name} ({strength.value}) on {', '.join(where)}",
            control=control.id, component=where[0]))
    return present, missing, adjustments


def _where(control: Control, nodes: list[str], ctx: Context) -> list[str]:
    if control.id in ctx.pipeline.pipeline_controls:
        return [PIPELINE_WIDE]
    return [n for n in nodes if control.id in ctx.pipeline.controls[n]]


def _exposure_adjustments(threat: Threat, comp: Component, approach: list[str], ctx: Context
                          ) -> list[Adjustment]:
    if threat.attacker == Attacker.network:
        step = NETWORK_EXPOSURE_STEP[comp.exposure]
        if step:
            return [Adjustment(step, f"{comp.id} is {comp.exposure.value}-facing",
                               component=comp.id)]
    if threat.attacker == Attacker.external:
        exposures = {ctx.pipeline.component(n).exposure for n in approach}
        if Exposure.public not in exposures:
            return [Adjustment(PARTNER_ONLY_STEP,
                               f"reachable only through a partner-facing component ({approach[0]})",
                               component=approach[0])]
    return []


def _references(threat: Threat, catalog: Catalog) -> tuple[Reference, ...]:
    refs = [Reference(scheme, rid, catalog.reference_name(scheme, rid))
            for scheme in ("atlas", "owasp_ml", "cwe") for rid in getattr(threat.references, scheme)]
    if threat.references.nist:
        nist = threat.references.nist
        refs.append(Reference("nist", nist, catalog.reference_name("nist", nist)))
    return tuple(refs)
