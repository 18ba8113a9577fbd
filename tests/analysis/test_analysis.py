"""Analysis: expected findings on every example, control effects computed by hand from
docs/risk.md, paths through feedback cycles, and determinism."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from mlthreat.analysis import Assessment, Finding, assess
from mlthreat.catalog import Catalog
from mlthreat.pipeline import Pipeline
from mlthreat.report import json_report

Model = Callable[[str], Assessment]


def _finding(a: Assessment, threat: str, component: str) -> Finding:
    matches = [f for f in a.findings if f.threat_id == threat and f.component == component]
    assert matches, f"no {threat} at {component}; have {[f.id for f in a.findings]}"
    return matches[0]


# DESIGN.md's reference case: every expected threat, with its family and where it is placed.
CREDIT_EXPECTED = [
    ("aml-feedback-loop-manipulation", "corrections", "aml"),
    ("aml-evasion-blackbox", "scoring_api", "aml"),
    ("aml-model-extraction", "scoring_api", "aml"),
    ("aml-membership-inference", "scoring_api", "aml"),
    ("cls-unauthenticated-api", "scoring_api", "classical"),
    ("cls-missing-rate-limiting", "scoring_api", "classical"),
    ("cls-data-store-breach", "loan_db", "classical"),
    ("cls-unsafe-deserialization", "model_registry", "classical"),
    ("cls-unsafe-deserialization", "scoring_api", "classical"),
]


@pytest.mark.parametrize("threat, component, family", CREDIT_EXPECTED)
def test_credit_reference_case(credit: Assessment, threat: str, component: str,
                               family: str) -> None:
    f = _finding(credit, threat, component)
    assert f.family.value == family
    assert f.path and component in f.path
    assert any(r.scheme == "atlas" for r in f.references) or any(
        r.scheme == "cwe" for r in f.references)
    assert f.spec_line >= 1


def test_credit_poisoning_travels_the_feedback_loop(credit: Assessment) -> None:
    f = _finding(credit, "aml-feedback-loop-manipulation", "corrections")
    assert f.path == ("corrections", "loan_db", "feature_pipeline", "train_job",
                      "holdout_check", "model_registry", "scoring_api")
    assert f.harm_at == "scoring_api"
    missing = [c.control for c in f.controls_missing]
    assert {"data_validation", "drift_monitoring", "human_review"} <= set(missing)
    assert missing[0] == "human_review"   # the only strong one comes first
    order = {"strong": 0, "medium": 1, "weak": 2}
    ranks = [order[c.strength] for c in f.controls_missing]
    assert ranks == sorted(ranks)


def test_credit_integrity_path_is_open(credit: Assessment) -> None:
    (path,) = credit.integrity_paths
    assert path.path == ("corrections", "loan_db", "feature_pipeline", "train_job")
    assert path.verdict == "open" and not path.gates and not path.monitored_by
    assert "poisoned records reach training unchecked" in path.explanation
    assert "goes unseen" in path.explanation


def test_credit_asset_links_across_families(credit: Assessment) -> None:
    groups = {(g.asset, g.goal): g for g in credit.asset_groups}
    model_ip = groups[("model", "confidentiality")]
    assert "aml-model-extraction@scoring_api" in model_ip.aml
    assert "cls-registry-breach@model_registry" in model_ip.classical
    privacy = groups[("training_data", "privacy")]
    assert "aml-membership-inference@scoring_api" in privacy.aml
    assert "cls-data-store-breach@loan_db" in privacy.classical   # personal data -> privacy
    assert model_ip.linked and privacy.linked


def test_credit_incidental_mitigations(credit: Assessment) -> None:
    found = {m.control: m for m in credit.incidental_mitigations}
    # label-only output is not in partner_prescreen's controls: its probe block declares it
    assert set(found) == {"input_normalization", "model_validation", "retraining",
                          "label_only_output"}
    assert "aml-evasion-blackbox" in found["input_normalization"].helps_against
    assert found["label_only_output"].components == ("partner_prescreen",)


EXAMPLE_EXPECTED = {
    "image-community": [("aml-poisoning-targeted", "community_tags"),
                        ("aml-poisoning-label-flip", "community_tags"),
                        ("aml-backdoor-data", "upload_api"),
                        ("cls-unsafe-deserialization", "moderation_service")],
    "mobile-app": [("aml-evasion-whitebox", "on_device_model"),
                   ("cls-edge-model-theft", "on_device_model"),
                   ("aml-training-data-reconstruction", "on_device_model"),
                   ("aml-feedback-loop-manipulation", "telemetry")],
    "hub-finetune": [("aml-backdoor-pretrained", "hub_model"),
                     ("aml-evasion-transfer", "triage_api"),
                     ("cls-unsafe-deserialization", "hub_model"),
                     ("aml-poisoned-public-dataset", "public_dataset"),
                     ("cls-insider-labeling", "annotators")],
}


@pytest.mark.parametrize("name", sorted(EXAMPLE_EXPECTED))
def test_other_examples(name: str, example_pipeline: Callable[[str], Pipeline],
                        catalog: Catalog) -> None:
    a = assess(example_pipeline(name), catalog)
    for threat, component in EXAMPLE_EXPECTED[name]:
        _finding(a, threat, component)


def test_examples_negative_facts(example_pipeline: Callable[[str], Pipeline],
                                 catalog: Catalog) -> None:
    hub = assess(example_pipeline("hub-finetune"), catalog)
    ids = {f.id for f in hub.findings}
    # safetensors registry and API: no unsafe deserialization there; partner API has auth.
    assert "cls-unsafe-deserialization@registry" not in ids
    assert "cls-unsafe-deserialization@triage_api" not in ids
    assert "aml-feedback-loop-manipulation@annotators" not in ids   # no loop through training
    image = assess(example_pipeline("image-community"), catalog)
    (path,) = image.integrity_paths
    assert path.verdict == "guarded"


API = """\
name: api
components:
  - {{id: web, kind: client, exposure: {exposure}}}
  - {{id: api, kind: serving, controls: [{controls}]}}
  - {{id: other, kind: serving, exposure: public, controls: [rate_limiting]}}
