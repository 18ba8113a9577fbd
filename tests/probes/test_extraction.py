"""Model extraction against independent answers: the true parameters of linear models."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from mlthreat.adapters import RoundedAdapter
from mlthreat.adapters.torch import TorchAdapter
from mlthreat.probes import Budget, BudgetExceeded, CallableAdapter, ProbeError, SklearnAdapter
from mlthreat.probes.extraction import ExtractionData, ModelExtraction
from mlthreat.probes.stats import wilson


def test_equation_solving_is_exact_with_d_plus_one_queries() -> None:
    x, y = make_classification(500, n_features=12, random_state=0)
    lr = LogisticRegression(max_iter=1000).fit(x, y)
    adapter = SklearnAdapter(lr)
    ev = ModelExtraction(attack="equations").run(adapter, ExtractionData(x), Budget())
    w, b = np.array(ev.extra["weights"]), np.array(ev.extra["bias"])
    # Independent answer: the model's own coefficients (log p1 - log p0 = x.coef + intercept).
    assert np.abs(w[:, 1] - lr.coef_[0]).max() < 1e-6
    assert abs(b[1] - lr.intercept_[0]) < 1e-6
    assert ev.extra["queries_used"] == 13 and ev.value == 1.0 and ev.confirmed
    assert ev.extra["max_probability_error"] < 1e-6


def test_equation_solving_multiclass() -> None:
    x, y = make_classification(900, n_features=6, n_informative=4, n_classes=3, random_state=1)
    lr = LogisticRegression(max_iter=2000).fit(x, y)
    ev = ModelExtraction(attack="equations").run(SklearnAdapter(lr), ExtractionData(x), Budget())
    w, b = np.array(ev.extra["weights"]), np.array(ev.extra["bias"])
    # softmax: log p_j - log p_0 = x (c_j - c_0) + (i_j - i_0)
    assert np.abs(w - (lr.coef_ - lr.coef_[0]).T).max() < 1e-6
    assert np.abs(b - (lr.intercept_ - lr.intercept_[0])).max() < 1e-6


def test_equations_need_scores() -> None:
    x, y = make_classification(200, n_features=3, n_informative=3, n_redundant=0,
                               random_state=0)
    label_only = RoundedAdapter(SklearnAdapter(LogisticRegression().fit(x, y)), None)
    with pytest.raises(ProbeError, match="needs probabilities"):
        ModelExtraction(attack="equations").run(label_only, ExtractionData(x), Budget())


def test_label_only_surrogate_copies_a_simple_model() -> None:
    x, y = make_classification(3000, n_features=8, random_state=0)
    victim = SklearnAdapter(LogisticRegression().fit(x[:1500], y[:1500]))
    data = ExtractionData(x[2000:], pool=x[:2000], y_eval=y[2000:])
    ev = ModelExtraction(queries=300, learner=lambda: LogisticRegression()).run(
        victim, data, Budget(seed=0))
    assert ev.value > 0.95 and ev.confirmed
    assert ev.queries == 300 + len(data.x_eval)            # budget spent, plus the reference
    assert ev.series["queries"][-1] == 300.0 and len(ev.series["fidelity"]) > 2
    assert ev.interval[0] < ev.value < ev.interval[1]
    again = ModelExtraction(queries=300, learner=lambda: LogisticRegression()).run(
        victim, data, Budget(seed=0))
    assert again.value == ev.value                          # seeded


def test_the_copy_votes_with_both_kinds_of_boundary() -> None:
    """Without knowing what answers, the attacker's copy averages a network and trees. By
    construction an axis-aligned rule is what trees express exactly and a tilted hyperplane what
    a network (not a stack of axis-aligned splits) follows: on each rule the family that draws
    it must be the better voter, and the vote must still be close to exact on both."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 6))
    w = rng.normal(size=6)
    victims = {
        "gradient-boosted trees": lambda z: (((z[:, 0] > 0.5) & (z[:, 1] < 0)) | (z[:, 2] > 1)
                                             | ((z[:, 3] > 0.2) & (z[:, 4] > 0.4))).astype(int),
        "neural networks": lambda z: (z @ w > 0).astype(int),
    }
    for family, rule in victims.items():
        ev = ModelExtraction(queries=600).run(CallableAdapter(rule, scores=False),
                                              ExtractionData(x[3000:], pool=x[:3000]),
                                              Budget(seed=0))
        voters = ev.extra["copy_learner"]["voters_fidelity"]
        assert set(voters) == {"gradient-boosted trees", "neural networks"}
        assert voters[family] == max(voters.values()), voters
        assert ev.value > 0.97 and "probabilities averaged" in ev.summary


