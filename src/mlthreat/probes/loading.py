"""Loading a model file for probing: only after the model-file scanner passed it.

A file the scanner flags is never unpickled, whatever the user says. A file in a format the
scanner cannot look inside is loaded only when the user says `--trust`. The framework is
imported only when its kind of file is loaded.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlthreat.errors import InputError
from mlthreat.scanners.modelfile import scan_bytes, sniff

PICKLE_KINDS = {"pickle", "zlib", "gzip", "bz2", "lzma"}


def load_model(path: Path, trust: bool = False) -> Any:
    """The model in `path`, loaded only if it is safe to load (see the module docstring)."""
    if not path.is_file():
        raise InputError(f"{path}: model file not found")
    data = path.read_bytes()   # scanned and loaded from these same bytes: no swap in between
    findings = scan_bytes(data, str(path), root=path.parent, name=path.name)
    if findings:
        worst = findings[0]
        raise InputError(f"{path}: not loaded: the model-file scanner found "
                         f"{len(findings)} problem(s), e.g. {worst.message}. mlthreat never "
                         "unpickles a flagged file; run `mlthreat scan` for details")
    kind = sniff(data[:16])
    if kind in PICKLE_KINDS:
        import joblib  # joblib reads plain and compressed pickles and joblib's own format
        return joblib.load(io.BytesIO(data))
    if kind == "zip" and path.suffix in (".pt", ".pth", ".ckpt", ".bin"):
        import torch
        state = torch.load(io.BytesIO(data), weights_only=True)   # tensors and containers only
        return mlp_from_state(state, path) if isinstance(state, dict) else state
    if kind == "onnx":
        return _onnx_session(data, path)
    if path.suffix in (".json", ".ubj") and data[:1] in (b"{", b"["):
        import xgboost  # XGBoost's own model format is data, not code
        booster = xgboost.Booster()
        booster.load_model(bytearray(data))
        return booster
    if data.startswith(b"tree\n"):
        import lightgbm  # LightGBM's text model format
        return lightgbm.Booster(model_str=data.decode("utf-8"))
    if not trust:
        raise InputError(f"{path}: format {kind!r} cannot be checked by the scanner; pass "
                         "--trust to load it anyway, if you know where it comes from")
    raise InputError(f"{path}: loading {kind!r} models is not supported yet")


def _xgboost(data: bytes) -> Any:
    import xgboost  # XGBoost's own model format is data, not code
    booster = xgboost.Booster()
    booster.load_model(bytearray(data))
    return booster


def _lightgbm(data: bytes) -> Any:
    import lightgbm
    return lightgbm.Booster(model_str=data.decode("utf-8"))


def _framework_load(path: Path, extra: str, load: Callable[[], Any]) -> Any:
    try:
        return load()
    except ImportError as exc:
        raise InputError(f"{path}: probing this model needs {extra}: pip install "
                         f"'mlthreat[{extra}]'") from exc
    except Exception as exc:  # the framework's own error types, translated at the boundary
        raise InputError(f"{path}: {extra} cannot load this model ({exc})") from exc


def _onnx_session(data: bytes, path: Path) -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise InputError(f"{path}: probing an ONNX model needs onnxruntime: pip install "
                         "'mlthreat[onnx]'") from exc
    try:
        return onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own error types are not importable by name
        raise InputError(f"{path}: onnxruntime cannot load this model ({exc})") from exc


def mlp_from_state(state: dict[str, Any], path: Path) -> Any:
    """A PyTorch state dict of Linear layers ("0.weight", "0.bias", "2.weight", ...) as the
    torch.nn.Sequential it came from, with ReLU between the Linear layers: the architecture
    follows from the weights' shapes, so no code is loaded with the file."""
    import torch
    layers = sorted({k.rsplit(".", 1)[0] for k in state if k.endswith(".weight")},
                    key=lambda k: [int(p) if p.isdigit() else p for p in k.split(".")])
    if not layers or any(state[f"{k}.weight"].dim() != 2 for k in layers):
        raise InputError(f"{path}: a state dict of Linear layers (an MLP) is expected; for other "
                         "architectures export the model to ONNX")
    modules: list[Any] = []
    for i, key in enumerate(layers):
        out_dim, in_dim = state[f"{key}.weight"].shape
        modules.append(torch.nn.Linear(in_dim, out_dim, bias=f"{key}.bias" in state))
        if i < len(layers) - 1:
            modules.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*modules)
    renamed = {}
    for j, key in enumerate(layers):
        for part in ("weight", "bias"):
            if f"{key}.{part}" in state:
                renamed[f"{2 * j}.{part}"] = state[f"{key}.{part}"]
    net.load_state_dict(renamed)
    return net.eval()
