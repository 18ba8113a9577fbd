"""A C library's prints kept off standard output (`c_stdout_discarded`): HiGHS prints a debug line
at random, which would land inside a JSON report written to standard output."""

from __future__ import annotations

import ctypes
import os
import threading
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
