"""A component prepared for probing: its model loaded through the scanner gate (or its HTTP
endpoint), its data read and split as declared (members: the rows the model was trained on), the
spec's constraints mapped onto the model's input columns, and the model seen as the interface
shows it to an attacker (full probabilities, rounded scores, or the label only).

`Target.capabilities` is what the planner compares with each probe's `requires`: "gradients"
(white-box access), "scores" (more than the label), "retraining" (a model of the target's kind
can be trained again: a scikit-learn estimator, or `train: file.py:function` in the spec).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from mlthreat.adapters import ModelAdapter, RoundedAdapter, adapter_for
from mlthreat.adapters.http import HttpAdapter
from mlthreat.adapters.loading import load_model
from mlthreat.errors import DataError, InputError
from mlthreat.pipeline import Component, Pipeline
from mlthreat.pipeline.spec import ProbeSpec
from mlthreat.probes.constraints import Constraints, from_transform
from mlthreat.probes.data import Table, load_table
from mlthreat.probes.training import Fit, sharing_clean, sklearn_fit, user_fit

CAPABILITIES = ("gradients", "scores", "retraining")

# The attacker's effort, per budget name (docs/probes.md explains each figure).
BUDGETS: dict[str, dict[str, int]] = {
    "quick": {"references": 8, "seeds": 2, "bootstrap": 100, "points": 50, "per_point": 100},
    "standard": {"references": 16, "seeds": 3, "bootstrap": 200, "points": 100,
                 "per_point": 200},
    "thorough": {"references": 64, "seeds": 5, "bootstrap": 500, "points": 200,
                 "per_point": 400},
}


@dataclass(frozen=True)
class Target:
    component: str
    spec: ProbeSpec
    artifact: str               # the model file (as the spec names it) or the endpoint URL
    adapter: ModelAdapter
    x: np.ndarray               # all rows, as the model sees them
    y: np.ndarray
    train: np.ndarray           # indices of training rows (members)
    test: np.ndarray
    constraints: Constraints
    fit: Fit | None             # retrains a model of the target's kind (scores out)
    goal: int | None            # the class the attacker wants

    @property
    def capabilities(self) -> frozenset[str]:
        have = {"gradients": self.adapter.capabilities.gradients,
                "scores": self.adapter.capabilities.scores, "retraining": self.fit is not None}
        return frozenset(k for k, v in have.items() if v)


def prepare(pipeline: Pipeline, comp: Component, trust: bool) -> Target:
    """The component ready for probing; an input problem names the spec entry it comes from."""
    try:
        return _prepare(pipeline, comp, trust)
    except InputError as exc:
        line, col = pipeline.component_positions.get(comp.id, (0, 0))
        raise type(exc)(f"{pipeline.file}:{line}:{col}: probe block of {comp.id}: {exc}"
                        ) from exc


def _prepare(pipeline: Pipeline, comp: Component, trust: bool) -> Target:
    spec = comp.probe
    assert spec is not None
    table = load_table(pipeline.base_dir / spec.data, spec.target, spec.positive,
                       tuple(spec.drop))
    train, test = _split(table, spec)
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
    artifact = spec.endpoint.url if spec.endpoint else comp.artifacts.model[0]
    return Target(comp.id, spec, artifact, adapter, x, table.y, train, test, constraints, fit,
                  _goal(spec, table))


def _split(table: Table, spec: ProbeSpec) -> tuple[np.ndarray, np.ndarray]:
    try:
        train, test = train_test_split(np.arange(len(table.y)), test_size=spec.test_size,
                                       stratify=table.y, random_state=spec.seed)
    except ValueError as exc:     # too few rows, or a class with a single row
        raise DataError(f"{spec.data}: cannot split {len(table.y)} rows into training and "
                        f"held-out rows by {spec.target!r} ({exc}); the probes need at least a "
                        "few rows of each class") from exc
    return train, test


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
