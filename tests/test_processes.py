"""A C library's prints kept off standard output (`c_stdout_discarded`): HiGHS prints a debug line
at random, which would land inside a JSON report written to standard output."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlthreat.processes import c_stdout_discarded


def _c_print(text: str) -> None:
    """What C code does: printf into the C library's stdout buffer (flushed whenever)."""
    ctypes.CDLL(None).printf(text.encode())


def test_c_prints_inside_are_discarded_and_output_around_them_kept(
        capfd: pytest.CaptureFixture[str]) -> None:
    print("before", end=" ", flush=False)          # still in Python's buffer at entry
    with c_stdout_discarded():
        _c_print("from C\n")
        os.write(1, b"raw\n")
    _c_print("after C\n")
    ctypes.CDLL(None).fflush(None)
    print("after", flush=True)
    out = capfd.readouterr().out
    assert out == "before after C\nafter\n"


def test_nested_and_concurrent_blocks_restore_standard_output_once(
        capfd: pytest.CaptureFixture[str]) -> None:
    inside = threading.Event()
    leave = threading.Event()

    def other() -> None:
        with c_stdout_discarded():
            inside.set()
            leave.wait(10)
            _c_print("other thread\n")
    thread = threading.Thread(target=other)
    thread.start()
    inside.wait(10)
    with c_stdout_discarded(), c_stdout_discarded():
        _c_print("nested\n")
    _c_print("still discarded: the other block runs\n")
    leave.set()
    thread.join()
    os.write(1, b"restored\n")
    assert capfd.readouterr().out == "restored\n"


def test_the_exact_solver_prints_nothing_to_standard_output(
        capfd: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
    """What the solver prints while it solves (here: a stand-in wrapped round scipy's milp)
    never reaches standard output."""
    from mlthreat.probes import exact
    real = exact.milp

    def noisy(*args: Any, **kwargs: Any) -> Any:
        _c_print("HighsMipSolverData::transformNewIntegerFeasibleSolution tmpSolver.run();\n")
        return real(*args, **kwargs)
    monkeypatch.setattr(exact, "milp", noisy)
    prog = exact.Program([1.0, 1.0], [1, 0], [0.0, 0.0], [1.0, 5.0],
                         [({0: 1.0, 1: 1.0}, 1.5, np.inf)])     # x0 + x1 >= 1.5, min x0 + x1
    res = exact._run(prog, 5.0)
    ctypes.CDLL(None).fflush(None)
    assert res.fun == pytest.approx(1.5)
    assert capfd.readouterr().out == ""


def test_after_ctrl_c_workers_holding_a_task_are_killed_and_the_exit_does_not_wait(
        tmp_path: Path) -> None:
    # a worker in a process group of its own (Ctrl-C never reaches it) busy with a long task:
    # without stop_workers, the interpreter's exit waits for that task (60 s here)
    script = tmp_path / "run.py"
    script.write_text(
        "import os, sys, time\n"
        "from joblib.externals.loky import get_reusable_executor\n"
        "from mlthreat.processes import stop_workers, workers_deaf_to_ctrl_c\n"
        "def task(path):\n"
        "    open(path, 'w').write(str(os.getpid()))\n"
        "    time.sleep(60)\n"
        "with workers_deaf_to_ctrl_c():\n"
        "    executor = get_reusable_executor(max_workers=1)\n"
        f"    executor.submit(task, {str(tmp_path / 'pid')!r})\n"
        f"while not os.path.exists({str(tmp_path / 'pid')!r}):\n"
        "    time.sleep(0.05)\n"
        "time.sleep(0.2)\n"
        "stop_workers()\n")
    started = time.perf_counter()
    subprocess.run([sys.executable, str(script)], timeout=120, check=True)
    took = time.perf_counter() - started
    worker = int((tmp_path / "pid").read_text())
    assert took < 30, took
    deadline = time.time() + 10
    while time.time() < deadline and _alive(worker):
        time.sleep(0.1)
    assert not _alive(worker)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")       # a zombie is dead, only not yet reaped
    return not (stat.exists() and stat.read_text().split(") ")[1].startswith("Z"))
