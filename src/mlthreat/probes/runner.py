"""Running the probes a spec asks for, and turning their Evidence into evidence for findings.

For each component with a `probe` block: the model named in its artifacts is loaded through the
scanner gate (or its HTTP endpoint is queried), the data file is read and split as declared
(members: the rows the model was trained on), the spec's constraints are mapped onto the model's
input columns, and the model is seen as the interface shows it to an attacker (full
probabilities, rounded scores, or the label only). Each applicable probe runs; one that cannot (no gradients,
label-only interface) is reported as skipped with its reason. Evidence is attached to every
finding of the probe's threats whose attack path passes through the probed component (for
threats that act through training: through a training step the probed model comes from).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from mlthreat.errors import InputError, ProbeError
from mlthreat.pipeline import Component, Pipeline
from mlthreat.pipeline.spec import ProbeSpec
from mlthreat.probes.adapters import ModelAdapter, RoundedAdapter, adapter_for
from mlthreat.probes.blackbox import BlackBoxEvasion
from mlthreat.probes.constraints import Constraints, from_transform
from mlthreat.probes.data import Table, load_table
from mlthreat.probes.evasion import EvasionData, WhiteBoxEvasion
from mlthreat.probes.extraction import ExtractionData, ModelExtraction
from mlthreat.probes.http import HttpAdapter
from mlthreat.probes.interface import Budget, Probe
from mlthreat.probes.loading import load_model
from mlthreat.probes.membership import Fit, MembershipData, MembershipInference, sklearn_fit
from mlthreat.probes.parallel import run_parallel, tasks
from mlthreat.probes.poisoning import Poisoning, PoisoningData, trigger
from mlthreat.probes.training import labels_of, sharing_clean, user_fit
from mlthreat.probes.transfer import TransferEvasion
from mlthreat.results import Evidence

PROBES = ("membership", "extraction", "poisoning", "evasion")
BUDGETS: dict[str, dict[str, int]] = {
    "quick": {"references": 8, "seeds": 2, "bootstrap": 100, "points": 50, "per_point": 100},
    "standard": {"references": 16, "seeds": 3, "bootstrap": 200, "points": 100,
                 "per_point": 200},
    "thorough": {"references": 64, "seeds": 5, "bootstrap": 500, "points": 200,
                 "per_point": 400},
}


class Observer(Protocol):
    """Where progress goes (the CLI draws bars; a web UI could listen the same way)."""

    def begin(self, label: str) -> None: ...

    def end(self, label: str, outcome: str) -> None: ...


@dataclass
class ProbeRun:
    component: str
    results: list[Evidence] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (probe, why)
    interrupted: list[str] = field(default_factory=list)           # probes Ctrl-C cut off


@dataclass(frozen=True)
class _Target:
    adapter: ModelAdapter
    x: np.ndarray               # all rows, as the model sees them
    y: np.ndarray
    train: np.ndarray           # indices of training rows (members)
    test: np.ndarray
    constraints: Constraints
    fit: Fit | None             # retrains a model of the target's kind (scores out)
    goal: int | None            # the class the attacker wants


def _prepare(pipeline: Pipeline, comp: Component, trust: bool) -> _Target:
    spec = comp.probe
    assert spec is not None
    table = load_table(pipeline.base_dir / spec.data, spec.target, spec.positive,
                       tuple(spec.drop))
    train, test = train_test_split(np.arange(len(table.y)), test_size=spec.test_size,
                                   stratify=table.y, random_state=spec.seed)
    model: Any = None
    transform: Callable[[Any], np.ndarray] = table.encoder.transform
    if spec.endpoint is None:
        if not comp.artifacts.model:
            raise InputError(f"{comp.id}: a probe block needs a model in artifacts.model (or "
                             "an endpoint)")
        model = load_model(pipeline.base_dir / comp.artifacts.model[0], trust=trust)
        if hasattr(model, "steps") and len(model.steps) > 1:      # a scikit-learn Pipeline
            transform, model = model[:-1].transform, model[-1]
    constraints = from_transform(transform, table.frame, spec.constraints.immutable,
                                 dict(spec.constraints.bounds), spec.constraints.integer)
    adapter = _view(model, spec, constraints)
    x = np.asarray(transform(table.frame), dtype=float)
    fit = _fit(pipeline, spec, model)
    if fit is not None:
        fit = sharing_clean(fit, x[train], table.y[train])
    return _Target(adapter, x, table.y, train, test, constraints, fit, _goal(spec, table))


def _view(model: Any, spec: ProbeSpec, constraints: Constraints) -> ModelAdapter:
    """The model as the interface shows it to an attacker."""
    if spec.endpoint is not None:
        e = spec.endpoint
        return HttpAdapter(e.url, e.request, e.response,
                           "label" if spec.output == "label" else "probabilities", e.batch,
                           e.rate, e.headers, constraints.records if e.records else None)
    view = adapter_for(model)
    if spec.output == "rounded":
        return RoundedAdapter(view, 2)
    if spec.output == "label":
        return RoundedAdapter(view, None)
    return view


def _fit(pipeline: Pipeline, spec: ProbeSpec, model: Any) -> Fit | None:
    if spec.train:
        return user_fit(pipeline.base_dir, spec.train)
    if model is not None and hasattr(model, "get_params") and hasattr(model, "predict_proba"):
        return sklearn_fit(model)
    return None


def _goal(spec: ProbeSpec, table: Table) -> int | None:
    """The attacker's wanted class as the probes number it (1: the positive value)."""
    if spec.goal is None:
        return None
    if str(spec.goal) not in table.values:
        raise InputError(f"{spec.data}: goal {spec.goal!r} is not a value of {spec.target!r} "
                         f"(values: {', '.join(table.values)})")
    return 1 if str(spec.goal) == str(spec.positive) else 0


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it, as in a
    container or under `taskset`), at least one: what `--jobs auto` uses."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def run_probes(pipeline: Pipeline, only: tuple[str, ...] = PROBES, budget: str = "standard",
               jobs: int = 1, trust: bool = False, seed: int = 0,
               observer: Observer | None = None,
               components: tuple[str, ...] = ()) -> list[ProbeRun]:
    """Every applicable probe on every component with a probe block. Ctrl-C stops the run
    between or inside probes; what finished is returned and the rest is listed as
    interrupted. `components` limits the run to those component ids.

    OpenMP runs one thread per runtime here: PyTorch and scikit-learn each bring an OpenMP
    runtime, and two of them spinning on two cores slow the many small fits down (the reference
    case's quick probes: 21.1 s free, 18.1 s limited); parallelism comes from `jobs` (joblib
    processes) instead. PyTorch's own pool of threads ignores an OpenMP limit set after it
    started, so it is set to one thread too (and restored): its results then do not depend on
    the machine's cores or on `jobs`."""
    with OneThread() as limit:
        return _run_probes(pipeline, only, budget, jobs, trust, seed, observer, components, limit)


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
        torch = sys.modules.get("torch")
        if torch is not None and self.torch_threads is None:
            self.torch_threads = torch.get_num_threads()
            torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        torch = sys.modules.get("torch")
        if torch is not None and self.torch_threads is not None:
            torch.set_num_threads(self.torch_threads)
        self.limits.restore_original_limits()


