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
from typing import Any

from mlthreat.scanners import FileJob, ScanContext, ScanFinding, scan_file

BATCH = 50            # files per task: small enough to spread, large enough to pay a task's cost
Result = tuple[list[ScanFinding], list[str], int]


def batches(jobs: list[FileJob], workers: int, size: int = BATCH) -> list[list[FileJob]]:
    """Consecutive runs of at most `size` files, at least four per worker where there are
    enough files (a slow batch then holds up little)."""
    per = max(1, min(size, -(-len(jobs) // max(1, 4 * workers))))
    return [jobs[i:i + per] for i in range(0, len(jobs), per)]


def _scan_batch(batch: list[FileJob], ctx: ScanContext) -> list[Result]:
    return [scan_file(job, ctx) for job in batch]


def scan_on_cluster(jobs: list[FileJob], ctx: ScanContext, client: Any,
                    progress: Callable[[str], None] | None = None) -> list[Result]:
    """Each file's (findings, notes, bytes fetched), in the order of `jobs`."""
    from distributed import as_completed

    from mlthreat.cluster import total_threads
    parts = batches(jobs, total_threads(client))
    shared = client.scatter(ctx, hash=False, broadcast=True)
    run = uuid.uuid4().hex
    futures = {client.submit(_scan_batch, part, shared, pure=False,
                             key=f"mlthreat-scan-{n}-{run}"): n for n, part in enumerate(parts)}
    got: dict[int, list[Result]] = {}
    done = 0
    try:
        for future in as_completed(futures, loop=client.loop):  # type: ignore[no-untyped-call]
            n = futures[future]
            got[n] = future.result()
            done += len(parts[n])
            if progress:
                progress(f"{done}/{len(jobs)} files ({parts[n][-1].name})")
    finally:
        client.cancel([f for f in futures if not f.done()] + [shared])
    return [r for n in range(len(parts)) for r in got[n]]
