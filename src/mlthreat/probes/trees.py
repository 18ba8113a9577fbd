"""Tree ensembles read into one form, so that the exact evasion probe (`exact.py`) can reason
about every split: scikit-learn's random forests, extra trees, gradient boosting and
HistGradientBoosting, XGBoost and LightGBM (their boosters and scikit-learn wrappers).

An `Ensemble` is a list of trees over the model's input columns and a base score per class; the
model's class scores are the base plus, for every tree, the value vector of the leaf the input
reaches, and its decision is the class with the highest score (the first on a tie). A binary
margin model (boosting) has the scores (0, margin). How each library compares a value with a
threshold is kept: XGBoost sends `x < t` left, the others `x <= t`; scikit-learn's trees and
XGBoost compare float32 values. Reading is checked, not trusted: `read()` evaluates the ensemble
on rows the model also answers and refuses it (ProbeError) unless the decisions agree, so a
library's change of format cannot give a wrong certificate silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from mlthreat.errors import ProbeError


@dataclass(frozen=True)
class Tree:
    feature: np.ndarray     # per node: the column it splits on, -1 at a leaf
    threshold: np.ndarray   # per node: the split value
    left: np.ndarray        # per node: child taken when the comparison holds
    right: np.ndarray
    value: np.ndarray       # per node: (classes,) added to the scores at a leaf

    def leaves(self) -> np.ndarray:
        return np.flatnonzero(self.feature < 0)

    def apply(self, x: np.ndarray, strict: bool) -> np.ndarray:
        """The leaf each row of `x` reaches."""
        node = np.zeros(len(x), dtype=int)
        while True:
            inner = self.feature[node] >= 0
            if not inner.any():
                return node
            rows = np.flatnonzero(inner)
            at = node[rows]
            value, limit = x[rows, self.feature[at]], self.threshold[at]
            go_left = value < limit if strict else value <= limit
            node[rows] = np.where(go_left, self.left[at], self.right[at])


@dataclass(frozen=True)
class Ensemble:
    trees: tuple[Tree, ...]
    base: np.ndarray        # (classes,)
    strict: bool            # left when x < t (XGBoost); else x <= t
    float32: bool           # the model compares float32 values
    n_features: int
    kind: str               # what it was read from, for messages

    @property
    def classes(self) -> int:
        return len(self.base)

    def prepared(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, dtype=float))
        return x.astype(np.float32).astype(float) if self.float32 else x

    @cached_property
    def _packed(self) -> _Packed:
        return _Packed.of(self.trees)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Every tree walked at once, a level at a step; the leaf values summed tree by tree in
        order (as `sum_in_order` below), so the scores are those of adding them one by one."""
        x = self.prepared(x)
        p = self._packed
        node = np.repeat(p.roots[None, :], len(x), axis=0)
        rows = np.arange(len(x))[:, None]
        while True:
            feature = p.feature[node]
            inner = feature >= 0
            if not inner.any():
                break
            value, limit = x[rows, np.where(inner, feature, 0)], p.threshold[node]
            go_left = value < limit if self.strict else value <= limit
            node = np.where(inner, np.where(go_left, p.left[node], p.right[node]), node)
        leaves = p.value[node]                                  # (rows, trees, classes)
        return sum_in_order(np.concatenate(
            [np.broadcast_to(self.base, (len(x), 1, self.classes)), leaves], axis=1))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(np.argmax(self.scores(x), axis=1))


def sum_in_order(terms: np.ndarray) -> np.ndarray:
    """terms[:, 0] + terms[:, 1] + ... added left to right (np.sum adds pairwise, which rounds
    differently; a decision exactly at a tie must come out as the model's)."""
    return np.asarray(np.cumsum(terms, axis=1)[:, -1])


