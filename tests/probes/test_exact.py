"""Exact evasion of tree ensembles, checked against answers that do not come from the program:
- the trees as read give the libraries' own raw scores and decisions (every supported kind,
  binary and multi-class);
- the program's optimum equals a brute-force search over a superset of the values an optimum can
  take: every split threshold of the model (as the library itself lists them) and the floats
  next to it, within bounds, every integer of an integer column's range, every category of a
  one-hot group, the original value of an immutable column;
- every reported optimum flips the model itself and respects the constraints;
- no realisable change smaller than the certified radius flips the point (random changes, dense
  and one or two columns at a time);
- the radius search (started from the defender's rows) and the single program agree.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlthreat.errors import ProbeError
from mlthreat.probes.constraints import Constraints, from_transform
from mlthreat.probes.minimal import distance, minimal_change
from mlthreat.probes.trees import read

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")

FLOAT32 = np.float32


def _frame(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "income": rng.normal(50, 15, n).round(1),        # bounded below
        "months": rng.integers(6, 31, n),                # integer in [6, 30]
        "age": rng.integers(20, 70, n),                  # immutable
        "home": rng.choice(["own", "rent", "other"], n),  # one-hot group
    })
    score = (frame.income - 50) / 15 - (frame.months - 18) / 8 + (frame.home == "own") * 0.8
    y = (score + rng.normal(0, 0.6, n) > 0).astype(int).to_numpy()
    return frame, y


def _encoded() -> tuple[np.ndarray, np.ndarray, Constraints]:
    frame, y = _frame()
    enc = ColumnTransformer([("num", StandardScaler(), ["income", "months", "age"]),
                             ("cat", OneHotEncoder(sparse_output=False), ["home"])]).fit(frame)
    c = from_transform(enc.transform, frame, immutable=["age"],
                       bounds={"income": (20.0, None), "months": (6, 30)}, integer=["months"])
    return np.asarray(enc.transform(frame)), y, c


MODELS = {
    "forest": lambda: RandomForestClassifier(4, max_depth=3, random_state=0),
    "extra": lambda: ExtraTreesClassifier(4, max_depth=3, random_state=0),
    "boosting": lambda: GradientBoostingClassifier(n_estimators=4, max_depth=2, random_state=0),
    "hist": lambda: HistGradientBoostingClassifier(max_iter=4, max_leaf_nodes=4, random_state=0),
    "xgboost": lambda: xgboost.XGBClassifier(n_estimators=4, max_depth=2, random_state=0),
    "lightgbm": lambda: lightgbm.LGBMClassifier(n_estimators=4, num_leaves=4, random_state=0,
                                                verbose=-1, min_child_samples=5),
}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, Constraints]:
    return _encoded()


def _library_thresholds(model: Any, width: int) -> dict[int, list[float]]:
    """Split thresholds per column, as each library reports them (not our reader)."""
    out: dict[int, list[float]] = {j: [] for j in range(width)}
    if isinstance(model, (xgboost.XGBClassifier, lightgbm.LGBMClassifier)):
        table = (model.get_booster().trees_to_dataframe()
                 if isinstance(model, xgboost.XGBClassifier)
                 else model.booster_.trees_to_dataframe())
        feat, thr = ("Feature", "Split") if "Split" in table else ("split_feature", "threshold")
        for f, t in zip(table[feat], table[thr], strict=True):
            if isinstance(f, str) and f not in ("Leaf", ""):
                out[int(f.lstrip("fColumn_").lstrip("_") or 0) if not f.isdigit() else int(f)
                    ].append(float(t))
        return out
    if isinstance(model, HistGradientBoostingClassifier):
        for stage in model._predictors:
            for p in stage:
                inner = p.nodes[p.nodes["is_leaf"] == 0]
                for f, t in zip(inner["feature_idx"], inner["num_threshold"], strict=True):
                    out[int(f)].append(float(t))
        return out
    ests = model.estimators_.ravel() if hasattr(model.estimators_, "ravel") else model.estimators_
    for est in ests:
        t = est.tree_
        for f, v, left in zip(t.feature, t.threshold, t.children_left, strict=True):
            if left >= 0:
                out[int(f)].append(float(v))
    return out


def _candidates(x0: np.ndarray, c: Constraints, thresholds: dict[int, list[float]]
                ) -> list[np.ndarray]:
    """Per free column, every value an optimum can take (a superset)."""
    out = []
    grouped = {c.columns.index(n) for g in c.categorical for n in g}
    for j, name in enumerate(c.columns):
        if j in grouped:
            continue
        if name in c.immutable:
            out.append(np.array([x0[j]]))
            continue
        if name in c.integer:
            assert c.scale is not None and c.offset is not None
            low, high = c.bounds[name]
            out.append((np.arange(low, high + 1) - c.offset[j]) / c.scale[j])
            continue
        vals = {x0[j]}
        for t in thresholds[j]:
            for v in (t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf),
                      float(np.nextafter(FLOAT32(t), FLOAT32(np.inf))),
                      float(np.nextafter(FLOAT32(t), FLOAT32(-np.inf))), float(FLOAT32(t))):
                vals.add(float(v))
        low = c.bounds.get(name, (None, None))[0]
        if low is not None:
            assert c.scale is not None and c.offset is not None
            vals.add((low - c.offset[j]) / c.scale[j])
        out.append(np.array(sorted(vals)))
    return out


def _brute_force(model: Any, x0: np.ndarray, goal: int, c: Constraints, norm: str) -> float:
    grouped = [[c.columns.index(n) for n in g] for g in c.categorical]
    free = [j for j in range(len(x0)) if all(j not in g for g in grouped)]
    per_column = _candidates(x0, c, _library_thresholds(model, len(x0)))
    rows = []
    for combo in itertools.product(*per_column):
        for cat in range(len(grouped[0])):
            x = x0.copy()
            x[free] = combo
            x[grouped[0]] = np.eye(len(grouped[0]))[cat]
            rows.append(x)
    rows_a = np.array(rows)
    ok = np.array([not c.violations(r, x0) for r in rows_a])
    flips = model.predict(rows_a) == goal
    hits = rows_a[ok & flips]
    return min((distance(norm, r - x0) for r in hits), default=np.inf)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_trees_as_read_give_the_librarys_own_scores(kind: str, data: Any) -> None:
    x, y, _ = data
    model = MODELS[kind]().fit(x, y)
    ens = read(model, x)
    assert np.array_equal(ens.predict(x), model.predict(x))
    margin = ens.scores(x)[:, 1] - ens.scores(x)[:, 0]
    if kind in ("forest", "extra"):     # the mean of the trees' class fractions
        assert np.allclose(ens.scores(x), model.predict_proba(x), atol=1e-12)
        return
    raw = (model.decision_function(x) if hasattr(model, "decision_function")
           else model.predict(x, output_margin=True) if kind == "xgboost"
           else model.predict(x, raw_score=True))
    assert np.allclose(margin, raw, atol=1e-5)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_all_trees_at_once_score_bit_for_bit_as_one_tree_after_another(kind: str, data: Any
                                                                        ) -> None:
    # scores() walks every tree together; the reference walks each tree alone (Tree.apply) and
    # adds the leaves one by one from the base, as the library does: equal to the last bit,
    # NaN (missing values go right) and exact threshold values included
    x, y, _ = data
    ens = read(MODELS[kind]().fit(x, y), x)
    rows = np.vstack([x, x[:50] + 1e-3, np.where(np.arange(x.shape[1]) % 2, np.nan, x[:50])])
    for t in ens.trees[:3]:
        inner = t.feature >= 0
        rows = np.vstack([rows, np.where(np.arange(x.shape[1]) == t.feature[inner][0],
                                         t.threshold[inner][0], x[0])])
    prepared = ens.prepared(rows)
    reference = np.tile(ens.base, (len(rows), 1))
    for t in ens.trees:
        reference += t.value[t.apply(prepared, ens.strict)]
    assert np.array_equal(ens.scores(rows), reference)


@pytest.mark.parametrize("kind", ["forest", "hist", "xgboost", "lightgbm"])
def test_multiclass_trees_decide_as_the_model_does(kind: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3))
    y = np.digitize(x[:, 0] + x[:, 1], [-0.7, 0.7])
    model = MODELS[kind]().fit(x, y)
    ens = read(model, x)
    assert ens.classes == 3
    fresh = rng.normal(size=(500, 3))
    assert np.array_equal(ens.predict(fresh), model.predict(fresh))
    sol = minimal_change(ens, fresh[0], None, "l2")
    assert sol.x is not None and model.predict(sol.x[None])[0] != model.predict(fresh[:1])[0]


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("norm", ["l2", "l1", "linf"])
def test_the_optimum_equals_a_brute_force_search_under_constraints(kind: str, norm: str,
                                                                   data: Any) -> None:
    x, y, c = data
    model = MODELS[kind]().fit(x, y)
    ens = read(model, x)
    checked = 0
    for i in range(40):
        x0 = x[i]
        goal = 1 - int(model.predict(x0[None])[0])
        expected = _brute_force(model, x0, goal, c, norm)
        sol = minimal_change(ens, x0, goal, norm, c,
                             verify=lambda v, g=goal: bool(model.predict(v[None])[0] == g))
        if not np.isfinite(expected):
            assert sol.x is None and sol.status == "no flip possible"
            continue
        assert sol.status == "optimal"
        assert sol.distance == pytest.approx(expected, rel=1e-6, abs=1e-9)
        assert sol.x is not None and model.predict(sol.x[None])[0] == goal
        assert c.violations(sol.x, x0) == []
        checked += 1
        if checked == 6:
            break
    assert checked >= 3


def test_no_change_below_the_certified_radius_flips(data: Any) -> None:
    x, y, c = data
    model = RandomForestClassifier(20, max_depth=6, random_state=0).fit(x, y)
    ens = read(model, x)
    rng = np.random.default_rng(0)
    free = [j for j, n in enumerate(c.columns) if n not in c.immutable]
    for i in range(5):
        x0 = x[i]
        goal = 1 - int(model.predict(x0[None])[0])
        sol = minimal_change(ens, x0, goal, "l2", c, pool=x)
        assert sol.status == "optimal" and np.isfinite(sol.bound)
        d = np.zeros((6000, len(x0)))
        for k, row in enumerate(d):      # dense, one-column and two-column directions
            cols = free if k % 3 == 0 else rng.choice(free, size=1 + k % 3 // 2, replace=False)
            row[cols] = rng.normal(size=len(cols))
        d *= (rng.random(len(d)) * sol.bound / np.linalg.norm(d, axis=1))[:, None]
        rows = c.project(x0 + d, np.broadcast_to(x0, d.shape))
        inside = np.linalg.norm(rows - x0, axis=1) < sol.bound * (1 - 1e-9)
        assert inside.sum() > 1000
        assert not np.any(model.predict(rows[inside]) == goal)


def test_the_radius_search_agrees_with_one_program(data: Any) -> None:
    x, y, c = data
    model = GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0).fit(x, y)
    ens = read(model, x)
    for i in range(8):
        goal = 1 - int(model.predict(x[i:i + 1])[0])
        whole = minimal_change(ens, x[i], goal, "l2", c)
        searched = minimal_change(ens, x[i], goal, "l2", c, pool=x[100:])
        assert searched.distance == pytest.approx(whole.distance, rel=1e-6, abs=1e-12)


def test_an_immutable_world_cannot_be_flipped() -> None:
    x, y, c = _encoded()
    model = RandomForestClassifier(5, max_depth=3, random_state=0).fit(x, y)
    frozen = Constraints(c.columns, immutable=frozenset(c.columns),
                         categorical=c.categorical, scale=c.scale, offset=c.offset)
    goal = 1 - int(model.predict(x[:1])[0])
    sol = minimal_change(read(model, x), x[0], goal, "l2", frozen, pool=x)
    assert sol.x is None and sol.status == "no flip possible" and sol.bound == np.inf


def test_models_without_trees_and_native_categories_are_refused() -> None:
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 2))
    y = (x[:, 0] > 0).astype(int)
    with pytest.raises(ProbeError, match="reads tree ensembles"):
        read(LogisticRegression().fit(x, y), x)
    cats = np.column_stack([x[:, 0], rng.integers(0, 4, 100)])
    hist = HistGradientBoostingClassifier(max_iter=3, categorical_features=[1]).fit(cats, y)
    if np.any(np.concatenate([p.nodes["is_categorical"] & (p.nodes["is_leaf"] == 0)
                              for s in hist._predictors for p in s])):
        with pytest.raises(ProbeError, match="native categories"):
            read(hist, cats)


class _Answers:
    """A model as the probe sees it: predict only."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(np.atleast_2d(x)))


