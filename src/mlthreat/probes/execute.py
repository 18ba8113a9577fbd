"""Executing one kind of probe run on a prepared component, shared by the sequential runner and
the parallel workers: the planner's capability check (a probe whose `requires` the target lacks
is skipped with the probe's own reason), the registered probe configuring itself and running,
and the one-thread limits under which probes run.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from threadpoolctl import threadpool_limits

from mlthreat.errors import ProbeError
from mlthreat.probes.registry import RUNS
from mlthreat.probes.target import Target
from mlthreat.results import Evidence


@dataclass
class ProbeRun:
    """What the probes of one component gave: evidence, skips with reasons, and the kinds Ctrl-C
    cut off."""

    component: str
    results: list[Evidence] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (kind, why)
    interrupted: list[str] = field(default_factory=list)           # kinds Ctrl-C cut off


class OneThread:
    """OpenMP runtimes (threadpoolctl) and, once it is imported, PyTorch at one thread each
    while probes run; both are restored on exit."""

    def __init__(self) -> None:
        self.torch_threads: int | None = None
        self.limits: Any = None

    def __enter__(self) -> OneThread:
        self.limits = threadpool_limits(limits=1, user_api="openmp")
        self.apply()
        return self

    def apply(self) -> None:
        """Call before each probe: a model or training file may have imported torch since."""
        torch = _torch()
        if torch is not None and self.torch_threads is None:
            self.torch_threads = torch.get_num_threads()
            torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        torch = _torch()
        if torch is not None and self.torch_threads is not None:
            torch.set_num_threads(self.torch_threads)
        self.limits.restore_original_limits()


def _torch() -> Any:
    """PyTorch if it is imported and done initialising, else None. On a Dask worker another
    thread may be importing it at this moment: `sys.modules` then holds a partly initialised
    module without `get_num_threads`, and the limit is applied before the next probe instead."""
    torch = sys.modules.get("torch")
    spec = getattr(torch, "__spec__", None)
    if torch is None or getattr(spec, "_initializing", False):
        return None
    if not (callable(getattr(torch, "get_num_threads", None))
            and callable(getattr(torch, "set_num_threads", None))):
        return None
    return torch


def attempt(kind: str, target: Target, settings: dict[str, int], jobs: int, seed: int
            ) -> Evidence | str:
    """The evidence of one kind of run on a prepared component, or why it was skipped: a
    capability the probe requires and the target lacks, or a ProbeError of the run itself."""
    for capability, why in RUNS[kind].needs().items():
        if capability not in target.capabilities:
            return target.no_retraining(why) if capability == "retraining" else why
    try:
        return _one(kind, target, settings, jobs, seed)
    except ProbeError as exc:
        return str(exc)


def _one(kind: str, target: Target, settings: dict[str, int], jobs: int, seed: int
         ) -> Evidence:
    """One kind of run: the registered probe configures itself for the target, then runs."""
    run = RUNS[kind]
    probe, model, data, budget = run.probe.configure(target, settings, dict(run.fixed), seed,
                                                     jobs)
    return probe.run(model, data, budget, target.artifact, component=target.component)