def plan(pipeline: Pipeline, only: tuple[str, ...] = PROBES, components: tuple[str, ...] = ()
         ) -> list[tuple[Component, tuple[str, ...]]]:
    """Which kinds of probe run on which component, in order; unknown probe names or
    components without a probe block are input errors."""
    unknown = sorted(set(only) - set(KINDS))
    if unknown:
        raise InputError(f"unknown probe(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(PROBES)}")
    known = {c.id for c in pipeline.spec.components if c.probe}
    missing = sorted(set(components) - known)
    if missing:
        raise InputError(f"no probe block on component(s) {', '.join(missing)}; components "
                         f"with one: {', '.join(sorted(known))}")
    kinds = tuple(kind for name in only for kind in KINDS[name])
    return [(c, kinds) for c in pipeline.spec.components
            if c.probe is not None and (not components or c.id in components)]


def _run_probes(pipeline: Pipeline, only: tuple[str, ...], budget: str, jobs: int, trust: bool,
                seed: int, observer: Observer | None, components: tuple[str, ...],
                limit: OneThread) -> list[ProbeRun]:
    settings = BUDGETS[budget]
    work = plan(pipeline, only, components)
    if jobs > 1 and len(tasks(work)) > 1:
        return run_parallel(pipeline, work, settings, jobs, trust, seed, observer)
    runs = []
    for comp, todo in work:
        target = _prepared(pipeline, comp, trust)
        run = ProbeRun(comp.id)
        runs.append(run)
        for i, kind in enumerate(todo):
            label = f"{kind} on {comp.id}"
            if observer:
                observer.begin(label)
            limit.apply()
            try:
                ev = _one(kind, target, comp, settings, jobs, seed)
                run.results.append(ev)
                outcome = ev.summary
            except ProbeError as exc:
                run.skipped.append((kind, str(exc)))
                outcome = f"skipped: {exc}"
            except KeyboardInterrupt:
                run.interrupted = list(todo[i:])
                if observer:
                    observer.end(label, "interrupted")
                return runs
            if observer:
                observer.end(label, outcome)
    return runs


