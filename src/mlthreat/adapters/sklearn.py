"""scikit-learn estimators and Pipelines (and XGBoost/LightGBM's scikit-learn API): scores from
`predict_proba`, gradients of multilayer perceptrons and linear models by backpropagation
through their own weights, and retraining by clone-and-fit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mlthreat.adapters.interface import Capabilities, ModelAdapter
from mlthreat.errors import ModelError


class SklearnAdapter(ModelAdapter):
    """A scikit-learn estimator or Pipeline (ColumnTransformer and categorical columns included):
    rows go in as the estimator was fitted, a DataFrame or an array."""

    def __init__(self, estimator: Any, output: str = "proba") -> None:
        super().__init__()
        if not hasattr(estimator, "predict"):
            raise ModelError(f"{type(estimator).__name__} has no predict(): not an estimator")
        self.estimator = estimator
        has_proba = hasattr(estimator, "predict_proba") and output == "proba"
        differentiable = hasattr(estimator, "coefs_") or (
            hasattr(estimator, "coef_") and hasattr(estimator, "decision_function"))
        self.capabilities = Capabilities(scores=has_proba, gradients=differentiable)
        self.classes_ = getattr(estimator, "classes_", None)

    def gradient(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Margin gradient of a multilayer perceptron or a linear model, by backpropagation
        through its own weights (the logits: for two classes, 0 and the decision value)."""
        if not self.capabilities.gradients:
            return super().gradient(x, target)
        self._count(len(x))
        est = self.estimator
        index = np.searchsorted(np.asarray(self.classes_), target)
        if hasattr(est, "coefs_"):
            weights, biases, act = est.coefs_, est.intercepts_, est.activation
        else:
            weights, biases, act = [np.asarray(est.coef_).T], [np.atleast_1d(est.intercept_)], ""
        layers, a = [], np.asarray(x, dtype=float)
        for w, b in zip(weights[:-1], biases[:-1], strict=True):
            z = a @ w + b
            layers.append(z)
            a = _ACTIVATIONS[act][0](z)
        logits = a @ weights[-1] + biases[-1]
        if logits.shape[1] == 1:        # two classes: logits (0, z)
            upstream = np.where(index == 1, 1.0, -1.0)[:, None]
        else:
            others = logits.copy()
            others[np.arange(len(x)), index] = -np.inf
            upstream = np.zeros_like(logits)
            upstream[np.arange(len(x)), index] = 1.0
            upstream[np.arange(len(x)), others.argmax(axis=1)] -= 1.0
        grad = upstream @ weights[-1].T
        for w, z in zip(reversed(weights[:-1]), reversed(layers), strict=True):
            grad = (grad * _ACTIVATIONS[act][1](z)) @ w.T
        return np.asarray(grad, dtype=float)

    def _proba(self, x: Any) -> Any:
        return self.estimator.predict_proba(x)

    def _labels(self, x: Any) -> Any:
        return self.estimator.predict(x)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=float)


# activation: (function, derivative at the pre-activation), as scikit-learn's MLP names them
_ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray],
                              Callable[[np.ndarray], np.ndarray]]] = {
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "logistic": (_sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
    "identity": (lambda z: z, np.ones_like),
}


def retrainer(estimator: Any, method: str = "predict_proba"
              ) -> Callable[[np.ndarray, np.ndarray, int], Callable[[np.ndarray], np.ndarray]]:
    """How probes retrain a model of the target's kind: clone the scikit-learn estimator, seed it,
    fit it, and hand back its `method` (predict_proba for scores, predict for labels)."""
    from sklearn.base import clone

    def fit(x: np.ndarray, y: np.ndarray, seed: int) -> Callable[[np.ndarray], np.ndarray]:
        model = clone(estimator)
        if "random_state" in model.get_params():
            model.set_params(random_state=seed)
        return getattr(model.fit(x, y), method)  # type: ignore[no-any-return]
    return fit
