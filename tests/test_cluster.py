"""Probes and scans on a Dask cluster (`--scheduler`): a LocalCluster of two worker processes on
127.0.0.1 gives the evidence and the findings of a local run, survives a worker killed in the
middle of a task, never loads a flagged model on a worker, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

from mlthreat import cli  # noqa: E402
from mlthreat.catalog import load_catalog  # noqa: E402
from mlthreat.cluster import check_workers, local_cluster  # noqa: E402
from mlthreat.errors import ModelError, ToolError  # noqa: E402
from mlthreat.pipeline import load_pipeline  # noqa: E402
from mlthreat.probes import runner  # noqa: E402
from mlthreat.scanners import scan_paths  # noqa: E402
from tests.conftest import EXAMPLES  # noqa: E402
from tests.scanners.conftest import Payload  # noqa: E402

CREDIT = EXAMPLES / "credit-scoring" / "pipeline.yaml"
# membership's reference models go to the cluster from inside a task (joblib's Dask backend)
KINDS = ("membership",)
COMPONENTS = ("partner_prescreen", "mobile_app")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    cluster = local_cluster(2)
    with distributed.Client(cluster, set_as_default=False) as c:
        check_workers(c)
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def local_runs() -> list[runner.ProbeRun]:
    pipeline = load_pipeline(CREDIT, load_catalog())
    return runner.run_probes(pipeline, KINDS, "quick", jobs=1, components=COMPONENTS)


def _measured(runs: list[runner.ProbeRun]) -> list[tuple[Any, ...]]:
    return [(r.component, e.source, e.metric, e.value, e.interval, e.summary)
            for r in runs for e in r.results]


class Seen:
    def __init__(self) -> None:
        self.begun: list[str] = []
        self.ended: list[tuple[str, str]] = []

    def begin(self, label: str) -> None:
        self.begun.append(label)

    def end(self, label: str, outcome: str) -> None:
        self.ended.append((label, outcome))


def _eventually(check: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _kill_one(client: Any, pids: dict[str, int], pick: Any) -> str | None:
    """SIGKILL the first worker whose keys in processing `pick` accepts: its address, or None."""
    for worker, keys in client.processing().items():
        if worker in pids and pick([str(k) for k in keys]):
            os.kill(pids[worker], signal.SIGKILL)
            return str(worker)
    return None


class Killer(threading.Thread):
    """Kills one worker as soon as one is processing what `pick` accepts (within 60 s)."""

    def __init__(self, client: Any, pick: Any) -> None:
        super().__init__()
        self.client, self.pick = client, pick
        self.pids = client.run(os.getpid)
        self.killed: str | None = None

    def run(self) -> None:
        deadline = time.monotonic() + 60
        while self.killed is None and time.monotonic() < deadline:
            self.killed = _kill_one(self.client, self.pids, self.pick)
            time.sleep(0.01)


def test_the_local_evidence_even_with_a_worker_lost_mid_task(
        client: Any, local_runs: list[runner.ProbeRun]) -> None:
    """The cluster's evidence is `--jobs 1`'s, bit for bit, in the same order, even when the
    worker process running a probe task is killed (SIGKILL): the scheduler runs the task again
    on a worker that is alive, and every probe is reported once. Progress comes back: begins as
    Dask events, ends with the futures."""
    thread = Killer(client, lambda keys: any("mlthreat-probe" in k for k in keys))
    thread.start()
    pipeline = load_pipeline(CREDIT, load_catalog())
    seen = Seen()
    runs = runner.run_probes(pipeline, KINDS, "quick", jobs=1, components=COMPONENTS,
                             observer=seen, cluster=client)
    thread.join()
    assert thread.killed                           # a worker holding a probe task was killed
    assert _measured(runs) == _measured(local_runs)
    assert [r.skipped for r in runs] == [r.skipped for r in local_runs]
    assert sum(len(r.results) for r in runs) == 2 and not any(r.interrupted for r in runs)
    labels = {"membership on partner_prescreen", "membership on mobile_app"}
    assert sorted(label for label, _ in seen.ended) == sorted(labels)     # each ends once
    _eventually(lambda: set(seen.begun) == labels)
    client.wait_for_workers(2, timeout=60)         # the nanny brings it back for the next test


def test_the_local_evidence_even_with_the_worker_of_a_retraining_lost(
        client: Any, local_runs: list[runner.ProbeRun]) -> None:
    """A probe's reference models run as tasks of their own on both workers; the worker that
    runs some of them, and not the probe's own task, is killed: they run again on the worker
    that is alive (what they share was held by a task, so it is computed again, not lost), and
    the evidence is `--jobs 1`'s."""
    thread = Killer(client, lambda keys: any(k.startswith("_reference") for k in keys)
                    and not any("mlthreat-probe" in k for k in keys))
    thread.start()
    pipeline = load_pipeline(CREDIT, load_catalog())
    runs = runner.run_probes(pipeline, KINDS, "quick", jobs=1, components=("mobile_app",),
                             cluster=client)
    thread.join()
    assert thread.killed
    assert _measured(runs) == _measured([r for r in local_runs if r.component == "mobile_app"])
    client.wait_for_workers(2, timeout=60)


