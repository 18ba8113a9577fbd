"""Independent probes in parallel: with `jobs` > 1, each probe (the three poisoning kinds of a
component together, since they share their clean retrainings) is one joblib task, so the
probes of all components keep every worker busy.

Each worker prepares a component itself, through the same scanner gate as a sequential run (a
loaded model is never pickled to reach a worker), and keeps it for the rest of the run's tasks
on that component. Progress and results travel back on a queue as each probe ends, which is
also how Ctrl-C keeps what finished: the workers stop, and every probe that had not ended is
listed as interrupted. Inside a task the retrainings run one after the other; the parallelism
is the tasks'. The backend is joblib's default (loky processes) unless the caller chose another
with `joblib.parallel_config`.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import threading
import uuid
from pathlib import Path
from queue import Queue
from typing import Any

from joblib import Parallel, delayed
from joblib.externals.loky import get_reusable_executor

from mlthreat.errors import from_interrupt
from mlthreat.pipeline import Component, Pipeline
from mlthreat.probes.execute import OneThread, ProbeRun, attempt
from mlthreat.probes.registry import GROUPS
from mlthreat.probes.target import Target, prepare
from mlthreat.processes import sigint_blocked, workers_deaf_to_ctrl_c
from mlthreat.progress import RunObserver

# per worker process: (run, component, thread) -> the component prepared for that run; the lock
# matters under a threading backend, where several threads look up and fill it at once
_PREPARED: dict[tuple[str, str, int], Target] = {}
_PREPARED_LOCK = threading.Lock()


def tasks(work: list[tuple[Component, tuple[str, ...]]]) -> list[tuple[str, tuple[str, ...]]]:
    """(component id, kinds) per task, in plan order: a component's poisoning kinds form one
    task, every other kind its own; a live endpoint's probes are all one task, so that its
    declared rate limit holds (two workers would each keep to it)."""
    out: list[tuple[str, tuple[str, ...]]] = []
    for comp, todo in work:
        if comp.probe is not None and comp.probe.endpoint is not None:
            out.append((comp.id, todo))
            continue
        poisoning = tuple(k for k in todo if k in GROUPS["poisoning"])
        for kind in todo:
            if kind not in poisoning:
                out.append((comp.id, (kind,)))
            elif kind == poisoning[0]:
                out.append((comp.id, poisoning))
    return out


def run_parallel(pipeline: Pipeline, work: list[tuple[Component, tuple[str, ...]]],
                 settings: dict[str, int], jobs: int, trust: bool, seed: int,
                 observer: RunObserver | None) -> list[ProbeRun]:
    relay = Relay(observer)
    # absolute, so that a worker started from another working directory finds the files
    portable = dataclasses.replace(pipeline, file=str(Path(pipeline.file).resolve()))
    run_id = uuid.uuid4().hex
    with sigint_blocked():          # the queue's server process is forked deaf to Ctrl-C
        manager = multiprocessing.Manager()
    with manager:
        queue = manager.Queue()
        listener = threading.Thread(target=_listen, args=(queue, relay), daemon=True)
        listener.start()
        stopped = False
        try:
            with workers_deaf_to_ctrl_c():
                Parallel(n_jobs=jobs, batch_size=1)(
                    delayed(_task)(portable, run_id, comp_id, kinds, settings, trust, seed,
                                   queue) for comp_id, kinds in tasks(work))
            # stopped now, while Ctrl-C is still ours to handle, not in an exit handler
            get_reusable_executor().shutdown(wait=True)
        except BaseException as exc:    # noqa: BLE001 - Ctrl-C, however it arrives
            if not from_interrupt(exc):
                raise
            stopped = True              # what ended is in the relay; the rest is interrupted
        finally:
            queue.put(None)
            listener.join()
    return collect(work, relay.ended, stopped)


def collect(work: list[tuple[Component, tuple[str, ...]]],
            ended: dict[tuple[str, str], tuple[str, Any]], stopped: bool) -> list[ProbeRun]:
    """The runs in plan order from what ended (comp id, kind) -> ("result"|"skipped", value);
    every planned kind that did not end was interrupted. A stopped run where everything had
    ended still stops: KeyboardInterrupt."""
    if stopped and len(ended) == sum(len(todo) for _, todo in work):
        raise KeyboardInterrupt         # every probe had ended: still, the run was stopped
    runs = []
    for comp, todo in work:
        run = ProbeRun(comp.id)
        runs.append(run)
        for kind in todo:
            what, value = ended.get((comp.id, kind), ("interrupted", None))
            if what == "result":
                run.results.append(value)
            elif what == "skipped":
                run.skipped.append((kind, value))
            else:
                run.interrupted.append(kind)
    return runs


class Relay:
    """Progress of a parallel run to the observer, and what ended: `begin` and `end` may come
    from different threads (a listener, an event handler); `close` ends what was still
    running as interrupted (Ctrl-C)."""

    def __init__(self, observer: RunObserver | None) -> None:
        self.observer = observer
        self.ended: dict[tuple[str, str], tuple[str, Any]] = {}
        self.running: set[str] = set()
        self.lock = threading.Lock()

    def begin(self, comp_id: str, kind: str) -> None:
        label = f"{kind} on {comp_id}"
        with self.lock:
            self.running.add(label)
        if self.observer:
            self.observer.begin(label)

    def end(self, comp_id: str, kind: str, what: str, value: Any) -> None:
        label = f"{kind} on {comp_id}"
        with self.lock:
            self.running.discard(label)
            self.ended[(comp_id, kind)] = (what, value)
        if self.observer:
            self.observer.end(label, value.summary if what == "result" else f"skipped: {value}")

    def close(self) -> None:
        with self.lock:
            cut = sorted(self.running)
        if self.observer:           # Ctrl-C: what was running when the workers stopped
            for label in cut:
                self.observer.end(label, "interrupted")


def _listen(queue: Queue[Any], relay: Relay) -> None:
    for what, comp_id, kind, value in iter(queue.get, None):
        if what == "begin":
            relay.begin(comp_id, kind)
        else:
            relay.end(comp_id, kind, what, value)
    relay.close()


def _task(pipeline: Pipeline, run_id: str, comp_id: str, kinds: tuple[str, ...],
          settings: dict[str, int], trust: bool, seed: int, queue: Queue[Any]) -> None:
    """One task in a worker: the component prepared once per run and worker, then its kinds."""
    comp = pipeline.component(comp_id)
    with OneThread() as limit:
        target = _target(pipeline, run_id, comp, trust)
        for kind in kinds:
            queue.put(("begin", comp_id, kind, None))
            limit.apply()
            got = attempt(kind, target, settings, 1, seed)
            queue.put(("skipped", comp_id, kind, got) if isinstance(got, str)
                      else ("result", comp_id, kind, got))


def _target(pipeline: Pipeline, run_id: str, comp: Component, trust: bool) -> Target:
    key = (run_id, comp.id, threading.get_ident())   # a threading backend: one per thread
    with _PREPARED_LOCK:
        target = _PREPARED.get(key)
        for old in [k for k in _PREPARED if k[0] != run_id]:     # an earlier run's
            del _PREPARED[old]
    if target is None:                 # loaded outside the lock: no other thread uses this key
        target = prepare(pipeline, comp, trust)
        with _PREPARED_LOCK:
            _PREPARED[key] = target
    return target