def test_the_vote_averages_its_voters_probabilities() -> None:
    """Independent answer: the two voters refitted alone on the same answers (scikit-learn's
    trees, and the batched networks) give probabilities whose mean is the copy's."""
    from mlthreat.probes.copies import NetworkEnsemble, input_scaling
    from mlthreat.probes.extraction import _soft_vote, _trees
    x, y = make_classification(400, n_features=5, random_state=3)
    labels = np.where(y == 1, "approve", "reject")
    scaling = input_scaling(x)
    vote = _soft_vote(*scaling)().fit(x, labels)
    classes, codes = np.unique(labels, return_inverse=True)        # approve = 0, reject = 1
    alone = [NetworkEnsemble(center=scaling[0], spread=scaling[1]).fit(x, codes),
             _trees().fit(x, codes)]
    want = np.mean([m.predict_proba(x) for m in alone], axis=0)
    np.testing.assert_allclose(vote.predict_proba(x), want, atol=1e-6)
    assert list(vote.predict(x)) == list(classes[want.argmax(1)])


def test_gaussian_queries_and_budget() -> None:
    x, y = make_classification(2000, n_features=5, random_state=0)
    victim = SklearnAdapter(LogisticRegression().fit(x, y))
    ev = ModelExtraction(queries=200, source="gaussian").run(victim, ExtractionData(x[:500]),
                                                             Budget(seed=0))
    assert 0.5 < ev.value <= 1.0
    with pytest.raises(BudgetExceeded):
        ModelExtraction(queries=200).run(victim, ExtractionData(x[:500], pool=x),
                                         Budget(queries=300))
    with pytest.raises(ProbeError, match="pool"):
        ModelExtraction(source="natural").run(victim, ExtractionData(x[:10]), Budget())


def test_torch_adapter_gives_probabilities() -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    adapter = TorchAdapter(net)
    p = adapter.predict_proba(np.zeros((5, 3)))
    assert p.shape == (5, 2) and np.allclose(p.sum(axis=1), 1)
    assert adapter.capabilities.gradients and adapter.queries == 5


def test_wilson_interval_by_hand() -> None:
    lo, hi = wilson(0.5, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)


def test_the_batched_networks_are_separate_networks_averaged() -> None:
    """Independent answer: each member rebuilt as its own torch.nn.Sequential from the batched
    weights gives probabilities whose mean is the ensemble's."""
    import torch

    from mlthreat.probes.copies import NetworkEnsemble
    x, y = make_classification(300, n_features=7, n_informative=5, n_classes=3, random_state=0)
    ens = NetworkEnsemble(members=3, hidden=8, epochs=5).fit(x, y * 10)
    assert list(ens.classes_) == [0, 10, 20]
    w1, b1, w2, b2, w3, b3 = (p.detach() for p in ens.params_)
    probs = []
    for k in range(3):
        net = torch.nn.Sequential(torch.nn.Linear(7, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8),
                                  torch.nn.ReLU(), torch.nn.Linear(8, 3))
        with torch.no_grad():
            for layer, w, b in zip(net[::2], (w1, w2, w3), (b1, b2, b3), strict=True):
                layer.weight.copy_(w[k].T)
                layer.bias.copy_(b[k, 0])
            probs.append(torch.softmax(net(torch.tensor(x, dtype=torch.float32)), 1).numpy())
    np.testing.assert_allclose(ens.predict_proba(x), np.mean(probs, axis=0), atol=1e-6)
    assert set(ens.predict(x)) <= {0, 10, 20}
    # the members start apart: averaging is over different networks
    assert np.abs(probs[0] - probs[1]).max() > 1e-3


