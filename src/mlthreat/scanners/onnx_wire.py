"""Just enough of the protobuf wire format to check an ONNX model without loading it.

`onnx.load` would follow external-data paths while parsing, which is one of the things we check;
so we read the three fields we need ourselves, bounded and without recursion limits to exploit:
ModelProto.opset_import (8) and graph (7); GraphProto.node (1), initializer (5) and nested
graphs in node attributes; NodeProto.domain (7); TensorProto.data_location (14) and
external_data (13) key/value pairs.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from pathlib import PurePosixPath

STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training",
                    "com.microsoft", "com.microsoft.nchwc", "com.microsoft.experimental"}
MAX_FIELDS = 5_000_000


class WireError(ValueError):
    pass


def _varint(data: bytes | mmap.mmap, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def fields(data: bytes | mmap.mmap) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of one message; length-delimited values as bytes."""
    pos, count = 0, 0
    while pos < len(data):
        count += 1
        if count > MAX_FIELDS:
            raise WireError("too many fields")
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == 1:
            pos += 8
            yield number, wire, 0
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise WireError("length runs past the end")
            yield number, wire, data[pos:pos + length]
            pos += length
        elif wire == 5:
            pos += 4
            yield number, wire, 0
        else:
            raise WireError(f"wire type {wire}")
        if pos > len(data):
            raise WireError("truncated field")


def _sub(data: bytes | mmap.mmap, number: int) -> Iterator[bytes]:
    for n, wire, value in fields(data):
        if n == number and wire == 2 and isinstance(value, bytes):
            yield value


def _text(data: bytes, number: int) -> str | None:
    for value in _sub(data, number):
        return value.decode("utf-8", "replace")
    return None


def _graphs(graph: bytes, depth: int = 0) -> Iterator[bytes]:
    yield graph
    if depth > 16:
        return
    for node in _sub(graph, 1):
        for attr in _sub(node, 5):                 # NodeProto.attribute
            for sub in (*_sub(attr, 6), *_sub(attr, 11)):   # g, graphs
                yield from _graphs(sub, depth + 1)


def onnx_problems(data: bytes | mmap.mmap) -> list[tuple[str, str]]:
    """(severity, message) for each problem; an unparseable file is one problem."""
    out: list[tuple[str, str]] = []
    try:
        for opset in _sub(data, 8):
            domain = _text(opset, 1) or ""
            if domain not in STANDARD_DOMAINS:
                out.append(("high", f"custom operator domain {domain!r}: loading needs a "
                                    "native library that runs code"))
        for graph in _sub(data, 7):
            for g in _graphs(graph):
                for node in _sub(g, 1):
                    domain = _text(node, 7) or ""
                    if domain not in STANDARD_DOMAINS:
                        op = _text(node, 4) or "?"
                        out.append(("high", f"operator {op} from non-standard domain {domain!r}"))
                for tensor in _sub(g, 5):
                    out += _external(tensor)
    except WireError as exc:
        return [("high", f"not a valid ONNX protobuf ({exc}): treat as unsafe")]
    return list(dict.fromkeys(out))


def _external(tensor: bytes) -> list[tuple[str, str]]:
    out = []
    for entry in _sub(tensor, 13):
        key, value = _text(entry, 1), _text(entry, 2)
        if key == "location" and value is not None:
            p = PurePosixPath(value.replace("\\", "/"))
            if p.is_absolute() or ".." in p.parts or value.startswith(("/", "~")) or ":" in value:
                out.append(("critical", f"external data path {value!r} escapes the model folder:"
                                        " loading reads (or maps) a file outside it"))
    return out
