"""The model-file scanner: identify a file's format by its content and look inside it.

Formats: raw pickle (protocols 0-5, several concatenated); joblib, plain or compressed (zlib,
gzip, bz2, lzma/xz); PyTorch zip archives (every .pkl inside) and the legacy stream; numpy .npy
and .npz with object arrays; Keras .h5 and .keras (Lambda layers and custom objects at any depth);
ONNX (external data escaping the model folder, non-standard op domains); safetensors (header,
declared sizes against the file); zip archives and folders (everything inside). The extension is
never trusted: a pickle named .safetensors is a pickle.

A file is scanned as every format some loader would take it for: a zip is recognised at its start
(torch, numpy) and by its end record (Python's zipfile and so Keras accept junk before it); an
HDF5 file at offset 0 or after a user block; a pickle by any opcode it can start with; so a
polyglot is judged by each reading. Keras configs are judged in .keras archives, .h5 files and
unzipped model folders.

Nothing is imported from or executed in a scanned file. Every file has one budget (time across
every nesting level; decompressed bytes, streamed to a temporary file, with a ratio limit); what
cannot be parsed or would exceed the budget is reported ("treat as unsafe"), and a scanner failure
becomes a finding for that file, never a crash of the scan.
"""

from __future__ import annotations

import bz2
import io
import json
import lzma
import mmap
import os
import re
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from mlthreat.scanners.interface import ScanContext, ScanFinding, Scanner
from mlthreat.scanners.onnx_wire import onnx_problems
from mlthreat.scanners.pickle_scan import (
    CODE_TO_OP,
    Budget,
    Hit,
    Machine,
    Result,
    scan_pickle_bytes,
)

Data = bytes | mmap.mmap   # a file's bytes, memory-mapped when read from disk
MAX_FILE_BYTES = 8 * 1024**3
MAX_DECOMPRESSED = 8 * 1024**3     # bytes out of one compressed stream or archive member
MAX_RATIO = 1000                   # decompressed / compressed beyond this (and 64 MiB): a bomb
RATIO_FREE = 64 * 1024**2
MAX_MEMBERS = 10_000
MAX_NESTING = 4
CHUNK = 1 << 20
THREAT = "cls-unsafe-deserialization"
SEVERITY = {"code_execution": "critical", "network_access": "high", "file_access": "high",
            "unknown_call": "high", "unknown": "medium", "custom": "low"}
KERAS_BUILTIN_MODULES = ("keras", "tensorflow", "tf_keras")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
LZ4_MAGIC = b"\x04\x22\x4d\x18"   # an lz4 frame: joblib.load decompresses it when lz4 is installed


@dataclass(frozen=True)
class At:
    """Where a scan is inside one top-level file: its nesting depth, the file's one budget, and
    the classes a TorchScript archive being read defines in its own code (`own`)."""

    depth: int
    budget: Budget
    own: frozenset[str] = frozenset()

    def deeper(self) -> At:
        return At(self.depth + 1, self.budget)


def finding(path: str, severity: str, rule: str, message: str, offset: int | None = None,
            member: str = "", threat: str = THREAT) -> ScanFinding:
    return ScanFinding(scanner="modelfile", rule=rule, threat_id=threat, family="classical",
                       severity=severity, file=path, line=None, offset=offset, member=member,
                       message=message)


# names under which a loader opens a zip wherever its end record is (zipfile.is_zipfile: Keras)
ZIP_NAMES = (".keras", ".zip", ".npz", ".pt", ".pth", ".bin", ".ckpt", ".h5", ".pkl", ".model",
             ".mar", ".whl", ".jar", ".nemo", ".tar")
PICKLE_START = frozenset(b"\x80(cS]}lKJIMFNGVX.")   # how pickle.dump's streams begin


def sniff(head: bytes) -> str:
    """The format a model file was saved in, from its first bytes (what a loader is chosen by).
    The scanner itself reads every format a file could be taken for (`kinds`)."""
    found = [k for k in kinds(head) if k != "pickle-also"]
    if found == ["pickle"] and head[:1] not in (bytes([b]) for b in PICKLE_START):
        return "unknown"
    return found[0] if found else "unknown"


def kinds(data: Data, name: str = "") -> list[str]:
    """Every format some loader would read `data` (named `name`) as, most specific first."""
    head = bytes(data[:16])
    out: list[str] = []
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        out.append("zip")
    elif head.startswith(b"\x93NUMPY"):
        out.append("npy")
    elif head.startswith(HDF5_MAGIC):
        out.append("hdf5")
    elif head.startswith(b"\x1f\x8b"):
        out.append("gzip")
    elif head.startswith(LZ4_MAGIC):
        out.append("lz4")
    elif head.startswith(b"BZh"):
        out.append("bz2")
    elif head.startswith(b"\xfd7zXZ\x00") or head.startswith(b"\x5d\x00\x00"):
        out.append("lzma")
    elif head.startswith(b"ZF") or (len(head) > 1 and head[0] == 0x78 and
                                    (head[0] * 256 + head[1]) % 31 == 0):
        out.append("zlib")
    elif len(head) >= 8 and _safetensors_header_len(head) is not None:
        out.append("safetensors")
    elif head[:1] == b"\x08":
        out.append("onnx")
    elif head.startswith(b"GGUF"):
        out.append("gguf")
    if len(data) >= 512 and bytes(data[257:262]) == b"ustar":
        out.append("tar")      # tarfile (torch's oldest format, datasets): every member
    if "zip" not in out and (not name or name.lower().endswith(ZIP_NAMES)) and _zip_at_end(data):
        out.append("zip")      # Python's zipfile (so Keras) reads a zip behind other bytes
    if (not out or out == ["zip"]) and len(data) > 512 and _hdf5_user_block(data) is not None:
        out.append("hdf5")
    if head[:1] and head[:1] in CODE_TO_OP and not head.startswith((b"PK", b"\x93NUMPY", b"GGUF")):
        # pickle.load / torch.load (legacy) / np.load(allow_pickle) read from the first byte;
        # beside another format, only what such a reading would run is reported
        out.append("pickle" if not out else "pickle-also")
    return out


