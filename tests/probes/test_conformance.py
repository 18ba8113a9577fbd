"""One conformance suite over every registered kind of probe run (as scikit-learn's
`parametrize_with_checks` does for estimators): each configures itself for a small prepared
target, runs within its budget, is deterministic under its seed, returns Evidence of its own
threats with drawable curves, declares parameters whose defaults pass their own ranges and
whose out-of-range values are refused before any query, and is skipped by the planner, with its
own reason, where the target lacks a capability it requires."""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from mlthreat.catalog import load_catalog
from mlthreat.errors import InputError
from mlthreat.pipeline.spec import ProbeSpec
from mlthreat.probes import SklearnAdapter
from mlthreat.probes.constraints import Constraints
from mlthreat.probes.execute import attempt
from mlthreat.probes.interface import Param
from mlthreat.probes.registry import RUNS
from mlthreat.probes.target import CAPABILITIES, Target
from mlthreat.probes.training import sklearn_fit
from mlthreat.results import Curve, Evidence

SETTINGS = {"references": 2, "seeds": 1, "bootstrap": 10, "points": 6, "per_point": 20,
            "exact_points": 4, "exact_seconds": 5, "exact_norms": 1}


def _target(model: Any) -> Target:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=160) > 0).astype(int)
    train, test = np.arange(120), np.arange(120, 160)
    model = model.fit(x[train], y[train])
    return Target("api", ProbeSpec.model_construct(queries=60, trigger=[]), "model.joblib",
                  SklearnAdapter(model), x, y, train, test,
                  Constraints(columns=("a", "b", "c", "d")), sklearn_fit(model), goal=1)


@pytest.fixture(scope="module")
def linear() -> Target:
    return _target(LogisticRegression())


@pytest.fixture(scope="module")
def forest() -> Target:
    return _target(RandomForestClassifier(5, max_depth=4, random_state=0))


@pytest.fixture(scope="module")
def image(linear: Target) -> Target:
    """The same linear model as a classifier of 2×2 grey images (pixels -10..10)."""
    from mlthreat.adapters import model_object
    from mlthreat.pipeline.spec import ProbeImages
    from mlthreat.probes.images import pixel_adapter
    images = ProbeImages(shape=(1, 2, 2), range=(-10.0, 10.0))
    columns = ("c0_y0_x0", "c0_y0_x1", "c0_y1_x0", "c0_y1_x1")
    return dataclasses.replace(
        linear, spec=ProbeSpec.model_construct(queries=60, trigger=[], images=images),
        adapter=pixel_adapter(model_object(linear.adapter), images),
        constraints=Constraints(columns, bounds=dict.fromkeys(columns, (-10.0, 10.0))))