def _prepared(pipeline: Pipeline, comp: Component, trust: bool) -> _Target:
    try:
        return _prepare(pipeline, comp, trust)
    except InputError as exc:   # say which spec entry the problem comes from
        line, col = pipeline.component_positions.get(comp.id, (0, 0))
        raise InputError(f"{pipeline.file}:{line}:{col}: probe block of {comp.id}: {exc}"
                         ) from exc


REGISTRY: dict[str, type[Probe]] = {cls.name: cls for cls in (
    MembershipInference, ModelExtraction, Poisoning, WhiteBoxEvasion, BlackBoxEvasion,
    TransferEvasion)}

# what `--only` names -> the kinds of run it means; each kind is one registered probe
KIND_PROBE = {"membership": "membership", "extraction": "extraction", "poisoning": "poisoning",
              "backdoor": "poisoning", "targeted": "poisoning", "evasion-whitebox": "evasion-whitebox",
              "evasion-blackbox": "evasion-blackbox", "evasion-transfer": "evasion-transfer"}
# each poisoning kind of run -> the Poisoning probe's attack it runs
POISONING_ATTACK = {"poisoning": "label_flip", "targeted": "targeted_flip", "backdoor": "backdoor"}


def kind_of(ev: Evidence) -> str:
    """The kind of run (as `--only` and the progress lines name it) that measured `ev`."""
    if ev.kind == "poisoning":
        kinds = {attack: kind for kind, attack in POISONING_ATTACK.items()}
        return kinds.get(str(ev.parameters.get("attack")), ev.kind)
    return ev.kind


KINDS = {"membership": ("membership",), "extraction": ("extraction",),
         "poisoning": ("poisoning", "targeted", "backdoor"),
         "evasion": ("evasion-whitebox", "evasion-blackbox", "evasion-transfer")}


def _one(kind: str, t: _Target, comp: Component, settings: dict[str, int], jobs: int,
         seed: int) -> Evidence:
    """One kind of run on a prepared component: its evidence, measured there."""
    return dataclasses.replace(_kind(kind, t, comp, settings, jobs, seed), component=comp.id)


def _kind(kind: str, t: _Target, comp: Component, settings: dict[str, int], jobs: int,
          seed: int) -> Evidence:
    spec = comp.probe
    assert spec is not None
    artifact = spec.endpoint.url if spec.endpoint else comp.artifacts.model[0]
    members = np.isin(np.arange(len(t.y)), t.train)
    if kind == "membership":
        if t.fit is None:
            raise ProbeError("the reference attack retrains models of this kind: name the "
                             "training function in the probe block (train: file.py:function)")
        cand = np.concatenate([t.train, t.test])
        candidates = MembershipData(t.x[cand], t.y[cand], members[cand], population_x=t.x,
                                    population_y=t.y, population_index=cand)
        return MembershipInference(attack="reference", fit=t.fit,
                                   references=settings["references"],
                                   bootstrap=settings["bootstrap"], jobs=jobs).run(
            t.adapter, candidates, Budget(seed=seed), artifact)
    if kind == "extraction":
        rows = ExtractionData(t.x[t.test], pool=t.x[t.train], y_eval=t.y[t.test])
        return ModelExtraction(queries=spec.queries, output="labels").run(
            t.adapter, rows, Budget(queries=spec.queries + len(t.test), seed=seed), artifact)
    if kind in ("poisoning", "targeted", "backdoor"):
        return _poisoning(kind, t, spec, settings, jobs, seed, artifact)
    return _evasion(kind, t, spec, settings, seed, artifact)


