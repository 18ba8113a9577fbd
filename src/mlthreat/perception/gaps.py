"""Gap analysis: one person's perception against the computed threat model.

Each rule below answers one finding of the study that motivates mlthreat (Bieringer et al.,
SOUPS 2022); docs/perception.md maps them. A rule that finds nothing says nothing.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from mlthreat.analysis.views import ASSET_LABELS, at_least
from mlthreat.catalog import Catalog, Control
from mlthreat.perception.loader import (
    Mappers,
    ResolvedDefense,
    ResolvedPerception,
    ResolvedView,
    load_perception,
)
from mlthreat.perception.mapping import Mapping
from mlthreat.perception.model import WHOLE_PIPELINE, Responsibility
from mlthreat.pipeline import Pipeline
from mlthreat.plain import display_path
from mlthreat.results import Assessment, Finding, Gap, PerceptionReport, TextMapping
from mlthreat.vocabulary import RISK_ORDER, Asset, Family, RiskLevel

GAP_KINDS = ("blind_spot", "misattributed_defense", "overconfidence",
             "externalised_responsibility", "attacker_doubt", "unnoticed_incidental",
             "linked_concepts")
FAMILY_WORDS = {Family.aml: "adversarial-ML", Family.classical: "classical security"}


def _at(findings: Iterable[Finding], component: str) -> list[Finding]:
    return [f for f in findings if component in (f.component, WHOLE_PIPELINE)]


def _worst(findings: list[Finding]) -> Finding | None:
    return max(findings, key=lambda f: (RISK_ORDER.index(f.level), f.score), default=None)


def _measured(f: Finding, a: Assessment) -> str:
    shown = [e.summary for e in a.evidence_of(f) if e.summary]
    return f" Measured: {'; '.join(shown)}." if shown else ""


def blind_spots(p: ResolvedPerception, a: Assessment) -> list[Gap]:
    answered = p.answered()
    out = []
    for f in at_least(list(a.findings), RiskLevel.medium):
        if not ({f.component, WHOLE_PIPELINE} & answered) or f.threat_id in p.seen(f.component):
            continue
        elsewhere = sorted(v.component for v in p.views if f.threat_id in v.threat_ids())
        where = f" You named it at {', '.join(elsewhere)}, not here." if elsewhere else ""
        out.append(Gap("blind_spot", p.respondent, f.component, f.threat_id, None, f.level.value,
                       f"You did not name {f.name.lower()} at {f.component}; mlthreat rates it "
                       f"{f.level.value} (path {' → '.join(f.path)}).{where}", f.evidence))
    return out


def _believed(p: ResolvedPerception, catalog: Catalog
              ) -> Iterator[tuple[ResolvedView, ResolvedDefense, Control]]:
    """Every defense the person names that maps to a catalog control."""
    for v in p.views:
        for d in v.defenses:
            control = catalog.control(d.control.target) if d.control.target else None
            if control is not None:
                yield v, d, control


def misattributed(p: ResolvedPerception, catalog: Catalog) -> list[Gap]:
    out = []
    for v, d, control in _believed(p, catalog):
        for target in d.against:
            if not target.target or target.target in control.mitigates:
                continue
            threat = catalog.threat(target.target)
            helps = [c.id for c, _ in catalog.mitigations(threat.id)][:3]
            cross = control.family != threat.family
            lead = (f"You count {control.name.lower()} ({FAMILY_WORDS[control.family]}) "
                    f"against {threat.name.lower()} ({FAMILY_WORDS[threat.family]})"
                    if cross else
                    f"You count {control.name.lower()} against {threat.name.lower()}")
            out.append(Gap("misattributed_defense", p.respondent, v.component, threat.id,
                           control.id, "info",
                           f"{lead}, but it does not stop that attack: {control.description} "
                           f"What does help: {', '.join(helps)}."))
    return out


def overconfidence(p: ResolvedPerception, a: Assessment, pipeline: Pipeline,
                   catalog: Catalog) -> list[Gap]:
    out = []
    for v, d, control in _believed(p, catalog):
        places = _places(control.id, v.component, pipeline)
        # a defense counts where it acts on the path of a threat, as the analysis counts it:
        # human review on the labeling step guards the feedback that flows into it
        on_path = any(c.control == control.id for f in _at(a.findings, v.component)
                      for c in f.controls_present)
        if not places and not on_path:
            where = "anywhere" if v.component == WHOLE_PIPELINE else f"at {v.component}"
            out.append(Gap("overconfidence", p.respondent, v.component, None, control.id,
                           "info", f"You believe {control.name.lower()} protects "
                           f"{'the pipeline' if v.component == WHOLE_PIPELINE else v.component}"
                           f", but the spec lists it nowhere {where}: an untested belief, or a "
                           "spec to correct."))
            continue
        out += _still_succeeds(p, v, control.id, control.name, d.against, a)
    return out


def _places(control: str, component: str, pipeline: Pipeline) -> list[str]:
    if control in pipeline.pipeline_controls:
        return [WHOLE_PIPELINE]
    if component == WHOLE_PIPELINE:
        return [c for c, ids in pipeline.controls.items() if control in ids]
    return [component] if control in pipeline.controls.get(component, ()) else []


def _still_succeeds(p: ResolvedPerception, v: ResolvedView, control: str, name: str,
                    against: Iterable[Mapping], a: Assessment) -> list[Gap]:
    targets = {m.target for m in against if m.target}
    out = []
    for f in _at(a.findings, v.component):
        if (targets and f.threat_id not in targets) or not any(
                c.control == control for c in f.controls_present):
            continue
        wins = [e.id for e in a.evidence_of(f) if e.confirmed]
        if wins:
            out.append(Gap("overconfidence", p.respondent, f.component, f.threat_id, control,
                           f.level.value, f"{name} is in place at {f.component}, yet a probe "
                           f"shows {f.name.lower()} still succeeds.{_measured(f, a)}", tuple(wins)))
    return out


def _norm(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower())) - {"team", "the", "our", "a", "an", "of"}


def externalised(p: ResolvedPerception, a: Assessment, pipeline: Pipeline) -> list[Gap]:
    owners = {c.owner for c in pipeline.spec.components if c.owner}
    team = _norm(p.perception.team or "")
    out = []
    for v in p.views:
        if v.view.responsibility not in (Responsibility.other_team, Responsibility.provider,
                                         Responsibility.nobody):
            continue
        worst = _worst(at_least(_at(a.findings, v.component), RiskLevel.medium))
        if worst is None:
            continue
        comp_owner = None if v.component == WHOLE_PIPELINE else \
            pipeline.component(v.component).owner
        named = v.view.responsible
        if team and comp_owner and _norm(comp_owner) & team:
            why = f"the spec says your own team ({comp_owner}) owns {v.component}"
        elif named and not any(_norm(named) & _norm(o) for o in owners):
            why = f"no component in the spec is owned by {named!r}: nobody holds it"
        elif not named and not comp_owner:
            why = f"the spec names no owner for {v.component}"
        elif v.view.responsibility == Responsibility.nobody:
            why = f"you say nobody is responsible for {v.component}"
        else:
            continue
        out.append(Gap("externalised_responsibility", p.respondent, v.component, worst.threat_id,
                       None, worst.level.value,
                       f"You see security at {v.component} as someone else's concern, but {why}; "
                       f"meanwhile {worst.name.lower()} is {worst.level.value} there."))
    return out


def attacker_doubt(p: ResolvedPerception, a: Assessment) -> list[Gap]:
    out = []
    for v in p.views:
        if v.view.attacker_gain is not False:
            continue
        worst = _worst(at_least(_at(a.findings, v.component), RiskLevel.medium))
        if worst is None:
            continue
        reason = f" (\u201c{v.view.reason}\u201d)" if v.view.reason else ""
        path = " → ".join(worst.path)
        out.append(Gap("attacker_doubt", p.respondent, v.component, worst.threat_id, None,
                       worst.level.value,
                       f"You doubt an attacker gains anything at {v.component}{reason}. Yet "
                       f"{worst.name.lower()} is {worst.level.value} there (path {path}): "
                       f"{worst.description.split('. ')[0]}.{_measured(worst, a)}", worst.evidence))
    return out


def unnoticed_incidental(p: ResolvedPerception, a: Assessment) -> list[Gap]:
    named = {d.control.target for v in p.views for d in v.defenses if d.control.target}
    return [Gap("unnoticed_incidental", p.respondent, ", ".join(m.components), None, m.control,
                "info", f"You did not name {m.name.lower()} as a defense. {m.explanation}")
            for m in a.incidental_mitigations if m.control not in named]


def linked_concepts(p: ResolvedPerception, catalog: Catalog) -> list[Gap]:
    named = {t for v in p.views for t in v.threat_ids()}
    by_goal: dict[tuple[str, str], dict[Family, list[str]]] = {}
    for tid in sorted(named):
        t = catalog.threat(tid)
        goals = {t.goal.value} | ({t.goal_if_personal_data.value} if t.goal_if_personal_data else set())
        for goal in goals:
            by_goal.setdefault((t.asset.value, goal), {}).setdefault(t.family, []).append(tid)
    out = []
    for (asset, goal), fams in sorted(by_goal.items()):
        if Family.aml in fams and Family.classical in fams:
            aml = ", ".join(catalog.threat(i).name.lower() for i in fams[Family.aml])
            cls = ", ".join(catalog.threat(i).name.lower() for i in fams[Family.classical])
            out.append(Gap("linked_concepts", p.respondent, WHOLE_PIPELINE, fams[Family.aml][0],
                           None, "info",
                           f"You link {aml} with {cls}: both aim at the {goal} of "
                           f"{ASSET_LABELS[Asset(asset)]}. "
                           "Right link, different defenses: each route needs its own."))
    return out


def analyse(p: ResolvedPerception, a: Assessment, pipeline: Pipeline,
            catalog: Catalog) -> PerceptionReport:
    gaps = (blind_spots(p, a) + misattributed(p, catalog) + overconfidence(p, a, pipeline, catalog)
            + externalised(p, a, pipeline) + attacker_doubt(p, a) + unnoticed_incidental(p, a)
            + linked_concepts(p, catalog))
    answered = p.answered()
    components = [c.id for c in pipeline.spec.components]
    whole = WHOLE_PIPELINE in answered
    return PerceptionReport(
        respondent=p.respondent, role=p.perception.role, team=p.perception.team, file=display_path(p.file),
        complete=p.perception.complete,
        components_answered=tuple(c for c in [*components, WHOLE_PIPELINE] if c in answered),
        components_not_answered=() if whole else tuple(c for c in components if c not in answered),
        mappings=tuple(TextMapping(m.text, m.target, m.score, m.how) for m in p.mappings()),
        gaps=tuple(gaps))


def with_perceptions(a: Assessment, pipeline: Pipeline, catalog: Catalog,
                     files: Iterable[str | Path]) -> Assessment:
    """The assessment with a gap report for each perception file."""
    mappers = Mappers.for_catalog(catalog)
    people = [load_perception(f, pipeline, catalog, mappers) for f in files]
    warnings = tuple(f"{p.file}: written for pipeline {p.perception.pipeline!r}, compared with "
                     f"{pipeline.spec.name!r}" for p in people
                     if p.perception.pipeline and p.perception.pipeline != pipeline.spec.name)
    reports = tuple(analyse(p, a, pipeline, catalog) for p in people)
    return dataclasses.replace(a, perception=reports, warnings=a.warnings + warnings)
