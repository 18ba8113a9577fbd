"""Each finding of the study (Bieringer et al., SOUPS 2022) is reported for the example
perception that exhibits it, and not for one that does not."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from mlthreat.analysis import Assessment
from mlthreat.catalog import Catalog
from mlthreat.errors import SpecError
from mlthreat.perception import Mappers, analyse, load_perception
from mlthreat.pipeline import Pipeline
from mlthreat.results import Evidence, Finding, PerceptionReport
from tests.conftest import EXAMPLES

PERCEPTIONS = EXAMPLES / "credit-scoring" / "perceptions"

# study finding -> (example that exhibits it, gap kind, something the explanation must say)
STUDY = {
    "mingled": ("p01-mingled.yaml", "misattributed_defense",
                "tls on every hop (classical security) against black-box evasion"),
    "pushed elsewhere": ("p02-elsewhere.yaml", "externalised_responsibility",
                         "the spec says your own team (risk-ml) owns scoring_api"),
    "attacker doubt": ("p03-doubt.yaml", "attacker_doubt",
                       "what could an attacker gain by fooling our model"),
    "belief in defenses": ("p04-believer.yaml", "overconfidence",
                           "adversarial training protects scoring_api, but the spec lists it nowhere"),
    "defenses without knowing": ("p05-unaware.yaml", "unnoticed_incidental",
                                 "regular retraining from curated data"),
    "linked concepts": ("p06-linked.yaml", "linked_concepts",
                        "model extraction through the query interface with source code"),
}


@pytest.fixture(scope="module")
def mappers(catalog: Catalog) -> Mappers:
    return Mappers.for_catalog(catalog)


@pytest.fixture(scope="module")
def credit_pipeline(example_pipeline: Callable[[str], Pipeline]) -> Pipeline:
    return example_pipeline("credit-scoring")


def report(name: str, pipeline: Pipeline, credit: Assessment, catalog: Catalog,
           mappers: Mappers) -> PerceptionReport:
    resolved = load_perception(PERCEPTIONS / name, pipeline, catalog, mappers)
    return analyse(resolved, credit, pipeline, catalog)


@pytest.mark.parametrize("finding", sorted(STUDY))
def test_study_finding_reported(finding: str, credit_pipeline: Pipeline, credit: Assessment,
                                catalog: Catalog, mappers: Mappers) -> None:
    name, kind, fragment = STUDY[finding]
    r = report(name, credit_pipeline, credit, catalog, mappers)
    gaps = [g for g in r.gaps if g.kind == kind]
    assert gaps, f"{name} should show {kind}"
    assert any(fragment in g.explanation for g in gaps), [g.explanation for g in gaps]


@pytest.mark.parametrize("kind", sorted({k for _, k, _ in STUDY.values()} | {"blind_spot"}))
def test_calibrated_respondent_is_silent(kind: str, credit_pipeline: Pipeline,
                                         credit: Assessment, catalog: Catalog,
                                         mappers: Mappers) -> None:
    r = report("p07-calibrated.yaml", credit_pipeline, credit, catalog, mappers)
    if kind == "linked_concepts":
        # p07 rightly links concepts; the silent case is someone naming one family only.
        r = report("p04-believer.yaml", credit_pipeline, credit, catalog, mappers)
    assert [g.explanation for g in r.gaps if g.kind == kind] == []


@pytest.mark.parametrize("name, silent_kinds", [
    ("p03-doubt.yaml", ["misattributed_defense", "overconfidence", "externalised_responsibility",
                        "linked_concepts"]),
    ("p02-elsewhere.yaml", ["attacker_doubt", "misattributed_defense", "overconfidence"]),
    ("p01-mingled.yaml", ["externalised_responsibility", "attacker_doubt"]),
])
def test_examples_show_only_their_own_findings(name: str, silent_kinds: list[str],
                                               credit_pipeline: Pipeline, credit: Assessment,
                                               catalog: Catalog, mappers: Mappers) -> None:
    r = report(name, credit_pipeline, credit, catalog, mappers)
    assert not [g for g in r.gaps if g.kind in silent_kinds]


def test_blind_spots_only_where_asked(credit_pipeline: Pipeline, credit: Assessment,
                                      catalog: Catalog, mappers: Mappers) -> None:
    r = report("p05-unaware.yaml", credit_pipeline, credit, catalog, mappers)
    blind = {(g.component, g.threat_id) for g in r.gaps if g.kind == "blind_spot"}
    expected = {(f.component, f.threat_id) for f in credit.findings
                if f.component == "train_job" and f.level.value in ("medium", "high", "critical")
                and f.threat_id != "aml-model-poisoning-direct"}
    assert blind == expected and blind
    assert "loan_db" in r.components_not_answered


def test_free_text_mappings_are_shown(credit_pipeline: Pipeline, credit: Assessment,
                                      catalog: Catalog, mappers: Mappers) -> None:
    r = report("p01-mingled.yaml", credit_pipeline, credit, catalog, mappers)
    mapped = {m.text: m.target for m in r.mappings}
    assert mapped["people copying our model"] == "aml-model-extraction"
    assert mapped["passwords"] == "authentication"
    assert "sandboxing" not in mapped  # a catalog control's id: nothing to map
    assert mapped["cryptographic keys"] == "cls-secrets-in-code"


def test_doubt_is_answered_with_measured_evidence(credit_pipeline: Pipeline,
                                                  credit: Assessment, catalog: Catalog,
                                                  mappers: Mappers) -> None:
    measured = Evidence("probe:extraction", ("aml-model-extraction",), "fidelity", 0.93, None,
                        True, "a copy agreeing on 93% of inputs after 1,000 label-only queries",
                        component="scoring_api", id="probe:extraction@scoring_api#1")

    def with_evidence(f: Finding) -> Finding:
        if f.id == "aml-model-extraction@scoring_api":
            return dataclasses.replace(f, evidence=(measured.id,))
        return f
    a = dataclasses.replace(credit, findings=tuple(with_evidence(f) for f in credit.findings),
                            evidence=(measured,))
    r = report("p03-doubt.yaml", credit_pipeline, a, catalog, mappers)
    (doubt,) = [g for g in r.gaps if g.kind == "attacker_doubt" and g.component == "scoring_api"]
    assert "Measured: a copy agreeing on 93% of inputs" in doubt.explanation
    assert doubt.evidence == (measured.id,)


def test_control_present_but_probe_succeeds_is_overconfidence(
        credit_pipeline: Pipeline, credit: Assessment, catalog: Catalog,
        mappers: Mappers, tmp_path: Path) -> None:
    measured = Evidence("probe:evasion-blackbox", ("aml-evasion-blackbox",), "success_rate", 0.98,
                        None, True, "98% of points evaded", component="scoring_api", id="e1")
    a = dataclasses.replace(credit, evidence=(measured,), findings=tuple(
        dataclasses.replace(f, evidence=(measured.id,))
        if f.id == "aml-evasion-blackbox@scoring_api" else f for f in credit.findings))
    path = tmp_path / "p.yaml"
    path.write_text("respondent: x\nviews:\n  - component: scoring_api\n    defenses:\n"
                    "      - {control: input_normalization, against: [aml-evasion-blackbox]}\n")
    r = analyse(load_perception(path, credit_pipeline, catalog, mappers), a, credit_pipeline,
                catalog)
    (gap,) = [g for g in r.gaps if g.kind == "overconfidence"]
    assert "still succeeds" in gap.explanation and "98% of points evaded" in gap.explanation
    # Without evidence: no such gap.
    r = analyse(load_perception(path, credit_pipeline, catalog, mappers), credit,
                credit_pipeline, catalog)
    assert not [g for g in r.gaps if g.kind == "overconfidence"]


def test_unknown_component_in_perception_is_located(credit_pipeline: Pipeline,
                                                    catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("respondent: x\nviews:\n  - component: scoring_ap\n    attacker_gain: maybe\n")
    with pytest.raises(SpecError) as info:
        load_perception(path, credit_pipeline, catalog)
    text = str(info.value)
    assert f"{path}:4:20:" in text and "attacker_gain" in text
    path.write_text("respondent: x\nviews:\n  - component: scoring_ap\n")
    with pytest.raises(SpecError) as info:
        load_perception(path, credit_pipeline, catalog)
    assert f"{path}:3:16: view #1 names unknown component 'scoring_ap'" in str(info.value)
    assert "did you mean 'scoring_api'" in str(info.value)




def test_perception_for_another_pipeline_is_warned(credit_pipeline: Pipeline, credit: Assessment,
                                                   catalog: Catalog, tmp_path: Path) -> None:
    from mlthreat.perception.gaps import with_perceptions
    path = tmp_path / "other.yaml"
    path.write_text("respondent: x\npipeline: fraud-detection\nviews: []\n")
    a = with_perceptions(credit, credit_pipeline, catalog, [path])
    assert any("written for pipeline 'fraud-detection'" in w for w in a.warnings)
    same = tmp_path / "same.yaml"
    same.write_text("respondent: y\npipeline: credit-scoring\nviews: []\n")
    assert not with_perceptions(credit, credit_pipeline, catalog, [same]).warnings


REVIEWED_FEEDBACK = """\
version: 1
name: reviewed-feedback
components:
  - {id: app, kind: client, exposure: public}
  - {id: feedback, kind: feedback, exposure: public}
  - {id: review, kind: labeling, exposure: internal, controls: [human_review]}
  - {id: store, kind: data_store, exposure: internal}
  - {id: trainer, kind: training, exposure: internal}
  - {id: api, kind: serving, exposure: public}
