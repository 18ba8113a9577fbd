"""CI workflows (GitHub Actions), read as YAML (never run): the ways an outsider or an unreviewed
change gets to run code with the pipeline's credentials, as evidence for the CI/CD tampering
threat.

- CI-UNTRUSTED-CHECKOUT: a workflow started by `pull_request_target`, `workflow_run` or a comment
  checks out the pull request's code and goes on to run steps: the fork's code runs with the
  base repository's secrets and a token that can write (critical when the job holds secrets or
  cloud credentials beyond the default token).
- CI-SCRIPT-INJECTION: text an outsider writes (an issue or pull-request title or body, a
  comment, a branch name) pasted into a `run:` script or a github-script by `${{ }}`, in a
  workflow that runs with repository privileges.
- CI-SECRET-IN-LOG: a secret, or the whole secrets context, printed by a step (GitHub masks the
  exact value, not a transformation of it).
- CI-DEPLOY-ANY-BRANCH: a job that deploys, publishes or registers a model with credentials,
  started by a push to any branch and guarded by neither a branch condition nor an environment:
  a change nobody reviewed ships.
- CI-SELF-HOSTED-PR: pull requests (forks included) run on a self-hosted runner, which keeps
  state and sits inside the team's network.
- CI-UNPINNED-ACTION: a third-party action (not GitHub's own `actions/` and `github/`) used at
  a tag or branch instead of a commit: whoever controls that repository controls the step. The
  team's own actions are not third-party: owners named in `github.repository == 'owner/...'`
  and the GitHub owners of the clone's remotes (`.git/config`).

What is not read: GitLab, Jenkins, Azure and other CI systems; composite actions' own files.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlthreat.scanners.interface import ScanContext, ScanFinding, Scanner
from mlthreat.yamlpos import Located, load_located

THREAT = "cls-cicd-tampering"
MAX_BYTES = 1024 * 1024
# events whose workflow runs with the base repository's secrets and a writable token while
# someone outside the team chooses (part of) what it sees
PRIVILEGED = {"pull_request_target", "workflow_run", "issue_comment", "issues",
              "pull_request_review", "pull_request_review_comment", "discussion",
              "discussion_comment"}
CHECKS_OUT_PR = {"pull_request_target", "workflow_run", "issue_comment"}
# expressions an outsider writes (GitHub Security Lab's list of untrusted inputs)
UNTRUSTED_EXPR = re.compile(
    r"\$\{\{\s*[^}]*?\b(github\.event\.(issue\.(title|body)|pull_request\.(title|body|head\.ref|"
    r"head\.label|head\.repo\.default_branch)|comment\.body|review\.body|review_comment\.body|"
    r"discussion\.(title|body)|pages\.[^}]*\.page_name|commits\.[^}]*\.(message|author\.\w+)|"
    r"head_commit\.(message|author\.\w+)|workflow_run\.(head_branch|head_commit\.\w+|"
    r"display_title|pull_requests[^}]*\.head\.ref))|github\.head_ref)\b[^}]*\}\}")
PR_HEAD = re.compile(r"github\.event\.pull_request\.head\.(sha|ref)|github\.head_ref|"
                     r"github\.event\.workflow_run\.head_(sha|branch)|refs/pull/|"
                     r"pull_request\.head\.repo\.full_name|github\.event\.issue\.number")
SECRET_REF = re.compile(r"\bsecrets\.(\w+)|\bsecrets\[")
PRINTS = re.compile(r"^\s*(echo|printf|print|cat)\b")
DEPLOYS = re.compile(r"deploy|publish|release|upload|register|promot|push|train|sagemaker|"
                     r"vertex|azureml|kubectl|helm|terraform|serverless", re.I)
OWN_REPO = re.compile(r"github\.repository(?:_owner)?\s*[!=]=\s*['\"]([\w.-]+)")
SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class _Job:
    key: str
    data: dict[str, Any]
    text: str           # the job as YAML text, to look for secret references
    secrets: bool       # secrets beyond the default token, cloud credentials by OIDC, inherit
    read_only: bool     # its token can write nothing (permissions read or none throughout)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _triggers(on: Any) -> dict[str, Any]:
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {str(e): None for e in on}
    if isinstance(on, dict):
        return {str(k): v for k, v in on.items()}
    return {}


def _secret_env(block: dict[Any, Any]) -> set[str]:
    """Names an `env:` block (of a workflow, job or step) binds to a secret."""
    return {str(k) for k, v in _dict(block.get("env")).items()
            if isinstance(v, str) and SECRET_REF.search(v)}


def _holds_secrets(text: str, data: Any) -> bool:
    names = {m.group(1) for m in SECRET_REF.finditer(text)}
    if (names - {"GITHUB_TOKEN", None}) or "secrets[" in text:
        return True
    if isinstance(data, dict):
        if data.get("secrets") == "inherit":
            return True
        perms = data.get("permissions")
        if isinstance(perms, dict) and perms.get("id-token") == "write":
            return True
    return False


@functools.lru_cache(maxsize=64)
def _clone_owners(folder: Path) -> frozenset[str]:
    """The GitHub owners of the clone's remotes (read from .git/config above `folder`): their
    actions are the team's own, not third-party."""
    for parent in (folder, *folder.parents):
        git = parent / ".git"
        if git.is_file():            # a worktree or submodule: "gitdir: PATH"
            line = git.read_text(errors="replace").strip()
            git = (parent / line.partition("gitdir:")[2].strip()).resolve()
        config = git / "config"
        if config.is_file():
            try:
                text = config.read_text(errors="replace")
            except OSError:
                return frozenset()
            return frozenset(m.lower() for m in re.findall(
                r"(?m)^\s*url\s*=\s*\S*github\.com[:/]([\w.-]+)/", text))
        if git.exists():
            return frozenset()
    return frozenset()


