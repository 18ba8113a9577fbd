"""ONNX models through onnxruntime, imported only when used."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import softmax

from mlthreat.adapters.interface import ModelAdapter, two_columns
from mlthreat.errors import ProbeError


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