@functools.cache
def _text_target() -> Target:
    """A bag-of-words logistic regression on short texts of made-up words, prepared as
    `probes.target` prepares a text model (features in x, the texts and a reader of them)."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.pipeline import make_pipeline

    from mlthreat.pipeline.spec import ProbeText
    from mlthreat.probes.textdata import TextAdapter
    rng = np.random.default_rng(0)
    good, bad = ["brisk", "kindly", "smooth", "lovely"], ["rude", "broken", "delayed", "awful"]
    texts = tuple(" ".join(rng.choice(good + bad + ["flight", "crew", "seat"], 6))
                  for _ in range(160))
    y = np.array([int(sum((w in good) - (w in bad) for w in t.split()) > 0) for t in texts])
    train, test = np.arange(120), np.arange(120, 160)
    model = make_pipeline(CountVectorizer(), LogisticRegression()).fit(
        [texts[i] for i in train], y[train])
    head, clf = model[:-1], model[-1]

    def transform(rows: Any) -> np.ndarray:
        return np.asarray(head.transform(list(rows)).toarray(), dtype=float)

    names = tuple(head.get_feature_names_out())
    adapter = SklearnAdapter(clf)
    return Target("api", ProbeSpec.model_construct(queries=60, trigger=[],
                                                   text=ProbeText(column="t")),
                  "model.joblib", adapter, transform(texts), y, train, test,
                  Constraints(names, frozenset(names)), sklearn_fit(clf), goal=1, texts=texts,
                  reader=TextAdapter(adapter, transform))


@pytest.fixture
def target(request: pytest.FixtureRequest, linear: Target, forest: Target, image: Target
           ) -> Target:
    """The linear model (gradients, scores, retraining) for every probe but those that read
    trees, which get a small forest, those for images (and the clean-label backdoor), which get
    it as an image model, and those for text, which get a bag-of-words model."""
    kind = request.node.callspec.params["kind"]
    requires = RUNS[kind].needs()
    if "text" in requires:
        return _text_target()
    if kind == "clean-label":          # crafted images: the poisoning probe's image-only attack
        return image
    if kind == "evasion-patch":        # a sticker needs its place: the image with a mask
        columns = image.constraints.columns
        return dataclasses.replace(
            image, spec=ProbeSpec.model_construct(queries=60, trigger=[], images=image.spec.images
                                                  .model_copy(update={"mask": "sticker.npy"})),
            constraints=Constraints(columns, frozenset(columns[:2]),
                                    dict.fromkeys(columns, (-10.0, 10.0))))
    return image if "images" in requires else forest if "trees" in requires else linear


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_every_probe_runs_deterministically_within_budget(kind: str, target: Target) -> None:
    first = attempt(kind, target, SETTINGS, 1, seed=3)
    again = attempt(kind, target, SETTINGS, 1, seed=3)
    assert isinstance(first, Evidence), first
    assert isinstance(again, Evidence)
    probe = RUNS[kind].probe
    assert first.source == f"probe:{probe.name}" and first.component == "api"
    assert first.artifact == "model.joblib" and first.reach == "path"
    assert first.threat_ids and set(first.threat_ids) <= set(probe.threat_ids)
    assert (first.value, first.summary) == (again.value, again.summary)
    assert first.value is not None and math.isfinite(first.value)
    if first.interval is not None:
        assert first.interval[0] <= first.value + 1e-9 <= first.interval[1] + 2e-9
    if first.budget["queries"] is not None:
        assert first.queries <= first.budget["queries"]
    for curve in first.curves:
        assert isinstance(curve, Curve) and len(curve.x) == len(curve.y) > 0
        for band in (curve.low, curve.high):
            assert band is None or len(band) == len(curve.x)


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_threats_exist_and_parameters_are_declared_sanely(kind: str) -> None:
    probe = RUNS[kind].probe
    known = {t.id for t in load_catalog().threats}
    assert set(probe.threat_ids) <= known
    assert set(RUNS[kind].needs()) <= set(CAPABILITIES)
    assert set(RUNS[kind].fixed) <= set(probe.parameters)
    for name, param in probe.parameters.items():
        assert isinstance(param, Param) and param.problem(param.default) is None, name
        assert param.problem(RUNS[kind].fixed.get(name, param.default)) is None


def _outside(param: Param) -> Any:
    if param.choices:
        return "no-such-choice"
    if param.high is not None:
        return param.high * 10 + 1
    if param.low is not None:
        return param.low - 1
    return None


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_out_of_range_parameters_are_refused_before_any_query(kind: str, target: Target
                                                              ) -> None:
    probe_class = RUNS[kind].probe
    name, bad = next(((n, _outside(p)) for n, p in probe_class.parameters.items()
                      if _outside(p) is not None), (None, None))
    assert name is not None, f"{kind} declares no checkable parameter"
    probe, model, data, budget = probe_class.configure(target, SETTINGS, dict(RUNS[kind].fixed),
                                                       0, 1)
    wrong = type(probe)(**{**probe.params, name: bad})
    before = target.adapter.queries
    with pytest.raises(InputError, match=f"probe {probe_class.name}: {name} is"):
        wrong.run(model, data, budget)
    assert target.adapter.queries == before


@pytest.mark.parametrize("kind", sorted(k for k in RUNS if RUNS[k].needs()))
def test_a_missing_capability_is_a_skip_with_the_probes_reason(kind: str, target: Target
                                                             ) -> None:
    for capability, why in RUNS[kind].needs().items():
        lacking = _without(target, capability)
        assert capability not in lacking.capabilities
        assert attempt(kind, lacking, SETTINGS, 1, seed=0) == why


def _without(target: Target, capability: str) -> Target:
    if capability == "retraining":
        return dataclasses.replace(target, fit=None)
    if capability in ("trees", "images", "text"):  # the same data, a table model without trees
        return _target(LogisticRegression())
    if capability == "records":             # a text model: its rows are a vectoriser's features
        return _text_target()
    # an interface that shows labels only: no scores, no gradients
    from mlthreat.adapters import RoundedAdapter
    return dataclasses.replace(target, adapter=RoundedAdapter(target.adapter, None))