def _read_only(perms: Any) -> bool:
    """Whether a `permissions:` value leaves the token unable to write (unset: the repository's
    default, which can write, so not read-only)."""
    if isinstance(perms, str):
        return perms in ("read-all", "none")
    if isinstance(perms, dict):
        return all(v in ("read", "none") for v in perms.values())
    return perms is not None and not perms


class _Reader:
    def __init__(self, path: Path, text: str, located: Located) -> None:
        self.path, self.lines, self.located = str(path), text.splitlines(), located
        self.findings: list[ScanFinding] = []
        self.own: set[str] = set()

    def add(self, line: int | None, rule: str, severity: str, message: str) -> None:
        self.findings.append(ScanFinding("workflows", rule, THREAT, "classical", severity,
                                         self.path, line, message))

    def line_of(self, at: tuple[str | int, ...], needle: str = "") -> int | None:
        """The line of the value at `at`, or of the first line from there holding `needle`."""
        pos = self.located.position(at)
        if pos is None:
            return None
        if needle:
            for number in range(pos[0], len(self.lines) + 1):
                if needle in self.lines[number - 1]:
                    return number
        return pos[0]


def _dump(value: Any) -> str:
    try:
        return yaml.safe_dump(value, default_flow_style=True, width=10_000)
    except yaml.YAMLError:
        return str(value)


def scan_workflow(path: Path) -> list[ScanFinding]:
    try:
        if path.stat().st_size > MAX_BYTES:
            return []
        text = path.read_text(encoding="utf-8", errors="replace")
        located = load_located(text)
    except (OSError, yaml.YAMLError, RecursionError, ValueError, TypeError):
        return []
    doc = located.data
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), dict):
        return []
    on_key = "on" if "on" in doc else True       # YAML 1.1 reads a bare `on` as true
    triggers = _triggers(doc.get(on_key))
    privileged = PRIVILEGED & set(triggers)
    reader = _Reader(path, text, located)
    # the repository's own owner, where the workflow names it: its actions are not third-party
    reader.own = {m.lower() for m in OWN_REPO.findall(text)} | _clone_owners(path.parent.absolute())
    env_secrets = _secret_env(doc)
    top_secrets = _holds_secrets(_dump(doc.get("env")) if doc.get("env") else "", doc)
    for key, data in doc["jobs"].items():
        if not isinstance(data, dict):
            continue
        perms = data.get("permissions", doc.get("permissions"))
        job = _Job(str(key), data, _dump(data), False, _read_only(perms))
        job.secrets = top_secrets or _holds_secrets(job.text, data)
        _job(reader, job, triggers, privileged, env_secrets)
    return sorted(reader.findings, key=lambda f: (f.line or 0, f.rule))


