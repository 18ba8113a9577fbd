"""The command line: exit codes 0/1/2/3, files never overwritten silently, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from rich.console import Console

from mlthreat import assessor, cli
from mlthreat.results import Assessment
from tests.conftest import EXAMPLES
from tests.pipeline.test_loader import MISTAKES

CREDIT = str(EXAMPLES / "credit-scoring" / "pipeline.yaml")
SAFE = """\
name: safe
components:
  - {id: archive, kind: data_store, exposure: offline,
     controls: [access_control, network_isolation, encryption_at_rest]}
"""


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_good_and_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["validate", CREDIT], capsys)
    assert code == 0 and "14 components" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncomponents:\n  - id: a\n    kind: servng\n")
    code, out, err = run(["validate", str(bad)], capsys)
    assert code == 2
    assert f"{bad}:4:11: 'servng' is not a valid kind" in err
    assert "Traceback" not in err + out


def test_model_fail_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["model", CREDIT], capsys)[0] == 0                       # no threshold
    code, _, err = run(["model", CREDIT, "--fail-on", "critical"], capsys)
    assert code == 1 and "at or above critical" in err
    safe = tmp_path / "safe.yaml"
    safe.write_text(SAFE)
    assert run(["model", str(safe), "--fail-on", "medium"], capsys)[0] == 0
    assert run(["model", str(safe), "--fail-on", "low"], capsys)[0] == 1


def test_model_json_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["model", CREDIT, "-f", "json"], capsys)
    assert code == 0
    assert json.loads(out)["pipeline_name"] == "credit-scoring"


def test_output_never_overwritten_without_force(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "report.html"
    target.write_text("my notes")
    code, _, err = run(["model", CREDIT, "-f", "html", "-o", str(target)], capsys)
    assert code == 2 and "not overwritten" in err
    assert target.read_text() == "my notes"
    code, _, _ = run(["model", CREDIT, "-f", "html", "-o", str(target), "--force"], capsys)
    assert code == 0 and target.read_text().startswith("<!DOCTYPE html>")


def test_out_dir_writes_every_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["model", CREDIT, "--out-dir", str(tmp_path)], capsys)
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "threat-model.html", "threat-model.json", "threat-model.md", "threat-model.sarif"]


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["model", CREDIT, "-o", "x.json"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        cli.main(["model", CREDIT, "--fail-on", "severe"])
    assert info.value.code == 2


def test_tool_failure_exit_3(monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("kaput")
    monkeypatch.setattr(assessor, "score", boom)
    code, out, err = run(["model", CREDIT], capsys)
    assert code == 3 and "RuntimeError: kaput" in err and "Traceback" not in err
    code, out, err = run(["--debug", "model", CREDIT], capsys)
    assert code == 3 and "Traceback" in err


def test_schema_validates_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["schema"], capsys)
    schema = json.loads(out)
    assert code == 0
    for spec in EXAMPLES.glob("*/pipeline.yaml"):
        jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(spec.read_text()))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(
            {"name": "x", "components": [{"id": "a", "kind": "servng"}]})


def test_catalog_listing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["catalog", "--family", "aml", "-f", "json"], capsys)
    items = json.loads(out)
    assert code == 0 and len(items) >= 20 and {i["family"] for i in items} == {"aml"}
    code, out, _ = run(["catalog", "--controls", "-f", "json"], capsys)
    assert any(c["id"] == "human_review" and c["incidental"] for c in json.loads(out))


def test_demo_writes_reports_and_protects_other_folders(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
        ) -> None:
    out_dir = tmp_path / "demo"
    made: list[Assessment] = []
    real = assessor.Assessor.assess
    monkeypatch.setattr(assessor.Assessor, "assess",
                        lambda self, *a, **k: made.append(real(self, *a, **k)) or made[-1])
    assert run(["demo", "--out", str(out_dir)], capsys)[0] == 0
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == [".mlthreat-demo", "team-view.html", "team-view.md", "threat-model.html",
                     "threat-model.json", "threat-model.md", "threat-model.sarif"]
    data = json.loads((out_dir / "threat-model.json").read_text())
    gaps = {g["kind"] for r in data["perception"] for g in r["gaps"]}
    assert {"misattributed_defense", "externalised_responsibility", "attacker_doubt",
            "overconfidence", "unnoticed_incidental", "linked_concepts"} <= gaps
    assert "Perception gaps: p03" in (out_dir / "threat-model.md").read_text()
    _demo_matches_the_examples_doc(data)
    # a rerun into its own folder is fine (its assessment is the first one again: what is
    # tested here is the folder, and the demo's minute of probes need not run twice)
    monkeypatch.setattr(assessor.Assessor, "assess", lambda self, *a, **k: made[0])
    assert run(["demo", "--out", str(out_dir)], capsys)[0] == 0
    assert json.loads((out_dir / "threat-model.json").read_text()) == data
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    code, _, err = run(["demo", "--out", str(mine)], capsys)
    assert code == 2 and "not written by `mlthreat demo`" in err
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_console_script_entry_point(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "mlthreat"
    proc = subprocess.run([str(exe), "validate", str(tmp_path / "missing.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "file not found" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_every_spec_mistake_exits_2_with_location(
        mistake: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, where, fragments = MISTAKES[mistake]
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    for command in (["validate", str(spec)], ["model", str(spec)]):
        code, out, err = run(command, capsys)
        assert code == 2
        assert f"{spec}:{where}:" in err and fragments[0] in err
        assert "Traceback" not in out + err


def test_overwrite_asks_at_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "tm.json"
    target.write_text("mine")
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    answers = iter(["n", "y"])
    monkeypatch.setattr(Console, "input", lambda self, prompt="": next(answers))
    assert run(["model", CREDIT, "-f", "json", "-o", str(target)], capsys)[0] == 2
    assert target.read_text() == "mine"
    assert run(["model", CREDIT, "-f", "json", "-o", str(target)], capsys)[0] == 0
    assert json.loads(target.read_text())["pipeline_name"] == "credit-scoring"


# what docs/examples.md says each example respondent shows (its sentence, the gap kind)
EXAMPLE_CLAIMS = {
    "p01": ("p01 mingles the families", "misattributed_defense"),
    "p02": ("p02 pushes security to other teams", "externalised_responsibility"),
    "p03": ("p03 doubts an attacker would gain anything", "attacker_doubt"),
    "p04": ("p04 believes in defenses the spec", "overconfidence"),
    "p05": ("p05 does not see the defenses the team runs", "unnoticed_incidental"),
    "p06": ("p06 links model stealing", "linked_concepts"),
    "p07": ("p07 is calibrated (no gaps)", None),
}


def _demo_matches_the_examples_doc(data: dict[str, object]) -> None:
    doc = " ".join((Path(__file__).parents[1] / "docs" / "examples.md").read_text().split())
    kinds = {r["respondent"]: {g["kind"] for g in r["gaps"]}   # type: ignore[index]
             for r in data["perception"]}                      # type: ignore[attr-defined]
    for who, (sentence, kind) in EXAMPLE_CLAIMS.items():
        assert sentence in doc, f"docs/examples.md no longer says {sentence!r}"
        if kind is None:   # observations (linked concepts) are not gaps
            assert kinds[who] <= {"linked_concepts"}, (who, kinds[who])
        else:
            assert kind in kinds[who], (who, kinds[who])


def test_scan_summary_never_cuts_a_place_and_groups_repeats() -> None:
    from mlthreat.cli.terminal import scan_summary
    from mlthreat.scanners import ScanReport
    from mlthreat.scanners.interface import ScanFinding
    deep = "services/payments/fraud-model/serving/handlers"
    same = [ScanFinding("serving", "SRV-NO-AUTH", "cls-unauthenticated-api", "classical",
                        "high", f"{deep}/api_{n}.py", 10 + n, "route has no authentication")
            for n in range(3)]
    worst = ScanFinding("modelfile", "MF-PICKLE-CODE_EXECUTION", "cls-unsafe-deserialization",
                        "classical", "critical", f"{deep}/weights/model.pkl", None,
                        "loading this file calls os.system")
    report = ScanReport(["."], ["serving", "modelfile"], [*same, worst], files=4)

    def shown(width: int) -> str:
        console = Console(width=width, record=True)
        for part in scan_summary(report, width):
            console.print(part)
        return console.export_text()
    narrow = shown(80)
    for f in [*same, worst]:
        assert f.where in narrow                      # whole, on one line
    assert narrow.index("MF-PICKLE-CODE_EXECUTION") < narrow.index("SRV-NO-AUTH")
    assert narrow.count("route has no authentication") == 1     # one entry, three places
    wide = shown(300)
    assert "┃ rule" in wide and "(+2 more:" in wide and f"{deep}/api_0.py:10" in wide
    assert wide.index("critical") < wide.index(" high ")
