"""Harmless payloads: each would create a marker file if it ever ran. Tests check it never does."""

from __future__ import annotations

import io
import os
import pickle
import struct
from pathlib import Path


class Payload:
    """Unpickling this calls os.system(f"touch {marker}")."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


class EvalPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (eval, (f"open({str(self.marker)!r}, 'w')",))


def memo_stack_global(module: str, name: str, arg: str) -> bytes:
    """A protocol-4 pickle that builds the callable with STACK_GLOBAL from memoized strings."""
    out = io.BytesIO()
    out.write(b"\x80\x04")
    for text in (module, name):
        raw = text.encode()
        out.write(b"\x8c" + bytes([len(raw)]) + raw + b"\x94")   # SHORT_BINUNICODE, MEMOIZE
    out.write(b"h\x00h\x01\x93")                                   # BINGET 0, BINGET 1, STACK_GLOBAL
    raw = arg.encode()
    out.write(b"\x8c" + bytes([len(raw)]) + raw + b"\x85R.")     # arg, TUPLE1, REDUCE, STOP
    return out.getvalue()


def inst_pickle(module: str, name: str, arg: str) -> bytes:
    """Protocol 0: INST opcode."""
    return f"(S'{arg}'\ni{module}\n{name}\n.".encode()


def nested_loads(inner: bytes) -> bytes:
    """A pickle that calls pickle.loads on an embedded pickle."""
    return (b"\x80\x04\x8c\x07_pickle\x8c\x05loads\x93C" + struct.pack("<B", len(inner)) + inner
            + b"\x85R.") if len(inner) < 256 else (
        b"\x80\x04\x8c\x07_pickle\x8c\x05loads\x93B" + struct.pack("<I", len(inner)) + inner
        + b"\x85R.")


def dumps(obj: object, protocol: int = 4) -> bytes:
    return pickle.dumps(obj, protocol=protocol)
