"""Any Python function from rows to class probabilities (or labels): the adapter for models no
other adapter knows, and for tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mlthreat.adapters.interface import Capabilities, ModelAdapter


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
