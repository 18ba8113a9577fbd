"""`mlthreat probe` and `mlthreat assess` on the reference case; flagged models are refused."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from mlthreat import cli
from tests.conftest import EXAMPLES
from tests.scanners.conftest import Payload

CREDIT = str(EXAMPLES / "credit-scoring" / "pipeline.yaml")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_probe_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["probe", CREDIT, "--only", "poisoning,evasion", "--budget", "quick",
                         "-f", "json"], capsys)
    assert code == 0
    (run,) = json.loads(out)
    assert run["component"] == "scoring_api"
    (ev,) = run["evidence"]
    assert ev["source"] == "probe:poisoning" and ev["artifact"] == "models/credit_model.joblib"
    assert [s["probe"] for s in run["skipped"]] == ["evasion"]
    assert "needs gradients" in run["skipped"][0]["why"]


def test_assess_attaches_probe_evidence_along_paths(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["assess", CREDIT, "--only", "poisoning", "--budget", "quick",
                         "-f", "json"], capsys)
    assert code == 0
    data = json.loads(out)
    poisoned = [f for f in data["findings"] if any(e["source"] == "probe:poisoning"
                                                  for e in f["evidence"])]
    # Poisoning enters at the feedback form and the partner feed, and travels through the
    # probed scoring API: the evidence reaches those findings, placed where the attacker acts.
    assert {f["component"] for f in poisoned} >= {"corrections"}
    assert all("scoring_api" in f["path"] for f in poisoned)
    assert not any("probe skipped" in w for w in data["warnings"])   # only poisoning was asked


def test_flagged_model_is_never_probed(tmp_path: Path, marker: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "case"
    shutil.copytree(EXAMPLES / "credit-scoring", folder)
    (folder / "models" / "credit_model.joblib").write_bytes(pickle.dumps(Payload(marker)))
    code, _, err = _run(["probe", str(folder / "pipeline.yaml"), "--budget", "quick",
                         "--trust"], capsys)
    assert code == 2 and "never unpickles a flagged file" in err
    assert not marker.exists()


def test_probe_needs_probe_blocks(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["probe", str(EXAMPLES / "mobile-app" / "pipeline.yaml")], capsys)
    assert code == 2 and "no component has a `probe` block" in err
