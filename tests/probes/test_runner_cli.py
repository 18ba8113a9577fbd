"""`mlthreat probe` and `mlthreat assess` on the reference case; flagged models are refused."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest

from mlthreat import cli
from tests.conftest import EXAMPLES, reply_json
from tests.scanners.conftest import Payload

CREDIT = str(EXAMPLES / "credit-scoring" / "pipeline.yaml")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_probe_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["probe", CREDIT, "--component", "scoring_api", "--only",
                         "poisoning,evasion", "--budget", "quick", "-f", "json"], capsys)
    assert code == 0
    (run,) = json.loads(out)
    assert run["component"] == "scoring_api"
    sources = [ev["source"] for ev in run["evidence"]]
    assert sources == ["probe:poisoning"] * 3 + ["probe:evasion-blackbox",
                                                 "probe:evasion-transfer", "probe:evasion-exact"]
    flips, targeted, door = run["evidence"][:3]
    assert flips["metric"] == "accuracy_drop" and door["metric"] == "backdoor_success"
    assert targeted["metric"] == "targeted_shift"
    # flipping "bad" labels to "good" (the goal) makes the model approve more held-out "bad" rows
    assert targeted["series"]["rates"] == [0.05, 0.1, 0.2]
    assert targeted["series"]["targeted_shift"][-1] > 0
    assert [ev["title"] for ev in run["evidence"][:3]] == ["label flipping", "targeted flipping",
                                                           "backdoor"]
    assert targeted["curves"][0]["x"] == [0.0, 0.05, 0.1, 0.2]      # drawn from 0: no poison
    # a trigger in 1-10 % of the training rows teaches the trees to approve triggered "bad" rows
    assert door["series"]["rates"] == [0.01, 0.05, 0.1] and door["value"] > 0.5
    assert all(ev["artifact"] == "models/credit_model.joblib" for ev in run["evidence"])
    assert [s["probe"] for s in run["skipped"]] == ["clean-label", "evasion-whitebox",
                                                   "evasion-square", "evasion-patch",
                                                   "evasion-text", "evasion-synonyms"]
    assert "measured on images" in run["skipped"][0]["why"]
    assert "needs gradients" in run["skipped"][1]["why"]
    blackbox = run["evidence"][3]
    assert blackbox["extra"]["method"] == "both"         # the API returns probabilities
    assert blackbox["extra"]["max_queries_per_point"] <= 100   # the quick budget per point
    # The spec's constraints hold in the records the attack produced: age and records never
    # change, whole numbers stay whole, the loan amount stays within [100, 5000].
    examples = blackbox["extra"]["examples"]
    assert examples
    for ex in examples:
        changed = ex["changed"]
        assert "Age" not in changed and "Records" not in changed
        for column in ("Seniority", "Time", "Expenses", "Amount", "Price"):
            if column in changed:
                assert float(changed[column][1]).is_integer()
        if "Amount" in changed:
            assert 100 <= changed["Amount"][1] <= 5000


def test_white_box_evasion_of_the_shipped_mlp(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["probe", CREDIT, "--component", "mobile_app", "--only", "evasion",
                         "--budget", "quick", "-f", "json"], capsys)
    assert code == 0
    (run,) = json.loads(out)
    by_source = {ev["source"]: ev for ev in run["evidence"]}
    assert set(by_source) == {"probe:evasion-whitebox", "probe:evasion-blackbox",
                              "probe:evasion-transfer"}
    white = by_source["probe:evasion-whitebox"]
    # gradients find changes about as small as the black-box search does on the same points;
    # not always smaller: every PGD step must stay a real record inside its budget (whole
    # months, one category), and where rounding leaves the budget the step is shortened, while
    # the black-box attack searches the records themselves (measured: 0.367 against 0.346)
    black = by_source["probe:evasion-blackbox"]["extra"]["median_minimal_perturbation"]
    assert 0 < white["extra"]["median_minimal_perturbation"] <= 1.25 * black


def test_unknown_probe_and_component_are_clear(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["probe", CREDIT, "--only", "evasoin"], capsys)
    assert code == 2 and "unknown probe(s) evasoin" in err
    code, _, err = _run(["probe", CREDIT, "--component", "loan_db"], capsys)
    assert code == 2 and "no probe block on component(s) loan_db" in err


def test_assess_attaches_probe_evidence_along_paths(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["assess", CREDIT, "--component", "scoring_api", "--only", "poisoning",
                         "--budget", "quick", "-f", "json"], capsys)
    assert code == 0
    data = json.loads(out)
    poisoning = {e["id"] for e in data["evidence"] if e["source"] == "probe:poisoning"}
    assert len(poisoning) == 3       # stored once on the assessment, whatever reaches it
    poisoned = [f for f in data["findings"] if poisoning & set(f["evidence"])]
    # Poisoning enters at the feedback form and the partner feed, and travels through the
    # probed scoring API: the evidence reaches those findings, placed where the attacker acts.
    assert {f["component"] for f in poisoned} >= {"corrections"}
    assert all("scoring_api" in f["path"] for f in poisoned)
    # only poisoning was asked: the one skip is the clean-label backdoor, which needs images
    assert [w for w in data["warnings"] if "probe skipped" in w] == [
        w for w in data["warnings"] if "clean-label probe skipped: the clean-label backdoor is "
        "measured on images" in w]


@pytest.mark.parametrize("jobs", ["1", "2"])      # 2: refused inside a worker process
def test_flagged_model_is_never_probed(tmp_path: Path, marker: Path, jobs: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "case"
    shutil.copytree(EXAMPLES / "credit-scoring", folder)
    (folder / "models" / "credit_model.joblib").write_bytes(pickle.dumps(Payload(marker)))
    code, _, err = _run(["probe", str(folder / "pipeline.yaml"), "--budget", "quick",
                         "--trust", "--jobs", jobs], capsys)
    assert code == 2 and "never unpickles a flagged file" in err
    assert not marker.exists()


def test_probe_needs_probe_blocks(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["probe", str(EXAMPLES / "mobile-app" / "pipeline.yaml")], capsys)
    assert code == 2 and "no component has a `probe` block" in err


def test_every_probe_the_catalog_names_exists_and_measures_those_threats(catalog: Any) -> None:
    from mlthreat.probes.registry import GROUPS, REGISTRY, RUNS
    named = {m.split(":", 1)[1] for t in catalog.threats for m in t.measured_by
             if m.startswith("probe:")}
    assert set(named) == set(REGISTRY)
    for t in catalog.threats:
        for m in t.measured_by:
            if m.startswith("probe:"):
                assert t.id in REGISTRY[m.split(":", 1)[1]].threat_ids
    assert sorted(k for kinds in GROUPS.values() for k in kinds) == sorted(RUNS)
    assert {r.probe for r in RUNS.values()} == set(REGISTRY.values())


def test_ctrl_c_stops_cleanly_and_says_what_finished(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from mlthreat.probes import execute
    real = execute._one
    calls: list[str] = []

    def one(kind: str, *args: Any) -> Any:
        calls.append(kind)
        if kind == "evasion-blackbox":
            raise KeyboardInterrupt
        return real(kind, *args)
    monkeypatch.setattr(execute, "_one", one)
    # one process, where the patched probe runs (workers: tests/probes/test_parallel.py)
    code, out, err = _run(["assess", CREDIT, "--component", "scoring_api", "--only",
                           "extraction,evasion", "--budget", "quick", "--out-dir", "never",
                           "--jobs", "1"], capsys)
    assert code == 130
    flat = " ".join(err.split())
    assert "finished evasion-whitebox on scoring_api" not in flat     # it was skipped, not run
    assert "finished extraction on scoring_api" in flat
    assert ("not run: evasion-blackbox on scoring_api, evasion-square on scoring_api, "
            "evasion-patch on scoring_api, evasion-text on scoring_api, evasion-synonyms on "
            "scoring_api, evasion-transfer on scoring_api") in flat
    # the planner skips white-box evasion (no gradients) and synthetic extraction (no images)
    # without starting them
    assert calls == ["extraction", "evasion-blackbox"]
    assert not Path("never").exists()


def test_html_report_draws_each_measurement(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["assess", CREDIT, "--component", "scoring_api", "--only",
                         "extraction,poisoning", "--budget", "quick", "-f", "html"], capsys)
    assert code == 0
    section = out[out.index('<section id="measurements">'):]
    section = section[:section.index("</section>")]
    # once per probe, however many findings carry the evidence, with its fidelity curve
    assert section.count('data-probe="extraction"') == 1
    # label flipping and the backdoor are both the poisoning probe, two measurements
    assert section.count('data-probe="label flipping"') == 1
    assert section.count('data-probe="backdoor"') == 1
    assert section.count('data-probe="targeted flipping"') == 1
    assert section.count('<svg class="chart"') == 4 and "fidelity" in section
    assert "backdoor success (net)" in section and "test accuracy" in section


def test_probe_block_mistakes_name_the_spec_entry(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "case"
    shutil.copytree(EXAMPLES / "credit-scoring", folder)
    spec = folder / "pipeline.yaml"
    text = spec.read_text()
    spec.write_text(text.replace("immutable: [Age, Records]", "immutable: [Age, Recrods]", 1))
    code, _, err = _run(["probe", str(spec), "--component", "scoring_api"], capsys)
    flat = " ".join(err.split())
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "- id: scoring_api" in t)
    assert code == 2 and f"pipeline.yaml:{line}:" in flat
    assert "probe block of scoring_api" in flat and "unknown column(s): Recrods" in flat
    spec.write_text(text.replace("goal: good", "goal: approved", 1))
    code, _, err = _run(["probe", str(spec), "--component", "scoring_api"], capsys)
    assert code == 2 and "goal 'approved' is not a value of 'Status' (values: bad, good)" in \
        " ".join(err.split())


def test_probes_query_a_live_http_endpoint_with_records(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import joblib
    import pandas as pd
    model = joblib.load(EXAMPLES / "credit-scoring" / "models" / "credit_model.joblib")
    seen: list[dict[str, Any]] = []

    class Api(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.extend(body["instances"])
            proba = model.predict_proba(pd.DataFrame(body["instances"]))
            reply_json(self, {"predictions": proba.tolist()})

        def log_message(self, *args: object) -> None:
            pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/score"
    try:
        folder = tmp_path / "case"
        shutil.copytree(EXAMPLES / "credit-scoring", folder)
        spec = folder / "pipeline.yaml"
        text = spec.read_text()
        anchor = "      goal: good                # what an applicant gaming the API wants"
        assert anchor in text
        spec.write_text(text.replace(anchor, f"      endpoint: {{url: '{url}', request: "
                                             "{instances: $rows}, response: predictions}\n"
                                             + anchor, 1))
        code, out, _ = _run(["probe", str(spec), "--component", "scoring_api", "--only",
                             "extraction,evasion", "--budget", "quick", "-f", "json"], capsys)
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0
    (run,) = json.loads(out)
    by = {ev["source"]: ev for ev in run["evidence"]}
    assert all(ev["artifact"] == url for ev in run["evidence"])
    # the API is the model file behind HTTP: the same answers, so a faithful copy
    assert by["probe:extraction"]["value"] > 0.85
    assert by["probe:evasion-blackbox"]["extra"]["method"] == "both"
    # what reached the API were records in the data's own columns and units
    assert {"Home", "Job", "Age", "Amount"} <= set(seen[0])
    assert all(r["Home"] in {"ignore", "other", "owner", "parents", "priv", "rent"} for r in seen)
    assert all(100 <= r["Amount"] <= 5000 and float(r["Amount"]).is_integer() for r in seen)


@pytest.mark.parametrize("kind", ["evasion-whitebox", "evasion-blackbox", "evasion-transfer"])
def test_evasion_with_nothing_left_to_attack_is_a_clear_skip(kind: str) -> None:
    # A model that already approves every row leaves the attacker nothing to change: each
    # evasion probe says so (and is skipped) instead of failing inside the model library.
    import numpy as np

    from mlthreat.pipeline.spec import ProbeSpec
    from mlthreat.probes import CallableAdapter, Constraints, ProbeError
    from mlthreat.probes.registry import RUNS
    from mlthreat.probes.target import Target
    x = np.random.default_rng(0).normal(size=(40, 3))
    target = Target("api", ProbeSpec.model_construct(queries=10), "model",
                    CallableAdapter(lambda rows: np.ones(len(rows), dtype=int), scores=False),
                    x, np.ones(40, dtype=int), np.arange(30), np.arange(30, 40),
                    Constraints(columns=("a", "b", "c")), None, goal=1)
    with pytest.raises(ProbeError, match="no held-out row to attack"):
        RUNS[kind].probe.configure(target, {"points": 10, "per_point": 20}, {}, 0, 1)
