"""How probes retrain a model of the target's kind: scikit-learn's clone-and-fit, or the
pipeline's own training entry point named in the spec (`train: file.py:function`).

The named function is the user's own training code, declared by them in their spec, so it is
run; nothing from a scanned artifact ever is. It is called as function(x, y, seed) and returns
a fitted model with `predict_proba` (or a function from rows to class probabilities).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlthreat.adapters.sklearn import retrainer
from mlthreat.errors import InputError

# trains a model of the target's kind on (x, y) with a seed; returns its probability function
Fit = Callable[[np.ndarray, np.ndarray, int], Callable[[np.ndarray], np.ndarray]]


def user_fit(base_dir: Path, entry: str) -> Fit:
    """The `file.py:function` entry point (relative to the spec's folder) as a Fit."""
    fn = user_function(base_dir, entry, "train")

    def fit(x: np.ndarray, y: np.ndarray, seed: int) -> Any:
        model = fn(x, y, seed)
        return model.predict_proba if hasattr(model, "predict_proba") else model
    return fit


def user_function(base_dir: Path, entry: str, what: str) -> Any:
    """The function `file.py:function` names (relative to the spec's folder; `what`: the spec
    entry, "train" or "module"), imported: the team's own code, which the spec asks mlthreat to
    run."""
    file, sep, name = entry.rpartition(":")
    if not sep or not file.endswith(".py") or not name.isidentifier():
        raise InputError(f"{what}: {entry!r} should look like path/to/{what}.py:function")
    path = (base_dir / file).resolve()
    if not path.is_file():
        raise InputError(f"{what}: {path} not found")
    module_name = f"mlthreat_user_{what}_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module    # so parallel workers can find the function again
    _by_value(module)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: any failure is theirs to see
        raise InputError(f"{what}: importing {path} failed: {type(exc).__name__}: {exc}") from exc
    fn = getattr(module, name, None)
    if not callable(fn):
        raise InputError(f"{what}: {path} has no function {name!r}")
    return fn


def _by_value(module: Any) -> None:
    """The user's training module travels with its functions (cloudpickle by value): a Dask
    worker that never imported it can still run a retraining (`probes.cluster`)."""
    try:
        import cloudpickle
    except ImportError:              # no cluster extra: nothing pickles these functions
        return
    cloudpickle.register_pickle_by_value(module)


def labels_of(fit: Fit) -> Fit:
    """A Fit whose trained model answers labels (argmax of its probabilities)."""
    def train(x: np.ndarray, y: np.ndarray, seed: int) -> Any:
        proba = fit(x, y, seed)
        return lambda rows: np.argmax(np.asarray(proba(rows)), axis=1)
    return train


def sharing_clean(fit: Fit, x_clean: np.ndarray, y_clean: np.ndarray) -> Fit:
    """`fit`, remembering the models it trains on exactly the clean training rows: label
    flipping, targeted flipping and the backdoor each compare with clean retraining under the
    same seeds, and those clean models are the same ones (a third of the poisoning probes'
    trainings). Poisoned or resampled data is never remembered."""
    memo: dict[int, Any] = {}

    def fit_once(x: np.ndarray, y: np.ndarray, seed: int) -> Any:
        clean = x.shape == x_clean.shape and np.array_equal(y, y_clean) and \
            np.array_equal(x, x_clean)
        if not clean:
            return fit(x, y, seed)
        if seed not in memo:
            memo[seed] = fit(x, y, seed)
        return memo[seed]
    return fit_once


def sklearn_fit(estimator: Any) -> Fit:
    """Retraining for a scikit-learn estimator: clone, seed, fit; scores out."""
    return retrainer(estimator, "predict_proba")