def _zip_at_end(data: Data) -> bool:
    tail = bytes(data[-(65536 + 22):]) if len(data) > 22 else b""
    return b"PK\x05\x06" in tail


def _hdf5_user_block(data: Data) -> int | None:
    """Offset of an HDF5 superblock after a user block (512, 1024, 2048, ... bytes)."""
    offset = 512
    while offset + 8 <= min(len(data), 1 << 30):
        if data[offset:offset + 8] == HDF5_MAGIC:
            return offset
        offset *= 2
    return None


def _safetensors_header_len(head: bytes) -> int | None:
    n = struct.unpack("<Q", head[:8])[0]
    if 2 <= n <= 100 * 1024**2 and head[8:9] == b"{":
        return int(n)
    return None


def scan_path(path: Path) -> list[ScanFinding]:
    """Scan a model file or a folder of them. A failure of the scanner on one file is a finding
    for that file ("could not be scanned"), never an exception."""
    if path.is_dir():
        return scan_folder(path)
    file = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return [finding(file, "high", "MF-TOO-LARGE", f"larger than "
                            f"{MAX_FILE_BYTES >> 30} GiB: not scanned, treat as unsafe")]
        if size == 0:
            return []
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            # Mapped, not copied: only the bytes a format needs are ever touched.
            return scan_bytes(data, file, root=path.parent, name=path.name)
    except OSError as exc:
        return [finding(file, "medium", "MF-UNREADABLE", f"cannot read: {exc.strerror}")]
    except (RecursionError, MemoryError, Exception) as exc:  # noqa: BLE001 - one file's failure
        return [finding(file, "high", "MF-SCAN-FAILED", f"could not be scanned "
                        f"({type(exc).__name__}: {str(exc)[:120]}): treat as unsafe")]


def walk(folder: Path) -> Iterator[tuple[Path, str | None]]:
    """Every file under `folder`, following symbolic links (a Hugging Face snapshot's files are
    links into its blobs), each real file once; (path, note) where note says a link leads out of
    the folder. Dot and virtual-environment folders are walked too: models hide there."""
    root = folder.resolve()
    seen_dirs: set[str] = set()
    seen_files: set[str] = set()
    for here, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(here)
        if real in seen_dirs:        # a link cycle or a second way into one folder
            dirs[:] = []
            continue
        seen_dirs.add(real)
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(files):
            path = Path(here) / name
            target = os.path.realpath(path)
            if target in seen_files or not os.path.isfile(target):
                continue
            seen_files.add(target)
            note = None
            if path.is_symlink() or real != str(Path(here).absolute()):
                try:
                    Path(target).relative_to(root)
                except ValueError:
                    note = target
            yield path, note


def scan_folder(folder: Path) -> list[ScanFinding]:
    out: list[ScanFinding] = []
    for n, (path, outside) in enumerate(walk(folder)):
        if n >= 10 * MAX_MEMBERS:
            out.append(finding(str(folder), "medium", "MF-TOO-MANY",
                               f"more than {10 * MAX_MEMBERS} files: the rest was not scanned"))
            break
        found = scan_path(path)
        if outside and found:
            found.append(finding(str(path), "low", "MF-LINK-OUTSIDE", f"a link to {outside}, "
                                 "outside the scanned folder: the findings above are in that "
                                 "file"))
        out += found
    return out


def scan_bytes(data: Data, file: str, member: str = "", root: Path | None = None,
               name: str = "", at: At | None = None, formats: list[str] | None = None
               ) -> list[ScanFinding]:
    """`formats`: the readings to judge, where the caller already told them (`kinds`)."""
    at = at or At(0, Budget.for_size(len(data)))
    found = kinds(data, name) if formats is None else formats
    text = _named_text(data, file, member, name)
    if not found:
        return text
    if at.depth > MAX_NESTING:
        return [finding(file, "high", "MF-NESTING", "archives nested too deep: treat as unsafe",
                        member=member)]
    out: list[ScanFinding] = []
    for kind in found:
        if at.budget.over():
            out.append(finding(file, "high", "MF-TIMEOUT", "scan time limit reached: treat as "
                               "unsafe", member=member))
            break
        out += _HANDLERS[kind](data, file, member, root, name, at)
    return _unique(out + text)


