"""Independent probes in parallel (`--jobs`): the same evidence as one after the other, Ctrl-C
keeps what ended, and a failing probe still stops the run with its message (a flagged model
refused inside a worker: tests/probes/test_runner_cli.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import joblib
import pytest

from mlthreat import cli
from mlthreat.catalog import load_catalog
from mlthreat.errors import InputError
from mlthreat.pipeline import load_pipeline
from mlthreat.probes import Evidence, execute, runner
from mlthreat.probes.parallel import tasks
from mlthreat.probes.registry import RUNS
from tests.conftest import EXAMPLES

CREDIT = str(EXAMPLES / "credit-scoring" / "pipeline.yaml")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_tasks_keep_a_components_poisoning_kinds_together(catalog: Any) -> None:
    work = runner.plan(load_pipeline(CREDIT, catalog), ("poisoning", "extraction"))
    got = tasks(work)
    # by hand: three components, each two extraction tasks (natural and synthetic queries) and
    # one task of the poisoning kinds
    assert len(got) == 9
    assert ("scoring_api", ("poisoning", "targeted", "backdoor", "clean-label")) in got
    assert ("mobile_app", ("extraction",)) in got
    assert ("mobile_app", ("extraction-synthetic",)) in got


def test_a_live_endpoints_probes_stay_in_one_task(tmp_path: Path, catalog: Any) -> None:
    """Two workers would each keep to the endpoint's rate limit, doubling it: one task."""
    folder = tmp_path / "case"
    shutil.copytree(EXAMPLES / "credit-scoring", folder)
    spec = folder / "pipeline.yaml"
    anchor = "      goal: good                # what an applicant gaming the API wants"
    spec.write_text(spec.read_text().replace(
        anchor, "      endpoint: {url: 'http://127.0.0.1:9/score', rate: 5}\n" + anchor, 1))
    got = tasks(runner.plan(load_pipeline(spec, catalog), ("extraction", "evasion")))
    api = [kinds for comp, kinds in got if comp == "scoring_api"]
    assert api == [("extraction", "extraction-synthetic", "evasion-whitebox", "evasion-blackbox",
                    "evasion-square", "evasion-patch", "evasion-text", "evasion-synonyms",
                    "evasion-transfer", "evasion-exact")]
    assert ("mobile_app", ("extraction",)) in got              # a model file: a task per probe