def test_a_flagged_model_is_never_loaded_on_a_worker(client: Any, tmp_path: Path,
                                                     marker: Path) -> None:
    folder = tmp_path / "case"
    shutil.copytree(EXAMPLES / "credit-scoring", folder)
    model = folder / "models" / "credit_model.joblib"
    model.write_bytes(pickle.dumps(Payload(marker)))
    pipeline = load_pipeline(folder / "pipeline.yaml", load_catalog())
    with pytest.raises(ModelError) as exc:
        runner.run_probes(pipeline, ("membership",), "quick", trust=True,
                          components=("scoring_api",), cluster=client)
    assert "never unpickles a flagged file" in str(exc.value)
    assert "credit_model.joblib" in str(exc.value) and "mlthreat-probe-" not in str(exc.value)
    assert not marker.exists()


def test_exact_evasion_spreads_its_points_over_the_workers(client: Any) -> None:
    """Run from a task on a worker with jobs=2, exact evasion sends each point and norm to the
    cluster as a task of its own (the trees travel, held once per worker) and gives the
    one-process answers."""
    from sklearn.ensemble import RandomForestClassifier

    from tests.probes.test_exact import _encoded, _exact, _solved
    x, y, c = _encoded()
    model = RandomForestClassifier(20, max_depth=5, random_state=0).fit(x, y)
    local = _exact(model, model, x, c, jobs=1)
    with distributed.get_task_stream(client) as stream:
        spread = client.submit(_exact, model, model, x, c, 2, pure=False).result()
    assert _solved(spread) == _solved(local)
    keys = [str(t["key"]) for t in stream.data]
    assert sum(k.startswith("_against_trees") for k in keys) == 12     # 6 points x 2 norms
    assert sum(k.startswith("hold") for k in keys) == 1                 # the trees, held once


def _slow_part(shared: None, i: int) -> int:
    time.sleep(0.5)
    return i


def _asks_for_parts(n: int) -> list[int]:
    from mlthreat.cluster import fan_out
    return fan_out(_slow_part, None, list(range(n)), 2)


def test_the_parts_a_task_asked_for_are_cancelled_with_it(client: Any) -> None:
    """Ctrl-C cancels a probe task; the parts it had sent to the cluster (reference models,
    points) stop too instead of running on for minutes: 60 parts of 0.5 s on two workers would
    take 15 s; within 5 s of the cancel nothing is left running."""
    from mlthreat.cluster import fan_out
    assert fan_out(_slow_part, None, [1, 2, 3], 1) == [1, 2, 3]
    asked = client.submit(_asks_for_parts, 60, pure=False)
    _eventually(lambda: sum(len(k) for k in client.processing().values()) >= 3)
    client.cancel([asked])
    _eventually(lambda: not any(client.processing().values()), seconds=5)