def _poisoning(kind: str, t: _Target, spec: ProbeSpec, settings: dict[str, int], jobs: int,
               seed: int, artifact: str) -> Evidence:
    """Random label flips, targeted flips (the other class turned into the goal) or a backdoor,
    each retrained through the target's training entry point."""
    wanted = 0 if t.goal is None else t.goal
    flips = {"rates": [0.05, 0.1, 0.2]}
    options: dict[str, dict[str, Any]] = {
        "poisoning": {"attack": POISONING_ATTACK["poisoning"], **flips},
        "targeted": {"attack": POISONING_ATTACK["targeted"], **flips, "target_class": wanted,
                     "source_class": 1 - wanted},
        "backdoor": {"attack": POISONING_ATTACK["backdoor"], "rates": [0.01, 0.05, 0.1],
                     "target_class": wanted, "value": 4.0}}
    if t.fit is None:
        raise ProbeError(f"{options[kind]['attack'].replace('_', ' ')} poisoning retrains the "
                         "model: name the training function in the probe block "
                         "(train: file.py:function)")
    params = dict(options[kind])
    if kind == "backdoor":
        features = _trigger(t, spec)
        params.update(features=features, names=[t.constraints.columns[i] for i in features])
    split = PoisoningData(t.x[t.train], t.y[t.train], t.x[t.test], t.y[t.test])
    return Poisoning(train=labels_of(t.fit), seeds=settings["seeds"], jobs=jobs, **params).run(
        None, split, Budget(seed=seed), artifact)


def _trigger(t: _Target, spec: ProbeSpec) -> list[int]:
    """Encoded columns of the backdoor trigger: those the spec names; else, among pairs of the
    first six numeric columns an attacker can change, the pair whose +4 SD trigger the deployed
    model least already reads as the attacker's class (so the backdoor, not the trigger, is
    measured; at most 15 x 100 queries)."""
    c = t.constraints
    if spec.trigger:
        unknown = [n for n in spec.trigger if n not in c.columns]
        if unknown:
            raise InputError(f"trigger: {', '.join(unknown)} is not a numeric column of the "
                             "model's input")
        return [c.columns.index(n) for n in spec.trigger]
    grouped = {n for g in c.categorical for n in g}
    free = [i for i, n in enumerate(c.columns) if n not in grouped and n not in c.immutable][:6]
    if len(free) < 2:
        raise ProbeError("no two changeable numeric columns for a backdoor trigger; name them "
                         "in the probe block (trigger: [a, b])")
    wanted = 0 if t.goal is None else t.goal
    rows = t.x[t.test][t.y[t.test] != wanted][:100]
    pairs = [[a, b] for i, a in enumerate(free) for b in free[i + 1:]]
    response = [float(np.mean(t.adapter.predict(trigger(rows, pair, 4.0)) == wanted))
                for pair in pairs]
    return pairs[int(np.argmin(response))]


def _evasion(kind: str, t: _Target, spec: ProbeSpec, settings: dict[str, int], seed: int,
             artifact: str) -> Evidence:
    """Points to attack: held-out rows the model does not already put in the attacker's
    class; the attacker's own rows are the training rows, with their labels."""
    x = t.x[t.test]
    if t.goal is not None:
        x = x[t.adapter.predict(x) != t.goal]
    x = x[:settings["points"]]
    data = EvasionData(x, t.constraints, t.goal, pool=t.x[t.train], pool_y=t.y[t.train])
    n = len(x)
    if not n:
        raise ProbeError("no held-out row to attack: the model already gives every one the "
                         "attacker's goal")
    if kind == "evasion-whitebox":
        if not t.adapter.capabilities.gradients:
            raise ProbeError("white-box evasion needs gradients; this model has none (the "
                             "black-box and transfer probes cover it)")
        return WhiteBoxEvasion(norm="l2", epsilons=[0.25, 0.5, 1.0, 2.0], search=8).run(
            t.adapter, data, Budget(seed=seed), artifact)
    if kind == "evasion-blackbox":
        method = "score" if t.adapter.capabilities.scores else "decision"
        per_point = settings["per_point"]
        return BlackBoxEvasion(method=method, queries=per_point).run(
            t.adapter, data, Budget(queries=per_point * n + n, seed=seed), artifact)
    return TransferEvasion(queries=spec.queries).run(
        t.adapter, data, Budget(queries=spec.queries + n * 5, seed=seed), artifact)