def test_parallel_workers_give_the_sequential_evidence(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    """Two loky worker processes, each loading the models itself through the scanner gate:
    every measurement equals the one-after-the-other run's, in the same order."""
    argv = ["probe", CREDIT, "--component", "scoring_api", "--component", "mobile_app",
            "--only", "membership", "--budget", "quick", "-f", "json"]
    code, one, _ = _run([*argv, "--jobs", "1"], capsys)
    assert code == 0
    code, two, err = _run([*argv, "--jobs", "2"], capsys)
    assert code == 0
    assert "membership on mobile_app" in err                   # progress came back from workers
    seq, par = json.loads(one), json.loads(two)
    assert [r["component"] for r in par] == ["scoring_api", "mobile_app"]
    assert all(len(r["evidence"]) == 1 for r in par)          # a task for each model
    for a, b in zip(seq, par, strict=True):
        assert [(e["source"], e["value"], e["summary"]) for e in a["evidence"]] == \
            [(e["source"], e["value"], e["summary"]) for e in b["evidence"]]
        assert a["skipped"] == b["skipped"]


def _fake(kind: str, *args: Any) -> Evidence:
    if kind == "evasion-blackbox":
        raise KeyboardInterrupt
    run = RUNS[kind]
    return Evidence(f"probe:{run.probe.name}", (), "m", 0.1, None, False, f"{kind} measured",
                    parameters=dict(run.fixed))


def test_ctrl_c_in_parallel_keeps_what_ended(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Threads stand in for worker processes here (the patched probe must be seen by the
    workers); the run's bookkeeping is the same."""
    monkeypatch.setattr(execute, "_one", _fake)
    with joblib.parallel_config(backend="threading"):
        code, _, err = _run(["probe", CREDIT, "--jobs", "2", "--budget", "quick"], capsys)
    assert code == 130
    flat = " ".join(err.split())
    # which probes ended before the interrupt depends on the threads' timing; what does not: no
    # probe is named twice (finished and not run), each is a planned one, the interrupted one is
    # not run, and what ended first is kept (a probe that cannot run here is said to be skipped)
    said = flat.split("interrupted: finished ", 1)[1]
    finished, rest = said.split("; not run: ", 1)
    not_run = rest.split(". Nothing was written.", 1)[0]
    ended, cut = finished.split(", "), not_run.split(", ")
    planned = {f"{k} on {c.id}" for c, kinds in runner.plan(load_pipeline(CREDIT, load_catalog()))
               for k in kinds}
    assert len(set(ended + cut)) == len(ended + cut) and set(ended + cut) <= planned
    # the planner skips six kinds on the credit API without starting them: white-box evasion
    # (no gradients), the Square attack, the sticker and synthetic extraction (images),
    # misspellings and synonym swaps (text)
    assert ended[0] != "nothing" and len(ended + cut) >= len(planned) - 6
    assert "evasion-blackbox on scoring_api" in cut
    assert "Nothing was written." in flat


def test_every_planned_probe_is_accounted_for_once(monkeypatch: pytest.MonkeyPatch,
                                                   catalog: Any) -> None:
    monkeypatch.setattr(execute, "_one", _fake)
    pipeline = load_pipeline(CREDIT, catalog)
    with joblib.parallel_config(backend="threading"):
        runs = runner.run_probes(pipeline, budget="quick", jobs=2)
    planned = {(c.id, k) for c, kinds in runner.plan(pipeline) for k in kinds}
    seen = [(r.component, k) for r in runs for k in
            [runner.kind_of(e) for e in r.results] + [k for k, _ in r.skipped] + r.interrupted]
    assert sorted(seen) == sorted(planned)                  # each exactly once
    assert ("scoring_api", "evasion-blackbox") in {(r.component, k) for r in runs
                                                   for k in r.interrupted}


def test_a_failing_probe_stops_the_run_with_its_message(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    def failing(kind: str, *args: Any) -> Evidence:
        if kind == "extraction":
            raise InputError("train: models/mlp.py has no function 'fit'")
        return _fake("membership")
    monkeypatch.setattr(execute, "_one", failing)
    with joblib.parallel_config(backend="threading"):
        code, _, err = _run(["probe", CREDIT, "--jobs", "2", "--budget", "quick"], capsys)
    assert code == 2 and "has no function 'fit'" in err


def test_jobs_default_to_the_cores_this_process_may_use(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    """`--jobs auto` (the default) is the process's CPU affinity, not the machine's count: a
    container or `taskset` may allow fewer cores than the machine has."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {4, 7, 9}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    seen: list[int] = []

    def record(pipeline: Any, only: Any, budget: str, jobs: int, *args: Any,
               **kwargs: Any) -> list[runner.ProbeRun]:
        seen.append(jobs)
        return []
    monkeypatch.setattr(runner, "run_probes", record)
    for argv, want in ((["probe", CREDIT], 3), (["probe", CREDIT, "--jobs", "auto"], 3),
                       (["probe", CREDIT, "--jobs", "1"], 1)):
        seen.clear()
        code, _, _ = _run(argv, capsys)
        assert (code, seen) == (0, [want])


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_a_bad_jobs_value_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["probe", CREDIT, "--jobs", value])
    assert stop.value.code == 2
    assert f"'{value}' is not a number of worker processes" in capsys.readouterr().err


class _FakeTorch:
    """Stands in for PyTorch in `sys.modules`: counts the thread settings it is given."""

    def __init__(self, initialising: bool, complete: bool) -> None:
        import types
        self.module = types.ModuleType("torch")
        self.module.__spec__ = types.SimpleNamespace(_initializing=initialising)  # type: ignore[assignment]
        self.threads = 4
        if complete:
            self.module.get_num_threads = lambda: self.threads   # type: ignore[attr-defined]
            self.module.set_num_threads = self._set               # type: ignore[attr-defined]

    def _set(self, n: int) -> None:
        self.threads = n


@pytest.mark.parametrize("initialising, complete", [(True, True), (False, False)])
def test_torch_being_imported_by_another_thread_is_left_for_the_next_probe(
        monkeypatch: pytest.MonkeyPatch, initialising: bool, complete: bool) -> None:
    """On a Dask worker one thread may import torch while another starts a probe: the partly
    initialised module is not touched (the CI failure was an AttributeError on it), and once it
    is complete the next probe sets one thread and the exit restores the four."""
    import sys
    fake = _FakeTorch(initialising, complete)
    monkeypatch.setitem(sys.modules, "torch", fake.module)
    with execute.OneThread() as limit:
        assert limit.torch_threads is None and fake.threads == 4
        done = _FakeTorch(False, True)
        done.threads = 4
        monkeypatch.setitem(sys.modules, "torch", done.module)
        limit.apply()
        assert limit.torch_threads == 4 and done.threads == 1
    assert done.threads == 4