class StopAfterFirst(Seen):
    def end(self, label: str, outcome: str) -> None:
        super().end(label, outcome)
        if outcome != "interrupted" and len(self.ended) == 1:
            raise KeyboardInterrupt


def test_ctrl_c_cancels_the_rest_and_keeps_what_ended(client: Any) -> None:
    pipeline = load_pipeline(CREDIT, load_catalog())
    seen = StopAfterFirst()
    runs = runner.run_probes(pipeline, ("membership",), "quick", observer=seen,
                             components=("partner_prescreen", "mobile_app", "scoring_api"),
                             cluster=client)
    first = seen.ended[0][0]
    ended = [f"{runner.kind_of(e)} on {r.component}" for r in runs for e in r.results]
    cut = [f"{k} on {r.component}" for r in runs for k in r.interrupted]
    planned = {f"{k} on {c.id}" for c, kinds in runner.plan(
        pipeline, ("membership",), ("partner_prescreen", "mobile_app", "scoring_api"))
        for k in kinds}
    assert first in ended and set(ended) | set(cut) == planned     # each once, nothing lost
    assert len(ended) + len(cut) == len(planned) and cut
    # nothing of the run is left on the scheduler: the futures were cancelled and released
    _eventually(lambda: not client.run_on_scheduler(_probe_tasks), seconds=30)


def test_ctrl_c_at_a_terminal_stops_the_command_and_its_workers(tmp_path: Path) -> None:
    """SIGINT to the whole foreground process group, as a terminal sends it, once a probe has
    ended: the command says what finished and exits 130; no worker prints a traceback and no
    worker process is left behind."""
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, "-m", "mlthreat.cli", "probe", str(CREDIT), "--only",
                             "membership", "--budget", "quick", "--scheduler", "local:2",
                             "--component", "partner_prescreen", "--component", "scoring_api"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("✓"):
            os.killpg(proc.pid, signal.SIGINT)
            break
    err = "".join(lines) + proc.stderr.read()
    assert proc.wait(timeout=60) == 130, err
    assert "interrupted: finished membership on" in " ".join(err.split()), err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err    # all of it shown
    _eventually(lambda: not _children_of_session(proc.pid), seconds=20)