def _job(reader: _Reader, job: _Job, triggers: dict[str, Any], privileged: set[str],
         env_secrets: set[str]) -> None:
    at: tuple[str | int, ...] = ("jobs", job.key)
    steps = _list(job.data.get("steps"))
    runs_on = _dump(job.data.get("runs-on"))
    if "pull_request" in triggers and "self-hosted" in runs_on:
        reader.add(reader.line_of(at + ("runs-on",)), "CI-SELF-HOSTED-PR", "high",
                   f"job {job.key} runs pull requests on a self-hosted runner: a fork's code runs "
                   "on a machine that keeps state and sits in your network; use GitHub-hosted "
                   "runners for pull requests or require approval for outside contributors")
    job_env = _secret_env(job.data)
    checked_out_pr: int | None = None
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        where = at + ("steps", i)
        uses, with_ = _str(step.get("uses")), _dict(step.get("with"))
        if uses:
            _pinned(reader, where, uses, job)
        if uses.startswith("actions/checkout") and CHECKS_OUT_PR & set(triggers):
            ref = " ".join(str(with_.get(k, "")) for k in ("ref", "repository"))
            if PR_HEAD.search(ref):
                checked_out_pr = reader.line_of(where + ("with", "ref")) or \
                    reader.line_of(where + ("uses",))
                continue
        runs = uses.startswith("./") or bool(step.get("run")) or \
            (bool(uses) and not uses.startswith(("actions/checkout", "actions/upload-artifact")))
        if checked_out_pr is not None and runs and (job.secrets or not job.read_only):
            event = sorted(CHECKS_OUT_PR & set(triggers))[0]
            reader.add(checked_out_pr, "CI-UNTRUSTED-CHECKOUT",
                       "critical" if job.secrets else "high",
                       f"job {job.key} ({event}) checks out the pull request's code and then runs "
                       "steps with the base repository's "
                       + ("secrets and credentials" if job.secrets else "writable token")
                       + ": anyone who opens a pull request runs code with them; run untrusted "
                         "code under `pull_request` and pass results on as artifacts")
            checked_out_pr = None           # once per checkout
        script = _str(step.get("run"))
        if uses.startswith("actions/github-script") and _str(with_.get("script")):
            script = _str(with_.get("script"))
        if privileged and script:
            for m in UNTRUSTED_EXPR.finditer(script):
                reader.add(reader.line_of(where + ("run",) if step.get("run") else
                                          where + ("with", "script"), m.group(0)),
                           "CI-SCRIPT-INJECTION", "high",
                           f"job {job.key} pastes {m.group(0).strip()} into a script in a "
                           f"workflow started by {', '.join(sorted(privileged))}: whoever writes "
                           "that text runs commands with the workflow's token and secrets; pass "
                           "it through an environment variable instead")
        if script:
            step_env = _secret_env(step)
            _printed(reader, where, script, env_secrets | job_env | step_env, job)
    _deploys_any_branch(reader, job, triggers, steps)


