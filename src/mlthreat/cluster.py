"""A Dask cluster for probes and scans (`--scheduler`): connecting, checking that the workers run
the same mlthreat, and the worker-side helpers both use.

`--scheduler ADDRESS` (or MLTHREAT_SCHEDULER) is a running scheduler, `tcp://host:8786`; `local`
or `local:N` starts a LocalCluster of N worker processes (default: the usable cores) on
127.0.0.1 for this command only. What travels, what workers need installed and why a scheduler
must not face an untrusted network: docs/cluster.md.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from contextlib import contextmanager
from typing import Any, TypeVar

from mlthreat.errors import InputError, ToolError
from mlthreat.processes import sigint_blocked, usable_cores, workers_deaf_to_ctrl_c

ENV = "MLTHREAT_SCHEDULER"
WATCH_SECONDS = 1.0      # how often a task waiting for its parts checks it is still wanted
S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")
CONNECT_SECONDS = 20


def scheduler_from(value: str | None) -> str | None:
    """The scheduler a command uses: its flag, else the environment variable, else none."""
    chosen = value if value is not None else os.environ.get(ENV) or None
    return chosen.strip() if chosen and chosen.strip() else None


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise InputError("--scheduler needs Dask's distributed package: pip install "
                         "distributed (the cluster extra; here and on every worker)") from None
    return distributed


@contextmanager
def connect(address: str) -> Iterator[Any]:
    """A Client of the scheduler at `address`, or of a LocalCluster for `local[:N]`, closed on
    exit (a LocalCluster with it). The workers must import the same mlthreat version."""
    distributed = _distributed()
    if address == "local" or address.startswith("local:"):
        count = address.partition(":")[2]
        if count and not (count.isdigit() and int(count) >= 1):
            raise InputError(f"--scheduler {address}: write local or local:N with N >= 1 "
                             "worker processes")
        cluster = local_cluster(int(count) if count else usable_cores())
        client = distributed.Client(cluster, set_as_default=False)
    else:
        cluster = None
        try:
            client = distributed.Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(f"--scheduler {address}: cannot reach a Dask scheduler there "
                             f"({type(exc).__name__}: {exc}); start one with `dask scheduler` "
                             "and workers with `dask worker ADDRESS` (docs/cluster.md)") from None
    try:
        check_workers(client)
        yield client
    finally:
        # not cut short by a Ctrl-C (one that comes now is raised when they are closed): a
        # half-closed client prints a traceback when Python exits
        with sigint_blocked():
            client.close()
            if cluster is not None:
                cluster.close()


# Dask's defaults that slow probes down in a worker, measured on the reference case's evasion
# and extraction probes (quick budget, one worker): 78.8 s with them, 55.7 s without, 49.8 s in
# this process. The nanny sets MALLOC_TRIM_THRESHOLD_=65536 for its worker, which turns off
# glibc's adaptive mmap threshold (numpy's arrays are then mapped and unmapped at every
# allocation), and the worker samples its threads' stacks every 10 ms.
# The preload (`dask_setup` below) quiets one message of Dask's own teardown in our workers.
WORKER_CONFIG = {"distributed.worker.profile.enabled": False,
                 "distributed.worker.preload": ["mlthreat.cluster"],
                 "distributed.nanny.pre-spawn-environ": {"OMP_NUM_THREADS": 1,
                                                          "MKL_NUM_THREADS": 1,
                                                          "OPENBLAS_NUM_THREADS": 1}}


def dask_setup(worker: Any) -> None:
    """Run by each worker of a `local[:N]` cluster as it starts (Dask's preload). A worker whose
    tasks asked the cluster for parts (`fan_out`) holds a client of its own; when the cluster
    is closed after a Ctrl-C, that client can be collected after the worker's event loop has
    closed, and Python prints "Exception ignored in: Client.__del__ ... IOLoop is closed" into
    the terminal the workers share with mlthreat (seen in 1 of 6 runs of the terminal Ctrl-C
    test). That one message is dropped; every other goes where it went."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        where = (getattr(unraisable.object, "__module__", ""),
                 getattr(unraisable.object, "__qualname__", ""))
        if (where == ("distributed.client", "Client.__del__")
                and isinstance(unraisable.exc_value, RuntimeError)
                and "IOLoop is closed" in str(unraisable.exc_value)):
            return
        previous(unraisable)
    sys.unraisablehook = hook


