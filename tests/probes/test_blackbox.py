"""Black-box and transfer evasion: known minimal distances on models whose boundary is known,
budgets kept, constraints respected, and the batching driver exact."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.tree import DecisionTreeClassifier

from mlthreat.probes import Budget, CallableAdapter, Constraints, ProbeError, SklearnAdapter
from mlthreat.probes.blackbox import BlackBoxEvasion
from mlthreat.probes.evasion import EvasionData
from mlthreat.probes.stats import median_interval
from mlthreat.probes.transfer import TransferEvasion


def stump_data(n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4))
    return x, (x[:, 2] > 0.3).astype(int)


def test_decision_attack_finds_the_exact_distance_to_an_axis_aligned_boundary() -> None:
    # A depth-1 tree on feature 2 at 0.3: the smallest flipping change of x is |x_2 - 0.3|,
    # along feature 2 alone (closed form); labels only, as an API that returns the decision.
    x, y = stump_data()
    tree = DecisionTreeClassifier(max_depth=1).fit(x, y)
    threshold = tree.tree_.threshold[0]
    adapter = SklearnAdapter(tree, output="label")
    points = x[300:340]
    ev = BlackBoxEvasion(method="decision", queries=120).run(
        adapter, EvasionData(points, pool=x[:300], pool_y=y[:300]), Budget(seed=1))
    exact = np.abs(points[:, 2] - threshold)
    found = np.array(ev.extra["minimal"])
    assert np.all(found >= exact - 1e-9)              # never better than possible
    assert np.allclose(found, exact, atol=0.02)        # and close to the optimum
    assert ev.extra["max_queries_per_point"] <= 120
    assert ev.queries <= 120 * len(points) + len(points)


def test_score_attack_flips_a_linear_model_near_the_closed_form() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 5))
    w = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    model = LogisticRegression().fit(x, (x @ w > 0).astype(int))
    coef, b = model.coef_[0], model.intercept_[0]
    points = x[:30]
    ev = BlackBoxEvasion(method="score", queries=300, step=0.25).run(
        SklearnAdapter(model), EvasionData(points), Budget(seed=0))
    exact = np.abs(points @ coef + b) / np.linalg.norm(coef)
    found = np.array(ev.extra["minimal"])
    ok = np.isfinite(found)
    assert ok.mean() >= 0.9
    assert np.all(found[ok] >= exact[ok] - 1e-9)
    # coordinate moves cannot follow the oblique normal exactly: within a factor of two
    assert np.median(found[ok] / np.maximum(exact[ok], 1e-9)) < 2.0


def test_every_sent_row_is_a_realisable_record() -> None:
    x, y = stump_data()
    cols = ("a", "b", "c", "d")
    constraints = Constraints(columns=cols, immutable=frozenset({"c"}), integer=frozenset({"a"}),
                              bounds={"b": (-0.5, 0.5)})
    sent: list[np.ndarray] = []
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, (x[:, 0] + x[:, 1] > 0.5))

    def labels(rows: np.ndarray) -> np.ndarray:
        sent.append(np.array(rows))
        return np.asarray(tree.predict(rows)).astype(int)
    points = constraints.project(x[300:330], x[300:330])
    BlackBoxEvasion(method="decision", queries=80).run(
        CallableAdapter(labels, scores=False),
        EvasionData(points, constraints, pool=x[:300], pool_y=y[:300]), Budget(seed=0))
    rows = np.concatenate(sent[1:])      # the first call asks for the points' own labels
    assert len(rows) > 0
    # every row sent keeps c of *some* point and is integer in a, bounded in b
    assert np.all(np.isin(rows[:, 2], points[:, 2]))
    assert np.allclose(rows[:, 0], np.round(rows[:, 0]))
    assert rows[:, 1].min() >= -0.5 - 1e-12 and rows[:, 1].max() <= 0.5 + 1e-12


def test_decision_attack_needs_attacker_rows() -> None:
    x, y = stump_data()
    with pytest.raises(ProbeError, match="pool"):
        BlackBoxEvasion(method="decision").run(
            SklearnAdapter(DecisionTreeClassifier().fit(x, y)), EvasionData(x[:5]), Budget())


def test_median_interval_matches_the_binomial_table() -> None:
    # For n = 100 the distribution-free 95 % interval of the median is (x_(40), x_(61)).
    assert median_interval(np.arange(1, 101)) == (40.0, 61.0)
    # n = 10: (x_(2), x_(9)) covers with 97.9 %, (x_(3), x_(8)) only 89 %.
    assert median_interval(np.arange(1, 11)) == (2.0, 9.0)


def test_transfer_attack_flips_a_model_through_its_copy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 6))
    y = (x[:, 0] - x[:, 1] + 0.5 * x[:, 2] > 0).astype(int)
    victim = MLPClassifier((32,), max_iter=600, random_state=0).fit(x[:800], y[:800])
    ev = TransferEvasion(queries=500, epsilons=[0.1, 1.0, 3.0]).run(
        SklearnAdapter(victim), EvasionData(x[1000:1100], pool=x[:800]), Budget(seed=0))
    rates = ev.curves["success_rate"]
    # the boundary is a plane with |normal| = 1.5: within L2 3.0 nearly every point flips
    assert rates[-1] >= 0.9 and rates[0] < rates[-1]
    assert ev.extra["surrogate_queries"] == 500 and ev.extra["surrogate_agreement"] > 0.9


def test_decision_attack_with_the_attackers_labels_nears_the_closed_form() -> None:
    # Labels only, on a linear model: the smallest flipping L2 change is |w.x + b| / ||w||.
    # A copy trained on the attacker's own labelled rows suggests points near that plane.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1500, 5))
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    coef, b = model.coef_[0], model.intercept_[0]
    points = x[1000:1040]
    ev = BlackBoxEvasion(method="decision", queries=200).run(
        SklearnAdapter(model, output="label"), EvasionData(points, pool=x[:1000],
                                                           pool_y=y[:1000]), Budget(seed=0))
    ratio = np.array(ev.extra["minimal"]) / (np.abs(points @ coef + b) / np.linalg.norm(coef))
    assert np.all(ratio >= 1 - 1e-9)           # never below the optimum
    assert np.all(np.isfinite(ratio)) and np.median(ratio) < 1.1


@pytest.mark.parametrize("per_point", [12, 40])
def test_small_per_point_budgets_are_kept(per_point: int) -> None:
    x, y = stump_data()
    ev = BlackBoxEvasion(method="decision", queries=per_point).run(
        SklearnAdapter(DecisionTreeClassifier(max_depth=3).fit(x, y), output="label"),
        EvasionData(x[300:320], pool=x[:300], pool_y=y[:300]), Budget(seed=0))
    assert ev.extra["max_queries_per_point"] <= per_point
    assert ev.extra["success_any"] > 0.5      # even a few queries find a flipping change
