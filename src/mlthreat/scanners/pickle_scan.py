"""Static analysis of pickle streams: what would loading this import and call?

Follows the opcode stream with a model of the unpickler's stack, metastack and memo, so every
callable is resolved exactly however the file builds it (GLOBAL; STACK_GLOBAL from memoized
strings; INST; OBJ; NEWOBJ(_EX); REDUCE; BUILD; EXT codes; nested pickles handed to a loads
function). Nothing is imported or executed: values are symbols. Judgement is by an allowlist of
what real models need (data/pickle_policy.yaml); everything else is a finding.

Joblib files interleave raw array bytes with the pickle stream (after each NumpyArrayWrapper's
BUILD); the machine reads the wrapper's state (shape, dtype, alignment) to skip exactly those
bytes, and scans the nested stream of object arrays. Several pickles in one file are all scanned.
Malformed, truncated or hostile input ends the scan with an "unparseable" finding; time, opcode
count and container sizes are bounded.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import pickletools
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import IO, Any, cast

import yaml

MAX_OPS = 20_000_000
MAX_SECONDS = 30.0
MAX_ITEMS = 100_000          # elements kept per container; more are counted, not kept
MAX_DEPTH = 8                # nested pickles inside pickles
SKIP_BLOB = 1 << 20          # byte strings longer than this are skipped, not read
# Length-prefixed opcodes whose payload can be skipped: name -> (length bytes, kind)
_BLOBS = {"BINBYTES": 4, "BINBYTES8": 8, "BYTEARRAY8": 8, "BINUNICODE": 4, "BINUNICODE8": 8,
          "BINSTRING": 4}
CODE_TO_OP = {op.code.encode("latin-1"): op for op in pickletools.opcodes}


@dataclass(frozen=True)
class Global:
    module: str
    name: str
    offset: int

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass
class Call:
    func: Any
    args: Any
    offset: int
    state: Any = None


class Mark:
    """The MARK sentinel on the stack."""


class Unknown:
    """A value the machine does not model (e.g. a persistent id, an out-of-band buffer)."""

    def __init__(self, what: str) -> None:
        self.what = what


@dataclass(frozen=True)
class Hit:
    """One import or call of a callable, and the policy's verdict on it."""

    dotted: str
    offset: int
    called: bool
    verdict: str       # allowed | code_execution | file_access | network_access | unknown
    reason: str
    member: str = ""   # archive member or stream the offset is in


@dataclass
class Result:
    """First hit per (callable, imported or called, stream), how often each occurs, problems."""

    found: dict[tuple[str, bool, str], Hit] = field(default_factory=dict)
    counts: Counter[tuple[str, bool, str]] = field(default_factory=Counter)
    problems: list[tuple[int, str]] = field(default_factory=list)   # (offset, what)
    pickles: int = 0
    end: int = 0

    def add(self, hit: Hit) -> None:
        key = (hit.dotted, hit.called, hit.member)
        self.found.setdefault(key, hit)
        self.counts[key] += 1

    def merge(self, other: Result) -> None:
        for key, hit in other.found.items():
            self.found.setdefault(key, hit)
            self.counts[key] += other.counts[key]
        self.problems += other.problems

    @property
    def hits(self) -> list[Hit]:
        return list(self.found.values())

    def bad(self) -> list[Hit]:
        return [h for h in self.found.values() if h.verdict != "allowed"]


@cache
def policy() -> dict[str, Any]:
    text = resources.files("mlthreat.scanners").joinpath("data/pickle_policy.yaml").read_text()
    data = yaml.safe_load(text)
    dangerous = {cat: (set(v.get("modules", [])), set(v.get("names", [])))
                 for cat, v in data["dangerous"].items()}
    return {"allow": set(data["allow"]), "class_packages": set(data["class_packages"]),
            "helpers": tuple(data["helper_prefixes"]), "deny_modules": set(data["deny_modules"]),
            "deny_names": set(data["deny_names"]), "dangerous": dangerous}


def _top(module: str) -> str:
    return module.split(".", 1)[0]