def _unique(found: list[ScanFinding]) -> list[ScanFinding]:
    seen: set[tuple[object, ...]] = set()
    out = []
    for f in found:
        key = (f.rule, f.member, f.offset, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


# ---------------------------------------------------------------------- pickles
def _pickle_findings(result: Result, file: str, member: str,
                     own: frozenset[str] = frozenset()) -> list[ScanFinding]:
    out = []
    called = {(h.dotted, h.member) for h in result.bad() if h.called}
    for hit in result.bad():
        if not hit.called and (hit.dotted, hit.member) in called:
            continue   # the call below says it, with the import
        if hit.verdict == "custom" and hit.dotted in own:
            continue   # a class of the archive's own TorchScript code: MF-TORCHSCRIPT says it
        out.append(finding(file, SEVERITY[hit.verdict], f"MF-PICKLE-{hit.verdict.upper()}",
                           _hit_message(hit, result), hit.offset, _member(member, hit)))
    for offset, what in result.problems:
        out.append(finding(file, "high", "MF-UNPARSEABLE", what, offset, member))
    for offset, other in result.external:
        out.append(finding(file, "high", "MF-JOBLIB-EXTERNAL", f"an old joblib array wrapper: "
                           f"joblib.load opens the file {other!r} beside this one and unpickles "
                           "what it holds; scan that file too, and never load this one from a "
                           "folder you do not control", offset, member))
    return out


def _hit_message(hit: Hit, result: Result) -> str:
    n = result.counts[(hit.dotted, hit.called, hit.member)]
    action = "calls" if hit.called else "imports"
    times = f" ({n} times)" if n > 1 else ""
    return f"loading this file {action} {hit.dotted}{times}: {hit.reason}"


def _member(member: str, hit: Hit) -> str:
    return "/".join(x for x in (member, hit.member) if x)


PICKLE_NAMES = (".pkl", ".pickle", ".joblib", ".jbl", ".pt", ".pth", ".ckpt", ".bin", ".sav",
                ".dill", ".p", ".npy", ".npz", ".safetensors", ".model", ".h5", ".keras", ".pb",
                ".mar", ".tar", ".gz", ".z", ".xz", ".bz2", ".lzma", ".msgpack", ".data")


def _pickle(data: Data, file: str, member: str, root: Path | None, name: str,
            at: At) -> list[ScanFinding]:
    result = scan_pickle_bytes(data, budget=at.budget)
    # What matters is what runs before a load stops. A stream that starts with PROTO, or that
    # completes, is a pickle: every finding counts, and if it breaks the scanner cannot vouch
    # for it. Anything else (a text file, a data file, a .pth of site-packages whose first byte
    # is also an opcode) breaks the loader too: only what would run before that is reported.
    if data[:1] == b"\x80" or result.pickles > 0:
        return _pickle_findings(result, file, member, at.own)
    result.found = {k: h for k, h in result.found.items() if SEVERITY.get(h.verdict) in
                    ("high", "critical")}
    result.problems = list(result.limits)
    return _pickle_findings(result, file, member, at.own)


def _pickle_also(data: Data, file: str, member: str, root: Path | None, name: str,
                 at: At) -> list[ScanFinding]:
    """The same bytes read as a pickle beside another format: what that reading would run."""
    result = scan_pickle_bytes(data, budget=at.budget)
    result.problems = list(result.limits)
    return _pickle_findings(result, file, member, at.own)


# ---------------------------------------------------------------------- compressed (joblib)
class _TooBig(Exception):  # noqa: N818 - a signal: the bytes out exceed the budget
    pass


def _inflate(kind: str, data: Data) -> Iterator[bytes]:
    """Decompressed chunks of at most CHUNK bytes, read a chunk of input at a time."""
    start = 0
    if kind == "zlib" and data[:2] == b"ZF":
        # joblib <= 0.9 (read_zfile): "ZF", hex(length) padded to 19 characters, one more space
        # in joblib <= 0.8.4's files, then zlib
        start = 21 + (data[21:22] == b" ")
    if kind in ("zlib", "gzip"):
        z = zlib.decompressobj(16 + zlib.MAX_WBITS if kind == "gzip" else zlib.MAX_WBITS)
        pos, buf = start, b""
        while not z.eof:
            if not buf:
                buf = bytes(data[pos:pos + CHUNK])
                pos += len(buf)
                if not buf:
                    raise EOFError("the stream ends early")
            out = z.decompress(buf, CHUNK)
            buf = z.unconsumed_tail
            if out:
                yield out
        return
    if kind == "lz4":
        import lz4.frame  # optional: without it, _compressed reports the file unscanned
        d = lz4.frame.LZ4FrameDecompressor()
    else:
        d = bz2.BZ2Decompressor() if kind == "bz2" else lzma.LZMADecompressor()
    pos = 0   # all three: eof, needs_input, decompress(data, max_length)
    while not d.eof:
        buf = b""
        if d.needs_input:
            buf = bytes(data[pos:pos + CHUNK])
            pos += len(buf)
            if not buf:
                raise EOFError("the stream ends early")
        out = d.decompress(buf, CHUNK)
        if out:
            yield out


@contextmanager
def _collected(chunks: Iterator[bytes], packed: int, at: At) -> Iterator[Data]:
    """The bytes of `chunks`, in memory up to 64 MiB and in a temporary file (mapped) beyond, so
    memory stays bounded; past the ratio or byte limit, or the deadline, _TooBig."""
    limit = min(MAX_DECOMPRESSED, max(RATIO_FREE, MAX_RATIO * max(packed, 1)))
    buf = bytearray()
    spill = None
    total = 0
    try:
        for chunk in chunks:
            total += len(chunk)
            if total > limit:
                raise _TooBig(f"more than {limit >> 20} MiB out of {packed} bytes")
            if at.budget.over():
                raise _TooBig("the scan time limit was reached while decompressing")
            if spill is None and len(buf) + len(chunk) > RATIO_FREE:
                spill = tempfile.TemporaryFile(prefix="mlthreat-")  # noqa: SIM115 - closed below
                spill.write(buf)
                buf = bytearray()
            if spill is not None:
                spill.write(chunk)
            else:
                buf += chunk
        if spill is None:
            yield bytes(buf)
        else:
            spill.flush()
            with mmap.mmap(spill.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                yield mapped
    finally:
        if spill is not None:
            spill.close()


def _compressed(data: Data, file: str, member: str, root: Path | None, name: str,
                at: At) -> list[ScanFinding]:
    kind = sniff(data[:16])
    where = f"{member}({kind})" if member else f"({kind})"
    out: list[int] = []

    def counted() -> Iterator[bytes]:
        for chunk in _inflate(kind, data):
            out.append(len(chunk))
            yield chunk
    try:
        with _collected(counted(), len(data), at) as inner:
            return scan_bytes(inner, file, where, root, name, at.deeper())
    except _TooBig as exc:
        return [finding(file, "high", "MF-BOMB", f"{kind} stream not scanned: {exc}; loading it "
                        "may exhaust memory, treat as unsafe", member=member)]
    except ImportError:
        return [finding(file, "high", "MF-UNSCANNED", f"{kind}-compressed (joblib reads it when "
                        f"the {kind} package is installed): not scanned here, treat as unsafe; "
                        f"pip install {kind} to scan it", member=member)]
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        if not out and kind == "zlib":
            # not one byte came out: joblib's zlib reader fails as this one did, before
            # anything is unpickled. A text file whose first two letters pass zlib's header
            # check ("x = 1") is no compressed model (a gzip or xz magic is not chance)
            return []
        return [finding(file, "high", "MF-UNPARSEABLE",
                        f"{kind} stream cannot be decompressed ({exc}): treat as unsafe",
                        member=member)]


# ---------------------------------------------------------------------- zip: torch, keras, npz
def _zip(data: Data, file: str, member: str, root: Path | None, name: str,
         at: At) -> list[ScanFinding]:
    try:
        # A mapped top-level file is opened by its path (zipfile wants a seekable() file), a
        # remote one (scanners.remote.RangeData) through its own file, fetching what is read.
        opener = getattr(data, "open", None)
        archive = zipfile.ZipFile(file if isinstance(data, mmap.mmap) else opener() if opener
                                  else io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError,
            struct.error) as exc:
        if bytes(data[:2]) != b"PK":
            return []   # an end record inside other bytes, but no archive Python can open
        return [finding(file, "high", "MF-UNPARSEABLE", f"broken zip archive ({exc}): treat as "
                        "unsafe", member=member)]
    out = [_traversal(file, i.filename, member) for i in infos if _escapes(i.filename)][:5]
    # torch unpickles the .pkl members (data.pkl, constants.pkl) whatever their position: those
    # come first, so a long archive cannot hide them past the member limit
    pickles = [i for i in infos if i.filename.endswith(".pkl")]
    rest = [i for i in infos if not i.filename.endswith(".pkl")]
    is_torch = any(PurePosixPath(i.filename).name == "data.pkl" for i in pickles)
    own: frozenset[str] = frozenset()
    if is_torch:
        rest = [i for i in rest if PurePosixPath(i.filename).name in ("config.json",)
                or "/code/" in i.filename]    # storages are raw bytes, never unpickled
        own, script = _torchscript(archive, infos, file, member, at)
        out += script
    todo = pickles + rest
    if len(todo) > MAX_MEMBERS:
        out.append(finding(file, "high", "MF-TOO-MANY", f"{len(todo)} members: only the first "
                           f"{MAX_MEMBERS} (every .pkl among them) were scanned, treat as "
                           "unsafe", member=member))
        todo = todo[:MAX_MEMBERS]
    for info in todo:
        where = f"{member}/{info.filename}" if member else info.filename
        if info.is_dir():
            continue
        if at.budget.over():
            out.append(finding(file, "high", "MF-TIMEOUT", "scan time limit reached inside the "
                               "archive: treat as unsafe", member=where))
            break
        leaf = PurePosixPath(info.filename).name
        try:
            with archive.open(info) as stream:
                stream._expected_crc = None   # type: ignore[attr-defined]  # torch ignores CRCs
                head = stream.read(16)
                wanted = leaf.endswith(".pkl") or leaf.endswith(TEXT_NAMES) or bool(kinds(head)) \
                    or leaf.endswith(PICKLE_NAMES)
                if not wanted:
                    continue
                chunks = _read_rest(stream, head)
                inner = At(at.depth + 1, at.budget, own) if leaf.endswith(".pkl") else \
                    at.deeper()
                with _collected(chunks, info.compress_size, at) as blob:
                    out += scan_bytes(blob, file, where, root, leaf, inner)
        except _TooBig as exc:
            out.append(finding(file, "high", "MF-BOMB", f"member not scanned: {exc}; treat as "
                               "unsafe", member=where))
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, zlib.error, EOFError,
                NotImplementedError, lzma.LZMAError, struct.error) as exc:
            out.append(finding(file, "high", "MF-UNPARSEABLE", f"member cannot be read ({exc}): "
                               "treat as unsafe", member=where))
    return out


# TorchScript: torch.jit.load compiles the archive's code/ (a typed subset of Python that
# imports nothing) and resolves data.pkl's `__torch__.` classes there, not by importing Python.
# PyTorch's security policy still counts a TorchScript model as code from its provider, and
# a few of its operators reach the file system (torch.save, torch.from_file; torchvision's
# ops.image.read_file / write_file once torchvision is imported).
_TS_CLASS = re.compile(r"^class\s+(\w+)\s*[(:]", re.M)
_TS_FILE_OP = re.compile(r"\b(?:torch|ops\s*\.\s*aten)\s*\.\s*(save|from_file)\b|"
                         r"\bops\s*\.\s*(?!aten\b|prim\b)\w+\s*\.\s*(\w*(?:file|save|load|"
                         r"write|read|open|exec|system)\w*)\b")
MAX_CODE = 64 * 1024**2        # bytes of TorchScript source read from one archive
MAX_TS_CALLS = 20              # file operators reported per archive


def _torchscript(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], file: str,
                 member: str, at: At) -> tuple[frozenset[str], list[ScanFinding]]:
    """The `__torch__.` classes a PyTorch archive's code/ defines, and what that code is."""
    own: set[str] = set()
    calls: list[ScanFinding] = []
    read = 0
    for info in infos:
        parts = PurePosixPath(info.filename).parts
        if "code" not in parts[:2] or not info.filename.endswith(".py") or info.is_dir():
            continue
        read += info.file_size
        if read > MAX_CODE or at.budget.over():
            break     # the classes not read stay custom: reported, never assumed safe
        try:
            text = archive.read(info).decode("utf-8", "replace")
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, zlib.error, EOFError,
                NotImplementedError, lzma.LZMAError, struct.error):
            continue  # the member loop reports it as unreadable
        module = ".".join(parts[parts.index("code") + 1:])[:-len(".py")]
        if module.split(".")[0] == "__torch__":   # the only names jit.load resolves in code/
            own.update(f"{module}.{name}" for name in _TS_CLASS.findall(text))
        where = f"{member}/{info.filename}" if member else info.filename
        for m in _TS_FILE_OP.finditer(text):
            if len(calls) >= MAX_TS_CALLS:
                break     # enough to say it; a file of millions would cost a pass each
            line = text.count("\n", 0, m.start()) + 1
            shown = text.splitlines()[line - 1].strip()[:120]
            calls.append(finding(file, "high", "MF-TORCHSCRIPT-FILE", f"the model's "
                                 f"TorchScript code reaches the file system ({m.group(0)}, "
                                 f"line {line}: {shown}): running the model reads or writes "
                                 "files its provider chose", m.start(), where))
    if not own:
        return frozenset(), calls
    names = sorted({n.rsplit(".", 1)[1] for n in own})
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    program = finding(file, "low", "MF-TORCHSCRIPT", f"a TorchScript program ({len(own)} "
                      f"class(es) in its code/: {shown}): torch.jit.load compiles it and the "
                      "model runs it when called; it imports no Python, but PyTorch's security "
                      "policy treats it as code from its provider: load it only from a source "
                      "you trust", member=member)
    return frozenset(own), [program] + calls


