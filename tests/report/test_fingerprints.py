"""SARIF `partialFingerprints` are how code-scanning services recognise an alert from one run
to the next: if they change, every open alert is closed and opened again as new, and every
dismissal a team made is lost. These values are pinned as literals (taken from release 0.1),
so that moving code or renaming fields cannot change them unnoticed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlthreat.analysis import Assessment
from mlthreat.cli import main
from mlthreat.report import sarif
from tests.conftest import EXAMPLES

# finding id (threat@component) -> mlthreatFinding/v1, as release 0.1 wrote them
MODEL_PINS = {
    ("aml-evasion-whitebox", "mobile_app"): "fda39bb6a16f36e23215fd4e0b6567b1",
    ("aml-model-extraction", "mobile_app"): "0a957ac66ebbcec878727e4ce6e03a1f",
    ("aml-model-extraction", "scoring_api"): "3f08afa478acd31874ce9f93475edd0b",
    ("cls-edge-model-theft", "mobile_app"): "e9c34296884631beea778cc214c5693c",
}

# `mlthreat scan .` in examples/credit-scoring: (rule, uri) -> mlthreatScan/v1
SCAN_PINS = {
    ("SRV-NO-RATE-LIMIT", "serving/app.py"): "13588c432a3776dd9cfcce989ff4cd80",
    ("SRV-PICKLE-LOAD", "serving/app.py"): "cb19f432e1258413fc92e195fd2d4265",
    ("SRV-FULL-SCORES", "serving/app.py"): "f92356673f434fa0b28aaf2e3aa2b13c",
    ("SRV-NO-AUTH", "serving/app.py"): "a3911f91ba64dd56ede7496eaa0791ef",
    ("SRV-BIND-ALL", "serving/app.py"): "1d8f982cbbbc85f2e300656b465ed62f",
}


def test_threat_model_fingerprints_are_stable(credit: Assessment) -> None:
    results = json.loads(sarif.render(credit))["runs"][0]["results"]
    seen = {(r["ruleId"], r["locations"][0]["logicalLocations"][0]["name"]):
            r["partialFingerprints"]["mlthreatFinding/v1"] for r in results}
    for key, pin in MODEL_PINS.items():
        assert seen[key] == pin, key
    assert len(set(seen.values())) == len(results)      # no two alerts share an identity


def test_scan_fingerprints_are_stable(capsys: pytest.CaptureFixture[str]) -> None:
    here = Path.cwd()
    os.chdir(EXAMPLES / "credit-scoring")
    try:
        assert main(["scan", ".", "--only", "serving", "-f", "sarif"]) == 0
    finally:
        os.chdir(here)
    results = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    seen = {(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]):
            r["partialFingerprints"]["mlthreatScan/v1"] for r in results}
    assert seen == SCAN_PINS