@cache
def judge(module: str, name: str) -> tuple[str, str]:
    """The verdict on importing/calling module.name, and why."""
    p = policy()
    dotted = f"{module}.{name}"
    for category, (modules, names) in p["dangerous"].items():
        if dotted in names or module in modules or _top(module) in modules:
            return category, f"{dotted} gives {category.replace('_', ' ')}"
    if dotted in p["deny_names"] or module in p["deny_modules"] or any(
            module.startswith(m + ".") for m in p["deny_modules"]):
        return "code_execution", f"{dotted} loads or writes files or further pickles"
    if dotted in p["allow"]:
        return "allowed", "on the allowlist"
    leaf = name.rsplit(".", 1)[-1]
    if _top(module) in p["class_packages"]:
        if leaf.lstrip("_")[:1].isupper() or leaf.startswith(p["helpers"]):
            return "allowed", f"a class or unpickling helper of {_top(module)}"
        return "unknown", f"{dotted} is a function of {_top(module)} that real models do not need"
    return "unknown", f"{dotted} is not on the allowlist of what model files need"


class Machine:
    """Runs the opcode stream of one or more pickles in `data` from `start`."""

    def __init__(self, data: bytes | mmap.mmap, member: str = "", depth: int = 0,
                 deadline: float | None = None) -> None:
        self.data = data
        # A memory-mapped file is read in place (it has read, readline, seek and tell).
        self.f = data if isinstance(data, mmap.mmap) else io.BytesIO(data)
        self.member = member
        self.depth = depth
        self.deadline = deadline if deadline is not None else time.monotonic() + MAX_SECONDS
        self.result = Result()
        self.ops = 0

    # ------------------------------------------------------------------ driver
    def run(self, start: int = 0, several: bool = True) -> Result:
        self.f.seek(start)
        while True:
            pos = self.f.tell()
            if pos >= len(self.data):
                break
            try:
                self._one()
            except _Stop as stop:
                self.result.problems.append((stop.offset, stop.reason))
                break
            self.result.pickles += 1
            self.result.end = self.f.tell()
            if not several or not self._another_follows():
                break
        return self.result

    def _another_follows(self) -> bool:
        pos = self.f.tell()
        rest = self.data[pos:pos + 2]
        if not rest:
            return False
        # A following pickle starts with PROTO (protocol 2+) or an opcode; trailing bytes that
        # are no opcode are data (e.g. a checkpoint's raw storages), not a pickle.
        return rest[:1] == b"\x80" or (rest[:1] in CODE_TO_OP and rest[:1] not in b"\x00\n")

    def _one(self) -> None:
        self.stack: list[Any] = []
        self.meta: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        while True:
            self.ops += 1
            if self.ops % 20_000 == 0 and time.monotonic() > self.deadline:
                raise _Stop(self.f.tell(), "scan time limit reached: treat as unsafe")
            if self.ops > MAX_OPS:
                raise _Stop(self.f.tell(), "opcode limit reached: treat as unsafe")
            offset = self.f.tell()
            code = self.f.read(1)
            if not code:
                raise _Stop(offset, "truncated: the pickle ends without STOP")
            op = CODE_TO_OP.get(code)
            if op is None:
                raise _Stop(offset, f"unknown opcode 0x{code[0]:02x}: unparseable, treat as unsafe")
            try:
                if op.name in _BLOBS:
                    arg = self._blob(op.name, offset)
                else:
                    arg = op.arg.reader(cast(IO[bytes], self.f)) if op.arg is not None else None
            except (ValueError, EOFError, UnicodeDecodeError, OverflowError) as exc:
                raise _Stop(offset, f"malformed {op.name} argument ({exc}): treat as unsafe") from exc
            if op.name == "STOP":
                return
            try:
                self._step(op.name, arg, offset)
            except (IndexError, KeyError, TypeError, AttributeError, ValueError) as exc:
                raise _Stop(offset, f"inconsistent stream at {op.name} ({type(exc).__name__}): "
                                    "unparseable, treat as unsafe") from exc

    # ------------------------------------------------------------------ helpers
    def _blob(self, name: str, offset: int) -> Any:
        """A length-prefixed string or byte string; large ones are skipped, not read."""
        size = _BLOBS[name]
        raw = self.f.read(size)
        if len(raw) < size:
            raise ValueError("truncated length")
        n = int.from_bytes(raw, "little", signed=(name == "BINSTRING"))
        if n < 0:
            raise ValueError("negative length")
        if self.f.tell() + n > len(self.data):
            raise ValueError(f"{n} bytes announced, fewer left")
        if n > SKIP_BLOB:
            self.f.seek(n, io.SEEK_CUR)
            return Unknown("blob")
        body = self.f.read(n)
        if name in ("BINUNICODE", "BINUNICODE8"):
            return body.decode("utf-8", "surrogatepass")
        if name == "BINSTRING":
            return body.decode("latin-1")
        return bytearray(body) if name == "BYTEARRAY8" else body

    def _pop_mark(self) -> list[Any]:
        items = self.stack
        self.stack = self.meta.pop()
        return items

    def _global(self, module: str, name: str, offset: int) -> Global:
        g = Global(module, name, offset)
        self._record(g, offset, called=False)
        return g

    def _record(self, func: Any, offset: int, called: bool) -> None:
        if isinstance(func, Global):
            verdict, reason = judge(func.module, func.name)
            self.result.add(Hit(func.dotted, offset, called, verdict, reason, self.member))
        elif called:
            what = "a value built at run time" if isinstance(func, Call) else "an unresolved value"
            self.result.add(Hit("?", offset, True, "unknown",
                                f"calls {what}: the callable cannot be resolved statically",
                                self.member))

    def _call(self, func: Any, args: Any, offset: int) -> Call:
        self._record(func, offset, called=True)
        if isinstance(func, Global) and func.name in ("loads", "load", "_load_from_bytes"):
            self._nested(args, offset)
        return Call(func, args, offset)

    def _nested(self, args: Any, offset: int) -> None:
        blob = args[0] if isinstance(args, tuple) and args else None
        if isinstance(blob, bytes | bytearray) and self.depth < MAX_DEPTH:
            inner = Machine(bytes(blob), f"{self.member}@{offset}(nested)", self.depth + 1,
                            self.deadline).run()
            self.result.merge(inner)

    def _container(self, items: list[Any]) -> list[Any]:
        return items if len(items) <= MAX_ITEMS else items[:MAX_ITEMS]

    # ------------------------------------------------------------------ opcodes
    def _step(self, name: str, arg: Any, offset: int) -> None:  # noqa: C901 - one opcode table
        s = self.stack
        if name in _PUSH_ARG:
            s.append(arg)
        elif name in _PUSH_CONST:
            s.append(_PUSH_CONST[name])
        elif name in ("EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET"):
            s.append({"EMPTY_LIST": [], "EMPTY_DICT": {}, "EMPTY_SET": []}[name])
        elif name == "EMPTY_TUPLE":
            s.append(())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            packed = tuple(s[-n:])
            del s[-n:]
            s.append(packed)
        elif name == "MARK":
            self.meta.append(s)
            self.stack = []
        elif name == "TUPLE":
            self.stack = self.meta.pop()
            self.stack.append(tuple(s))
        elif name in ("LIST", "FROZENSET"):
            self.stack = self.meta.pop()
            self.stack.append(self._container(s))
        elif name == "DICT":
            self.stack = self.meta.pop()
            self.stack.append(_pairs(s))
        elif name == "APPEND":
            value = s.pop()
            if isinstance(s[-1], list) and len(s[-1]) < MAX_ITEMS:
                s[-1].append(value)
        elif name in ("APPENDS", "ADDITEMS"):
            items = self._pop_mark()
            target = self.stack[-1]
            if isinstance(target, list):
                target.extend(items[: max(0, MAX_ITEMS - len(target))])
        elif name == "SETITEM":
            value, key = s.pop(), s.pop()
            if isinstance(s[-1], dict) and len(s[-1]) < MAX_ITEMS:
                _setitem(s[-1], key, value)
        elif name == "SETITEMS":
            items = self._pop_mark()
            target = self.stack[-1]
            if isinstance(target, dict):
                for k, v in _pairs(items).items():
                    if len(target) < MAX_ITEMS:
                        target[k] = v
        elif name == "POP":
            s.pop()
        elif name == "POP_MARK":
            self._pop_mark()
        elif name == "DUP":
            s.append(s[-1])
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            self.memo[int(arg)] = s[-1]
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = s[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            s.append(self.memo[int(arg)])
        elif name == "GLOBAL":
            module, _, qual = str(arg).partition(" ")
            s.append(self._global(module, qual, offset))
        elif name == "STACK_GLOBAL":
            qual, module = s.pop(), s.pop()
            if not isinstance(module, str) or not isinstance(qual, str):
                self.result.add(Hit("?", offset, False, "unknown",
                                    "STACK_GLOBAL with a name built at run time", self.member))
                s.append(Unknown("global"))
            else:
                s.append(self._global(module, qual, offset))
        elif name == "INST":
            module, _, qual = str(arg).partition(" ")
            args = tuple(self._pop_mark())
            self.stack.append(self._call(self._global(module, qual, offset), args, offset))
        elif name == "OBJ":
            items = self._pop_mark()
            self.stack.append(self._call(items[0], tuple(items[1:]), offset))
        elif name == "REDUCE":
            args, func = s.pop(), s.pop()
            s.append(self._call(func, args, offset))
        elif name == "NEWOBJ":
            args, cls = s.pop(), s.pop()
            s.append(self._call(cls, args, offset))
        elif name == "NEWOBJ_EX":
            kwargs, args, cls = s.pop(), s.pop(), s.pop()
            s.append(self._call(cls, (args, kwargs), offset))
        elif name == "BUILD":
            state = s.pop()
            self._build(s[-1], state, offset)
        elif name in ("EXT1", "EXT2", "EXT4"):
            self.result.add(Hit(f"copyreg extension {arg}", offset, False, "unknown",
                                "an extension code resolves to a callable registered at load "
                                "time", self.member))
            s.append(Unknown("ext"))
        elif name == "PERSID":
            s.append(Unknown("persistent"))
        elif name == "BINPERSID":
            s.pop()
            s.append(Unknown("persistent"))
        elif name in ("NEXT_BUFFER",):
            s.append(Unknown("buffer"))
        elif name in ("READONLY_BUFFER", "PROTO", "FRAME"):
            pass
        else:  # pragma: no cover - every opcode of protocols 0-5 is handled above
            raise ValueError(name)

    def _build(self, obj: Any, state: Any, offset: int) -> None:
        if isinstance(obj, Global):
            self.result.add(Hit(obj.dotted, offset, True, "unknown",
                                "BUILD on a class or function object changes it (attribute "
                                "injection)", self.member))
            return
        if isinstance(obj, Call):
            obj.state = state
            if isinstance(obj.func, Global) and obj.func.dotted in _WRAPPERS:
                self._skip_joblib_array(state, offset)

    # ------------------------------------------------------------------ joblib
    def _skip_joblib_array(self, state: Any, offset: int) -> None:
        if not isinstance(state, dict):
            raise ValueError("wrapper state")
        hasobject, itemsize = _dtype_info(state.get("dtype"))
        if hasobject:
            inner = Machine(self.data, f"{self.member}@{self.f.tell()}(object array)",
                            self.depth + 1, self.deadline)
            result = inner.run(self.f.tell(), several=False)
            self.result.merge(result)
            if result.problems:
                raise _Stop(offset, "the object array's nested pickle is unparseable")
            self.f.seek(result.end)
            return
        count = 1
        for n in state.get("shape", ()):
            count *= int(n)
        if state.get("numpy_array_alignment_bytes") is not None:
            pad = self.f.read(1)
            self.f.seek(pad[0] if pad else 0, io.SEEK_CUR)
        end = self.f.tell() + count * itemsize
        if itemsize <= 0 or end > len(self.data):
            raise _Stop(offset, "joblib array data runs past the end of the file: treat as unsafe")
        self.f.seek(end)


class _Stop(Exception):  # noqa: N818 - a control-flow signal, not an error
    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason


_WRAPPERS = {"joblib.numpy_pickle.NumpyArrayWrapper"}
_PUSH_ARG = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING",
             "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
             "BYTEARRAY8", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
             "FLOAT", "BINFLOAT"}