def test_input_scaling_leaves_unit_columns_and_standardises_raw_ones() -> None:
    from mlthreat.probes.copies import input_scaling
    pool = np.array([[0.0, 1.0, 1000.0, 2020.0, 0.0],
                     [1.0, -1.0, 3000.0, 2021.0, 2.9],
                     [0.0, 1.0, 2000.0, 2022.0, 0.0],
                     [1.0, -1.0, 2000.0, 2021.0, -2.9]])
    center, spread = input_scaling(pool)
    # by hand: one-hot and standardised columns kept, and one of spread 2.05 (std of 0, 2.9,
    # 0, -2.9) standardised; amounts (std 707.1) and years (mean 2021) standardised with the
    # pool's own mean and std
    np.testing.assert_allclose(center, [0.0, 0.0, 2000.0, 2021.0, 0.0])
    np.testing.assert_allclose(spread, [1.0, 1.0, np.sqrt(500000.0), np.sqrt(0.5),
                                        np.sqrt(2 * 2.9**2 / 4)])


def test_a_network_copy_of_a_model_on_raw_amounts() -> None:
    """Features on a raw scale (amounts in thousands, around a large offset): without the
    pool's scaling the network's copy cannot follow a tilted boundary; with it, it must."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4000, 5))
    w = rng.normal(size=5)
    x = z * 1000.0 + 50_000.0

    def rule(rows: np.ndarray) -> np.ndarray:
        return np.asarray(((rows - 50_000.0) / 1000.0) @ w > 0, dtype=int)

    ev = ModelExtraction(queries=600).run(CallableAdapter(rule, scores=False),
                                          ExtractionData(x[3000:], pool=x[:3000]),
                                          Budget(seed=0))
    assert ev.extra["copy_learner"]["voters_fidelity"]["neural networks"] > 0.97
    assert ev.value > 0.97


def test_without_pytorch_the_network_is_scikit_learns(monkeypatch: pytest.MonkeyPatch) -> None:
    """The torch extra is optional: without it the network candidate is one scikit-learn MLP of
    the same shape (behind the same input scaling), and it still copies a tilted boundary."""
    import importlib.util

    from sklearn.pipeline import Pipeline

    from mlthreat.probes import extraction
    from mlthreat.probes.copies import input_scaling
    real = importlib.util.find_spec
    monkeypatch.setattr(extraction.importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3000, 5)) * 50.0
    w = rng.normal(size=5)
    assert isinstance(extraction._network(*input_scaling(x)), Pipeline)
    ev = ModelExtraction(queries=500).run(
        CallableAdapter(lambda z: np.asarray(z @ w > 0, dtype=int), scores=False),
        ExtractionData(x[2000:], pool=x[:2000]), Budget(seed=0))
    assert ev.extra["copy_learner"]["voters_fidelity"]["neural networks"] > 0.95
    assert ev.value > 0.95


def test_a_constant_copy_never_passes_however_skewed_the_answers() -> None:
    """The issue's case: a model that answers one class on about 95 % of rows. A copy that always
    gives the majority answer agrees on about 95 % of unseen rows (above a 0.9 agreement bar);
    chance-corrected agreement is 0, so it is not a successful extraction. Independent answers:
    the constant copy's agreement is the share of the model's majority answer, counted by hand."""
    from sklearn.dummy import DummyClassifier
    x, _ = make_classification(3000, n_features=6, random_state=3)
    rule = lambda z: (z[:, 0] > 1.65).astype(int)                       # noqa: E731
    data = ExtractionData(x[2000:], pool=x[:2000])
    ev = ModelExtraction(queries=300, learner=lambda: DummyClassifier(strategy="most_frequent")
                         ).run(CallableAdapter(rule, scores=False), data, Budget(seed=0))
    share = float(np.mean(rule(x[2000:]) == 0))
    assert share > 0.9 and ev.value == pytest.approx(share)
    assert ev.extra["constant_copy_fidelity"] == pytest.approx(share)
    assert ev.extra["kappa"] == pytest.approx(0.0, abs=1e-12)
    assert not ev.confirmed
    assert "always giving the majority answer agrees on" in ev.summary


def test_kappa_decides_and_matches_the_closed_form() -> None:
    """Cohen's closed form (p_o - p_e) / (1 - p_e), computed by hand on ten decisions, is what
    the judgement reports; the constant copy is the majority of the attacker's answers; a copy
    at kappa 0.58 is not confirmed even though it agrees on 80 %."""
    from mlthreat.probes.extraction import _judge
    from mlthreat.probes.stats import kappa
    copy = np.array([1, 1, 0, 0, 0, 0, 1, 0, 0, 0])
    model = np.array([1, 0, 0, 0, 0, 0, 1, 1, 0, 0])
    p_o, p_e = 0.8, 0.3 * 0.3 + 0.7 * 0.7          # both say 1 on 3 of 10 rows
    judged = _judge(copy, model, np.array([0, 0, 1]), np.random.default_rng(0))
    assert judged["kappa"] == pytest.approx((p_o - p_e) / (1 - p_e))      # 0.5238
    assert judged["fidelity"] == 0.8 and judged["constant"] == 0.7       # "always 0": 7 of 10
    lo, hi = judged["kappa_interval"]
    assert lo < judged["kappa"] < hi and not judged["confirmed"]
    assert kappa(np.zeros(5), np.zeros(5)) is None        # no variation: undefined, not 0 or 1


def test_a_real_copy_of_a_skewed_model_is_confirmed() -> None:
    x, _ = make_classification(3000, n_features=6, random_state=3)
    rule = lambda z: (z[:, 0] + 0.5 * z[:, 1] > 1.2).astype(int)        # noqa: E731
    ev = ModelExtraction(queries=400, learner=lambda: LogisticRegression(C=100.0)).run(
        CallableAdapter(rule, scores=False), ExtractionData(x[2000:], pool=x[:2000]),
        Budget(seed=0))
    assert ev.extra["kappa"] >= 0.8 and ev.confirmed
    assert ev.interval[0] > ev.extra["constant_copy_fidelity"]
    (name, simple), = ev.extra["simple_copies"].items()
    assert name in ("a logistic regression", "a depth-3 decision tree") and simple["kappa"] > 0


def test_copies_train_on_balanced_classes() -> None:
    """The transfer surrogate and the black-box guide copy weight each class to the same total:
    on 90 / 10 rows, n / (classes x count) = 100 / 180 and 100 / 20, by hand."""
    from mlthreat.probes.copies import balanced
    w = balanced(np.r_[np.zeros(90, int), np.ones(10, int)])
    assert w[:90] == pytest.approx(np.full(90, 100 / 180)) and w[90:] == pytest.approx(5.0)
    assert w[:90].sum() == pytest.approx(w[90:].sum())


def test_a_pool_smaller_than_the_budget_is_said() -> None:
    x, y = make_classification(400, n_features=5, random_state=0)
    victim = SklearnAdapter(LogisticRegression().fit(x, y))
    ev = ModelExtraction(queries=300, learner=lambda: LogisticRegression()).run(
        victim, ExtractionData(x[200:], pool=x[:120]), Budget(seed=0))
    (warning,) = ev.extra["warnings"]
    assert ev.extra["queries_used"] == 120 and "120 of the 300 queries" in warning


def test_too_few_points_or_non_members_are_said() -> None:
    from mlthreat.probes.evasion import EvasionData, few_points
    assert few_points(12, 50) and "only 12 held-out rows" in few_points(12, 50)[0]
    assert few_points(12, 10) == []                 # the budget asked for ten: nothing missing
    assert few_points(40, 100) == []                # short of the budget, but 30 or more
    assert EvasionData(np.zeros((5, 2)), asked=50).warnings() == few_points(5, 50)


def test_the_networks_input_gradient_is_the_finite_difference_of_log_probability() -> None:
    """Independent answer: central differences of log p(c | x) from predict_proba, on inputs
    the copy standardises (raw amounts, spread about 40), so the scaling's chain rule is
    checked too. A ReLU network has kinks that a difference step can cross, and float32 limits
    the precision: 18 of the 20 entries within 5 % (a missing chain-rule factor misses all)."""
    pytest.importorskip("torch")
    from mlthreat.probes.copies import NetworkEnsemble, input_scaling
    x, y = make_classification(300, n_features=5, n_informative=4, n_redundant=0, n_classes=3,
                               random_state=1)
    x = x * 40 + 100
    ens = NetworkEnsemble(members=3, hidden=8, epochs=20, **dict(zip(
        ("center", "spread"), input_scaling(x), strict=True))).fit(x, y)
    rows, codes = x[:4], np.array([0, 2, 1, 2])
    grad = ens.input_gradient(rows, codes)
    numeric = np.zeros_like(grad)
    h, pick = 0.1, (np.arange(4), codes)
    for j in range(5):
        up, down = rows.copy(), rows.copy()
        up[:, j] += h
        down[:, j] -= h
        numeric[:, j] = (np.log(ens.predict_proba(up)[pick])
                         - np.log(ens.predict_proba(down)[pick])) / (2 * h)
    close = np.abs(grad - numeric) <= 0.05 * np.abs(numeric) + 1e-3 * np.abs(numeric).max()
    assert close.sum() >= 18, (grad, numeric)


def _linear_images(seed: int = 0) -> tuple[CallableAdapter, np.ndarray, np.ndarray]:
    """A softmax-linear model on 64 pixels in 0..16 with four classes, and images drawn
    around four class prototypes (the attacker's pool and held-out images)."""
    rng = np.random.default_rng(seed)
    w, b = rng.normal(size=(64, 4)), rng.normal(size=4)
    protos = rng.uniform(2, 14, size=(4, 64))
    images = np.clip(protos[rng.integers(0, 4, 1400)] + rng.normal(0, 3, (1400, 64)), 0, 16)

    def proba(x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, float) - 8) / 16 @ w + b
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return np.asarray(e / e.sum(axis=1, keepdims=True))
    return CallableAdapter(proba), images[:900], images[900:]