flows:
  - {from: app, to: feedback}
  - {from: feedback, to: review}
  - {from: review, to: store}
  - {from: store, to: trainer}
  - {from: trainer, to: api}
  - {from: app, to: api}
"""


def test_a_defense_on_the_threats_path_is_no_overconfidence(
        write_spec: Callable[[str], Path], catalog: Catalog, mappers: Mappers,
        tmp_path: Path) -> None:
    from mlthreat import load_pipeline
    from mlthreat.analysis import assess
    pipeline = load_pipeline(write_spec(REVIEWED_FEEDBACK), catalog)
    a = assess(pipeline, catalog)
    credited = [f for f in a.findings if f.component == "feedback" and any(
        c.control == "human_review" for c in f.controls_present)]
    assert credited, "the analysis credits review against poisoning through feedback"
    path = tmp_path / "p.yaml"
    path.write_text("respondent: x\nviews:\n  - component: feedback\n    defenses:\n"
                    "      - {control: human_review, against: [aml-poisoning-label-flip]}\n")
    r = analyse(load_perception(path, pipeline, catalog, mappers), a, pipeline, catalog)
    assert [g.explanation for g in r.gaps if g.kind == "overconfidence"] == []
    # the same belief about a component review does not guard still is one
    path.write_text("respondent: x\nviews:\n  - component: api\n    defenses:\n"
                    "      - {control: human_review, against: [aml-evasion-blackbox]}\n")
    r = analyse(load_perception(path, pipeline, catalog, mappers), a, pipeline, catalog)
    assert any("lists it nowhere at api" in g.explanation for g in r.gaps
               if g.kind == "overconfidence")


def test_attacker_doubt_shows_the_worst_path(credit_pipeline: Pipeline, credit: Assessment,
                                             catalog: Catalog, mappers: Mappers) -> None:
    r = report("p03-doubt.yaml", credit_pipeline, credit, catalog, mappers)
    doubts = [g for g in r.gaps if g.kind == "attacker_doubt"]
    assert doubts
    for g in doubts:
        worst = next(f for f in credit.findings
                     if f.threat_id == g.threat_id and f.component == g.component)
        assert f"(path {' → '.join(worst.path)})" in g.explanation


def test_free_text_from_the_issue_maps_to_the_right_entry(mappers: Mappers) -> None:
    threats = mappers.threats
    assert threats.map("someone manipulating our training data").target.startswith(  # type: ignore[union-attr]
        "aml-poisoning")
    assert threats.map("people stealing the training data").target == "cls-data-store-breach"
    assert threats.map("Google cloud infrastructure security").target is None
    # unmapped until the catalog had unsafe uploads (issue #16); now the entry it names
    assert threats.map("people uploading not safe images").target == "cls-unsafe-upload"
    assert threats.map("security").how == "vague"


def test_the_tune_phrases_map_as_labelled(mappers: Mappers) -> None:
    # the regression guard; the goal itself is measured on the hold-out by benchmarks/mapping.py
    import yaml
    data = yaml.safe_load((Path(__file__).parent / "phrases.yaml").read_text(encoding="utf-8"))
    for kind, mapper in (("threats", mappers.threats), ("controls", mappers.controls)):
        rows = [r for r in data[kind] if r[2] == "tune"]
        wrong = [(text, expected, mapper.map(text).target) for text, expected, _ in rows
                 if (mapper.map(text).target or "-") not in expected.split("|")]
        assert len(wrong) <= 0.08 * len(rows), wrong   # measured 2026-12-05: 5.3 % and 5.7 %
