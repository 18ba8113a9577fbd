"""The model-file scanner: identify a file's format by its content and look inside it.

Formats: raw pickle (protocols 0-5, several concatenated); joblib, plain or compressed (zlib,
gzip, bz2, lzma/xz); PyTorch zip archives (every .pkl inside) and the legacy stream; numpy .npy
and .npz with object arrays; Keras .h5 and .keras (Lambda layers and custom objects at any depth);
ONNX (external data escaping the model folder, non-standard op domains); safetensors (header,
declared sizes against the file); zip archives and folders (everything inside). The extension is
never trusted: a pickle named .safetensors is a pickle.

Nothing is imported from or executed in a scanned file. Every file has a size and time budget;
what cannot be parsed is reported as "unparseable, treat as unsafe", never a crash or a hang.
"""

from __future__ import annotations

import ast
import bz2
import io
import json
import lzma
import mmap
import re
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from mlthreat.scanners.interface import ScanContext, ScanFinding, Scanner
from mlthreat.scanners.onnx_wire import onnx_problems
from mlthreat.scanners.pickle_scan import MAX_SECONDS, Hit, Result, scan_pickle_bytes

Data = bytes | mmap.mmap   # a file's bytes, memory-mapped when read from disk
MAX_FILE_BYTES = 8 * 1024**3
MAX_DECOMPRESSED = 8 * 1024**3
MAX_MEMBERS = 10_000
THREAT = "cls-unsafe-deserialization"
SEVERITY = {"code_execution": "critical", "network_access": "high", "file_access": "high",
            "unknown": "medium"}
PICKLE_START = frozenset(b"\x80(cS]}lKJIMFNGVX.")   # PROTO and opcodes a protocol 0/1 stream opens with
KERAS_BUILTIN_MODULES = ("keras", "tensorflow", "tf_keras")


def finding(path: str, severity: str, rule: str, message: str, offset: int | None = None,
            member: str = "", threat: str = THREAT) -> ScanFinding:
    return ScanFinding(scanner="modelfile", rule=rule, threat_id=threat, family="classical",
                       severity=severity, file=path, line=None, offset=offset, member=member,
                       message=message)


