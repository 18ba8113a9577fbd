"""How mlthreat reaches a machine other than this checkout: the wheel (built offline from exactly
the files the Dockerfile copies, installed alone, run from elsewhere), the container image
definition, and the pre-commit hook (run as pre-commit runs it, on the files a commit stages)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlthreat import cli
from tests.conftest import EXAMPLES, ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
# a pickle that would run `id` when loaded (GLOBAL os.system, REDUCE): never loaded here
EVIL = b"cos\nsystem\n(S'id'\ntR."


def _copied() -> list[str]:
    """The checkout's paths the Dockerfile's wheel stage copies."""
    stage = DOCKERFILE.split("FROM ", 2)[1]
    return [p for line in re.findall(r"^COPY (.+?) \S+$", stage, re.M) for p in line.split()]


def test_the_image_pins_cpu_torch_as_the_makefile_does_and_runs_as_a_user() -> None:
    makefile = (ROOT / "Makefile").read_text()
    pin = re.search(r"torch==[\d.]+", makefile)
    assert pin is not None
    final = DOCKERFILE.split("FROM ")[-1]
    lines = final.splitlines()
    torch_at = next(i for i, x in enumerate(lines) if "pip install" in x and "torch==" in x)
    wheel_at = next(i for i, x in enumerate(lines) if "pip install" in x and "mlthreat-" in x)
    assert pin.group(0) in lines[torch_at] and torch_at < wheel_at   # the pin goes in first
    assert 'ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu' in final
    assert re.search(r"^USER (?!root)\w+$", final, re.M)
    assert 'ENTRYPOINT ["mlthreat"]' in final
    # the extras installed are extras the package has
    extras = re.search(r"^ARG EXTRAS=(.+)$", final, re.M)
    assert extras is not None
    declared = set(re.findall(r"^(\w+) = \[", (ROOT / "pyproject.toml").read_text()
                              .split("[project.optional-dependencies]")[1].split("\n[")[0], re.M))
    assert set(extras.group(1).split(",")) <= declared - {"dev"}
    # what is copied exists, and .dockerignore lets it (and nothing large) through
    assert sorted(_copied()) == ["README.md", "examples", "pyproject.toml", "src"]
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") if "*" in ignore else 0] == "*"
    assert {f"!{p}" if "." in p else f"!{p}/" for p in _copied()} <= set(ignore)


def test_the_wheel_built_from_the_image_files_works_without_the_checkout(
        tmp_path: Path) -> None:
    src = tmp_path / "src-copy"
    src.mkdir()
    for name in _copied():
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, src / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "--no-index", "--wheel-dir",
                           str(tmp_path / "wheels"), str(src)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    wheel, = (tmp_path / "wheels").glob("mlthreat-*.whl")
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                           "--target", str(site), str(wheel)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    # the installed copy comes first (the checkout's editable install would otherwise answer)
    env = {**os.environ, "PYTHONPATH": str(site)}
    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copytree(EXAMPLES / "credit-scoring", work / "cs")

    def mlthreat(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", "from mlthreat.cli import main; "
                               "import sys; sys.exit(main(sys.argv[1:]))", *args],
                              cwd=work, env=env, capture_output=True, text=True, timeout=600,
                              check=False)

    where = mlthreat("--version")
    assert where.returncode == 0 and where.stdout.strip() == "mlthreat 0.1.0"
    probe = subprocess.run([sys.executable, "-c", "import mlthreat; print(mlthreat.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True)
    assert probe.stdout.startswith(str(site))
    # catalog data, report templates and the bundled examples came with it
    done = mlthreat("model", "cs/pipeline.yaml", "--out-dir", "reports")
    assert done.returncode == 0, done.stderr
    html = (work / "reports" / "threat-model.html").read_text()
    assert "aml-model-extraction" in html and "</html>" in html
    assert "g.ELK = f()" in html and "MlthreatDiagram" in html   # the renderer came with it
    # the board serves its page, script and the shared renderer from the installed package
    board = subprocess.run([sys.executable, "-c", (
        "from pathlib import Path; from starlette.testclient import TestClient; "
        "from mlthreat.web.app import Board, create_app; "
        "c = TestClient(create_app(Board(Path('cs'), Path('cs/pipeline.yaml')), 't', "
        "{'127.0.0.1:1'}), base_url='http://127.0.0.1:1'); "
        "print([c.get(u + '?token=t').status_code for u in ('/', '/static/board.js', "
        "'/static/diagram.js', '/static/vendor/elk.bundled.js')])")],
        cwd=work, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert board.stdout.strip() == "[200, 200, 200, 200]", board.stderr
    done = mlthreat("demo", "--example", "mobile-app", "--out", "demo")
    assert done.returncode == 0, done.stderr
    assert (work / "demo" / "threat-model.sarif").is_file()


@pytest.mark.skipif(shutil.which("docker") is None or subprocess.run(
    ["docker", "info"], capture_output=True, check=False).returncode != 0,
    reason="no Docker engine here (the client alone cannot build)")
def test_the_image_builds_and_scans(tmp_path: Path) -> None:      # pragma: no cover
    subprocess.run(["docker", "build", "-t", "mlthreat-test", str(ROOT)], check=True,
                   timeout=3000)
    (tmp_path / "model.pkl").write_bytes(EVIL)
    done = subprocess.run(["docker", "run", "--rm", "-v", f"{tmp_path}:/work", "mlthreat-test",
                           "scan", ".", "--fail-on", "high"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 1 and "model.pkl" in done.stderr


# ------------------------------------------------------------------------------- pre-commit
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())


def _commit_hook(repo: Path, hook: dict[str, object], capsys: pytest.CaptureFixture[str]
                 ) -> tuple[int, str]:
    """What pre-commit does for a hook with pass_filenames: the entry, then its args, then the
    staged files (relative to the repository's root, where it runs)."""
    staged = subprocess.run(["git", "diff", "--cached", "--name-only", "--diff-filter=ACMR"],
                            cwd=repo, capture_output=True, text=True, check=True
                            ).stdout.split()
    entry = shlex.split(str(hook["entry"]))
    assert entry[0] == "mlthreat"
    args = hook.get("args", [])
    assert isinstance(args, list)
    code = cli.main([*entry[1:], *map(str, args), *staged])
    return code, capsys.readouterr().err


def test_the_pre_commit_hook_stops_a_commit_of_an_unsafe_model_only(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    hook, = HOOKS
    assert hook["id"] == "mlthreat-scan" and hook["language"] == "python"
    assert hook["pass_filenames"] is True and "files" not in hook   # model files have any name
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    monkeypatch.chdir(repo)
    (repo / "train.py").write_text("import numpy as np\n\nprint(np.zeros(3))\n")
    (repo / "weights.npy").write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', "
                                       b"'fortran_order': False, 'shape': (1,), }"
                                       .ljust(127, b" ") + b"\n" + bytes(8))
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    code, err = _commit_hook(repo, hook, capsys)
    assert code == 0, err
    (repo / "model.pkl").write_bytes(EVIL)
    (repo / "README.md").write_text("a model\n")
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    code, err = _commit_hook(repo, hook, capsys)
    assert code == 1 and "at model.pkl" in err and "README" not in err
    # a settings file's exclusions hold for the files pre-commit names, as for a folder's
    (repo / "mlthreat.toml").write_text('[scan]\nexclude = ["fixtures/*"]\n')
    (repo / "fixtures").mkdir()
    (repo / "fixtures" / "evil.pkl").write_bytes(EVIL)
    subprocess.run(["git", "rm", "-q", "--cached", "model.pkl"], cwd=repo, check=True)
    (repo / "model.pkl").unlink()
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    code, err = _commit_hook(repo, hook, capsys)
    assert code == 0, err
    assert cli.main(["scan", "fixtures/evil.pkl", "--no-config", "--fail-on", "high"]) == 1
    assert cli.main(["scan", "fixtures/evil.pkl", "--fail-on", "high"]) == 0   # only it: passes
    assert cli.main(["scan", "fixtures", "--fail-on", "high"]) == 2      # a folder left empty
    capsys.readouterr()
    # taken out of the commit again: the rest passes
    subprocess.run(["git", "rm", "-q", "--cached", "fixtures/evil.pkl"], cwd=repo, check=True)
    (repo / "fixtures" / "evil.pkl").unlink()
    assert _commit_hook(repo, hook, capsys)[0] == 0


def test_messages_name_the_extras_packages_never_mlthreat_from_an_index() -> None:
    # mlthreat is not on PyPI: a message saying `pip install 'mlthreat[onnx]'` would send a user
    # to whatever someone registered under that name
    import tomllib

    from mlthreat.adapters.loading import REQUIREMENT
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for extra, requirement in REQUIREMENT.items():
        package = re.split(r"[<>=!~ ]", extras[extra][0])[0]
        assert requirement.split("==")[0].split()[0] == package, extra
    pin = re.search(r"torch==[\d.]+", (ROOT / "Makefile").read_text())
    assert pin is not None and REQUIREMENT["torch"].startswith(pin.group(0))
    sources = "\n".join(p.read_text() for p in (ROOT / "src").rglob("*.py"))
    assert not re.search(r"pip install '?mlthreat\[", sources)