def _children_of_session(sid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    out.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return out


def _probe_tasks(dask_scheduler: Any) -> list[str]:
    return [str(k) for k in dask_scheduler.tasks if "mlthreat-probe" in str(k)]


def test_a_scan_on_the_cluster_is_the_local_scan(client: Any) -> None:
    paths = [EXAMPLES / "credit-scoring", EXAMPLES / "hub-finetune", EXAMPLES / "mobile-app"]
    local = scan_paths(paths)
    spread = scan_paths(paths, cluster=client)
    assert local.findings and spread.findings == local.findings
    assert spread.files == local.files and spread.notes == local.notes


def _registry(tmp_path: Path, marker: Path, files: int = 400) -> Path:
    """team/model folders of pickled models, every 97th a payload."""
    import numpy as np
    registry = tmp_path / "registry"
    for n in range(files):
        folder = registry / f"team{n % 7}" / f"model{n}"
        folder.mkdir(parents=True)
        value: Any = (Payload(marker) if n % 97 == 0
                      else {"weights": np.full(64, n, dtype=np.float32), "names": [str(n)] * 50})
        (folder / "model.pkl").write_bytes(pickle.dumps(value))
    return registry


def _scan_tasks(dask_scheduler: Any) -> list[str]:
    return [str(k) for k in dask_scheduler.tasks if "mlthreat-scan" in str(k)]


def test_ctrl_c_stops_a_scan_on_the_cluster(client: Any, tmp_path: Path, marker: Path) -> None:
    """Ctrl-C after the first batch came back: the interrupt reaches the caller (the command
    says "interrupted; nothing was written", exit 130) and every batch not yet ended is
    cancelled on the cluster."""
    registry = _registry(tmp_path, marker, files=1000)

    def stop(_: str) -> None:
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        scan_paths([registry], only=["modelfile"], cluster=client, progress=stop)
    _eventually(lambda: not client.run_on_scheduler(_scan_tasks), seconds=5)
    assert not marker.exists()


def test_a_scan_survives_a_worker_lost_mid_run(client: Any, tmp_path: Path, marker: Path
                                               ) -> None:
    """A registry scan in which a worker is killed (SIGKILL) after the first batch ended, while
    others were on the workers: the lost batches run again on a worker that is alive, and the
    report is the local scan's (every file once, each finding once)."""
    registry = _registry(tmp_path, marker)
    local = scan_paths([registry], only=["modelfile"])
    pids = client.run(os.getpid)
    killed: list[str] = []

    def kill_one(_: str) -> None:           # progress: called as each batch's results arrive
        worker = None if killed else _kill_one(
            client, pids, lambda keys: any("mlthreat-scan" in k for k in keys))
        if worker:
            killed.append(worker)
    spread = scan_paths([registry], only=["modelfile"], cluster=client, progress=kill_one)
    assert killed                                  # a worker holding scan batches was killed
    assert spread.files == local.files == 400
    assert spread.findings == local.findings
    assert sum(f.severity == "critical" for f in spread.findings) == 5 == sum(
        f.severity == "critical" for f in local.findings)
    assert not marker.exists()
    client.wait_for_workers(2, timeout=60)


def test_scan_command_takes_a_scheduler(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    """The flag end to end: a LocalCluster started for the command (local:1) finds what the
    plain command finds."""
    model = tmp_path / "model.pkl"
    model.write_bytes(pickle.dumps(Payload(tmp_path / "never")))
    assert cli.main(["scan", str(model), "-f", "json"]) == 0
    plain = capsys.readouterr().out
    assert cli.main(["scan", str(model), "-f", "json", "--scheduler", "local:1"]) == 0
    assert capsys.readouterr().out == plain and "critical" in plain


def test_our_workers_drop_only_dasks_teardown_message(client: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A LocalCluster's workers run mlthreat's preload: "Exception ignored in Client.__del__:
    IOLoop is closed" (a worker's own client collected after its loop closed, printed into the
    terminal mlthreat shares) is dropped; any other unraisable exception still reaches the hook
    that was there before."""
    import sys
    import types

    from mlthreat.cluster import dask_setup
    assert set(client.run(lambda: sys.unraisablehook.__qualname__).values()) == {
        "dask_setup.<locals>.hook"}
    seen: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    dask_setup(None)
    closed = RuntimeError("IOLoop is closed")
    dropped = distributed.Client.__del__
    sys.unraisablehook(types.SimpleNamespace(object=dropped, exc_value=closed))
    other = [types.SimpleNamespace(object=dropped, exc_value=RuntimeError("boom")),
             types.SimpleNamespace(object=_set_version, exc_value=closed)]
    for unraisable in other:
        sys.unraisablehook(unraisable)
    assert seen == other


def _set_version(value: str) -> str:
    import mlthreat.version
    old, mlthreat.version.__version__ = mlthreat.version.__version__, value
    return old


def test_workers_with_another_mlthreat_are_refused(client: Any) -> None:
    """A worker that would measure with other code is named before any task runs."""
    (worker, *_) = sorted(client.scheduler_info()["workers"])
    real = client.run(_set_version, "0.0.1-other", workers=[worker])[worker]
    try:
        with pytest.raises(ToolError) as exc:
            check_workers(client)
        assert f"{worker}: 0.0.1-other" in str(exc.value)
    finally:
        client.run(_set_version, real, workers=[worker])
    check_workers(client)


def test_an_unreachable_scheduler_is_an_input_error(capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mlthreat.cluster.CONNECT_SECONDS", 1)
    monkeypatch.setenv("MLTHREAT_SCHEDULER", "tcp://127.0.0.1:9")      # the variable counts
    code = cli.main(["scan", str(CREDIT.parent / "models")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach a Dask scheduler" in err and "Traceback" not in err