def sniff(head: bytes) -> str:
    """The format of a file from its first bytes."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh"):
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00") or head.startswith(b"\x5d\x00\x00"):
        return "lzma"
    if head.startswith(b"ZF") or (len(head) > 1 and head[0] == 0x78 and
                                  (head[0] * 256 + head[1]) % 31 == 0):
        return "zlib"
    if len(head) >= 8 and _safetensors_header_len(head) is not None:
        return "safetensors"
    if head[:1] and head[0] in PICKLE_START:
        return "pickle"
    if head[:1] == b"\x08":
        return "onnx"
    return "unknown"


def _safetensors_header_len(head: bytes) -> int | None:
    n = struct.unpack("<Q", head[:8])[0]
    if 2 <= n <= 100 * 1024**2 and head[8:9] == b"{":
        return int(n)
    return None


def scan_path(path: Path) -> list[ScanFinding]:
    """Scan a model file or a folder of them."""
    if path.is_dir():
        return scan_folder(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return [finding(str(path), "medium", "MF-TOO-LARGE",
                            f"larger than {MAX_FILE_BYTES >> 30} GiB: not scanned, treat as unsafe")]
        if size == 0:
            return []
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            # Mapped, not copied: only the bytes a format needs are ever touched.
            return scan_bytes(data, str(path), root=path.parent, name=path.name)
    except OSError as exc:
        return [finding(str(path), "medium", "MF-UNREADABLE", f"cannot read: {exc.strerror}")]


def scan_folder(folder: Path) -> list[ScanFinding]:
    out: list[ScanFinding] = []
    for n, path in enumerate(sorted(p for p in folder.rglob("*") if p.is_file())):
        if n >= MAX_MEMBERS:
            out.append(finding(str(folder), "medium", "MF-TOO-MANY",
                               f"more than {MAX_MEMBERS} files: the rest was not scanned"))
            break
        if path.is_symlink():
            continue
        out += scan_path(path)
    return out


def scan_bytes(data: Data, file: str, member: str = "", root: Path | None = None,
               name: str = "", depth: int = 0) -> list[ScanFinding]:
    kind = sniff(data[:16])
    handler = _HANDLERS.get(kind)
    if handler is None:
        return []   # not a model format this scanner knows: nothing to say
    if depth > 4:
        return [finding(file, "medium", "MF-NESTING", "archives nested too deep: treat as unsafe",
                        member=member)]
    return handler(data, file, member, root, name, depth)


# ---------------------------------------------------------------------- pickles
def _pickle_findings(result: Result, file: str, member: str) -> list[ScanFinding]:
    out = []
    called = {(h.dotted, h.member) for h in result.bad() if h.called}
    for hit in result.bad():
        if not hit.called and (hit.dotted, hit.member) in called:
            continue   # the call below says it, with the import
        out.append(finding(file, SEVERITY[hit.verdict], f"MF-PICKLE-{hit.verdict.upper()}",
                           _hit_message(hit, result), hit.offset, _member(member, hit)))
    for offset, what in result.problems:
        out.append(finding(file, "high", "MF-UNPARSEABLE", what, offset, member))
    return out


def _hit_message(hit: Hit, result: Result) -> str:
    n = result.counts[(hit.dotted, hit.called, hit.member)]
    action = "calls" if hit.called else "imports"
    times = f" ({n} times)" if n > 1 else ""
    return f"loading this file {action} {hit.dotted}{times}: {hit.reason}"


def _member(member: str, hit: Hit) -> str:
    return "/".join(x for x in (member, hit.member) if x)


PICKLE_NAMES = (".pkl", ".pickle", ".joblib", ".jbl", ".pt", ".pth", ".ckpt", ".bin", ".sav",
                ".dill", ".p")


def _pickle(data: Data, file: str, member: str, root: Path | None, name: str,
            depth: int) -> list[ScanFinding]:
    result = scan_pickle_bytes(data)
    looks_like_text = data[:1] != b"\x80" and not result.hits
    if result.problems and looks_like_text and not name.lower().endswith(PICKLE_NAMES):
        return []   # a text file whose first byte is also an opcode; no pickle ran anything
    return _pickle_findings(result, file, member)


# ---------------------------------------------------------------------- compressed (joblib)
def _decompress(kind: str, data: Data) -> bytes:
    if kind == "zlib":
        body = data
        if data[:2] == b"ZF":   # old joblib: "ZF", a padded length, then the zlib stream
            head = bytes(data[2:40])
            body = data[2 + head.index(b"x"):] if b"x" in head else data[2:]
        d = zlib.decompressobj()
        out = d.decompress(body, MAX_DECOMPRESSED)
    elif kind == "gzip":
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = d.decompress(data, MAX_DECOMPRESSED)
    elif kind == "bz2":
        out = bz2.BZ2Decompressor().decompress(data, MAX_DECOMPRESSED)
    else:
        out = lzma.LZMADecompressor().decompress(data, MAX_DECOMPRESSED)
    if len(out) >= MAX_DECOMPRESSED:
        raise ValueError("decompresses to more than the limit")
    return out


def _compressed(data: Data, file: str, member: str, root: Path | None, name: str,
                depth: int) -> list[ScanFinding]:
    kind = sniff(data[:16])
    try:
        inner = _decompress(kind, data)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        return [finding(file, "high", "MF-UNPARSEABLE",
                        f"{kind} stream cannot be decompressed ({exc}): treat as unsafe",
                        member=member)]
    return scan_bytes(inner, file, f"{member}({kind})" if member else f"({kind})", root, name,
                      depth + 1)


# ---------------------------------------------------------------------- zip: torch, keras, npz
def _zip(data: Data, file: str, member: str, root: Path | None, name: str,
         depth: int) -> list[ScanFinding]:
    try:
        # A mapped top-level file is opened by its path (zipfile wants a seekable() file).
        archive = zipfile.ZipFile(file if isinstance(data, mmap.mmap) else io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        return [finding(file, "high", "MF-UNPARSEABLE", f"broken zip archive ({exc}): treat as "
                        "unsafe", member=member)]
    out: list[ScanFinding] = []
    names = [i.filename for i in infos]
    is_keras = "config.json" in names and any(n.endswith(".weights.h5") or n == "metadata.json"
                                               for n in names)
    # A PyTorch archive: torch unpickles only the .pkl members; tensor storages are raw bytes.
    is_torch = any(n.endswith("/data.pkl") or n == "data.pkl" for n in names)
    deadline = time.monotonic() + MAX_SECONDS
    for info in infos[:MAX_MEMBERS]:
        where = f"{member}/{info.filename}" if member else info.filename
        if info.is_dir():
            continue
        leaf = PurePosixPath(info.filename).name
        if time.monotonic() > deadline:
            out.append(finding(file, "high", "MF-TIMEOUT", "scan time limit reached inside the "
                               "archive: treat as unsafe", member=where))
            break
        if is_torch and not info.filename.endswith(".pkl"):
            continue
        if info.file_size > MAX_DECOMPRESSED:
            out.append(finding(file, "medium", "MF-TOO-LARGE", "member too large to scan",
                               member=where))
            continue
        try:
            with archive.open(info) as stream:
                head = stream.read(16)
            if not (info.filename.endswith(".pkl") or (is_keras and leaf == "config.json")
                    or sniff(head) != "unknown"):
                continue
            blob = archive.read(info)
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, zlib.error,
                NotImplementedError) as exc:
            out.append(finding(file, "high", "MF-UNPARSEABLE", f"member cannot be read ({exc}): "
                               "treat as unsafe", member=where))
            continue
        if is_keras and leaf == "config.json":
            out += _keras_config(blob, file, where)
        else:
            out += scan_bytes(blob, file, where, root, leaf, depth + 1)
    return out


# ---------------------------------------------------------------------- numpy
def _npy(data: Data, file: str, member: str, root: Path | None, name: str,
         depth: int) -> list[ScanFinding]:
    try:
        major = data[6]
        if major == 1:
            hlen, start = struct.unpack("<H", data[8:10])[0], 10
        else:
            hlen, start = struct.unpack("<I", data[8:12])[0], 12
        header = ast.literal_eval(data[start:start + hlen].decode("latin-1"))
        descr = header["descr"]
    except (IndexError, struct.error, ValueError, SyntaxError, KeyError, TypeError) as exc:
        return [finding(file, "high", "MF-UNPARSEABLE", f"broken .npy header ({exc}): treat as "
                        "unsafe", member=member)]
    if "O" not in str(descr):
        return []
    out = [finding(file, "medium", "MF-NPY-OBJECT", "object array: numpy.load(allow_pickle=True)"
                   " unpickles it; scanned below", start + hlen, member)]
    return out + _pickle_findings(scan_pickle_bytes(data[start + hlen:]), file,
                                  f"{member}(object array)" if member else "(object array)")


# ---------------------------------------------------------------------- keras
def _walk_json(node: object) -> Iterator[dict[str, object]]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _keras_config(blob: bytes, file: str, member: str) -> list[ScanFinding]:
    try:
        config = json.loads(blob)
    except (ValueError, UnicodeDecodeError) as exc:
        return [finding(file, "high", "MF-UNPARSEABLE", f"Keras config is not JSON ({exc})",
                        member=member)]
    out = []
    for node in _walk_json(config):
        cls = node.get("class_name")
        module = str(node.get("module") or "")
        if cls == "Lambda":
            out.append(finding(file, "critical", "MF-KERAS-LAMBDA", "Lambda layer: loading runs "
                               "the Python code stored in the model", member=member))
        elif isinstance(cls, str) and module and not module.startswith(KERAS_BUILTIN_MODULES):
            out.append(finding(file, "high", "MF-KERAS-CUSTOM", f"custom object {cls} from "
                               f"module {module!r}: loading imports and runs that module",
                               member=member))
        elif isinstance(node.get("registered_name"), str) and "Custom>" in str(
                node["registered_name"]):
            out.append(finding(file, "high", "MF-KERAS-CUSTOM", f"custom registered object "
                               f"{node['registered_name']}", member=member))
    return out


def _hdf5(data: Data, file: str, member: str, root: Path | None, name: str,
          depth: int) -> list[ScanFinding]:
    # Legacy Keras .h5 stores its model_config as a JSON string attribute; find the JSON text
    # without an HDF5 library, then judge it as a .keras config.
    out: list[ScanFinding] = []
    for match in re.finditer(rb'\{"class_name": ?"[A-Za-z]+"', data):
        start = match.start()
        depth_count, end = 0, None
        for i in range(start, min(len(data), start + 50_000_000)):
            c = data[i]
            if c == 0x7B:
                depth_count += 1
            elif c == 0x7D:
                depth_count -= 1
                if depth_count == 0:
                    end = i + 1
                    break
        if end is not None:
            out += _keras_config(data[start:end], file, member or "model_config")
            break
    if not out and re.search(rb'"class_name": ?"Lambda"', data):
        out.append(finding(file, "critical", "MF-KERAS-LAMBDA", "Lambda layer: loading runs the "
                           "Python code stored in the model", member=member))
    return out


# ---------------------------------------------------------------------- safetensors
_DTYPE_SIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2,
               "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def _safetensors(data: Data, file: str, member: str, root: Path | None, name: str,
                 depth: int) -> list[ScanFinding]:
    problems = safetensors_problems(data)
    return [finding(file, "high", "MF-SAFETENSORS", p + ": treat as unsafe", member=member)
            for p in problems]


def safetensors_problems(data: Data) -> list[str]:
    n = struct.unpack("<Q", data[:8])[0]
    if 8 + n > len(data):
        return [f"header length {n} runs past the end of the file"]
    try:
        header = json.loads(data[8:8 + n])
    except (ValueError, UnicodeDecodeError):
        return ["header is not JSON"]
    if not isinstance(header, dict):
        return ["header is not a JSON object"]
    body = len(data) - 8 - n
    spans, problems = [], []
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            count = 1
            for d in shape:
                count *= int(d)
            expected = count * _DTYPE_SIZE[dtype]
        except (KeyError, TypeError, ValueError):
            problems.append(f"tensor {key!r}: malformed entry")
            continue
        if not (0 <= begin <= end <= body):
            problems.append(f"tensor {key!r}: offsets {begin}-{end} outside the data "
                            f"({body} bytes)")
        elif end - begin != expected:
            problems.append(f"tensor {key!r}: {end - begin} bytes declared, {expected} needed")
        spans.append((begin, end))
    spans.sort()
    for (_, e1), (b2, _) in zip(spans, spans[1:], strict=False):
        if b2 < e1:
            problems.append("tensors overlap")
            break
    return problems


# ---------------------------------------------------------------------- onnx
def _onnx(data: Data, file: str, member: str, root: Path | None, name: str,
          depth: int) -> list[ScanFinding]:
    out = []
    for severity, message in onnx_problems(data):
        out.append(finding(file, severity, "MF-ONNX", message, member=member))
    return out


_HANDLERS = {"pickle": _pickle, "zlib": _compressed, "gzip": _compressed, "bz2": _compressed,
             "lzma": _compressed, "zip": _zip, "npy": _npy, "hdf5": _hdf5,
             "safetensors": _safetensors, "onnx": _onnx}


class ModelFileScanner(Scanner):
    """Model files of every format, identified by content, never by extension: every file is
    read, and one that is no model file gives nothing."""

    name = "modelfile"
    threat_ids = (THREAT,)

    def applies_to(self, path: Path) -> bool:
        return True

    def scan(self, path: Path, ctx: ScanContext) -> list[ScanFinding]:
        return scan_path(path)