def _exact(model: Any, trees: Any, x: np.ndarray, c: Constraints, jobs: int) -> dict[str, Any]:
    from mlthreat.probes.certified import ExactData, ExactEvasion
    from mlthreat.probes.interface import Budget
    data = ExactData(x[:6], read(trees, x), c, None, x[50:])
    probe = ExactEvasion(norms=["l2", "l1"], seconds=30.0, jobs=jobs)
    return probe.run(_Answers(model), data, Budget(seed=0)).extra


def _solved(extra: dict[str, Any]) -> Any:
    return {n: (v["minimal"], v["certified"], v["optimal"]) for n, v in extra["norms"].items()}


def test_points_solved_in_parallel_give_the_sequential_answers(data: Any) -> None:
    """jobs=2 (two local processes: only the trees travel) gives every point's smallest change
    and certified radius of the one-process run, in both norms."""
    x, y, c = data
    model = RandomForestClassifier(20, max_depth=5, random_state=0).fit(x, y)
    one = _exact(model, model, x, c, jobs=1)
    two = _exact(model, model, x, c, jobs=2)
    assert _solved(two) == _solved(one)
    assert one["norms"]["l2"]["optimal"] == 6 and one["examples"] == two["examples"]


def test_a_point_the_model_answers_otherwise_is_solved_again_with_the_model(data: Any) -> None:
    """When the model disagrees with the trees on inputs a remote search asked about, that
    point is solved again here with the model answering: the parallel run gives what the
    sequential run (the model asked throughout) gives, not what the trees alone give."""
    x, y, c = data
    trees = RandomForestClassifier(20, max_depth=5, random_state=0).fit(x, y)
    other = RandomForestClassifier(20, max_depth=5, random_state=1).fit(x, y)  # answers otherwise
    alone = _exact(trees, trees, x, c, jobs=1)
    one = _exact(other, trees, x, c, jobs=1)
    two = _exact(other, trees, x, c, jobs=2)
    assert _solved(two) == _solved(one)
    assert _solved(one) != _solved(alone)         # the model's answers change the search
