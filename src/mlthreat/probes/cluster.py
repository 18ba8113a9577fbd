"""Probes on a Dask cluster (`--scheduler`): the same tasks as the local parallel run
(`parallel.tasks`: a task per probe, a component's poisoning kinds together), submitted to
`distributed` workers that may sit on other machines.

What travels, once per component and worker: the files its probe block reads (data, model file,
the training file and the .py files beside it), as bytes held by a task of their own (a worker
fetches them once from wherever they are; lost with a worker, they are computed again from the
scheduler's copy); a worker that runs one of the component's tasks writes them into a folder of
its own and prepares the component there through
the same scanner gate as a local run, so a model is never pickled to a worker and a flagged file
is refused on the worker. Inside a task the repeated work (membership inference's reference
models, poisoning's seeds and rates, exact evasion's points) goes to the cluster as tasks of its
own (`mlthreat.cluster.fan_out`: what they share is held by a task, not scattered), so it spreads
over the cluster too; every training has its own seed, so the evidence equals `--jobs 1`'s.

Progress: a worker says when a probe begins (a Dask event on a topic of this run), the task's
future brings its results. Ctrl-C cancels the futures not yet done and lists what finished; a
worker lost in the middle of a task has that task run again elsewhere (the scheduler retries
it), and a task's results are taken from its future once, so nothing is counted twice.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import threading
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from mlthreat.errors import InputError, MlthreatError, SpecError, from_interrupt
from mlthreat.pipeline import Component, Pipeline
from mlthreat.probes.execute import OneThread, attempt
from mlthreat.probes.parallel import Relay, _target, collect, tasks
from mlthreat.processes import sigint_blocked
from mlthreat.progress import RunObserver

MAX_INNER_JOBS = 256        # the probes' `jobs` parameter allows no more


@dataclasses.dataclass(frozen=True)
class Shipment:
    """One component's probe inputs as they travel to workers: its spec (paths rewritten to
    lie under one folder) and the files' bytes by relative path."""

    pipeline: Pipeline          # only the one component; `file` is the spec's name alone
    component: str
    files: dict[str, bytes]
    origin: str                 # the spec's folder on the submitting machine, for messages


def ship(pipeline: Pipeline, comp: Component) -> Shipment:
    """The files `comp`'s probe block reads, by the relative path a worker writes them at, and
    a copy of the spec whose paths name those (so results name what a local run names: the
    paths are kept where they are plain relative paths)."""
    spec = comp.probe
    assert spec is not None
    base = pipeline.base_dir.resolve()
    files: dict[str, bytes] = {}

    def put(given: str, slot: str) -> str:
        """A file (or a folder's files) at the path the worker's copy of the spec names; a
        missing one stays missing, for the worker to report as a local run does."""
        source = (base / given).resolve()
        inner = PurePosixPath(given)
        plain = not inner.is_absolute() and ".." not in inner.parts
        rel = inner.as_posix() if plain else f"_outside/{slot}/{source.name}"
        if source.is_file():
            files[rel] = source.read_bytes()
        elif source.is_dir():                    # a partitioned Parquet data set
            for sub in sorted(source.rglob("*")):
                if sub.is_file():
                    files[f"{rel}/{sub.relative_to(source).as_posix()}"] = sub.read_bytes()
        return rel

    probe = spec.model_copy(update={"data": put(spec.data, "data")})
    artifacts = comp.artifacts
    if spec.endpoint is None and comp.artifacts.model:
        model = put(comp.artifacts.model[0], "model")
        artifacts = comp.artifacts.model_copy(update={"model": [model,
                                                                *comp.artifacts.model[1:]]})
    if spec.train:
        file, _, name = spec.train.rpartition(":")
        moved = put(file, "train")
        folder = (base / file).resolve().parent
        for sibling in sorted(folder.glob("*.py")):      # what the training file may import
            files.setdefault(str(PurePosixPath(moved).parent / sibling.name),
                             sibling.read_bytes())
        probe = probe.model_copy(update={"train": f"{moved}:{name}"})
    moved_comp = comp.model_copy(update={"probe": probe, "artifacts": artifacts})
    only = pipeline.spec.model_copy(update={"components": [moved_comp], "flows": []})
    light = dataclasses.replace(pipeline, spec=only, file=Path(pipeline.file).name)
    return Shipment(light, comp.id, files, str(base))


# per worker process: (run, component) -> the folder its files were written to
_FOLDERS: dict[tuple[str, str], Path] = {}
_FOLDERS_LOCK = threading.Lock()


