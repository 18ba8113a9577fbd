"""Model adapters: one module per framework (scikit-learn, PyTorch, XGBoost and LightGBM
boosters, ONNX, Python callables, HTTP endpoints), each importing its framework only when used
and declaring what it offers (scores, labels, gradients), and scanner-gated loading of model
files (`loading.py`). `ADAPTERS` is the one registry `adapter_for` dispatches on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlthreat.adapters.function import CallableAdapter
from mlthreat.adapters.interface import Capabilities, ModelAdapter, RoundedAdapter
from mlthreat.adapters.loading import load_model
from mlthreat.errors import ModelError


def _torch(model: Any) -> ModelAdapter:
    from mlthreat.adapters.torch import TorchAdapter
    return TorchAdapter(model)


def _xgboost(model: Any) -> ModelAdapter:
    from mlthreat.adapters.boosters import XGBoostAdapter
    return XGBoostAdapter(model)


def _lightgbm(model: Any) -> ModelAdapter:
    from mlthreat.adapters.boosters import LightGBMAdapter
    return LightGBMAdapter(model)


def _onnx(model: Any) -> ModelAdapter:
    from mlthreat.adapters.onnx import OnnxAdapter
    return OnnxAdapter(model)


def _sklearn(model: Any) -> ModelAdapter:
    from mlthreat.adapters.sklearn import SklearnAdapter
    return SklearnAdapter(model)


# (does this loaded object belong to the framework?, its adapter), tried in order
ADAPTERS: dict[str, tuple[Callable[[str, Any], bool], Callable[[Any], ModelAdapter]]] = {
    "torch": (lambda kind, m: kind.startswith("torch."), _torch),
    "xgboost": (lambda kind, m: kind == "xgboost.core.Booster", _xgboost),
    "lightgbm": (lambda kind, m: kind == "lightgbm.basic.Booster", _lightgbm),
    "onnx": (lambda kind, m: kind.startswith("onnxruntime."), _onnx),
    # scikit-learn, and XGBoost/LightGBM's scikit-learn API
    "sklearn": (lambda kind, m: callable(getattr(m, "predict", None)), _sklearn),
}


def adapter_for(model: Any) -> ModelAdapter:
    """The adapter for a loaded model, by what it is; ModelError for an object that is no model
    (a dict of weights, a list, an array)."""
    kind = f"{type(model).__module__}.{type(model).__name__}"
    for matches, make in ADAPTERS.values():
        if matches(kind, model):
            return make(model)
    raise ModelError(f"the model file holds a {kind}, not a model: probes take scikit-learn "
                     "estimators, PyTorch modules (or a state dict of Linear layers), XGBoost "
                     "and LightGBM boosters, ONNX models and HTTP endpoints")


def innermost(adapter: ModelAdapter) -> ModelAdapter:
    """The adapter of the model itself, under any wrapping of the interface (rounding)."""
    while isinstance(getattr(adapter, "inner", None), ModelAdapter):
        adapter = adapter.inner  # type: ignore[attr-defined]
    return adapter


def model_object(adapter: ModelAdapter) -> Any:
    """The loaded model behind an adapter (through the interface's rounding), or None for an
    endpoint or a callable."""
    adapter = innermost(adapter)
    for name in ("estimator", "booster"):
        if hasattr(adapter, name):
            return getattr(adapter, name)
    return None


__all__ = ["ADAPTERS", "CallableAdapter", "Capabilities", "ModelAdapter", "RoundedAdapter",
           "adapter_for", "innermost", "load_model", "model_object"]
