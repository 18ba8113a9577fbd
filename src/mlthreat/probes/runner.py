"""Running the probes a spec asks for, and turning their Evidence into evidence for findings.

For each component with a `probe` block: the model named in its artifacts is loaded through the
scanner gate, the data file is read and split as declared (members: the rows the model was
trained on), and the model is seen as the interface shows it to an attacker (full probabilities,
rounded scores, or the label only). Each applicable probe runs; one that cannot (no gradients,
label-only interface) is reported as skipped with its reason. Evidence is attached to every
finding of the probe's threats whose attack path passes through the probed component.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from mlthreat.analysis import Assessment
from mlthreat.errors import InputError
from mlthreat.pipeline import Component, Pipeline
from mlthreat.probes.adapters import ModelAdapter, RoundedAdapter, SklearnAdapter
from mlthreat.probes.data import load_table
from mlthreat.probes.extraction import ExtractionData, ModelExtraction
from mlthreat.probes.interface import Budget, Evidence, ProbeError
from mlthreat.probes.loading import load_model
from mlthreat.probes.membership import MembershipData, MembershipInference, sklearn_fit
from mlthreat.probes.poisoning import Poisoning, PoisoningData, sklearn_train

PROBES = ("membership", "extraction", "poisoning", "evasion")
BUDGETS: dict[str, dict[str, int]] = {
    "quick": {"references": 8, "seeds": 2, "bootstrap": 100},
    "standard": {"references": 32, "seeds": 3, "bootstrap": 200},
    "thorough": {"references": 64, "seeds": 5, "bootstrap": 500},
}


@dataclass
class ProbeRun:
    component: str
    results: list[Evidence] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (probe, why)


@dataclass(frozen=True)
class _Target:
    adapter: ModelAdapter
    estimator: Any              # the final scikit-learn estimator (what retraining clones)
    x: np.ndarray               # all rows, as the estimator sees them
    y: np.ndarray
    train: np.ndarray           # indices of training rows (members)
    test: np.ndarray


def _prepare(pipeline: Pipeline, comp: Component, trust: bool) -> _Target:
    spec = comp.probe
    assert spec is not None
    if not comp.artifacts.model:
        raise InputError(f"{comp.id}: a probe block needs a model in artifacts.model")
    model = load_model(pipeline.base_dir / comp.artifacts.model[0], trust=trust)
    table = load_table(pipeline.base_dir / spec.data, spec.target, spec.positive,
                       tuple(spec.drop))
    train, test = train_test_split(np.arange(len(table.y)), test_size=spec.test_size,
                                   stratify=table.y, random_state=spec.seed)
    if hasattr(model, "steps") and len(model.steps) > 1:      # a scikit-learn Pipeline
        x = np.asarray(model[:-1].transform(table.frame), dtype=float)
        final = model[-1]
    else:
        x, final = table.x, model
    view: ModelAdapter = SklearnAdapter(final)
    if spec.output == "rounded":
        view = RoundedAdapter(view, 2)
    elif spec.output == "label":
        view = RoundedAdapter(view, None)
    return _Target(view, final, x, table.y, train, test)


def run_probes(pipeline: Pipeline, only: tuple[str, ...] = PROBES, budget: str = "standard",
               jobs: int = 1, trust: bool = False, seed: int = 0,
               progress: Callable[[str], None] | None = None) -> list[ProbeRun]:
    settings = BUDGETS[budget]
    runs = []
    for comp in pipeline.spec.components:
        if comp.probe is None:
            continue
        target = _prepare(pipeline, comp, trust)
        run = ProbeRun(comp.id)
        for name in only:
            if progress:
                progress(f"{name} probe on {comp.id}")
            try:
                run.results.append(_one(name, target, comp, settings, jobs, seed))
            except ProbeError as exc:
                run.skipped.append((name, str(exc)))
        runs.append(run)
    return runs


def _one(name: str, t: _Target, comp: Component, settings: dict[str, int], jobs: int,
         seed: int) -> Evidence:
    spec = comp.probe
    assert spec is not None
    artifact = comp.artifacts.model[0]
    members = np.isin(np.arange(len(t.y)), t.train)
    if name == "membership":
        cand = np.concatenate([t.train, t.test])
        candidates = MembershipData(t.x[cand], t.y[cand], members[cand], population_x=t.x,
                                    population_y=t.y, population_index=cand)
        return MembershipInference(attack="reference", fit=sklearn_fit(t.estimator),
                                   references=settings["references"],
                                   bootstrap=settings["bootstrap"], jobs=jobs).run(
            t.adapter, candidates, Budget(seed=seed), artifact)
    if name == "extraction":
        rows = ExtractionData(t.x[t.test], pool=t.x[t.train], y_eval=t.y[t.test])
        return ModelExtraction(queries=spec.queries, output="labels").run(
            t.adapter, rows, Budget(queries=spec.queries + len(t.test), seed=seed), artifact)
    if name == "poisoning":
        split = PoisoningData(t.x[t.train], t.y[t.train], t.x[t.test], t.y[t.test])
        return Poisoning(attack="label_flip", train=sklearn_train(t.estimator),
                         rates=[0.05, 0.1, 0.2], seeds=settings["seeds"], jobs=jobs).run(
            None, split, Budget(seed=seed), artifact)
    if name == "evasion":
        raise ProbeError("white-box evasion needs gradients and this model has none; "
                         "black-box evasion is not available yet")
    raise ProbeError(f"unknown probe {name!r}")


def evidence_for(assessment: Assessment, runs: list[ProbeRun]
                 ) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Evidence keyed by (threat, component of the finding), for every finding of a probe's
    threats whose attack path passes through the probed component."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        for ev in run.results:
            for f in assessment.findings:
                if f.threat_id in ev.threat_ids and run.component in f.path:
                    out.setdefault((f.threat_id, f.component), []).append(
                        {**ev.as_item(), "component": run.component})
    return out