def _unpacked(shipment: Shipment, run_id: str) -> Pipeline:
    """The shipment written to a folder of this worker (once per run and component), as a
    pipeline whose spec lies in that folder; an earlier run's folders are removed."""
    key = (run_id, shipment.component)
    with _FOLDERS_LOCK:
        for old in [k for k in _FOLDERS if k[0] != run_id]:
            shutil.rmtree(_FOLDERS.pop(old), ignore_errors=True)
        folder = _FOLDERS.get(key)
        if folder is None:
            folder = Path(tempfile.mkdtemp(prefix="mlthreat-probe-", dir=_scratch()))
            for rel, blob in shipment.files.items():
                path = folder / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(blob)
            _FOLDERS[key] = folder
    return dataclasses.replace(shipment.pipeline, file=str(folder / shipment.pipeline.file))


def _scratch() -> str | None:
    try:
        from distributed import get_worker
        return str(get_worker().local_directory)
    except (ImportError, ValueError):
        return None


def _task(shipment: Shipment, run_id: str, comp_id: str, kinds: tuple[str, ...],
          settings: dict[str, int], trust: bool, seed: int, inner: int, topic: str
          ) -> list[tuple[str, str, Any]]:
    """One task on a worker: [(result|skipped, kind, evidence or reason)] in order."""
    from distributed import get_worker
    worker = get_worker()
    pipeline = _unpacked(shipment, run_id)
    folder = str(Path(pipeline.file).parent)
    out: list[tuple[str, str, Any]] = []
    try:
        with OneThread() as limit:
            target = _target(pipeline, run_id, pipeline.component(comp_id), trust)
            for kind in kinds:
                worker.log_event(topic, ("begin", comp_id, kind))
                limit.apply()
                # the retrainings and points inside the probe go to the cluster too (fan_out)
                got = attempt(kind, target, settings, inner, seed)
                out.append(("skipped", kind, got) if isinstance(got, str)
                           else ("result", kind, got))
    except MlthreatError as exc:          # name the user's files, not the worker's folder
        error = InputError if isinstance(exc, SpecError) else type(exc)  # one message, no list
        raise error(str(exc).replace(folder, shipment.origin)) from None
    return out


def run_on_cluster(pipeline: Pipeline, work: list[tuple[Component, tuple[str, ...]]],
                   settings: dict[str, int], client: Any, trust: bool, seed: int,
                   observer: RunObserver | None) -> list[Any]:
    """The planned probes as tasks on the cluster `client` is connected to; ProbeRuns in plan
    order, as `run_parallel` gives them."""
    from distributed import as_completed

    from mlthreat.cluster import hold, total_threads
    run_id = uuid.uuid4().hex
    topic = f"mlthreat-probe-{run_id}"
    inner = min(MAX_INNER_JOBS, total_threads(client))
    relay = Relay(observer)

    def began(event: tuple[float, Any]) -> None:
        _, (_, comp_id, kind) = event
        relay.begin(comp_id, kind)

    client.subscribe_topic(topic, began)
    # a task that holds the files (not `scatter`: scattered data lost with its worker is gone
    # for good, seen here when a worker was killed; a task's result is computed again)
    shipped = {comp.id: client.submit(hold, ship(pipeline, comp), pure=False,
                                      key=f"mlthreat-files-{comp.id}-{run_id}")
               for comp, _ in work}
    futures = {client.submit(_task, shipped[comp_id], run_id, comp_id, kinds, settings, trust,
                             seed, inner, topic, pure=False,
                             key=f"mlthreat-probe-{n}-{comp_id}-{run_id}"): comp_id
               for n, (comp_id, kinds) in enumerate(tasks(work))}
    stopped = False
    try:
        for future in as_completed(futures, loop=client.loop):  # type: ignore[no-untyped-call]
            comp_id = futures[future]
            for what, kind, value in future.result():     # a task's failure is raised here
                relay.end(comp_id, kind, what, value)
    except BaseException as exc:          # noqa: BLE001 - Ctrl-C, however it arrives
        if not from_interrupt(exc):
            raise
        stopped = True
    finally:
        with sigint_blocked():              # a second Ctrl-C must not cut the clean-up short
            client.cancel(list(futures) + list(shipped.values()))   # the rest is not needed
            client.unsubscribe_topic(topic)
    if stopped:
        relay.close()
    return collect(work, relay.ended, stopped)
