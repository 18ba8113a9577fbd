"""Model adapters: one per framework, importing it only when used, each declaring what it offers
(gradients, scores, labels only) and counting every row it is asked about.

Probes talk to models only through an adapter, so the same attack runs on a scikit-learn
Pipeline, a PyTorch module or an HTTP endpoint, and its queries are budgeted and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import softmax

from mlthreat.errors import ProbeError
from mlthreat.probes.interface import Meter


@dataclass(frozen=True)
class Capabilities:
    scores: bool          # class probabilities (or scores) are observable
    labels: bool = True   # the decision is observable
    gradients: bool = False


class ModelAdapter:
    """Base: `predict_proba` and `predict` over rows, counted against the attached meter."""

    capabilities = Capabilities(scores=True)

    def __init__(self) -> None:
        self._meter: Meter | None = None
        self.queries = 0

    def attach(self, meter: Meter | None) -> None:
        self._meter = meter

    def _count(self, rows: int) -> None:
        self.queries += rows
        if self._meter is not None:
            self._meter.spend(rows)

    def predict_proba(self, x: Any) -> np.ndarray:
        if not self.capabilities.scores:
            raise ProbeError("this model returns labels only; the probe needs scores")
        self._count(len(x))
        return np.asarray(self._proba(x), dtype=float)

    def predict(self, x: Any) -> np.ndarray:
        self._count(len(x))
        return np.asarray(self._labels(x))

    def _proba(self, x: Any) -> Any:
        raise NotImplementedError

    def gradient(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Gradient of the margin of class `target` (its score minus the best other) w.r.t. x,
        for adapters with `capabilities.gradients`."""
        raise ProbeError(f"{type(self).__name__} offers no gradients")

    def _labels(self, x: Any) -> Any:
        return np.argmax(self._proba(x), axis=1)


class SklearnAdapter(ModelAdapter):
    """A scikit-learn estimator or Pipeline (ColumnTransformer and categorical columns included):
    rows go in as the estimator was fitted, a DataFrame or an array."""

    def __init__(self, estimator: Any, output: str = "proba") -> None:
        super().__init__()
        if not hasattr(estimator, "predict"):
            raise ProbeError(f"{type(estimator).__name__} has no predict(): not an estimator")
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


class CallableAdapter(ModelAdapter):
    """Any Python function from rows to class probabilities (or to labels, with scores=False)."""

    def __init__(self, fn: Callable[[Any], Any], scores: bool = True) -> None:
        super().__init__()
        self.fn = fn
        self.capabilities = Capabilities(scores=scores)

    def _proba(self, x: Any) -> Any:
        return self.fn(x)

    def _labels(self, x: Any) -> Any:
        out = np.asarray(self.fn(x))
        return np.argmax(out, axis=1) if self.capabilities.scores and out.ndim == 2 else out


class RoundedAdapter(ModelAdapter):
    """What an API that rounds its scores (or returns the label only) shows the attacker."""

    def __init__(self, inner: ModelAdapter, decimals: int | None) -> None:
        super().__init__()
        self.inner = inner
        self.decimals = decimals
        self.capabilities = Capabilities(scores=decimals is not None and
                                         inner.capabilities.scores)

    def _proba(self, x: Any) -> Any:
        return np.round(self.inner._proba(x), self.decimals or 0)

    def _labels(self, x: Any) -> Any:
        return self.inner._labels(x)