def _pinned(reader: _Reader, where: tuple[str | int, ...], uses: str, job: _Job) -> None:
    if uses.startswith("./"):
        return
    if uses.startswith("docker://"):
        if "@sha256:" not in uses:
            reader.add(reader.line_of(where + ("uses",)), "CI-UNPINNED-ACTION", "low",
                       f"{uses} is an image tag, not a digest: pin it with @sha256:...")
        return
    name, _, ref = uses.partition("@")
    owner = name.split("/", 1)[0].lower()
    if owner in ("actions", "github") or owner in reader.own or SHA.match(ref):
        return
    reader.add(reader.line_of(where + ("uses",)), "CI-UNPINNED-ACTION",
               "medium" if job.secrets else "low",
               f"{name} is used at {ref or 'its default branch'}, not a commit: whoever controls "
               "that repository or tag controls this step"
               + (" and the job's secrets" if job.secrets else "")
               + "; pin it to a full commit SHA")


def _printed(reader: _Reader, where: tuple[str | int, ...], script: str, env: set[str],
             job: _Job) -> None:
    for line in script.splitlines():
        if "toJSON(secrets)" in line.replace(" ", ""):
            reader.add(reader.line_of(where + ("run",), "secrets"), "CI-SECRET-IN-LOG", "high",
                       f"job {job.key} expands the whole secrets context in a step: every "
                       "secret of the repository reaches the step and its log")
            continue
        if not PRINTS.match(line) or re.search(r"[|>]", line.split("#", 1)[0]):
            continue            # written to a file, $GITHUB_ENV or a pipe, not to the log
        named = [m.group(0) for m in SECRET_REF.finditer(line) if m.group(1) != "GITHUB_TOKEN"]
        named += [f"${v}" for v in env if re.search(rf"\$\{{?{re.escape(v)}\b", line)]
        if named:
            reader.add(reader.line_of(where + ("run",), line.strip()), "CI-SECRET-IN-LOG",
                       "medium", f"job {job.key} prints {named[0]} to the log: GitHub masks the "
                       "exact value but not a part or an encoding of it; don't print secrets")


def _deploys_any_branch(reader: _Reader, job: _Job, triggers: dict[str, Any],
                        steps: list[Any]) -> None:
    if "push" not in triggers or not job.secrets:
        return
    push = triggers["push"]
    branches = push.get("branches") if isinstance(push, dict) else None
    if isinstance(push, dict) and (push.get("tags") is not None and branches is None or
                                   push.get("branches-ignore") is not None):
        return              # tags only (pushed by maintainers), or some branches left out
    if branches is not None and not any(b in ("*", "**") for b in
                                        (branches if isinstance(branches, list) else [branches])):
        return
    if job.data.get("environment") or re.search(r"github\.ref|refs/heads|github\.event_name",
                                                str(job.data.get("if", ""))):
        return
    names = [job.key, str(job.data.get("name", ""))] + \
        [str(s.get("name", "")) + " " + str(s.get("uses", "")) for s in steps
         if isinstance(s, dict)]
    if not DEPLOYS.search(" ".join(names)):
        return
    secret_steps = [s for s in steps if isinstance(s, dict) and SECRET_REF.search(_dump(s))]
    if secret_steps and not SECRET_REF.search(_dump(job.data.get("env"))) and all(
            re.search(r"github\.ref|refs/heads|github\.event_name", str(s.get("if", "")))
            for s in secret_steps):
        return              # every step with credentials has its own branch condition
    key = reader.located.key_position(("jobs", job.key))
    reader.add(key[0] if key else None, "CI-DEPLOY-ANY-BRANCH", "medium",
               f"job {job.key} deploys or publishes with credentials on a push to any branch, "
               "with no branch condition and no environment: a change nobody reviewed ships; "
               "restrict it to the protected branch or a protected environment")


class WorkflowScanner(Scanner):
    """GitHub Actions workflows read as YAML."""

    name = "workflows"
    threat_ids = (THREAT,)

    def applies_to(self, path: Path) -> bool:
        parts = path.parts if len(path.parts) >= 3 else path.absolute().parts
        return path.suffix in (".yml", ".yaml") and len(parts) >= 3 and \
            parts[-2] == "workflows" and parts[-3] == ".github"

    def scan(self, path: Path, ctx: ScanContext) -> list[ScanFinding]:
        return scan_workflow(path)
