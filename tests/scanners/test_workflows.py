"""GitHub Actions workflows: each rule on a workflow written to have it, and silence on the safe
variant of the same workflow (the change a reviewer would make)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlthreat.scanners import scan_paths
from mlthreat.scanners.workflows import WorkflowScanner, scan_workflow

PRT_DEPLOY = """\
name: preview
on:
  pull_request_target:
    branches: [main]
jobs:
  preview:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: pip install -e . && python train.py
        env:
          AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_SECRET_ACCESS_KEY }}
"""


def _write(tmp_path: Path, text: str, name: str = "ci.yml") -> Path:
    path = tmp_path / ".github" / "workflows" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _rules(path: Path) -> list[tuple[str, str, int | None]]:
    return [(f.rule, f.severity, f.line) for f in scan_workflow(path)]


def test_pull_request_target_running_the_fork_with_secrets_is_critical(tmp_path: Path) -> None:
    found = _rules(_write(tmp_path, PRT_DEPLOY))
    # line 11 is the checkout's `ref:` naming the pull request's head
    assert ("CI-UNTRUSTED-CHECKOUT", "critical", 11) in found


def test_the_same_workflow_on_its_own_base_code_is_quiet(tmp_path: Path) -> None:
    safe = PRT_DEPLOY.replace("        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n",
                              "")
    assert safe != PRT_DEPLOY
    assert _rules(_write(tmp_path, safe)) == []
    # under `pull_request` a fork gets no secrets: checking out its head is what CI is for
    plain = PRT_DEPLOY.replace("pull_request_target", "pull_request")
    assert _rules(_write(tmp_path, plain, "plain.yml")) == []


def test_read_only_token_and_no_secrets_is_not_reported(tmp_path: Path) -> None:
    text = PRT_DEPLOY.replace("    runs-on: ubuntu-latest\n",
                              "    runs-on: ubuntu-latest\n    permissions:\n      contents: read\n")
    text = text.replace("        env:\n          AWS_SECRET_ACCESS_KEY: "
                        "${{ secrets.AWS_SECRET_ACCESS_KEY }}\n", "")
    assert "secrets." not in text
    assert _rules(_write(tmp_path, text)) == []
    # the same without the permissions block: the default token can write, so it stays high
    loose = text.replace("    permissions:\n      contents: read\n", "")
    assert [r[:2] for r in _rules(_write(tmp_path, loose, "loose.yml"))] == \
        [("CI-UNTRUSTED-CHECKOUT", "high")]


def test_comment_triggered_checkout_of_the_pull_request_ref(tmp_path: Path) -> None:
    text = """\
on:
  issue_comment:
    types: [created]
jobs:
  bench:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          ref: refs/pull/${{ github.event.issue.number }}/head
      - run: python bench.py
        env:
          HF_TOKEN: ${{ secrets.HF_TOKEN }}
"""
    assert ("CI-UNTRUSTED-CHECKOUT", "critical", 10) in _rules(_write(tmp_path, text))


def test_script_injection_only_where_the_workflow_is_privileged(tmp_path: Path) -> None:
    text = """\
on: issues
jobs:
  triage:
    runs-on: ubuntu-latest
    steps:
      - name: label
        run: |
          echo "triaging"
          echo "${{ github.event.issue.title }}" | ./label.sh
"""
    found = _rules(_write(tmp_path, text))
    assert ("CI-SCRIPT-INJECTION", "high", 9) in found
    # through an environment variable the title is data, not script
    safe = text.replace('echo "${{ github.event.issue.title }}"', 'echo "$TITLE"').replace(
        "        run: |", "        env:\n          TITLE: ${{ github.event.issue.title }}\n"
        "        run: |")
    assert _rules(_write(tmp_path, safe, "safe.yml")) == []
    # on `push` only people with write access choose a commit message: not reported
    push = text.replace("on: issues", "on: push").replace("issue.title", "head_commit.message")
    assert _rules(_write(tmp_path, push, "push.yml")) == []


def test_github_script_injection(tmp_path: Path) -> None:
    text = """\
on: [pull_request_target]
jobs:
  greet:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/github-script@v7
        with:
          script: |
            const title = "${{ github.event.pull_request.title }}";
"""
    assert ("CI-SCRIPT-INJECTION", "high", 9) in _rules(_write(tmp_path, text))


def test_secrets_printed_to_the_log_but_not_written_to_files(tmp_path: Path) -> None:
    text = """\
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    env:
      TOKEN: ${{ secrets.REGISTRY_TOKEN }}
    steps:
      - run: |
          echo "token is $TOKEN"
          echo "${{ secrets.REGISTRY_TOKEN }}" > ~/.token
          echo "${{ secrets.REGISTRY_TOKEN }}" | docker login --password-stdin
          echo "ok ${{ secrets.GITHUB_TOKEN }}"
      - run: echo '${{ toJSON(secrets) }}' > all.json
