"""Which findings a probe's evidence reaches: along attack paths, and for threats that act
through training, to every model trained there (the reference case's graph, read by hand)."""

from __future__ import annotations

from mlthreat.analysis.assess import place, score
from mlthreat.analysis.attribution import number
from mlthreat.catalog import load_catalog
from mlthreat.pipeline import load_pipeline
from mlthreat.results import Evidence
from tests.conftest import EXAMPLES


def _evidence(probe: str, threat: str, component: str) -> Evidence:
    return Evidence(f"probe:{probe}", (threat,), "m", 0.5, None, True, f"{probe} measured",
                    component=component)


def test_poisoning_on_every_model_trained_downstream_reaches_the_finding() -> None:
    catalog = load_catalog()
    placed = place(load_pipeline(EXAMPLES / "credit-scoring" / "pipeline.yaml", catalog), catalog)
    flip = next(p for p in placed.placements
                if p.threat.id == "aml-poisoning-label-flip" and p.component.id == "corrections")
    # By hand: corrections -> loan_db -> feature_pipeline -> train_job -> ... -> scoring_api is
    # the shortest harm path; the broker pre-screen and the app model also come out of train_job
    # through the registry, but are not on that path.
    assert "train_job" in flip.path and "partner_prescreen" not in flip.path
    evidence = number([_evidence(probe, threat, c)
                       for c in ("scoring_api", "partner_prescreen", "mobile_app")
                       for probe, threat in (("poisoning", "aml-poisoning-label-flip"),
                                             ("evasion-blackbox", "aml-evasion-blackbox"))])
    got = placed.attribute(evidence)
    by_id = {e.id: e for e in evidence}
    carried = {by_id[i].component for i in got[("aml-poisoning-label-flip", "corrections")]}
    assert carried == {"scoring_api", "partner_prescreen", "mobile_app"}
    # Evasion does not act through training: the broker's forest says nothing about evading the
    # public API, although the broker service is reachable from it through the retraining loop.
    evasion = got[("aml-evasion-blackbox", "scoring_api")]
    assert {by_id[i].component for i in evasion} == {"scoring_api"}
    # Scored once: the evidence is stored once on the assessment, findings refer to it by id.
    assessment = score(placed, evidence)
    assert len(assessment.evidence) == 6
    finding = assessment.finding("aml-poisoning-label-flip@corrections")
    assert [e.component for e in assessment.evidence_of(finding)] == \
        ["scoring_api", "partner_prescreen", "mobile_app"]


def test_scanner_evidence_reaches_only_its_own_component() -> None:
    catalog = load_catalog()
    placed = place(load_pipeline(EXAMPLES / "credit-scoring" / "pipeline.yaml", catalog), catalog)
    ev = number([Evidence("scanner:serving", ("cls-unauthenticated-api",), "SRV-NO-AUTH", None,
                          None, True, "no auth", component="scoring_api", reach="component")])
    got = placed.attribute(ev)
    assert set(got) == {("cls-unauthenticated-api", "scoring_api")}