def local_cluster(n: int) -> Any:
    """A LocalCluster of `n` single-threaded worker processes on 127.0.0.1. The workers start
    in a process group of their own: a Ctrl-C at the terminal reaches this process only, which
    cancels the work and closes the cluster (no worker prints a traceback of its own). The
    scheduler's HTTP endpoint always starts (on 8787 by default, taken by any other cluster
    here): on a free port of the loopback interface."""
    import dask
    distributed = _distributed()
    with dask.config.set(WORKER_CONFIG), sigint_blocked(), workers_deaf_to_ctrl_c():
        return distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                        host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                        silence_logs=logging.CRITICAL)


def check_workers(client: Any, wait_seconds: float = CONNECT_SECONDS) -> None:
    """Every worker imports mlthreat at this version (a worker without it, or another version,
    would fail at its first task or measure differently)."""
    from mlthreat.version import __version__
    try:
        client.wait_for_workers(1, timeout=wait_seconds)
    except TimeoutError:
        raise InputError(f"the Dask scheduler has no workers after {wait_seconds:.0f} s; start "
                         "some with `dask worker ADDRESS`") from None
    found = client.run(_worker_version)
    wrong = {w: v for w, v in found.items() if v != __version__}
    if wrong:
        shown = ", ".join(f"{w}: {v}" for w, v in sorted(wrong.items()))
        raise ToolError(f"Dask workers without mlthreat {__version__} ({shown}): install the "
                        "same version on every worker (docs/cluster.md)")


def _worker_version() -> str:
    try:
        from mlthreat.version import __version__
    except ImportError:
        return "not installed"
    return __version__


def total_threads(client: Any) -> int:
    return max(1, int(sum(client.nthreads().values())))


def hold(value: Any) -> Any:
    """A task whose result is its argument: data that goes to each worker once, and that the
    scheduler computes again if the worker holding it is lost (data given to `scatter` instead
    is gone with its worker: every task that needed it fails)."""
    return value


def fan_out(work: Callable[[S, T], R], shared: S, items: Sequence[T], jobs: int) -> list[R]:
    """`work(shared, item)` for every item, the results in order, in `jobs` parallel tasks.
    Called from a task on a Dask worker, the items go to the cluster as tasks of their own and
    `shared` travels once per worker, held by a task (a lost worker's copy is computed again),
    while the calling task leaves its worker's thread pool until they end; if that task is
    cancelled meanwhile (Ctrl-C), they are cancelled too. Anywhere else, to joblib's backend
    (local processes unless the caller chose another)."""
    if jobs <= 1 or len(items) <= 1:
        return [work(shared, item) for item in items]
    try:
        from distributed import get_worker, wait, worker_client
        worker = get_worker()
    except (ImportError, ValueError):           # not on a worker
        from joblib import Parallel, delayed
        return list(Parallel(n_jobs=jobs)(delayed(work)(shared, item) for item in items))
    asking = worker.get_current_task()
    with worker_client() as client:              # leaves the thread pool while it waits
        held = client.submit(hold, shared, pure=False)
        futures = [client.submit(work, held, item, pure=False) for item in items]
        try:
            while True:
                try:
                    wait(futures, timeout=WATCH_SECONDS)  # type: ignore[no-untyped-call]
                    break
                except TimeoutError:
                    task = worker.state.tasks.get(asking)
                    if asking is not None and (task is None or task.state in (
                            "cancelled", "released", "forgotten")):
                        raise CancelledError(f"{asking} was cancelled") from None
            return list(client.gather(futures))
        finally:
            client.cancel(futures + [held])