def test_synthetic_queries_step_each_image_by_the_budget_inside_the_range() -> None:
    """Every query after the attacker's few images is an earlier query moved by exactly `step`
    of the range on every pixel (less only where the range clips it); the copy learns from the
    synthetic answers: it agrees more with the model than the copy of the seed images alone."""
    pytest.importorskip("torch")
    victim, pool, held = _linear_images()
    asked: list[np.ndarray] = []

    def recording(x: np.ndarray) -> np.ndarray:
        asked.append(np.asarray(x, float).copy())
        return np.asarray(victim.predict_proba(x))
    model = RoundedAdapter(CallableAdapter(recording), None)
    data = ExtractionData(held, pool=pool, bounds=(0.0, 16.0))
    ev = ModelExtraction(source="synthetic", queries=400, first=0.05).run(
        model, data, Budget(seed=0))
    queries = np.vstack([a for a in asked if len(a) != len(held)])
    assert len(queries) == 400 and ev.extra["queries_used"] == 400
    assert queries.min() >= 0 and queries.max() <= 16
    seeds = {tuple(r) for r in pool}
    assert sum(tuple(q) in seeds for q in queries[:20]) == 20            # 5 % natural
    step = 0.1 * 16
    for i in range(20, 400):
        moved = np.abs(queries[:i] - queries[i])
        exact = np.all((moved <= step + 1e-9) & ((np.abs(moved - step) < 1e-9)
                                                 | (queries[i] == 0) | (queries[i] == 16)),
                       axis=1)
        assert exact.any(), i                # a parent: every pixel moved by the step
    assert ev.series["queries"] == [20.0, 40.0, 80.0, 160.0, 320.0, 400.0]
    seed_only = ev.series["fidelity"][0]
    assert ev.value > seed_only + 0.05
    assert f"(the 20 images alone: {seed_only:.1%})" in ev.summary


