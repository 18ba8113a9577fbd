"""Running the probes a spec asks for: which kinds run on which component (`plan`), each
component prepared once (`probes.target`), then every kind in order in this process, or side by
side in joblib workers (`probes.parallel`). What a run gives is Evidence for the Assessor to
attribute, and a reason for every kind that was skipped.
"""

from __future__ import annotations

from typing import Any

from mlthreat.errors import InputError, from_interrupt
from mlthreat.pipeline import Component, Pipeline
from mlthreat.probes.execute import OneThread, ProbeRun, attempt
from mlthreat.probes.parallel import run_parallel, tasks
from mlthreat.probes.registry import GROUPS, PROBES, RUNS, kind_of
from mlthreat.probes.target import BUDGETS, prepare
from mlthreat.progress import RunObserver

__all__ = ["BUDGETS", "PROBES", "RUNS", "ProbeRun", "kind_of", "plan", "run_probes"]


def run_probes(pipeline: Pipeline, only: tuple[str, ...] = PROBES, budget: str = "standard",
               jobs: int = 1, trust: bool = False, seed: int = 0,
               observer: RunObserver | None = None,
               components: tuple[str, ...] = (), cluster: Any = None) -> list[ProbeRun]:
    """Every applicable probe on every component with a probe block. Ctrl-C stops the run
    between or inside probes; what finished is returned and the rest is listed as
    interrupted. `components` limits the run to those component ids. `cluster`: a Dask
    Client (`mlthreat.cluster.connect`) whose workers run the probes instead of `jobs`
    local processes (`probes.cluster`).

    OpenMP runs one thread per runtime here: PyTorch and scikit-learn each bring an OpenMP
    runtime, and two of them spinning on two cores slow the many small fits down (the reference
    case's quick probes: 21.1 s free, 18.1 s limited); parallelism comes from `jobs` (joblib
    processes) instead. PyTorch's own pool of threads ignores an OpenMP limit set after it
    started, so it is set to one thread too (and restored): its results then do not depend on
    the machine's cores or on `jobs`."""
    with OneThread() as limit:
        return _run_probes(pipeline, only, budget, jobs, trust, seed, observer, components, limit,
                           cluster)


def plan(pipeline: Pipeline, only: tuple[str, ...] = PROBES, components: tuple[str, ...] = ()
         ) -> list[tuple[Component, tuple[str, ...]]]:
    """Which kinds of probe run on which component, in order; unknown probe names or
    components without a probe block are input errors."""
    unknown = sorted(set(only) - set(GROUPS))
    if unknown:
        raise InputError(f"unknown probe(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(PROBES)}")
    known = {c.id for c in pipeline.spec.components if c.probe}
    missing = sorted(set(components) - known)
    if missing:
        raise InputError(f"no probe block on component(s) {', '.join(missing)}; components "
                         f"with one: {', '.join(sorted(known))}")
    kinds = tuple(kind for name in only for kind in GROUPS[name])
    return [(c, kinds) for c in pipeline.spec.components
            if c.probe is not None and (not components or c.id in components)]


def _run_probes(pipeline: Pipeline, only: tuple[str, ...], budget: str, jobs: int, trust: bool,
                seed: int, observer: RunObserver | None, components: tuple[str, ...],
                limit: OneThread, cluster: Any) -> list[ProbeRun]:
    settings = BUDGETS[budget]
    work = plan(pipeline, only, components)
    if cluster is not None:
        from mlthreat.probes.cluster import run_on_cluster
        return run_on_cluster(pipeline, work, settings, cluster, trust, seed, observer)
    if jobs > 1 and len(tasks(work)) > 1:
        return run_parallel(pipeline, work, settings, jobs, trust, seed, observer)
    runs = []
    for n, (comp, todo) in enumerate(work):
        run = ProbeRun(comp.id)
        runs.append(run)
        try:
            target = prepare(pipeline, comp, trust)
        except BaseException as exc:       # noqa: BLE001 - Ctrl-C while loading a model or data
            if not from_interrupt(exc):
                raise
            run.interrupted = list(todo)
            runs += [ProbeRun(c.id, interrupted=list(k)) for c, k in work[n + 1:]]
            return runs
        for i, kind in enumerate(todo):
            label = f"{kind} on {comp.id}"
            if observer:
                observer.begin(label)
            limit.apply()
            try:
                got = attempt(kind, target, settings, jobs, seed)
            except BaseException as exc:   # noqa: BLE001 - Ctrl-C, however it arrives
                if not from_interrupt(exc):
                    raise
                run.interrupted = list(todo[i:])
                runs += [ProbeRun(c.id, interrupted=list(k)) for c, k in work[n + 1:]]
                if observer:
                    observer.end(label, "interrupted")
                return runs
            if isinstance(got, str):
                run.skipped.append((kind, got))
            else:
                run.results.append(got)
            if observer:
                observer.end(label, f"skipped: {got}" if isinstance(got, str) else got.summary)
    return runs
