"""Placement rules (docs/catalog.md, docs/risk.md): each has a spec where the threat must be
placed and one where its preconditions are ruled out, so each test fails without its rule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlthreat.analysis import Assessment
from mlthreat.analysis.assess import place, score
from mlthreat.catalog import Catalog
from mlthreat.pipeline import load_pipeline

Model = Callable[[str], Assessment]


def _at(a: Assessment, component: str) -> set[str]:
    return {f.threat_id for f in a.findings if f.component == component}


QUERY_ATTACKS = {"aml-evasion-blackbox", "aml-model-extraction", "aml-model-fingerprinting",
                 "aml-proxy-evasion", "aml-resource-exhaustion"}


def test_a_public_hub_model_gives_no_query_access_to_an_internal_service(model_of: Model) -> None:
    # The case: hub model -> notebook -> registry -> internal inference service.
    supply = """\
    name: supply
    components:
      - {id: hub, kind: pretrained_model, exposure: public}
      - {id: notebook, kind: training}
      - {id: registry, kind: model_registry}
      - {id: api, kind: serving}
    flows:
      - {from: hub, to: notebook}
      - {from: notebook, to: registry}
      - {from: registry, to: api}
    """
    a = model_of(supply)
    assert _at(a, "api").isdisjoint(QUERY_ATTACKS)
    assert "aml-backdoor-pretrained" in _at(a, "hub")        # the supply path still matters
    # the same service reached by a public client is queryable
    b = model_of(supply.replace("    flows:", "      - {id: web, kind: client, exposure: public}\n"
                                "    flows:").rstrip(" ") + "      - {from: web, to: api}\n")
    assert _at(b, "api") >= QUERY_ATTACKS


def test_inference_inputs_from_a_public_feed_make_a_service_queryable(model_of: Model) -> None:
    a = model_of("""\
    name: feed
    components:
      - {id: payments, kind: data_source, exposure: public}
      - {id: features, kind: preprocessing}
      - {id: scorer, kind: serving}
    flows:
      - {from: payments, to: features}
      - {from: features, to: scorer}
    """)
    assert "aml-evasion-blackbox" in _at(a, "scorer")


WRAPPER = """\
name: wrapper
components:
  - {{id: web, kind: client, exposure: public, personal_data: true}}
  - {{id: app, kind: serving, exposure: public{model}}}
  - {{id: vendor, kind: hosted_model}}
flows:
  - {{from: web, to: app}}
  - {{from: app, to: vendor}}
  - {{from: vendor, to: app}}
