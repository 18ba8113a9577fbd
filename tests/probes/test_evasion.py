"""White-box evasion against the closed form for linear models, and realisable examples."""

from __future__ import annotations

import numpy as np
import pytest

from mlthreat.probes import Budget, Constraints, ProbeError, SklearnAdapter
from mlthreat.probes.evasion import EvasionData, WhiteBoxEvasion

torch = pytest.importorskip("torch")
W = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
B = 0.3


def linear_model() -> object:
    from mlthreat.adapters.torch import TorchAdapter
    lin = torch.nn.Linear(5, 2)
    with torch.no_grad():
        lin.weight[:] = torch.tensor([[0.0] * 5, W.tolist()], dtype=torch.float32)
        lin.bias[:] = torch.tensor([0.0, B])
    return TorchAdapter(lin)


@pytest.mark.parametrize("norm, dual", [("l2", lambda w: np.linalg.norm(w)),
                                        ("linf", lambda w: np.abs(w).sum())])
def test_minimal_perturbation_matches_closed_form(norm: str, dual: object) -> None:
    # For a linear classifier the smallest change that flips x is |w.x + b| / ||w||_* (the dual
    # norm: L2 for L2, L1 for L-infinity).
    x = np.random.default_rng(0).normal(size=(40, 5))
    ev = WhiteBoxEvasion(norm=norm, max_epsilon=8.0, search=16).run(
        linear_model(), EvasionData(x), Budget())
    found = np.array(ev.extra["minimal"])
    exact = np.abs(x @ W + B) / dual(W)  # type: ignore[operator]
    assert np.allclose(found, exact, rtol=5e-3, atol=3e-4)
    assert ev.extra["median_minimal_perturbation"] == pytest.approx(np.median(found))
    rates = ev.series["success_rate"]
    assert rates == sorted(rates)                   # a bigger budget never flips fewer points
    assert rates[-1] == pytest.approx(np.mean(exact <= 1.0), abs=0.03)


def test_adversarial_examples_are_realisable() -> None:
    constraints = Constraints(columns=("a", "b", "c", "d", "e"), immutable=frozenset({"e"}),
                              bounds={"b": (-1.0, 1.0)}, integer=frozenset({"a"}))
    rng = np.random.default_rng(1)
    x = constraints.project(rng.normal(size=(30, 5)), rng.normal(size=(30, 5)))
    probe = WhiteBoxEvasion(norm="l2")
    model = linear_model()
    start = model.predict(x)
    flipped, adv = probe.pgd(model, x, start, np.full(len(x), 3.0), "l2",
                             EvasionData(x, constraints))
    assert constraints.violations(adv, x) == []
    assert np.array_equal(adv[:, 4], x[:, 4])       # e (weight 3, the easiest lever) untouched
    assert flipped.any() and np.all(np.linalg.norm(adv - x, axis=1) <= 3.0 + 1e-9)


def test_needs_gradients() -> None:
    from sklearn.tree import DecisionTreeClassifier
    x = np.random.default_rng(0).normal(size=(20, 5))
    adapter = SklearnAdapter(DecisionTreeClassifier().fit(x, (x[:, 0] > 0).astype(int)))
    with pytest.raises(ProbeError, match="needs gradients"):
        WhiteBoxEvasion().run(adapter, EvasionData(x), Budget())


def test_pgd_on_scikit_learn_logistic_regression_matches_closed_form() -> None:
    # scikit-learn's own weights give the closed form; the gradient is our backpropagation.
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 5))
    model = LogisticRegression().fit(x, (x @ W + B + rng.normal(size=200) > 0).astype(int))
    w, b = model.coef_[0], model.intercept_[0]
    ev = WhiteBoxEvasion(norm="l2", max_epsilon=8.0, search=16).run(
        SklearnAdapter(model), EvasionData(x[:30]), Budget())
    exact = np.abs(x[:30] @ w + b) / np.linalg.norm(w)
    assert np.allclose(ev.extra["minimal"], exact, rtol=5e-3, atol=3e-4)
