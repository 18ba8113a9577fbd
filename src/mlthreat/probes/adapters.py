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

from mlthreat.probes.interface import Meter, ProbeError


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
        self.capabilities = Capabilities(scores=has_proba)
        self.classes_ = getattr(estimator, "classes_", None)

    def _proba(self, x: Any) -> Any:
        return self.estimator.predict_proba(x)

    def _labels(self, x: Any) -> Any:
        return self.estimator.predict(x)


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