"""
MODEL_ATTACKS = {"aml-model-extraction", "aml-membership-inference", "aml-attribute-inference",
                 "aml-property-inference", "aml-evasion-blackbox", "aml-model-fingerprinting"}


def test_an_app_that_calls_a_vendor_model_hosts_no_model(model_of: Model) -> None:
    a = model_of(WRAPPER.format(model=""))
    assert _at(a, "app").isdisjoint(MODEL_ATTACKS)
    assert {"aml-llm-direct-prompt-injection", "aml-llm-jailbreak",
            "aml-llm-cost-harvesting"} <= _at(a, "vendor")
    # ... unless it lists a model file of its own (a classifier beside the LLM call)
    b = model_of(WRAPPER.format(model=", artifacts: {model: [clf.joblib]}"))
    assert {"aml-model-extraction", "aml-evasion-blackbox"} <= _at(b, "app")


def test_personal_data_at_inference_is_not_training_data(model_of: Model) -> None:
    spec = """\
    name: people
    components:
      - {{id: store, kind: data_store, personal_data: {trained}}}
      - {{id: train, kind: training}}
      - {{id: web, kind: client, exposure: public, personal_data: true}}
      - {{id: api, kind: serving}}
    flows:
      - {{from: store, to: train}}
      - {{from: train, to: api}}
      - {{from: web, to: api}}
    """
    privacy = {"aml-membership-inference", "aml-attribute-inference", "aml-property-inference"}
    assert _at(model_of(spec.format(trained="false")), "api").isdisjoint(privacy)
    assert privacy <= _at(model_of(spec.format(trained="true")), "api")
    # a model trained elsewhere (no training in the spec): personal data upstream still counts
    elsewhere = model_of("""\
    name: elsewhere
    components:
      - {id: web, kind: client, exposure: public, personal_data: true}
      - {id: api, kind: serving, artifacts: {model: [m.onnx]}}
    flows:
      - {from: web, to: api}
    """)
    assert "aml-membership-inference" in _at(elsewhere, "api")


def test_a_listed_control_rules_its_threat_out(model_of: Model, write_spec: Callable[[str], Path],
                                               catalog: Catalog) -> None:
    spec = """\
    name: auth
    {wide}
    components:
      - {{id: api, kind: serving, exposure: public, controls: [{controls}]}}
      - {{id: tags, kind: labeling, exposure: public}}
    """
    bare = model_of(spec.format(wide="", controls=""))
    assert {"cls-unauthenticated-api", "cls-missing-rate-limiting"} <= _at(bare, "api")
    # people labelling are not an endpoint
    assert "cls-unauthenticated-api" not in _at(bare, "tags")
    listed = model_of(spec.format(wide="", controls="authentication, rate_limiting"))
    assert _at(listed, "api").isdisjoint({"cls-unauthenticated-api", "cls-missing-rate-limiting"})
    wide = model_of(spec.format(wide="controls: [authentication]", controls=""))
    assert "cls-unauthenticated-api" not in _at(wide, "api")
    # a scan of the component's own code outweighs the spec's claim
    pipeline = load_pipeline(write_spec(spec.format(wide="", controls="authentication")), catalog)
    shown = frozenset({("cls-unauthenticated-api", "api")})
    scanned = score(place(pipeline, catalog, shown))
    assert "cls-unauthenticated-api" in _at(scanned, "api")


@pytest.mark.parametrize("controls, placed", [("", False), ("drift_monitoring", True),
                                              ("adversarial_input_detection", True)])
def test_detector_evasion_needs_a_detector(model_of: Model, controls: str, placed: bool) -> None:
    a = model_of(f"""\
    name: watch
    components:
      - {{id: api, kind: serving, exposure: public}}
      - {{id: mon, kind: monitoring, controls: [{controls}]}}
    flows:
      - {{from: api, to: mon}}
    """)
    assert ("aml-monitor-evasion" in _at(a, "mon")) is placed


def test_insiders_attack_an_internal_model_outsiders_cannot_query(model_of: Model) -> None:
    spec = """\
    name: internal
    components:
      - {{id: analysts, kind: client, exposure: {exposure}}}
      - {{id: fraud, kind: serving}}
    flows:
      - {{from: analysts, to: fraud}}
    """
    internal = _at(model_of(spec.format(exposure="internal")), "fraud")
    assert {"aml-insider-evasion", "aml-insider-extraction"} <= internal
    assert internal.isdisjoint({"aml-evasion-blackbox", "aml-model-extraction"})
    public = _at(model_of(spec.format(exposure="public")), "fraud")
    assert public.isdisjoint({"aml-insider-evasion", "aml-insider-extraction"})
    assert {"aml-evasion-blackbox", "aml-model-extraction"} <= public


RAG = """\
name: rag
components:
  - {{id: web, kind: client, exposure: public}}
  - {{id: pages, kind: data_source, exposure: {pages}}}
  - {{id: index, kind: retrieval_index}}
  - {{id: prompt, kind: system_prompt}}
  - {{id: app, kind: serving, exposure: public}}
  - {{id: llm, kind: hosted_model}}
  - {{id: mail, kind: agent_tool}}
flows:
  - {{from: web, to: app}}
  - {{from: pages, to: index{enters}}}
  - {{from: index, to: app}}
  - {{from: prompt, to: llm}}
  - {{from: app, to: llm}}
  - {{from: llm, to: app}}
  - {{from: llm, to: mail}}