_PUSH_CONST = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}


def _pairs(items: list[Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for i in range(0, len(items) - 1, 2):
        _setitem(out, items[i], items[i + 1])
    return out


def _setitem(target: dict[Any, Any], key: Any, value: Any) -> None:
    with contextlib.suppress(TypeError):   # an unhashable symbolic key: go on without it
        target[key] = value


def _dtype_info(dtype: Any) -> tuple[bool, int]:
    """(has objects, item size) of a pickled numpy dtype: REDUCE(numpy.dtype, (str, ...))."""
    import numpy as np
    if not isinstance(dtype, Call) or not isinstance(dtype.args, tuple) or not dtype.args:
        raise ValueError("dtype")
    spec = dtype.args[0]
    if not isinstance(spec, str) or len(spec) > 16:
        raise ValueError("dtype")
    base = np.dtype(spec)         # parsing a short type string: no code runs
    state = dtype.state if isinstance(dtype.state, tuple) else ()
    itemsize = state[5] if len(state) > 5 and isinstance(state[5], int) and state[5] > 0 \
        else base.itemsize
    flags = state[7] if len(state) > 7 and isinstance(state[7], int) else 0
    return bool(base.hasobject or flags & 0x01), int(itemsize)


def scan_pickle_bytes(data: bytes | mmap.mmap, member: str = "") -> Result:
    return Machine(data, member).run()