@dataclass(frozen=True)
class _Packed:
    """All trees' nodes in one set of arrays; children numbered in it, roots at `roots`."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    roots: np.ndarray

    @classmethod
    def of(cls, trees: tuple[Tree, ...]) -> _Packed:
        sizes = [len(t.feature) for t in trees]
        roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)

        def children(side: str) -> np.ndarray:
            return np.concatenate([np.where(t.feature >= 0, getattr(t, side) + r, -1)
                                   for t, r in zip(trees, roots, strict=True)]).astype(int)
        return cls(np.concatenate([t.feature for t in trees]).astype(int),
                   np.concatenate([t.threshold for t in trees]).astype(float),
                   children("left"), children("right"),
                   np.concatenate([t.value for t in trees]).astype(float), roots)


def read(model: Any, x: np.ndarray) -> Ensemble:
    """The model as an Ensemble, checked on the rows `x` (the model's input scale): its
    decisions must equal the model's own. ProbeError if the model is not a supported tree
    ensemble or could not be read exactly."""
    kind = f"{type(model).__module__}.{type(model).__name__}"
    reader = _reader(model, kind)
    if reader is None:
        raise ProbeError(f"exact evasion reads tree ensembles (scikit-learn forests and "
                         f"boosting, XGBoost, LightGBM); this model is a {kind}")
    ensemble: Ensemble = reader(model, x)
    _check(ensemble, model, x, kind)
    return ensemble


def supported(model: Any) -> bool:
    """Whether `read` knows the model's kind (without reading it)."""
    return _reader(model, f"{type(model).__module__}.{type(model).__name__}") is not None


def _reader(model: Any, kind: str) -> Any:
    if hasattr(model, "get_booster") and hasattr(model, "n_features_in_"):
        return lambda m, x: _xgboost(m.get_booster(), x)
    if hasattr(model, "booster_") and hasattr(model, "n_features_in_"):
        return lambda m, x: _lightgbm(m.booster_, x)
    if kind == "xgboost.core.Booster":
        return _xgboost
    if kind == "lightgbm.basic.Booster":
        return _lightgbm
    if hasattr(model, "_predictors"):
        return _histgradient
    if hasattr(model, "estimators_") and hasattr(model, "init_"):
        return _gradient
    if hasattr(model, "estimators_") and all(hasattr(e, "tree_") for e in
                                             getattr(model, "estimators_", [None])):
        return _forest
    return None


def _leafy(n: int, classes: int) -> tuple[np.ndarray, ...]:
    return (np.full(n, -1), np.zeros(n), np.full(n, -1), np.full(n, -1),
            np.zeros((n, classes)))


def _sk_tree(est: Any, values: np.ndarray) -> Tree:
    t = est.tree_
    feature = np.where(t.children_left < 0, -1, t.feature).astype(int)
    return Tree(feature, np.asarray(t.threshold, dtype=float), t.children_left.astype(int),
                t.children_right.astype(int), values)


def _forest(model: Any, x: np.ndarray) -> Ensemble:
    """Random forest or extra trees: the mean of the trees' class fractions."""
    if not hasattr(model, "classes_"):
        raise ProbeError("exact evasion reads classifiers; this forest is a regressor")
    n = len(model.estimators_)
    trees = []
    for est in model.estimators_:
        v = np.asarray(est.tree_.value[:, 0, :], dtype=float)
        v = v / np.maximum(v.sum(axis=1, keepdims=True), 1e-300) / n
        trees.append(_sk_tree(est, v))
    return Ensemble(tuple(trees), np.zeros(len(model.classes_)), strict=False, float32=True,
                    n_features=int(model.n_features_in_), kind="random forest")


def _margins(trees: list[Tree], classes: int, raw: np.ndarray, x: np.ndarray, strict: bool,
             float32: bool, kind: str, n_features: int) -> Ensemble:
    """A boosting ensemble whose base score is what the model's raw output adds to its trees
    (read off the rows `x`: initial estimators and base scores are stored differently by every
    library and version)."""
    bare = Ensemble(tuple(trees), np.zeros(classes), strict, float32, n_features, kind)
    raw = np.asarray(raw, dtype=float).reshape(len(x), -1)
    own = bare.scores(x)
    if classes == 2 and raw.shape[1] == 1:
        raw = np.column_stack([np.zeros(len(x)), raw[:, 0]])
    base = np.median(raw - own, axis=0)
    return Ensemble(tuple(trees), base, strict, float32, n_features, kind)


def _gradient(model: Any, x: np.ndarray) -> Ensemble:
    """scikit-learn's GradientBoostingClassifier: learning rate times each regression tree."""
    est = model.estimators_
    k = est.shape[1]
    classes = 2 if k == 1 else k
    rate = float(model.learning_rate)
    trees = []
    for stage in est:
        for c, reg in enumerate(stage):
            v = np.zeros((reg.tree_.node_count, classes))
            v[:, 1 if k == 1 else c] = rate * reg.tree_.value[:, 0, 0]
            trees.append(_sk_tree(reg, v))
    return _margins(trees, classes, model.decision_function(x), x, False, True,
                    "gradient boosting", int(model.n_features_in_))


def _histgradient(model: Any, x: np.ndarray) -> Ensemble:
    """scikit-learn's HistGradientBoostingClassifier (numeric splits; NaN-free inputs)."""
    k = int(model.n_trees_per_iteration_)
    classes = 2 if k == 1 else k
    trees = []
    for stage in model._predictors:
        for c, pred in enumerate(stage):
            nodes = pred.nodes
            if np.any(nodes["is_categorical"] & ~nodes["is_leaf"].astype(bool)):
                raise ProbeError("exact evasion reads numeric splits; this HistGradientBoosting "
                                 "model splits on native categories")
            leaf = nodes["is_leaf"].astype(bool)
            v = np.zeros((len(nodes), classes))
            v[leaf, 1 if k == 1 else c] = nodes["value"][leaf]
            trees.append(Tree(np.where(leaf, -1, nodes["feature_idx"]).astype(int),
                              nodes["num_threshold"].astype(float),
                              nodes["left"].astype(int), nodes["right"].astype(int), v))
    return _margins(trees, classes, model.decision_function(x), x, False, False,
                    "HistGradientBoosting", int(model.n_features_in_))


def _xgboost(booster: Any, x: np.ndarray) -> Ensemble:
    """An XGBoost booster: its JSON model (numeric splits, `x < t` goes left)."""
    import xgboost
    model = json.loads(booster.save_raw("json"))
    learner = model["learner"]
    gb = learner["gradient_booster"]
    if gb.get("name") not in ("gbtree", None):
        raise ProbeError(f"exact evasion reads tree boosters; this XGBoost model is "
                         f"{gb.get('name')!r}")
    raw_trees, info = gb["model"]["trees"], gb["model"]["tree_info"]
    k = max(1, int(learner["learner_model_param"].get("num_class", "0") or 0))
    classes = 2 if k == 1 else k
    trees = []
    for t, c in zip(raw_trees, info, strict=True):
        left = np.asarray(t["left_children"], dtype=int)
        if any(int(s) != 0 for s in t.get("split_type", [])):
            raise ProbeError("exact evasion reads numeric splits; this XGBoost model splits on "
                             "categories")
        leaf = left < 0
        cond = np.asarray(t["split_conditions"], dtype=np.float32).astype(float)
        v = np.zeros((len(left), classes))
        v[leaf, 1 if k == 1 else int(c)] = cond[leaf]
        trees.append(Tree(np.where(leaf, -1, np.asarray(t["split_indices"], dtype=int)),
                          np.where(leaf, 0.0, cond), left,
                          np.asarray(t["right_children"], dtype=int), v))
    raw = booster.predict(xgboost.DMatrix(np.asarray(x, dtype=np.float32)), output_margin=True)
    return _margins(trees, classes, raw, x, True, True, "XGBoost",
                    int(booster.num_features()))


def _lightgbm(booster: Any, x: np.ndarray) -> Ensemble:
    """A LightGBM booster: its dumped model (numeric `<=` splits)."""
    dump = booster.dump_model()
    k = int(dump.get("num_tree_per_iteration", 1))
    classes = 2 if k == 1 else k
    infos = dump["tree_info"]
    scale = 1.0 / max(1, len(infos) // k) if dump.get("average_output") else 1.0
    trees = [_lgb_tree(info["tree_structure"], classes, 1 if k == 1 else i % k, scale)
             for i, info in enumerate(infos)]
    raw = booster.predict(np.asarray(x, dtype=float), raw_score=True)
    return _margins(trees, classes, raw, x, False, False, "LightGBM",
                    int(booster.num_feature()))


def _lgb_tree(root: dict[str, Any], classes: int, column: int, scale: float) -> Tree:
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    values: list[float] = []
    stack: list[tuple[dict[str, Any], int, bool]] = [(root, -1, False)]
    while stack:
        node, parent, is_right = stack.pop()
        me = len(feature)
        if parent >= 0:
            (right if is_right else left)[parent] = me
        leaf = "leaf_value" in node
        if not leaf and (node.get("decision_type") != "<=" or node.get("missing_type") == "Zero"):
            raise ProbeError("exact evasion reads numeric splits; this LightGBM model has "
                             "categorical splits or treats zero as missing")
        feature.append(-1 if leaf else int(node["split_feature"]))
        threshold.append(0.0 if leaf else float(node["threshold"]))
        left.append(-1)
        right.append(-1)
        values.append(scale * float(node["leaf_value"]) if leaf else 0.0)
        if not leaf:
            stack.append((node["right_child"], me, True))
            stack.append((node["left_child"], me, False))
    v = np.zeros((len(feature), classes))
    v[:, column] = values
    return Tree(np.asarray(feature), np.asarray(threshold), np.asarray(left), np.asarray(right),
                v)


def _check(ensemble: Ensemble, model: Any, x: np.ndarray, kind: str) -> None:
    """The read ensemble decides every row as the model does."""
    if not len(x):
        return
    ours = ensemble.predict(x)
    theirs = _model_decisions(model, x, ensemble.classes)
    wrong = int(np.sum(ours != theirs))
    if wrong:
        raise ProbeError(f"could not read this {kind} exactly: its trees as read decide {wrong} "
                         f"of {len(x)} rows differently from the model; exact evasion is not "
                         "available for it")


def _model_decisions(model: Any, x: np.ndarray, classes: int) -> np.ndarray:
    """The model's own decision per row, as a class index (0 .. classes-1)."""
    kind = f"{type(model).__module__}.{type(model).__name__}"
    if kind == "xgboost.core.Booster":
        import xgboost
        p = np.asarray(model.predict(xgboost.DMatrix(np.asarray(x, dtype=np.float32))))
    elif kind == "lightgbm.basic.Booster":
        p = np.asarray(model.predict(np.asarray(x, dtype=float)))
    else:
        p = np.asarray(model.predict_proba(x))
    if p.ndim == 1:
        return np.asarray((p > 0.5).astype(int))
    return np.asarray(np.argmax(p, axis=1))