"""


def test_rag_agent_threats_follow_the_content(model_of: Model) -> None:
    a = model_of(RAG.format(pages="public", enters=""))
    ipi = next(f for f in a.findings if f.id == "aml-llm-indirect-prompt-injection@pages")
    assert ipi.path[:2] == ("pages", "index") and "llm" in ipi.path
    assert "aml-rag-poisoning" in _at(a, "index")
    assert {"aml-agent-tool-misuse", "cls-llm-output-injection"} <= _at(a, "mail")
    assert "aml-llm-system-prompt-extraction" in _at(a, "llm")
    assert "aml-llm-output-rendering-exfiltration" in _at(a, "app")
    # pages the team writes itself: nothing outsiders wrote reaches the index
    internal = model_of(RAG.format(pages="internal", enters=""))
    assert "aml-llm-indirect-prompt-injection" not in _at(internal, "pages")
    assert "aml-rag-poisoning" not in _at(internal, "index")
    # the system prompt is what makes the prompt-extraction finding
    no_prompt = model_of(RAG.format(pages="public", enters="").replace(
        "  - {from: prompt, to: llm}\n", ""))
    assert "aml-llm-system-prompt-extraction" not in _at(no_prompt, "llm")


def test_a_flow_that_trains_does_not_feed_the_context(model_of: Model) -> None:
    a = model_of("""\
    name: tune
    components:
      - {id: forum, kind: data_source, exposure: public}
      - {id: web, kind: client, exposure: public}
      - {id: model, kind: llm}
    flows:
      - {from: forum, to: model, enters: training}
      - {from: web, to: model}
    """)
    assert "aml-llm-indirect-prompt-injection" not in _at(a, "forum")
    assert "aml-llm-indirect-prompt-injection" in _at(model_of("""\
    name: read
    components:
      - {id: forum, kind: data_source, exposure: public}
      - {id: model, kind: llm}
    flows:
      - {from: forum, to: model}
    """), "forum")


@pytest.mark.parametrize("captures, placed", [("[]", False), ("[camera]", True)])
def test_capture_attacks_need_a_sensor(model_of: Model, captures: str, placed: bool) -> None:
    a = model_of(f"""\
    name: kyc
    components:
      - {{id: phone, kind: client, exposure: public, captures: {captures}}}
      - {{id: face, kind: serving}}
    flows:
      - {{from: phone, to: face}}
    """)
    assert ("aml-capture-spoofing" in _at(a, "phone")) is placed
    assert ("aml-physical-adversarial" in _at(a, "phone")) is placed


def test_every_new_kind_is_placed_somewhere(catalog: Catalog) -> None:
    from mlthreat.vocabulary import Kind
    for kind in (Kind.hosted_model, Kind.llm, Kind.retrieval_index, Kind.agent_tool,
                 Kind.system_prompt, Kind.memory):
        assert any(kind in t.acts_at.kinds for t in catalog.threats), kind



XRAY = """\
name: xray-triage
{domain}
components:
  - {{id: radiographs, kind: data_store, personal_data: true}}
  - {{id: train, kind: training}}
  - {{id: triage_api, kind: serving, exposure: partner}}
flows:
  - {{from: radiographs, to: train}}
  - {{from: train, to: triage_api}}
