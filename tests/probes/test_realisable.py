"""Constraints everywhere (issue #17, part 3): every row an evasion probe sends to the model is a
record the spec allows (bounds, whole numbers, one category per one-hot group), for the white-box,
black-box and transfer attacks alike, checked by the constraints' own violation rules on every
query of a real run against the reference case's on-device network."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from mlthreat.adapters.interface import ModelAdapter
from mlthreat.catalog import load_catalog
from mlthreat.pipeline import load_pipeline
from mlthreat.probes.execute import attempt
from mlthreat.probes.target import BUDGETS, Target, prepare
from tests.conftest import EXAMPLES


class Recording(ModelAdapter):
    """Passes every query on and keeps the rows (a wrapper named so that no probe unwraps it)."""

    def __init__(self, wrapped: ModelAdapter) -> None:
        super().__init__()
        self.wrapped, self.capabilities, self.rows = wrapped, wrapped.capabilities, []

    def _proba(self, x: Any) -> Any:
        self.rows.append(np.array(x, dtype=float))
        return self.wrapped._proba(x)

    def _labels(self, x: Any) -> Any:
        self.rows.append(np.array(x, dtype=float))
        return self.wrapped._labels(x)

    def gradient(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        self.rows.append(np.array(x, dtype=float))
        return self.wrapped.gradient(x, target)


@pytest.fixture(scope="module")
def app() -> Target:
    pipeline = load_pipeline(EXAMPLES / "credit-scoring" / "pipeline.yaml", load_catalog())
    comp = next(c for c in pipeline.spec.components if c.id == "mobile_app")
    return prepare(pipeline, comp, trust=False)


@pytest.mark.parametrize("kind", ["evasion-whitebox", "evasion-blackbox", "evasion-transfer"])
def test_every_query_is_a_record_the_spec_allows(app: Target, kind: str) -> None:
    spy = Recording(app.adapter)
    target = dataclasses.replace(app, adapter=spy)
    settings = {**BUDGETS["quick"], "points": 8, "per_point": 60}
    ev = attempt(kind, target, settings, 1, seed=0)
    assert not isinstance(ev, str), ev
    sent = np.vstack(spy.rows)
    assert len(sent) > 8
    # bounds, whole numbers and one-hot groups (immutables need each row's original: the
    # black-box probe's own test checks those against the points attacked)
    rules = dataclasses.replace(app.constraints, immutable=frozenset())
    assert rules.violations(sent, sent) == []
