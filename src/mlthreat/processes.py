"""Worker processes that a terminal's Ctrl-C does not reach: they are started in a process group
of their own (and with SIGINT blocked while they fork), so that only mlthreat hears Ctrl-C and
stops them itself: joblib's loky workers (`probes.parallel`) and a LocalCluster's (`cluster`).
And a C library's prints kept off the process's standard output (`c_stdout_discarded`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from typing import Any


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it, as in a
    container or under `taskset`), at least one: what `--jobs auto` and `local` use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@contextmanager
def sigint_blocked() -> Iterator[None]:
    """SIGINT blocked in this thread while a process is forked from it: the child inherits the
    mask and never sees Ctrl-C (it would print a traceback while it starts; this process stops
    it), while this process loses nothing: a Ctrl-C meanwhile is taken by another thread or
    delivered when the block ends."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def stop_workers() -> None:
    """After Ctrl-C: kill the worker processes of joblib's reusable executor. They sit in a
    process group of their own, never see the signal, and would go on with the task they hold;
    the interpreter's exit then waits for them (a run interrupted outside the parallel runner's
    own handler waited minutes once, under load). Nothing to do when no executor was started."""
    module = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(module, "_executor", None)
    if executor is not None:
        with suppress(Exception):
            executor.shutdown(wait=False, kill_workers=True)


# the position of `pgid_to_set` in _posixsubprocess.fork_exec's arguments (Python 3.11 to 3.14)
PGID_ARGUMENT = 16


@contextmanager
def workers_deaf_to_ctrl_c() -> Iterator[None]:
    """Worker processes started inside get a process group of their own, so that Ctrl-C at a
    terminal, which signals the whole foreground group, reaches only this process (which then
    stops the workers), not a worker that would print a traceback of its own while it starts.
    loky leaves the group unset when it forks and execs a worker; the group is set in the child
    before exec, so no signal is ignored or lost here, at any moment."""
    import _posixsubprocess
    real = _posixsubprocess.fork_exec

    def fork_exec(*args: Any) -> Any:
        if len(args) > PGID_ARGUMENT and args[PGID_ARGUMENT] == -1:
            args = (*args[:PGID_ARGUMENT], 0, *args[PGID_ARGUMENT + 1:])
        return real(*args)
    _posixsubprocess.fork_exec = fork_exec
    try:
        yield
    finally:
        _posixsubprocess.fork_exec = real


_STDOUT_LOCK = threading.Lock()
_stdout_saved: list[int] = []          # the real fd 1 while discarding; [] otherwise
_stdout_depth = 0


def _flush_c_streams() -> None:
    with suppress(OSError, AttributeError):     # no C library to ask (not a POSIX system)
        _libc().fflush(None)


@cache
def _libc() -> Any:
    return ctypes.CDLL(None)


@contextmanager
def c_stdout_discarded() -> Iterator[None]:
    """What C code prints to standard output (file descriptor 1) while the block runs is
    discarded: HiGHS, the MILP solver in scipy, prints a debug line at random
    (ERGO-Code/HiGHS#2783), which would land inside a JSON or SARIF report written to standard
    output. Python's buffered output is written out first; blocks in several threads share one
    redirection (fd 1 is the process's), restored when the last ends."""
    global _stdout_depth
    with _STDOUT_LOCK:
        if _stdout_depth == 0:
            with suppress(AttributeError, ValueError, OSError):
                sys.stdout.flush()
            _flush_c_streams()
            try:
                saved = os.dup(1)
            except OSError:                 # no fd 1 at all: nothing to protect
                saved = -1
            if saved >= 0:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)
                os.close(null)
                _stdout_saved.append(saved)
        _stdout_depth += 1
    try:
        yield
    finally:
        with _STDOUT_LOCK:
            _stdout_depth -= 1
            if _stdout_depth == 0 and _stdout_saved:
                _flush_c_streams()          # the C library's buffer, into the discard
                saved = _stdout_saved.pop()
                os.dup2(saved, 1)
                os.close(saved)