def _read_rest(stream: IO[bytes], head: bytes) -> Iterator[bytes]:
    yield head
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            return
        yield chunk


def _traversal(file: str, name: str, member: str) -> ScanFinding:
    return finding(file, "medium", "MF-ARCHIVE-PATH", f"member path {name!r} leaves the folder "
                   "it would be extracted to (path traversal): never extract this archive",
                   member=member)


def _escapes(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or bool(re.match(r"[A-Za-z]:", name))


def _tar(data: Data, file: str, member: str, root: Path | None, name: str,
         at: At) -> list[ScanFinding]:
    """Every regular member of a tar archive (torch's oldest format unpickles its members
    'sys_info', 'pickle', 'storages' and 'tensors'), read as a stream with the same caps."""
    import tarfile
    out: list[ScanFinding] = []
    try:
        with tarfile.open(fileobj=_MappedFile(data) if isinstance(data, mmap.mmap)
                          else io.BytesIO(data), mode="r:") as tar:
            for n, info in enumerate(tar):
                where = f"{member}/{info.name}" if member else info.name
                if _escapes(info.name) or (info.issym() or info.islnk()) and _escapes(
                        info.linkname):
                    out.append(_traversal(file, info.name, member))
                if n >= MAX_MEMBERS:
                    out.append(finding(file, "high", "MF-TOO-MANY", f"more than {MAX_MEMBERS} "
                                       "members: the rest was not scanned, treat as unsafe",
                                       member=member))
                    break
                if not info.isfile():
                    continue
                if at.budget.over():
                    out.append(finding(file, "high", "MF-TIMEOUT", "scan time limit reached "
                                       "inside the archive: treat as unsafe", member=where))
                    break
                stream = tar.extractfile(info)
                if stream is None:
                    continue
                leaf = PurePosixPath(info.name).name
                with _collected(_read_rest(stream, b""), max(info.size, 1), at) as blob:
                    out += scan_bytes(blob, file, where, root, leaf, at.deeper())
                    if leaf in ("storages", "tensors"):
                        out += _interleaved(blob, file, where, at)
    except _TooBig as exc:
        out.append(finding(file, "high", "MF-BOMB", f"tar member not scanned: {exc}",
                           member=member))
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        out.append(finding(file, "high", "MF-UNPARSEABLE", f"broken tar archive ({exc}): treat "
                           "as unsafe", member=member))
    return out


def _interleaved(data: Data, file: str, member: str, at: At) -> list[ScanFinding]:
    """Pickles between raw storage bytes (torch's legacy tar members 'storages' and 'tensors'
    read a pickle, then raw bytes, then the next pickle): every protocol-2 start is read as the
    loader might reach it; only what such a reading would run is reported."""
    out: list[ScanFinding] = []
    start = 0
    for _ in range(100_000):
        start = data.find(b"\x80\x02", start) if start < len(data) else -1
        if start < 0 or at.budget.over():
            break
        result = Machine(data, "", budget=at.budget, quiet=True).run(start, several=False)
        result.problems = []
        out += _pickle_findings(result, file, member)
        start += 2
    return out


class _MappedFile(io.RawIOBase):
    """A read-only file over a memory map or a remote file's blocks (tarfile, zipfile and the
    pickle machine read it; its own position, not the map's)."""

    def __init__(self, data: Data) -> None:
        self.data, self.pos = data, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size is None or size < 0 else min(len(self.data), self.pos + size)
        chunk = bytes(self.data[self.pos:end])
        self.pos = end
        return chunk

    def readline(self, size: int | None = -1) -> bytes:
        """Up to and with the next newline (the pickle machine's text opcodes), a block at a
        time."""
        out = b""
        limit = len(self.data) if size is None or size < 0 else min(len(self.data),
                                                                     self.pos + size)
        while self.pos < limit:
            chunk = bytes(self.data[self.pos:min(limit, self.pos + CHUNK)])
            cut = chunk.find(b"\n")
            if cut >= 0:
                chunk = chunk[:cut + 1]
            out += chunk
            self.pos += len(chunk)
            if cut >= 0:
                break
        return out

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: len(self.data)}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos


