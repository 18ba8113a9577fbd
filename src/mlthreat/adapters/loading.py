"""Loading a model file for probing: only after the model-file scanner passed it, and with every
framework's own load error translated into a ModelError that names the file and what to do.

A file the scanner flags is never unpickled, whatever the user says. A file in a format the
scanner cannot look inside, and a TorchScript program (code, in PyTorch's own security policy,
that the scanner reads but cannot vouch for), is loaded only when the user says `--trust`. The
framework is imported only when its kind of file is loaded.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlthreat.errors import InputError, ModelError, brief
from mlthreat.scanners.modelfile import scan_bytes, sniff

TORCHSCRIPT = "MF-TORCHSCRIPT"   # the scanner's note that a file is a TorchScript program

PICKLE_KINDS = {"pickle", "zlib", "gzip", "bz2", "lzma"}


def load_model(path: Path, trust: bool = False) -> Any:
    """The model in `path`, loaded only if it is safe to load (see the module docstring)."""
    data = _scanned(path, trust)
    kind = sniff(data[:16])
    load = _loader(kind, path, data)
    if load is None:
        if not trust:
            raise InputError(f"{path}: format {kind!r} cannot be checked by the scanner; pass "
                             "--trust to load it anyway, if you know where it comes from")
        raise ModelError(f"{path}: loading {kind!r} models is not supported; export the model "
                         "to ONNX, or to a scikit-learn, PyTorch, XGBoost or LightGBM file")
    framework, extra, fn = load
    with translated(path, framework, extra):
        return fn()


def _scanned(path: Path, trust: bool = False) -> bytes:
    """The file's bytes once the model-file scanner passed them: they are scanned and loaded
    from the same bytes, so nothing can swap the file in between. A TorchScript program with
    nothing else found passes only with `trust`."""
    if not path.is_file():
        raise ModelError(f"{path}: model file not found; check artifacts.model in the spec")
    data = path.read_bytes()
    findings = scan_bytes(data, str(path), root=path.parent, name=path.name)
    if findings and all(f.rule == TORCHSCRIPT for f in findings):
        if not trust:
            raise InputError(f"{path}: a TorchScript program: loading it compiles its code and "
                             "probing runs it (PyTorch's security policy treats it as code from "
                             "its provider); the scanner found nothing else in it. Pass --trust "
                             "to load it, if you know where it comes from, or give the weights "
                             "as a state dict with `module:`")
        return data
    if findings:
        worst = findings[0]
        raise ModelError(f"{path}: not loaded: the model-file scanner found "
                         f"{len(findings)} problem(s), e.g. {worst.message}. mlthreat never "
                         "unpickles a flagged file; run `mlthreat scan` for details")
    return data


def load_state(path: Path) -> dict[str, Any]:
    """A PyTorch state dict (tensors by name), only after the model-file scanner passed the
    file, and with `weights_only=True`: no code, whatever the file holds."""
    data = _scanned(path, trust=True)   # a TorchScript program is refused below, never loaded
    kind = sniff(data[:16])
    if is_torchscript(data):
        raise ModelError(f"{path}: a TorchScript archive carries its own architecture: remove "
                         "`module:` (and pass --trust to load the program), or save the "
                         "weights with torch.save(model.state_dict(), path)")
    if kind != "zip":
        raise ModelError(f"{path}: a {kind} file, not a PyTorch state dict; `module:` is for "
                         "PyTorch weights (torch.save(model.state_dict(), path)): remove it to "
                         "load other formats")
    with translated(path, "PyTorch", "torch"):
        import torch
        state = torch.load(io.BytesIO(data), weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]          # a checkpoint that carries its state dict
    if not isinstance(state, dict):
        raise ModelError(f"{path}: holds a {type(state).__name__}, not a state dict; save the "
                         "weights with torch.save(model.state_dict(), path)")
    return state


def _loader(kind: str, path: Path, data: bytes
            ) -> tuple[str, str | None, Callable[[], Any]] | None:
    """(framework, extra that installs it, loading function) for the file's content."""
    if kind in PICKLE_KINDS:
        return "joblib", None, lambda: _joblib(data)
    if kind == "zip" and is_torchscript(data):    # whatever its name: torch.load sends it here
        return "PyTorch", "torch", lambda: _torchscript(data)
    if kind == "zip" and path.suffix in (".pt", ".pth", ".ckpt", ".bin"):
        return "PyTorch", "torch", lambda: _torch(data, path)
    if kind == "onnx":
        return "onnxruntime", "onnx", lambda: _onnx(data)
    if path.suffix in (".json", ".ubj") and data[:1] in (b"{", b"["):
        return "XGBoost", "xgboost", lambda: _xgboost(data)
    if data.startswith(b"tree\n"):
        return "LightGBM", "lightgbm", lambda: _lightgbm(data)
    return None


# what each extra installs, to name in a message: mlthreat is not on PyPI, so
# `pip install` of mlthreat with an extra would fetch whatever someone registered under that name
REQUIREMENT = {"torch": "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu",
               "onnx": "onnxruntime", "xgboost": "xgboost-cpu", "lightgbm": "lightgbm"}


@contextmanager
def translated(path: Path, framework: str, extra: str | None) -> Iterator[None]:
    """A framework's missing install or own load error as a ModelError, the original kept as
    its cause."""
    try:
        yield
    except InputError:
        raise
    except ImportError as exc:
        raise ModelError(f"{path}: probing this model needs {framework}: pip install "
                         f"{REQUIREMENT.get(extra or '', framework)} (mlthreat's {extra} "
                         "extra)") from exc
    except Exception as exc:  # the framework's own error types, translated at the boundary
        raise ModelError(f"{path}: {framework} cannot load this file ({brief(exc)}); is it "
                         "complete, and saved by that framework?") from exc


def _joblib(data: bytes) -> Any:
    import joblib  # joblib reads plain and compressed pickles and joblib's own format
    return joblib.load(io.BytesIO(data))


def _torch(data: bytes, path: Path) -> Any:
    import torch

    from mlthreat.adapters.torch import mlp_from_state
    state = torch.load(io.BytesIO(data), weights_only=True)   # tensors and containers only
    return mlp_from_state(state, path) if isinstance(state, dict) else state


def is_torchscript(data: bytes) -> bool:
    """A TorchScript archive, by the test torch.load itself makes: a `constants.pkl` record."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return any(n.rsplit("/", 1)[-1] == "constants.pkl" for n in archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        return False


def _torchscript(data: bytes) -> Any:
    import warnings

    import torch
    with warnings.catch_warnings():   # torch 2.11+ warns that TorchScript is deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(io.BytesIO(data), map_location="cpu").eval()  # type: ignore[no-untyped-call]


def _onnx(data: bytes) -> Any:
    import onnxruntime
    return onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])


def _xgboost(data: bytes) -> Any:
    import xgboost  # XGBoost's own model format is data, not code
    booster = xgboost.Booster()
    booster.load_model(bytearray(data))
    return booster


def _lightgbm(data: bytes) -> Any:
    import lightgbm  # LightGBM's text model format
    return lightgbm.Booster(model_str=data.decode("utf-8"))