"""
    found = _rules(_write(tmp_path, text))
    assert ("CI-SECRET-IN-LOG", "medium", 9) in found
    assert ("CI-SECRET-IN-LOG", "high", 13) in found
    assert not any(r[2] in (10, 11, 12) for r in found)


def test_deploy_on_any_branch_and_its_guards(tmp_path: Path) -> None:
    text = """\
on: push
jobs:
  deploy-model:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: python train.py && python register.py
        env:
          MLFLOW_TRACKING_PASSWORD: ${{ secrets.MLFLOW_PASSWORD }}
"""
    assert ("CI-DEPLOY-ANY-BRANCH", "medium", 3) in _rules(_write(tmp_path, text))
    main_only = text.replace("on: push", "on:\n  push:\n    branches: [main]")
    assert _rules(_write(tmp_path, main_only, "main.yml")) == []
    environment = text.replace("    runs-on: ubuntu-latest\n",
                               "    runs-on: ubuntu-latest\n    environment: production\n")
    assert _rules(_write(tmp_path, environment, "env.yml")) == []
    guarded = text.replace("    runs-on: ubuntu-latest\n",
                           "    runs-on: ubuntu-latest\n    if: github.ref == 'refs/heads/main'\n")
    assert _rules(_write(tmp_path, guarded, "guarded.yml")) == []
    tests_only = text.replace("deploy-model", "tests").replace(
        "python train.py && python register.py", "pytest")
    assert _rules(_write(tmp_path, tests_only, "tests.yml")) == []


def test_self_hosted_runner_for_pull_requests(tmp_path: Path) -> None:
    text = """\
on:
  pull_request:
jobs:
  gpu:
    runs-on: [self-hosted, gpu]
    steps:
      - run: pytest
"""
    assert _rules(_write(tmp_path, text)) == [("CI-SELF-HOSTED-PR", "high", 5)]
    pushed = text.replace("pull_request:", "push:\n    branches: [main]")
    assert _rules(_write(tmp_path, pushed, "push.yml")) == []


@pytest.mark.parametrize(("uses", "expected"), [
    ("actions/checkout@v4", None),                                     # GitHub's own
    ("github/codeql-action/init@v3", None),
    ("./.github/actions/setup", None),                                 # this repository's
    ("tj-actions/changed-files@v45", "low"),
    ("tj-actions/changed-files@" + "a" * 40, None),                    # a full commit
    ("tj-actions/changed-files@a1b2c3d", "low"),                       # a short SHA is a ref
    ("docker://alpine:3.20", "low"),
    ("docker://alpine@sha256:" + "b" * 64, None),
    ("acme/deploy@main", None),                                        # the workflow's owner
])
def test_third_party_actions_pinned_to_a_commit(tmp_path: Path, uses: str,
                                                expected: str | None) -> None:
    text = f"""\
on: push
jobs:
  lint:
    if: github.repository == 'acme/model'
    runs-on: ubuntu-latest
    steps:
      - uses: {uses}
"""
    found = _rules(_write(tmp_path, text))
    assert found == ([] if expected is None else [("CI-UNPINNED-ACTION", expected, 7)])


def test_unpinned_action_in_a_job_with_secrets_is_medium(tmp_path: Path) -> None:
    text = """\
on:
  push:
    tags: ['v*']
jobs:
  publish:
    runs-on: ubuntu-latest
    steps:
      - uses: pypa/gh-action-pypi-publish@release/v1
        with:
          password: ${{ secrets.PYPI_TOKEN }}
"""
    assert _rules(_write(tmp_path, text)) == [("CI-UNPINNED-ACTION", "medium", 8)]


def test_only_workflow_files_are_read_and_bad_yaml_is_skipped(tmp_path: Path) -> None:
    scanner = WorkflowScanner()
    wf = _write(tmp_path, "on: [push\njobs: {")          # broken YAML: no finding, no crash
    assert scan_workflow(wf) == []
    other = tmp_path / "config" / "ci.yml"
    other.parent.mkdir()
    other.write_text(PRT_DEPLOY)
    assert scanner.applies_to(wf) and not scanner.applies_to(other)
    _write(tmp_path, PRT_DEPLOY, "prt.yaml")
    report = scan_paths([tmp_path], ["workflows"])
    assert {f.file for f in report.findings} == {".github/workflows/prt.yaml"}


def test_the_clones_own_actions_are_not_third_party(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text(
        '[remote "origin"]\n\turl = git@github.com:Acme-ML/model.git\n')
    text = ("on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n"
            "      - uses: acme-ml/setup@v1\n      - uses: other/setup@v1\n")
    assert _rules(_write(tmp_path, text)) == [("CI-UNPINNED-ACTION", "low", 7)]