# templates that reach Python's internals from Jinja: dunders, the classic gadgets, escapes
_SSTI = re.compile(r"__[A-Za-z]\w*__|\b(lipsum|cycler|joiner|namespace)\s*\.|\|\s*attr\s*\(|"
                   r"\\x5f|\\u005f|\bos\.(popen|system)|\bsubprocess\b|\bimport\s*\(")
_YAML_PYTHON = re.compile(rb"!!python/(object/apply|object/new|object|name|module)\b|"
                          rb"tag:yaml\.org,2002:python/")
TEXT_NAMES = (".json", ".yaml", ".yml", ".jinja", ".j2")


def _named_text(data: Data, file: str, member: str, name: str) -> list[ScanFinding]:
    """Model-adjacent text judged by name: Keras JSON configs, chat templates that a renderer
    could run (tokenizer_config.json, *.jinja), YAML with Python tags (yaml.unsafe_load runs
    them)."""
    low = name.lower()
    if not low.endswith(TEXT_NAMES) or len(data) > 64 * 1024**2:
        return []
    out: list[ScanFinding] = []
    if low.endswith((".yaml", ".yml")):
        m = _YAML_PYTHON.search(data)
        if m:
            out.append(finding(file, "critical" if b"apply" in m.group(0) or b"new" in
                               m.group(0) or b"name" in m.group(0) or b"module" in m.group(0)
                               else "high", "MF-YAML-PYTHON", f"a YAML Python tag "
                               f"({m.group(0).decode('latin-1')}): yaml.unsafe_load or an "
                               "unsafe Loader imports and calls what it names", m.start(),
                               member))
        return out
    if low.endswith(".json"):
        out += _keras_json(data, file, member, name)
        if low.endswith("tokenizer_config.json") or low.endswith("chat_template.json"):
            out += _template_findings(_json_templates(data), file, member, "sandboxed by "
                                      "transformers, run as code by unsandboxed renderers")
        return out
    if "chat" not in low:     # code-generation templates (torch's .py.jinja) are no concern
        return []
    return _template_findings([bytes(data).decode("utf-8", "replace")], file, member,
                              "a chat template file")


