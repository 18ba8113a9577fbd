"""The analysis of one pipeline against the catalog: place every threat where its attacker can
act and trace its attack path (once, `place`), attribute evidence to the placements
(`analysis.attribution`), and score every finding once with all its evidence (`score`).

Short on purpose (STYLE.md): placing, tracing and scoring live in their own modules.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from mlthreat.analysis.attribution import attribute
from mlthreat.analysis.findings import Context, Placement, build_finding
from mlthreat.analysis.grouping import group_findings, lead
from mlthreat.analysis.integrity import integrity_paths
from mlthreat.analysis.paths import HarmTracer
from mlthreat.analysis.views import asset_groups, incidental_mitigations, recommendations
from mlthreat.catalog import Catalog, Threat
from mlthreat.pipeline import Component, Pipeline
from mlthreat.pipeline.graph import build_graph
from mlthreat.plain import display_path
from mlthreat.results import Assessment, ComponentInfo, Evidence, Finding, FlowInfo, Skipped
from mlthreat.version import __version__
from mlthreat.vocabulary import Attacker, Kind


@dataclass(frozen=True)
class Placed:
    """A pipeline's threats placed and traced: the graph is built once per assessment."""

    ctx: Context
    placements: tuple[Placement, ...]

    def attribute(self, evidence: Sequence[Evidence]) -> dict[tuple[str, str], tuple[str, ...]]:
        """Evidence ids per (threat, component) of a placement (see analysis.attribution)."""
        kinds = {c.id: c.kind for c in self.ctx.pipeline.spec.components}
        return attribute(self.placements, evidence, self.ctx.graph.graph, kinds)


def where(threat: Threat, by_kind: dict[Kind, list[Component]], ctx: Context,
          shown: frozenset[tuple[str, str]] = frozenset()) -> list[Component]:
    """Components where the threat's attacker can act: kind, exposure, facts and required
    controls all hold, no fact of `unless` holds, and no control listed there rules the threat
    out; or a scan of the component's own files showed the threat there (`shown`: (threat,
    component)), whatever the spec claims."""
    acts = threat.acts_at
    needed = frozenset(acts.facts)
    pipeline = ctx.pipeline
    out = []
    for kind in acts.kinds:
        for c in by_kind.get(kind, ()):
            if acts.exposure and c.exposure not in acts.exposure:
                continue
            if (threat.id, c.id) in shown:  # a scan outweighs what the spec says
                out.append(c)
                continue
            listed = pipeline.controls[c.id] | pipeline.pipeline_controls
            facts = ctx.graph.facts[c.id]
            if (needed <= facts and facts.isdisjoint(acts.unless)
                    and not (acts.controls and listed.isdisjoint(acts.controls))
                    and listed.isdisjoint(threat.ruled_out_by)):
                out.append(c)
    return out


def shown_by_scans(evidence: Sequence[Evidence]) -> frozenset[tuple[str, str]]:
    """(threat, component) pairs a scanner confirmed in the component's own files: a pickle.load
    in the serving code shows that serving deserializes, whatever the spec says of its model."""
    return frozenset((t, e.component) for e in evidence
                     if e.source.startswith("scanner:") and e.confirmed and e.reach == "component"
                     for t in e.threat_ids)


def place(pipeline: Pipeline, catalog: Catalog,
          shown: frozenset[tuple[str, str]] = frozenset()) -> Placed:
    """Every threat of the catalog at every component where its attacker can act, traced."""
    graph = build_graph(pipeline)
    ctx = Context(pipeline, catalog, graph, HarmTracer(graph))
    by_kind: dict[Kind, list[Component]] = defaultdict(list)
    for comp in pipeline.spec.components:
        by_kind[comp.kind].append(comp)
    return Placed(ctx, tuple(
        Placement(t, c, tuple(ctx.tracer.attack_path(c.id, harm_kinds(t, c.kind),
                                                     t.attacker == Attacker.external, t.via)))
        for t in catalog.threats for c in where(t, by_kind, ctx, shown)))


def harm_kinds(threat: Threat, kind: Kind) -> tuple[Kind, ...]:
    """The kinds a threat placed at a component of `kind` harms. Where the attacker acts at a
    component of a kind the threat harms, the harm lands there and not at the next such component
    downstream: extraction of an LLM behind an API front end steals the LLM, evasion of a phone's
    on-device model fools the phone, a pickle loaded on the device runs there. Threats whose harm
    passes through other kinds first (`via`) keep their route."""
    if not threat.via and kind in threat.reaches:
        return (kind,)
    return threat.reaches


def _sort_key(f: Finding) -> tuple[float, str, str, str]:
    return (-f.score, f.family.value, f.threat_id, f.component)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Findings are acyclic, so reference counting frees them; the cyclic collector would only
    rescan the growing heap (measured: a third of the time at 10,000 components)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def assess(pipeline: Pipeline, catalog: Catalog, evidence: Sequence[Evidence] = (),
           notes: tuple[str, ...] = ()) -> Assessment:
    """Threat-model the pipeline. Deterministic: the same spec gives the same Assessment.

    `evidence` (probes, scanners; each with a unique id) is attributed to the findings it
    speaks to and raises the likelihood of those it confirms."""
    with _cyclic_gc_paused():
        return score(place(pipeline, catalog, shown_by_scans(evidence)), evidence, notes)


def score(placed: Placed, evidence: Sequence[Evidence] = (), notes: tuple[str, ...] = (),
          skipped: Sequence[Skipped] = ()) -> Assessment:
    """Findings scored once, with the evidence attributed to each; the views built on them."""
    ids = [e.id for e in evidence]
    if len(set(ids)) != len(ids) or "" in ids:
        raise ValueError("every piece of evidence needs a unique id (see assessor.number)")
    ctx, by_id = placed.ctx, {e.id: e for e in evidence}
    attributed = placed.attribute(evidence)
    findings = sorted((build_finding(p, ctx, [by_id[i] for i in attributed.get(
        (p.threat.id, p.component.id), ())]) for p in placed.placements), key=_sort_key)
    pipeline, catalog = ctx.pipeline, ctx.catalog
    spec = pipeline.spec
    groups = group_findings(findings, {f.id for f in findings
                                       if any(by_id[i].confirmed for i in f.evidence)})
    return Assessment(
        pipeline_name=spec.name, pipeline_description=spec.description, spec_file=display_path(pipeline.file),
        components=tuple(ComponentInfo(
            c.id, c.label, c.kind.value, c.exposure.value, c.owner,
            tuple(sorted(pipeline.controls[c.id])), c.personal_data,
            *pipeline.component_positions[c.id]) for c in spec.components),
        flows=tuple(FlowInfo(f.source, f.target, f.data, pos[0])
                    for f, pos in zip(spec.flows, pipeline.flow_positions, strict=True)),
        pipeline_controls=tuple(sorted(pipeline.pipeline_controls)),
        findings=tuple(findings),
        asset_groups=tuple(asset_groups(findings, pipeline)),
        integrity_paths=tuple(integrity_paths(ctx)),
        incidental_mitigations=tuple(incidental_mitigations(findings, catalog)),
        recommendations=tuple(recommendations(
            findings, catalog, {c.id: c.kind for c in spec.components},
            cleared={e.id for e in evidence if e.clears})),
        catalog_atlas_version=catalog.atlas_version, tool_version=__version__,
        warnings=tuple(str(w) for w in pipeline.warnings) + notes,
        evidence=tuple(evidence), skipped=tuple(skipped), groups=groups, lead=lead(groups),
    )