def test_synthetic_extraction_runs_on_images_and_says_why_not_on_tables() -> None:
    from mlthreat.catalog import load_catalog
    from mlthreat.pipeline import load_pipeline
    from mlthreat.probes.execute import attempt
    from mlthreat.probes.registry import kind_of
    from mlthreat.probes.runner import BUDGETS
    from mlthreat.probes.target import prepare
    from tests.conftest import EXAMPLES
    pipeline = load_pipeline(EXAMPLES / "credit-scoring" / "pipeline.yaml", load_catalog())
    api = next(c for c in pipeline.spec.components if c.id == "scoring_api")
    why = attempt("extraction-synthetic", prepare(pipeline, api, trust=False),
                  BUDGETS["quick"], 1, seed=0)
    assert isinstance(why, str) and "stepping images" in why and "natural queries" in why
    pytest.importorskip("torch")
    pipeline = load_pipeline(EXAMPLES / "image-community" / "pipeline.yaml", load_catalog())
    comp = next(c for c in pipeline.spec.components if c.probe)
    ev = attempt("extraction-synthetic", prepare(pipeline, comp, trust=False),
                 BUDGETS["quick"], 1, seed=0)
    assert not isinstance(ev, str)
    assert kind_of(ev) == "extraction-synthetic" and ev.parameters["source"] == "synthetic"
    assert ev.value > ev.series["fidelity"][0]     # better than the attacker's images alone