def _json_templates(data: Data) -> list[str]:
    try:
        doc = json.loads(bytes(data))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return []
    found = doc.get("chat_template") if isinstance(doc, dict) else None
    if isinstance(found, list):
        return [str(t.get("template", "")) for t in found if isinstance(t, dict)]
    return [found] if isinstance(found, str) else []


def _template_findings(templates: list[str], file: str, member: str,
                       how: str) -> list[ScanFinding]:
    out = []
    for template in templates:
        m = _SSTI.search(template)
        if m:
            out.append(finding(file, "critical", "MF-TEMPLATE-INJECTION", f"chat template "
                               f"reaches Python internals ({m.group(0)!r}; {how}): rendering "
                               "it can run code (e.g. CVE-2024-34359 in llama-cpp-python)",
                               member=member))
    return out


def _gguf(data: Data, file: str, member: str, root: Path | None, name: str,
          at: At) -> list[ScanFinding]:
    """GGUF metadata (llama.cpp models): the chat templates among its keys."""
    try:
        templates = [v for k, v in _gguf_strings(data) if "chat_template" in k]
    except (struct.error, ValueError, UnicodeDecodeError, RecursionError) as exc:
        return [finding(file, "high", "MF-UNPARSEABLE", f"broken GGUF metadata ({exc}): treat "
                        "as unsafe", member=member)]
    return _template_findings(templates, file, member, "rendered by llama.cpp's bindings")


