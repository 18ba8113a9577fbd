"""Views across findings: the asset view (both families side by side), incidental mitigations,
and the ranked list of what to do first."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from mlthreat.analysis.findings import PIPELINE_WIDE
from mlthreat.analysis.risk import CONTROL_STEP, clamp_likelihood, score_for
from mlthreat.catalog import Catalog
from mlthreat.pipeline import Pipeline
from mlthreat.results import (
    AssetGroup,
    Finding,
    IncidentalMitigation,
    Recommendation,
)
from mlthreat.vocabulary import RISK_ORDER, Asset, Criticality, Family, RiskLevel

ASSET_LABELS = {
    Asset.model: "the model as intellectual property",
    Asset.model_behaviour: "the model's decisions",
    Asset.training_data: "the training data and the people in it",
    Asset.inference_data: "requests and predictions",
    Asset.service: "the prediction service",
    Asset.infrastructure: "the hosts that run the pipeline",
    Asset.credentials: "keys, tokens and passwords",
}


def _names(findings: list[Finding]) -> str:
    names = sorted({f.name for f in findings})
    shown = ", ".join(n[0].lower() + n[1:] for n in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def asset_groups(findings: list[Finding], pipeline: Pipeline) -> list[AssetGroup]:
    groups: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for f in findings:
        groups[(f.asset, f.goal)].append(f)
    out = []
    for (asset, goal), members in groups.items():
        aml = [f for f in members if f.family == Family.aml]
        cls = [f for f in members if f.family == Family.classical]
        label = ASSET_LABELS[Asset(asset)]
        if aml and cls:
            summary = (f"The {goal} of {label} is lost through adversarial ML ({_names(aml)}) "
                       f"or through classical attacks ({_names(cls)}): defending one family "
                       "leaves the other route open.")
        else:
            fam = "adversarial-ML" if aml else "classical"
            summary = f"Only {fam} threats aim at the {goal} of {label} here: {_names(members)}."
        info = pipeline.spec.assets.get(Asset(asset))
        out.append(AssetGroup(
            asset=asset, goal=goal,
            criticality=(info.criticality if info else Criticality.medium).value,
            aml=tuple(f.id for f in aml), classical=tuple(f.id for f in cls),
            max_level=max((f.level for f in members), key=RISK_ORDER.index), summary=summary))
    out.sort(key=lambda g: (-RISK_ORDER.index(g.max_level), not g.linked, g.asset, g.goal))
    return out


def incidental_mitigations(findings: list[Finding], catalog: Catalog
                           ) -> list[IncidentalMitigation]:
    helped: dict[str, set[str]] = defaultdict(set)
    where: dict[str, set[str]] = defaultdict(set)
    for f in findings:
        for use in f.controls_present:
            if use.incidental:
                helped[use.control].add(f.threat_id)
                where[use.control].update(use.components)
    out = []
    for cid in sorted(helped):
        control = catalog.control(cid)
        assert control is not None
        threats = sorted(helped[cid])
        places = sorted(where[cid])
        place_text = "across the pipeline" if places == [PIPELINE_WIDE] else "on " + ", ".join(
            p for p in places if p != PIPELINE_WIDE)
        names = ", ".join(catalog.threat(t).name.lower() for t in threats[:3])
        more = f" and {len(threats) - 3} more" if len(threats) > 3 else ""
        out.append(IncidentalMitigation(
            control=cid, name=control.name, family=control.family.value,
            components=tuple(places), helps_against=tuple(threats),
            explanation=(f"{control.name} runs {place_text}, usually for reasons other than "
                         f"security; it already lowers the likelihood of {names}{more}. "
                         "Keep it, and count on it knowingly.")))
    return out


def recommendations(findings: list[Finding], catalog: Catalog, kinds: Mapping[str, str],
                    top: int = 10, cleared: set[str] | frozenset[str] = frozenset()
                    ) -> list[Recommendation]:
    """Missing controls ranked by the total risk score they would remove if added. Findings a
    clean scan rules out (evidence ids in `cleared`) propose no control. A control is proposed at
    the attacker's entry (approach controls), else on the path's components of the kinds it
    applies to (agent tools for tool permissions; `kinds`: component id -> kind), else where the
    attacker acts."""
    gain: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    where: dict[str, set[str]] = defaultdict(set)
    threats: dict[str, set[str]] = defaultdict(set)
    approach = {c.id: c.scope == "approach" for c in catalog.controls}
    applies = {c.id: frozenset(c.applies_to) for c in catalog.controls}
    step = {strength.value: delta for strength, delta in CONTROL_STEP.items()}
    for f in findings:
        if cleared and cleared.intersection(f.evidence):
            continue
        for use in f.controls_missing:
            new = clamp_likelihood(f.likelihood + step[use.strength])
            delta = f.score - score_for(new, f.impact)
            if delta <= 0:
                continue
            if approach[use.control]:
                at = [f.entry]
            elif applies[use.control]:
                at = [n for n in f.path if kinds[n] in applies[use.control]]
                if not at:
                    continue  # nowhere on this path to put it (tool permissions, no tool)
            else:
                at = [f.component]
            where[use.control].update(at)
            gain[use.control] += delta
            count[use.control] += 1
            threats[use.control].add(f.threat_id)
    ranked = sorted(gain, key=lambda c: (-round(gain[c], 6), c))[:top]
    out = []
    for rank, cid in enumerate(ranked, start=1):
        control = catalog.control(cid)
        assert control is not None
        out.append(Recommendation(
            rank=rank, control=cid, name=control.name, family=control.family.value,
            where=tuple(sorted(where[cid])), risk_reduction=round(gain[cid], 2),
            findings=count[cid], threats=tuple(sorted(threats[cid]))))
    return out


def at_least(findings: list[Finding], level: RiskLevel) -> list[Finding]:
    """The findings at `level` or above."""
    floor = RISK_ORDER.index(level)
    return [f for f in findings if RISK_ORDER.index(f.level) >= floor]