class TorchAdapter(ModelAdapter):
    """A PyTorch module mapping a float batch to logits (or probabilities with
    `outputs="probabilities"`). torch is imported only here, when such a model is probed."""

    def __init__(self, module: Any, outputs: str = "logits") -> None:
        super().__init__()
        import torch
        self.torch = torch
        self.module = module.eval()
        self.outputs = outputs
        self.capabilities = Capabilities(scores=True, gradients=True)

    def gradient(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        return torch_gradient(self, x, target)

    def _proba(self, x: Any) -> Any:
        torch = self.torch
        with torch.no_grad():
            out = self.module(torch.as_tensor(np.asarray(x), dtype=torch.float32))
            if self.outputs == "logits":
                out = torch.softmax(out, dim=1)
        return out.numpy().astype(float)


def torch_gradient(adapter: TorchAdapter, x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Gradient of the margin (target logit minus the best other logit) with respect to x."""
    torch = adapter.torch
    adapter._count(len(x))
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float32).requires_grad_(True)
    out = adapter.module(xt)
    if adapter.outputs != "logits":
        out = torch.log(out.clamp_min(1e-12))
    idx = torch.as_tensor(target, dtype=torch.long)
    own = out.gather(1, idx[:, None]).squeeze(1)
    others = out.clone()
    others[torch.arange(len(idx)), idx] = -float("inf")
    margin = own - others.max(dim=1).values
    margin.sum().backward()
    return np.asarray(xt.grad.detach().numpy(), dtype=float)


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


def two_columns(p: np.ndarray) -> np.ndarray:
    """Binary models answer P(class 1) alone; probes want one column per class."""
    p = np.asarray(p, dtype=float)
    return np.column_stack([1.0 - p, p]) if p.ndim == 1 else p


class XGBoostAdapter(ModelAdapter):
    """A native xgboost.Booster (binary:logistic or multi:softprob)."""

    def __init__(self, booster: Any) -> None:
        super().__init__()
        import xgboost
        self.xgboost = xgboost
        self.booster = booster

    def _proba(self, x: Any) -> Any:
        return two_columns(self.booster.predict(self.xgboost.DMatrix(np.asarray(x))))


class LightGBMAdapter(ModelAdapter):
    """A native lightgbm.Booster (binary or multiclass objective)."""

    def __init__(self, booster: Any) -> None:
        super().__init__()
        self.booster = booster

    def _proba(self, x: Any) -> Any:
        return two_columns(self.booster.predict(np.asarray(x, dtype=float)))


class OnnxAdapter(ModelAdapter):
    """An onnxruntime InferenceSession: the first input gets the rows as float32; the first
    two-dimensional float output is read as probabilities (or as logits, when its rows do not
    sum to one), as skl2onnx and torch.onnx.export produce them."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self.input = session.get_inputs()[0].name

    def _proba(self, x: Any) -> Any:
        outputs = self.session.run(None, {self.input: np.asarray(x, dtype=np.float32)})
        for out in outputs:
            if isinstance(out, list) and out and isinstance(out[0], dict):   # skl2onnx zipmap
                keys = sorted(out[0])
                return np.array([[row[k] for k in keys] for row in out], dtype=float)
            arr = np.asarray(out)
            if arr.ndim == 2 and arr.dtype.kind == "f":
                if arr.shape[1] == 1:
                    return two_columns(arr[:, 0])
                if np.allclose(arr.sum(axis=1), 1.0, atol=1e-4) and arr.min() >= 0:
                    return arr.astype(float)
                return softmax(arr.astype(float), axis=1)
        raise ProbeError("the ONNX model has no two-dimensional float output to read as "
                         "class probabilities")


def adapter_for(model: Any) -> ModelAdapter:
    """The adapter for a loaded model, by what it is (framework imported only when it is one)."""
    kind = f"{type(model).__module__}.{type(model).__name__}"
    if kind.startswith("torch."):
        return TorchAdapter(model)
    if kind == "xgboost.core.Booster":
        return XGBoostAdapter(model)
    if kind == "lightgbm.basic.Booster":
        return LightGBMAdapter(model)
    if kind.startswith("onnxruntime."):
        return OnnxAdapter(model)
    if hasattr(model, "predict"):
        return SklearnAdapter(model)   # scikit-learn, and XGBoost/LightGBM's scikit-learn API
    raise ProbeError(f"no adapter for a {kind}: probes take scikit-learn estimators, PyTorch "
                     "modules, XGBoost and LightGBM boosters, ONNX models and HTTP endpoints")
