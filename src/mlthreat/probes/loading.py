"""Loading a model file for probing: only after the model-file scanner passed it.

A file the scanner flags is never unpickled, whatever the user says. A file in a format the
scanner cannot look inside is loaded only when the user says `--trust`. The framework is
imported only when its kind of file is loaded.
"""

from __future__ import annotations

import io
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
        return torch.load(io.BytesIO(data), weights_only=True)   # tensors and containers only
    if not trust:
        raise InputError(f"{path}: format {kind!r} cannot be checked by the scanner; pass "
                         "--trust to load it anyway, if you know where it comes from")
    raise InputError(f"{path}: loading {kind!r} models is not supported yet")