flows:
  - {{from: web, to: api}}
"""


@pytest.mark.parametrize("exposure, controls, likelihood, score, level", [
    # Hand-computed from docs/risk.md: black-box evasion base L=4, I=4 (asset medium).
    ("public", "", 4.0, 16.0, "critical"),
    ("public", "rate_limiting", 3.0, 12.0, "high"),              # medium -1
    ("public", "rate_limiting, authentication", 2.5, 10.0, "high"),  # weak -0.5
    ("public", "rate_limiting, authentication, label_only_output", 2.0, 8.0, "medium"),
    ("partner", "", 3.5, 14.0, "high"),                            # partner only -0.5
    ("public", "adversarial_training, rate_limiting, adversarial_input_detection", 1.0, 4.0,
     "low"),                                                       # floor at 1
])
def test_controls_move_likelihood(model_of: Model, exposure: str, controls: str,
                                  likelihood: float, score: float, level: str) -> None:
    a = model_of(API.format(exposure=exposure, controls=controls))
    f = _finding(a, "aml-evasion-blackbox", "api")
    assert (f.likelihood, f.score, f.level.value) == (likelihood, score, level)
    assert f.path == ("web", "api")
    assert len(f.adjustments) == len([c for c in controls.split(",") if c.strip()]) + (
        exposure == "partner")
    # The rate limit on `other` is not on this path and must not count.
    assert all(adj.component != "other" for adj in f.adjustments)


POISON = """\
name: poison
assets:
  model_behaviour: {{criticality: {criticality}}}
components:
  - {{id: fb, kind: feedback, exposure: public}}
  - {{id: db, kind: data_store, controls: [{db}]}}
  - {{id: train, kind: training}}
  - {{id: api, kind: serving, exposure: public, controls: [{api}]}}
  - {{id: mon, kind: monitoring, controls: [{mon}]}}