"""
CREDIT_WORDS = ("applicant", "loan", "borrower", "credit", "tenure")


def test_finding_texts_use_the_specs_words(model_of: Model) -> None:
    # the case: an X-ray triage model was told about loan applicants
    named = model_of(XRAY.format(
        domain="domain: {about: patients, decides: the triage priority}"))
    texts = [f"{f.description} {f.recommendation}" for f in named.findings]
    assert not [t for t in texts if any(w in t.lower() for w in CREDIT_WORDS)]
    assert not [t for t in texts if "{" in t]
    blackbox = next(f for f in named.findings if f.id == "aml-evasion-blackbox@triage_api")
    assert "flips the triage priority" in blackbox.description
    member = next(f for f in named.findings if f.id == "aml-membership-inference@triage_api")
    assert "training data on patients" in member.description
    plain = model_of(XRAY.format(domain=""))
    member = next(f for f in plain.findings if f.id == "aml-membership-inference@triage_api")
    assert "training data on the people or cases the model judges" in member.description


def test_a_catalog_text_with_an_unknown_placeholder_is_refused(catalog: Catalog) -> None:
    from mlthreat.catalog.loader import _cross_check
    t = catalog.threat("aml-evasion-blackbox")
    broken = t.model_copy(update={"description": "flips {decision}"})
    problems = _cross_check((broken,), catalog.controls, catalog.reference_names)
    assert "threat aml-evasion-blackbox: unknown placeholder {decision}" in problems


@pytest.mark.parametrize("declared", ["controls: [label_only_output]",
                                      "probe: {data: d.csv, target: y, positive: 1, output: label}"])
def test_rounding_is_not_recommended_where_only_labels_are_returned(model_of: Model,
                                                                    declared: str) -> None:
    spec = """\
    name: labels
    components:
      - {{id: web, kind: client, exposure: public}}
      - {{id: api, kind: serving, {declared}}}
    flows:
      - {{from: web, to: api}}
    """
    bare = model_of(spec.format(declared="controls: []"))
    assert "output_rounding" in {r.control for r in bare.recommendations}
    labels = model_of(spec.format(declared=declared))
    assert "output_rounding" not in {r.control for r in labels.recommendations}
    extraction = next(f for f in labels.findings if f.id == "aml-model-extraction@api")
    assert "label_only_output" in {c.control for c in extraction.controls_present}
    assert "output_rounding" not in {c.control for c in extraction.controls_missing}


@pytest.mark.parametrize("exposure, controls, placed", [
    ("public", "", False),                    # full scores returned: nothing to leak
    ("public", "label_only_output", True),    # the team relies on restricted output
    ("public", "output_rounding", True),
    ("internal", "label_only_output", False),  # nobody outside can query it
])
def test_output_side_channels_matter_where_output_is_restricted(
        model_of: Model, exposure: str, controls: str, placed: bool) -> None:
    a = model_of(f"""\
    name: scores
    components:
      - {{id: web, kind: client, exposure: {exposure}}}
      - {{id: api, kind: serving, controls: [{controls}]}}
    flows:
      - {{from: web, to: api}}
    """)
    assert ("aml-output-side-channel" in _at(a, "api")) is placed


def test_an_attack_on_a_model_harms_that_model_not_the_next_one_downstream(
        model_of: Model) -> None:
    # A self-hosted LLM behind an API front end, and a phone that runs its own model before it
    # calls a server with another: each attack on a model lands on the model it queried.
    a = model_of("""\
    name: two-models
    components:
      - {id: users, kind: client, exposure: public}
      - {id: api, kind: serving, exposure: public}
      - {id: llm, kind: llm}
      - {id: phone, kind: edge_deployment, exposure: public, artifacts: {model: [phone.pt]}}
      - {id: server, kind: serving, artifacts: {model: [server.joblib]}}
    flows:
      - {from: users, to: api}
      - {from: api, to: llm}
      - {from: llm, to: api}
      - {from: phone, to: server}
    """)
    harm = {(f.threat_id, f.component): f.harm_at for f in a.findings}
    assert harm[("aml-model-extraction", "llm")] == "llm"
    assert harm[("aml-resource-exhaustion", "llm")] == "llm"
    assert harm[("aml-evasion-blackbox", "phone")] == "phone"
    assert harm[("aml-model-extraction", "phone")] == "phone"
    assert harm[("cls-unsafe-deserialization", "phone")] == "phone"
    assert harm[("aml-evasion-blackbox", "server")] == "server"


def test_code_from_outside_runs_where_it_is_run_and_the_own_repository_can_be_tampered(
        model_of: Model) -> None:
    # A notebook shared by a stranger runs in the team's notebook VM beside the team's own
    # repository: the stranger's code harms the VM that runs it; the team's own repository gets
    # no "code from outside", but a commit to it changes what the VM runs.
    spec = """\
    name: notebooks
    components:
      - {{id: shared, kind: code_repository, exposure: public{third}}}
      - {{id: own_repo, kind: code_repository}}
      - {{id: vm, kind: training}}
      - {{id: registry, kind: model_registry}}
    flows:
      - {{from: shared, to: vm}}
      - {{from: own_repo, to: vm}}
      - {{from: vm, to: registry}}
    """
    a = model_of(spec.format(third=", third_party: true"))
    untrusted = [f for f in a.findings if f.threat_id == "cls-untrusted-code-execution"]
    assert [(f.component, f.harm_at) for f in untrusted] == [("shared", "vm")]
    assert "cls-cicd-tampering" in _at(a, "own_repo")
    b = model_of(spec.format(third=""))       # the team's own public repository
    assert "cls-untrusted-code-execution" not in {f.threat_id for f in b.findings}
    # code_review answers it where the code comes in
    c = model_of(spec.format(third=", third_party: true, controls: [code_review]"))
    f = next(f for f in c.findings if f.threat_id == "cls-untrusted-code-execution")
    assert [u.control for u in f.controls_present] == ["code_review"]
    assert f.likelihood < untrusted[0].likelihood


@pytest.mark.parametrize("exposure, controls, placed", [
    ("public", "", True), ("internal", "", False), ("public", ", controls: [authentication]", False)])
def test_an_exposed_compute_cluster_answers_anyone(model_of: Model, exposure: str,
                                                  controls: str, placed: bool) -> None:
    # Ray's job API or a Jupyter server reachable from the internet runs any code it is sent
    a = model_of(f"""\
    name: cluster
    components:
      - {{id: cluster, kind: training, exposure: {exposure}{controls}}}
      - {{id: data, kind: data_store}}
    flows:
      - {{from: data, to: cluster}}
    """)
    assert ("cls-unauthenticated-api" in _at(a, "cluster")) is placed
    assert ("cls-public-app-exploit" in _at(a, "cluster")) is (exposure == "public")
