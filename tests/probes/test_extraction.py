"""Model extraction against independent answers: the true parameters of linear models."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from mlthreat.probes import Budget, BudgetExceeded, CallableAdapter, ProbeError, SklearnAdapter
from mlthreat.probes.adapters import RoundedAdapter, TorchAdapter
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
    assert ev.extra["queries_used"] == 13 and ev.value == 1.0 and ev.succeeded
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
    assert ev.value > 0.95 and ev.succeeded
    assert ev.queries == 300 + len(data.x_eval)            # budget spent, plus the reference
    assert ev.curves["queries"][-1] == 300.0 and len(ev.curves["fidelity"]) > 2
    assert ev.interval[0] < ev.value < ev.interval[1]
    again = ModelExtraction(queries=300, learner=lambda: LogisticRegression()).run(
        victim, data, Budget(seed=0))
    assert again.value == ev.value                          # seeded


def test_the_copy_learner_is_the_family_that_fits_the_model() -> None:
    """Without knowing what answers, the attacker picks the copy's learner from the answers
    alone. By construction an axis-aligned rule is what trees express exactly and a tilted
    hyperplane what a network (not a stack of axis-aligned splits) follows; each must win its
    race, and the winner's copy must be close to exact."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 6))
    w = rng.normal(size=6)
    victims = {
        "gradient-boosted trees": lambda z: (((z[:, 0] > 0.5) & (z[:, 1] < 0)) | (z[:, 2] > 1)
                                             | ((z[:, 3] > 0.2) & (z[:, 4] > 0.4))).astype(int),
        "neural network": lambda z: (z @ w > 0).astype(int),
    }
    for family, rule in victims.items():
        ev = ModelExtraction(queries=600).run(CallableAdapter(rule, scores=False),
                                              ExtractionData(x[3000:], pool=x[:3000]),
                                              Budget(seed=0))
        race = ev.extra["copy_learner"]
        assert race["name"] == family, race
        others = [a for name, a in race["agreement_on_new_answers"].items() if name != family]
        assert race["agreement_on_new_answers"][family] > max(others)
        assert ev.value > 0.97 and family in ev.summary


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