_GGUF_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def _gguf_strings(data: Data) -> list[tuple[str, str]]:
    """(key, value) of the string metadata of a GGUF file (versions 2 and 3)."""
    version, _, count = struct.unpack_from("<IQQ", data, 4)
    if version < 2 or count > 1_000_000:
        raise ValueError(f"version {version}, {count} keys")
    pos, out = 24, []

    def text(at: int) -> tuple[str, int]:
        n = struct.unpack_from("<Q", data, at)[0]
        if at + 8 + n > len(data) or n > 64 * 1024**2:
            raise ValueError("string past the end")
        return bytes(data[at + 8:at + 8 + n]).decode("utf-8"), at + 8 + n

    def skip(kind: int, at: int) -> int:
        if kind in _GGUF_FIXED:
            return at + _GGUF_FIXED[kind]
        if kind == 8:
            return text(at)[1]
        if kind == 9:
            inner, n = struct.unpack_from("<IQ", data, at)
            at += 12
            if inner in _GGUF_FIXED:
                return int(at + n * _GGUF_FIXED[inner])
            for _ in range(n):
                at = skip(inner, at)
            return at
        raise ValueError(f"value type {kind}")

    for _ in range(count):
        key, pos = text(pos)
        kind = struct.unpack_from("<I", data, pos)[0]
        pos += 4
        if kind == 8:
            value, pos = text(pos)
            out.append((key, value))
        else:
            pos = skip(kind, pos)
    return out


# ---------------------------------------------------------------------- numpy
def _npy(data: Data, file: str, member: str, root: Path | None, name: str,
         at: At) -> list[ScanFinding]:
    """A .npy file read by numpy's own header parser, as numpy.load reads it (with pickles
    allowed, numpy lifts its header size limit, so this does too)."""
    try:
        from numpy.lib import _format_impl as npf  # numpy 2
    except ImportError:  # pragma: no cover - numpy 1
        from numpy.lib import format as npf  # type: ignore[no-redef]
    try:
        width = 2 if data[6] == 1 else 4
        size = struct.unpack("<H" if width == 2 else "<I", data[8:8 + width])[0]
        fp = io.BytesIO(bytes(data[:8 + width + size]))
        version = npf.read_magic(fp)
        _, _, dtype = npf._read_array_header(  # type: ignore[attr-defined]  # noqa: SLF001
            fp, version, max_header_size=2**62)
        start = fp.tell()
    except Exception as exc:  # noqa: BLE001 - numpy's parser raises tokenize errors too; so does np.load
        return [finding(file, "high", "MF-UNPARSEABLE", f"broken .npy header "
                        f"({type(exc).__name__}: {str(exc)[:80]}): treat as unsafe",
                        member=member)]
    if not dtype.hasobject:
        return []
    out = [finding(file, "low", "MF-NPY-OBJECT", "object array: numpy.load needs "
                   "allow_pickle=True and unpickles it; its pickle was scanned (any finding in it "
                   "is listed)", start, member)]
    where = f"{member}(object array)" if member else "(object array)"
    result = Machine(data, "", budget=at.budget).run(start, several=False)
    return out + _pickle_findings(result, file, where)


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


_LAMBDA = re.compile(rb'"class_name"\s*:\s*"(Lambda|__lambda__)"|"function_type"\s*:\s*"lambda"')
_MODULE = re.compile(rb'"module"\s*:\s*"([^"\\]{1,200})"')
_REGISTERED = re.compile(rb'"registered_name"\s*:\s*"([^"\\]{0,200})"')


def _keras_config(blob: Data, file: str, member: str) -> list[ScanFinding]:
    try:
        config = json.loads(bytes(blob))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        out = [finding(file, "high", "MF-UNPARSEABLE", f"Keras config cannot be parsed "
                       f"({type(exc).__name__}): treat as unsafe", member=member)]
        return out + _keras_text(blob, file, member)
    out = []
    for node in _walk_json(config):
        cls = node.get("class_name")
        module = str(node.get("module") or "")
        if cls in ("Lambda", "__lambda__") or node.get("function_type") == "lambda":
            out.append(finding(file, "critical", "MF-KERAS-LAMBDA", "Lambda layer or function: "
                               "loading runs the Python code stored in the model", member=member))
        elif _keras_function_risky(cls, module, node.get("config")):
            out.append(finding(file, "high", "MF-KERAS-FUNCTION", f"calls {module}."
                               f"{node.get('config') if cls == 'function' else cls} while loading: "
                               "a Keras utility that touches files, settings or the network "
                               "(e.g. turning safe mode off), not a layer", member=member))
        elif isinstance(cls, str) and module and not module.startswith(KERAS_BUILTIN_MODULES):
            out.append(finding(file, "high", "MF-KERAS-CUSTOM", f"custom object {cls} from "
                               f"module {module!r}: loading imports and runs that module",
                               member=member))
        elif isinstance(node.get("registered_name"), str) and "Custom>" in str(
                node["registered_name"]):
            out.append(finding(file, "high", "MF-KERAS-CUSTOM", f"custom registered object "
                               f"{node['registered_name']}", member=member))
    return _unique(out)


