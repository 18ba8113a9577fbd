"""The catalog: sizes the issue asks for, schema checks, and references against MITRE ATLAS."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from mlthreat.catalog import Catalog
from mlthreat.catalog.loader import REFERENCE_SCHEMES, _cross_check
from mlthreat.catalog.schema import Control, Threat
from mlthreat.vocabulary import Family
from tests.conftest import ATLAS_YAML


def test_sizes_and_families(catalog: Catalog) -> None:
    aml = catalog.by_family(Family.aml)
    classical = catalog.by_family(Family.classical)
    assert len(catalog.threats) >= 35
    assert len(aml) >= 20
    assert len(classical) >= 15
    assert len(catalog.controls) >= 25
    assert all(t.id.startswith("aml-") for t in aml)
    assert all(t.id.startswith("cls-") for t in classical)


@pytest.mark.parametrize("threat_id", [
    "aml-evasion-whitebox", "aml-evasion-blackbox", "aml-poisoning-label-flip",
    "aml-poisoning-clean-label", "aml-poisoning-availability", "aml-backdoor-data",
    "aml-backdoor-pretrained", "aml-feedback-loop-manipulation", "aml-model-extraction",
    "aml-membership-inference", "aml-attribute-inference", "aml-training-data-reconstruction",
    "aml-resource-exhaustion", "aml-evasion-transfer", "cls-unsafe-deserialization",
    "cls-secrets-in-code", "cls-data-store-breach", "cls-registry-breach", "cls-code-breach",
    "cls-unauthenticated-api", "cls-missing-rate-limiting", "cls-dependency-supply-chain",
    "cls-cicd-tampering", "cls-insecure-transport", "cls-misconfigured-storage",
    "cls-inference-over-logging", "cls-insider-labeling",
])
def test_issue_threats_present(catalog: Catalog, threat_id: str) -> None:
    assert catalog.threat(threat_id).id == threat_id


@pytest.mark.parametrize("control_id", [
    "human_review", "retraining", "drift_monitoring", "label_only_output", "output_rounding",
    "ensembles", "input_normalization", "data_validation",
])
def test_incidental_controls(catalog: Catalog, control_id: str) -> None:
    control = catalog.control(control_id)
    assert control is not None and control.incidental


def test_every_threat_has_mitigations_and_references(catalog: Catalog) -> None:
    for t in catalog.threats:
        assert catalog.mitigations(t.id), t.id
        refs = t.references
        assert refs.atlas or refs.cwe or refs.owasp_ml, t.id
        if t.family == Family.classical and t.id != "cls-insecure-transport":
            assert refs.cwe, f"{t.id} should cite a CWE"


def test_aliases_resolve_to_their_control(catalog: Catalog) -> None:
    assert catalog.control("rate_limit").id == "rate_limiting"  # type: ignore[union-attr]
    assert catalog.control("human_in_the_loop").id == "human_review"  # type: ignore[union-attr]
    assert catalog.control("no_such_thing") is None
    assert catalog.suggest_control("rate_limting") == "rate_limiting"


@pytest.mark.skipif(not ATLAS_YAML.exists(), reason="shared/reference/atlas/ATLAS.yaml not present")
def test_atlas_ids_exist_with_the_names_we_carry(catalog: Catalog) -> None:
    atlas = yaml.safe_load(ATLAS_YAML.read_text(encoding="utf-8"))
    matrix = atlas["matrices"][0]
    names = {t["id"]: t["name"] for t in matrix["techniques"] + matrix["mitigations"]}
    parent = {t["id"]: t.get("subtechnique-of") for t in matrix["techniques"]}
    cited = {i for t in catalog.threats for i in t.references.atlas}
    cited |= {i for c in catalog.controls for i in c.references.atlas}
    assert cited, "the catalog cites ATLAS"
    for atlas_id in sorted(cited):
        assert atlas_id in names, f"{atlas_id} is not in MITRE ATLAS {atlas['version']}"
        expected = names[atlas_id]
        if parent.get(atlas_id):
            expected = f"{names[parent[atlas_id]]}: {expected}"
        assert catalog.reference_name("atlas", atlas_id) == expected
    assert catalog.atlas_version == atlas["version"]


def test_package_names_every_cited_reference(catalog: Catalog) -> None:
    # Works without ATLAS.yaml: the package carries its own id -> name table.
    for t in catalog.threats:
        for scheme in REFERENCE_SCHEMES:
            for ref in getattr(t.references, scheme):
                assert catalog.reference_name(scheme, ref), (t.id, ref)


def _threat(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "aml-x", "name": "x", "family": "aml", "goal": "integrity",
        "asset": "model", "attacker": "external", "acts_at": {"kinds": ["serving"]},
        "likelihood": 3, "impact": 3, "description": "d", "recommendation": "r",
        "references": {"atlas": ["AML.T0015"]},
    }
    base.update(changes)
    return base


@pytest.mark.parametrize("changes, fragment", [
    ({"acts_at": {"kinds": ["servng"]}}, "acts_at.kinds"),
    ({"likelihood": 6}, "likelihood"),
    ({"references": {"atlas": ["T0015"]}}, "not a MITRE ATLAS id"),
    ({"references": {"cwe": ["502"]}}, "not a CWE id"),
    ({"references": {"nist": "magic"}}, "unknown NIST"),
    ({"id": "evasion"}, "start with"),
    ({"condition": "component.exposure == 'public'"}, "condition"),  # no code-as-strings
])
def test_schema_rejects_bad_threats(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        Threat.model_validate(_threat(**changes))
    assert fragment in str(info.value)


def test_cross_check_finds_inconsistencies() -> None:
    threat = Threat.model_validate(_threat())
    wrong_family = Threat.model_validate(_threat(id="cls-y", family="aml"))
    control = Control.model_validate({
        "id": "c", "name": "c", "family": "aml", "description": "d",
        "mitigates": {"aml-missing": "weak"}})
    problems = _cross_check((threat, wrong_family), (control,), {"atlas": {"AML.T0015": "Evade"}})
    text = "\n".join(problems)
    assert "mitigates unknown threat aml-missing" in text
    assert "cls-y: id prefix does not match family" in text
    assert "threat aml-x has no mitigating control" in text