flows:
  - {{from: fb, to: db}}
  - {{from: db, to: train}}
  - {{from: train, to: api}}
  - {{from: api, to: mon}}
"""


def test_control_scopes_and_observers(model_of: Model) -> None:
    # authentication is an approach control: on the API it does not guard the feedback form.
    # data_validation (path) on the store counts; drift monitoring on a monitor watching the
    # served model counts.
    a = model_of(POISON.format(criticality="critical", db="data_validation",
                               api="authentication", mon="drift_monitoring"))
    f = _finding(a, "aml-poisoning-label-flip", "fb")
    assert f.path == ("fb", "db", "train", "api")
    present = {c.control: c.components for c in f.controls_present}
    assert present == {"data_validation": ("db",), "drift_monitoring": ("mon",)}
    # base 3, data_validation medium -1, drift_monitoring weak -0.5 -> 1.5; impact 4 + 2 -> 5
    assert (f.likelihood, f.impact, f.score, f.level.value) == (1.5, 5, 7.5, "medium")
    (path,) = a.integrity_paths
    assert path.verdict == "guarded"


def test_no_loop_no_feedback_finding(model_of: Model) -> None:
    a = model_of(POISON.format(criticality="low", db="", api="", mon=""))
    assert not [f for f in a.findings if f.threat_id == "aml-feedback-loop-manipulation"]
    f = _finding(a, "aml-poisoning-label-flip", "fb")
    assert f.impact == 3  # base 4, low criticality -1
    (path,) = a.integrity_paths
    assert path.verdict == "open"


def test_loop_gives_feedback_finding(model_of: Model) -> None:
    spec = POISON.format(criticality="medium", db="", api="", mon="") + \
        "  - {from: api, to: fb}\n"
    a = model_of(spec)
    f = _finding(a, "aml-feedback-loop-manipulation", "fb")
    assert f.path == ("fb", "db", "train", "api")


def test_network_attacker_exposure(model_of: Model) -> None:
    spec = """\
    name: stores
    components:
      - {id: open_db, kind: data_store, exposure: public}
      - {id: shut_db, kind: data_store, exposure: offline}
    """
    a = model_of(spec)
    # data-store breach: base L=3 (network attacker): public +1 -> 4, offline -1 -> 2
    assert _finding(a, "cls-data-store-breach", "open_db").likelihood == 4.0
    assert _finding(a, "cls-data-store-breach", "shut_db").likelihood == 2.0
    assert _finding(a, "cls-data-store-breach", "open_db").goal == "confidentiality"


def test_pipeline_wide_controls_apply_everywhere(model_of: Model) -> None:
    spec = """\
    name: wide
    controls: [secrets_management]
    components:
      - {id: train, kind: training}
    """
    f = _finding(model_of(spec), "cls-secrets-in-code", "train")
    assert f.likelihood == 1.0  # base 3, strong -2
    assert f.controls_present[0].components == ("(pipeline-wide)",)


def test_recommendations_rank_by_risk_removed(credit: Assessment) -> None:
    recs = credit.recommendations
    assert [r.rank for r in recs] == list(range(1, len(recs) + 1))
    gains = [r.risk_reduction for r in recs]
    assert gains == sorted(gains, reverse=True)
    # Recompute the top one independently: sum over findings missing it of the score drop.
    top = recs[0]
    step = {"weak": 0.5, "medium": 1.0, "strong": 2.0}
    total = 0.0
    for f in credit.findings:
        for use in f.controls_missing:
            if use.control == top.control:
                total += f.score - max(1.0, f.likelihood - step[use.strength]) * f.impact
    assert top.risk_reduction == pytest.approx(total)


def test_deterministic(example_pipeline: Callable[[str], Pipeline], catalog: Catalog) -> None:
    first = json_report.render(assess(example_pipeline("credit-scoring"), catalog))
    second = json_report.render(assess(example_pipeline("credit-scoring"), catalog))
    assert first == second
    findings = json.loads(first)["findings"]
    scores = [f["score"] for f in findings]
    assert scores == sorted(scores, reverse=True)