_KERAS_SAFE_FUNCTIONS = ("activations", "losses", "metrics", "initializers", "regularizers",
                         "constraints", "optimizers", "ops", "random", "layers")
_KERAS_RISKY = re.compile(r"unsafe|get_file|download|load|save|export|config|exec|eval|set_")


def _keras_function_risky(cls: object, module: str, config: object) -> bool:
    """A Keras config node that names a function (class_name "function", or a lowercase name)
    from a Keras module that is no math library, or with a name that touches the outside."""
    if not isinstance(cls, str) or not module.startswith(KERAS_BUILTIN_MODULES):
        return False
    name = str(config) if cls == "function" else cls
    if cls != "function" and cls[:1].isupper():
        return False
    parts = module.split(".")
    library = parts[2] if len(parts) > 2 and parts[1] == "src" else parts[1] if len(parts) > 1 \
        else ""
    return library not in _KERAS_SAFE_FUNCTIONS or bool(_KERAS_RISKY.search(name))


def _keras_text(data: Data, file: str, member: str) -> list[ScanFinding]:
    """Keras config text found by patterns in one linear pass (an .h5 attribute, or JSON too
    broken or deep to parse), whatever its spacing."""
    out = []
    if _LAMBDA.search(data):
        out.append(finding(file, "critical", "MF-KERAS-LAMBDA", "Lambda layer or function: "
                           "loading runs the Python code stored in the model", member=member))
    for m in _MODULE.finditer(data):
        module = m.group(1).decode("latin-1")
        if not module.startswith(KERAS_BUILTIN_MODULES) and b"class_name" in data[
                max(0, m.start() - 4096):m.end() + 4096]:
            out.append(finding(file, "high", "MF-KERAS-CUSTOM", f"custom object from module "
                               f"{module!r}: loading imports and runs that module",
                               member=member))
    for m in _REGISTERED.finditer(data):
        if b"Custom>" in m.group(1):
            out.append(finding(file, "high", "MF-KERAS-CUSTOM", f"custom registered object "
                               f"{m.group(1).decode('latin-1')}", member=member))
    return _unique(out)


def _keras_json(data: Data, file: str, member: str, name: str,
                in_archive: bool = False) -> list[ScanFinding]:
    """A JSON file that is a Keras model config (a .keras archive's config.json, an unzipped
    model folder, model.to_json()): judged like one. Other files of no known format: nothing."""
    if not name.lower().endswith(".json"):
        return []
    head = bytes(data[:4096]).lstrip()
    if not head.startswith(b"{") or b"class_name" not in bytes(data[:1 << 20]):
        return []
    return _keras_config(data, file, member)


def _hdf5(data: Data, file: str, member: str, root: Path | None, name: str,
          at: At) -> list[ScanFinding]:
    # Legacy Keras .h5 stores its model_config as a JSON string attribute: attributes are stored
    # uncompressed in the file, so its text is found by patterns in one pass (no HDF5 library).
    return _keras_text(data, file, member or "model_config")


# ---------------------------------------------------------------------- safetensors
_DTYPE_SIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2,
               "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def _safetensors(data: Data, file: str, member: str, root: Path | None, name: str,
                 at: At) -> list[ScanFinding]:
    problems = safetensors_problems(data)
    return [finding(file, "high", "MF-SAFETENSORS", p + ": treat as unsafe", member=member)
            for p in problems]


def safetensors_problems(data: Data) -> list[str]:
    n = struct.unpack("<Q", data[:8])[0]
    if 8 + n > len(data):
        return [f"header length {n} runs past the end of the file"]
    try:
        header = json.loads(bytes(data[8:8 + n]))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return ["header is not JSON (or nested too deep to read)"]
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
          at: At) -> list[ScanFinding]:
    out = []
    problems = onnx_problems(data)
    if not name.lower().endswith(".onnx") and any("not a valid ONNX" in m for _, m in problems):
        return []   # a protobuf of another kind (a TensorProto test input .pb), or no protobuf
    for severity, message in problems:
        out.append(finding(file, severity, "MF-ONNX", message, member=member))
    return out


_HANDLERS = {"pickle": _pickle, "pickle-also": _pickle_also, "zlib": _compressed,
             "gzip": _compressed, "bz2": _compressed, "lz4": _compressed,
             "lzma": _compressed, "zip": _zip, "npy": _npy, "hdf5": _hdf5,
             "safetensors": _safetensors, "onnx": _onnx, "tar": _tar, "gguf": _gguf}


class ModelFileScanner(Scanner):
    """Model files of every format, identified by content, never by extension: every file is
    read, and one that is no model file gives nothing."""

    name = "modelfile"
    threat_ids = (THREAT,)
    reads_hidden_folders = True    # a model in venv/ or .dvc/cache is loaded all the same

    def applies_to(self, path: Path) -> bool:
        return True

    def scan(self, path: Path, ctx: ScanContext) -> list[ScanFinding]:
        return scan_path(path)
