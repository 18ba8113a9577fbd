"""Which findings a probe's evidence reaches: along attack paths, and for threats that act
through training, to every model trained there (the reference case's graph, read by hand)."""

from __future__ import annotations

from mlthreat.analysis import assess
from mlthreat.catalog import load_catalog
from mlthreat.pipeline import load_pipeline
from mlthreat.probes import Evidence
from mlthreat.probes.runner import ProbeRun, evidence_for
from tests.conftest import EXAMPLES


def _evidence(probe: str, threat: str) -> Evidence:
    return Evidence(probe, (threat,), "m", 0.5, None, True, f"{probe} measured", {}, {})


def test_poisoning_on_every_model_trained_downstream_reaches_the_finding() -> None:
    catalog = load_catalog()
    assessment = assess(load_pipeline(EXAMPLES / "credit-scoring" / "pipeline.yaml", catalog),
                        catalog)
    flip = next(f for f in assessment.findings
                if f.threat_id == "aml-poisoning-label-flip" and f.component == "corrections")
    # By hand: corrections -> loan_db -> feature_pipeline -> train_job -> ... -> scoring_api is
    # the shortest harm path; the broker pre-screen and the app model also come out of train_job
    # through the registry, but are not on that path.
    assert "train_job" in flip.path and "partner_prescreen" not in flip.path
    runs = [ProbeRun(c, [_evidence("poisoning", "aml-poisoning-label-flip"),
                         _evidence("evasion-blackbox", "aml-evasion-blackbox")])
            for c in ("scoring_api", "partner_prescreen", "mobile_app")]
    got = evidence_for(assessment, runs)
    carried = {item["component"] for item in got[("aml-poisoning-label-flip", "corrections")]}
    assert carried == {"scoring_api", "partner_prescreen", "mobile_app"}
    # Evasion does not act through training: the broker's forest says nothing about evading the
    # public API, although the broker service is reachable from it through the retraining loop.
    evasion = got[("aml-evasion-blackbox", "scoring_api")]
    assert {item["component"] for item in evasion} == {"scoring_api"}
