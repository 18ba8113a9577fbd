"""Scanning on a Dask cluster (`mlthreat scan --scheduler`): the files, planned here, go to the
workers in batches; each worker reads its files itself (a local path must be the same path on
the workers: a shared file system; a URL is fetched by the worker with its own credentials).
Results come back as batches end and are put in plan order, so the report is the one a local
scan gives. A worker lost mid-batch has the batch run again elsewhere (the scheduler retries
it); a batch's results are taken from its future once. Ctrl-C cancels what has not ended.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

BATCH = 50            # files per task: small enough to spread, large enough to pay a task's cost
J = TypeVar("J")
R = TypeVar("R")


def batches(jobs: list[J], workers: int, size: int | None = None) -> list[list[J]]:
    """Consecutive runs of at most `size` (BATCH) files, at least four per worker where there
    are enough files (a slow batch then holds up little)."""
    per = max(1, min(size or BATCH, -(-len(jobs) // max(1, 4 * workers))))
    return [jobs[i:i + per] for i in range(0, len(jobs), per)]


def _batch(part: list[J], work: Callable[[J, Any], R], shared: Any) -> list[R]:
    return [work(job, shared) for job in part]


def on_cluster(jobs: list[J], work: Callable[[J, Any], R], shared: Any, client: Any,
               progress: Callable[[str], None] | None = None,
               name: Callable[[J], str] = str) -> list[R]:
    """`work(job, shared)` for every job on the cluster's workers (`shared` sent once to each),
    the results in the order of `jobs`."""
    from distributed import as_completed

    from mlthreat.cluster import hold, total_threads
    parts = batches(jobs, total_threads(client))
    run = uuid.uuid4().hex
    # held by a task, not scattered: a lost worker's copy is computed again (probes.cluster)
    sent = client.submit(hold, shared, pure=False, key=f"mlthreat-shared-{run}")
    futures = {client.submit(_batch, part, work, sent, pure=False,
                             key=f"mlthreat-scan-{n}-{run}"): n for n, part in enumerate(parts)}
    got: dict[int, list[R]] = {}
    done = 0
    try:
        for future in as_completed(futures, loop=client.loop):  # type: ignore[no-untyped-call]
            n = futures[future]
            got[n] = future.result()
            done += len(parts[n])
            if progress:
                progress(f"{done}/{len(jobs)} files ({name(parts[n][-1])})")
    finally:
        client.cancel([f for f in futures if not f.done()] + [sent])
    return [r for n in range(len(parts)) for r in got[n]]
