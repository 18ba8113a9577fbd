"""Static analysis of pickle streams: what would loading this import and call?

Follows the opcode stream with a model of the unpickler's stack, metastack and memo, so every
callable is resolved exactly however the file builds it (GLOBAL; STACK_GLOBAL from memoized
strings; INST; OBJ; NEWOBJ(_EX); REDUCE; BUILD; EXT codes; nested pickles handed to a loads
function). Nothing is imported or executed: values are symbols. Judgement is by an allowlist of
what real models need (data/pickle_policy.yaml); everything else is a finding.

The machine follows CPython's unpickler where it matters for what runs: POP on an empty frame
pops the MARK, a module name that no import can find ends the load, Python 2 names are mapped as
`fix_imports` maps them, dotted names walk attributes (protocol 4). Joblib files interleave raw
array bytes with the pickle stream (after each NumpyArrayWrapper's BUILD): the machine reads the
wrapper's state as joblib does (shape, the dtype numpy would build, alignment) to skip exactly
those bytes and scans the nested stream of object arrays; because plain `pickle.load` would run
those bytes as opcodes instead, such a stream is scanned a second time the plain way. A legacy
PyTorch file is its five pickles and then raw storages; other trailing pickles are scanned too.

Judgement (`judge`): exact allowlisted leaves pass; a name is resolved through the re-exports
table (data/reexports.json, built from installed libraries by scripts/build_reexports.py) and
Python 2 mappings before it is judged by what it reaches, whatever the route; a call of anything
not allowlisted outside the trusted ML packages, or of a name walked through module attributes, is
high; a user's own class is low ("needs your code"). Hostile input ends with a problem, never a
crash: one deadline per file across every nested stream, containers, strings and dict keys kept
only within bounds (so neither memory nor a deeply nested key can take the process down).
"""

from __future__ import annotations

import _compat_pickle
import contextlib
import io
import json
import mmap
import pickletools
import re
import struct
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import IO, Any, cast

import yaml

MAX_SECONDS = 30.0           # per scanned file, across every nested stream and archive level,
SECONDS_PER_MB = 0.5         # plus this per MB: every opcode takes a byte, so time is linear
MAX_ITEMS = 100_000          # elements kept per container; more are counted, not kept
MAX_KEPT = 5_000_000         # elements kept per file in all; beyond, containers stay empty
MAX_DEPTH = 8                # nested pickles inside pickles
MAX_TEXT = 512               # strings longer than this are kept as a placeholder (no name is)
SKIP_BLOB = 1 << 20          # byte strings longer than this are skipped, not read
TORCH_MAGIC = 0x1950a86a20f9469cfc6c   # first pickle of a legacy (non-zip) torch.save file
TORCH_LEGACY_PICKLES = 5     # magic, protocol, sys info, the object, the storage keys
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
    limits: list[tuple[int, str]] = field(default_factory=list)     # those the scanner's own
    # limits caused (time): reported whatever the stream looks like
    pickles: int = 0
    end: int = 0
    external: list[tuple[int, str]] = field(default_factory=list)   # files joblib would open

    def add(self, hit: Hit) -> None:
        key = (hit.dotted, hit.called, hit.member)
        self.found.setdefault(key, hit)
        self.counts[key] += 1

    def merge(self, other: Result) -> None:
        for key, hit in other.found.items():
            self.found.setdefault(key, hit)
            self.counts[key] += other.counts[key]
        self.problems += other.problems
        self.limits += other.limits
        self.external += other.external

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
    table = resources.files("mlthreat.scanners").joinpath("data/reexports.json").read_text()
    return {"allow": set(data["allow"]), "class_packages": set(data["class_packages"]),
            "helpers": tuple(data["helper_prefixes"]), "helper_names": set(data["helper_names"]),
            "deny_modules": set(data["deny_modules"]),
            "deny_names": set(data["deny_names"]), "dangerous": dangerous,
            "reexports": json.loads(table)["reexports"]}


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def _under(module: str, packages: set[str]) -> bool:
    return module in packages or any(module.startswith(m + ".") for m in packages)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
# Names with a purpose in reading or writing files, processes or code, judged high inside the
# trusted packages whatever their module (e.g. joblib.numpy_pickle.load, PyCodeCache.load).
_RISKY_NAME = re.compile(r"(^|_|\.)(load|loads|save|dump|dumps|read|write|open|exec|eval|system|"
                         r"spawn|popen|compile|import|fetch|download|urlopen|main|run_module|"
                         r"resolve_name|dictconfig|fileconfig)($|_|\.|s?$)", re.IGNORECASE)
# Attribute names that reach an interpreter's internals from any object.
_DUNDER_ESCAPES = {"__builtins__", "__dict__", "__globals__", "__class__", "__subclasses__",
                   "__import__", "__getattribute__", "__getattr__", "__code__", "__closure__",
                   "__loader__", "__spec__", "__self__", "__func__", "__mro__", "__bases__",
                   "__base__", "__init_subclass__", "__reduce__", "__reduce_ex__", "__call__",
                   "__setattr__", "__delattr__", "__init__", "__new__", "__module__"}


def importable(module: str) -> bool:
    """Whether an import of `module` could find anything: dotted identifiers only."""
    return bool(_IDENT.match(module))


def canonical(module: str, name: str) -> tuple[str, str]:
    """module, name as the unpickler looks them up (Python 2 names mapped, as fix_imports does),
    then through the re-exports table to where the object really lives."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    table = policy()["reexports"]
    parts = name.split(".")
    # walk the attribute path: module.a.b.c; a step the table knows moves to the real home
    for i in range(len(parts)):
        key = f"{module}.{'.'.join(parts[:i + 1])}"
        if key in table:
            home = table[key]
            rest = parts[i + 1:]
            if home.startswith("module:"):
                module, parts_after = home[7:], rest
                return canonical(module, ".".join(parts_after)) if parts_after else (module, "")
            hmod, _, hname = home.partition(":")
            return hmod, ".".join([hname, *rest])
    return module, name


def _danger(module: str, name: str) -> str | None:
    p = policy()
    dotted = f"{module}.{name}" if name else module
    for category, (modules, names) in p["dangerous"].items():
        if dotted in names or _under(module, modules) or any(
                dotted == n or dotted.startswith(n + ".") for n in names):
            return str(category)
        # a dotted name that walks into a dangerous module: posixpath + os.system
        if name and any(f"{module}.{'.'.join(name.split('.')[:i])}" in modules or
                        ".".join(name.split(".")[:i]) in modules
                        for i in range(1, name.count(".") + 1)):
            return str(category)
    if dotted in p["deny_names"] or _under(module, p["deny_modules"]):
        return "code_execution"
    return None


def _capwords(name: str) -> bool:
    return all(part.lstrip("_")[:1].isupper() for part in name.split("."))


@cache
def judge(module: str, name: str, called: bool = True) -> tuple[str, str]:
    """The verdict on importing (called=False) or calling module.name, and why.

    Verdicts: allowed; code_execution, file_access, network_access (what a known-dangerous
    object does); unknown_call (a call of something models do not need: could do anything);
    unknown (imported, not needed by models); custom (the user's own class or function: loading
    needs that code, review it)."""
    p = policy()
    raw = f"{module}.{name}"
    if raw in p["allow"]:
        return "allowed", "on the allowlist"
    module, name = canonical(module, name)
    dotted = f"{module}.{name}" if name else module
    if dotted in p["allow"]:
        return "allowed", "on the allowlist"
    shown = raw if dotted == raw else f"{raw} (that is {dotted})"
    if any(part in _DUNDER_ESCAPES for part in name.split(".")):
        return "code_execution", f"{shown} reaches the interpreter's internals"
    category = _danger(module, name)
    if category:
        return category, f"{shown} gives {category.replace('_', ' ')}"
    trusted = _top(module) in p["class_packages"]
    walks = "." in name and not _capwords(name)
    if trusted and not walks:
        if _RISKY_NAME.search(name.split(".")[-1]):
            return "unknown_call", f"{shown} reads, writes or runs something: models never need it"
        if _capwords(name) or name.split(".")[-1].startswith(p["helpers"]) or \
                name.split(".")[-1] in p["helper_names"]:
            return "allowed", f"a class or unpickling helper of {_top(module)}"
        if not called:
            return "allowed", f"a function of {_top(module)} kept as a parameter of the model"
        return "unknown", f"{shown} is a function of {_top(module)} that real models do not call " \
                          "when they load"
    if walks:
        how = "calls" if called else "passes on"
        return ("unknown_call" if called else "unknown"), \
            f"{shown} walks through module attributes to an object this scanner cannot place; " \
            f"loading {how} it"
    if _top(module) in sys.stdlib_module_names or _top(module) in p["class_packages"] | {"__builtin__"}:
        if called:
            return "unknown_call", f"{shown} is a standard-library object real models do not " \
                                   "need; a call of it can do anything it does"
        return "unknown", f"{shown} is a standard-library object real models do not need"
    if called and not _capwords(name):
        return "unknown_call", f"{shown} is a function outside the libraries models are made " \
                               "of; loading calls it"
    return "custom", f"{shown} is not from a library this scanner knows (your own code or a " \
                     "third-party package): loading needs that code installed, and runs it"


class Machine:
    """Runs the opcode stream of one or more pickles in `data` from `start`.

    `joblib`: skip array bytes after a joblib wrapper's BUILD, as joblib.load does (else they
    are read as opcodes, as pickle.load does). `quiet`: the stream is expected to break (a plain
    reading of a joblib file, trailing bytes): hits count, a broken stream is no problem."""

    def __init__(self, data: bytes | mmap.mmap, member: str = "", depth: int = 0,
                 budget: Budget | None = None, joblib: bool = True, quiet: bool = False) -> None:
        self.data = data
        # A memory-mapped file is read in place (it has read, readline, seek and tell); a
        # remote one (scanners.remote.RangeData) through its file, each opcode the slow way
        # (the fast path reads the buffer itself).
        opener = getattr(data, "open", None)
        self.f = data if isinstance(data, mmap.mmap) else opener() if opener else \
            io.BytesIO(data)
        self.fast = opener is None
        self.member = member
        self.depth = depth
        self.budget = budget or Budget()
        self.joblib = joblib
        self.quiet = quiet
        self.result = Result()
        self.ops = 0
        self.wrappers = 0        # joblib array wrappers whose bytes were skipped
        self.last: Any = None    # what the last complete pickle returned

    # ------------------------------------------------------------------ driver
    def run(self, start: int = 0, several: bool = True) -> Result:
        self.f.seek(start)
        expected = 1
        while True:
            if self.f.tell() >= len(self.data):
                break
            trailing = self.result.pickles >= expected
            try:
                self._one()
            except _Stop as stop:
                if stop.limit:
                    self.result.limits.append((stop.offset, stop.reason))
                if stop.limit or not (self.quiet or trailing):
                    self.result.problems.append((stop.offset, stop.reason))
                break
            self.result.pickles += 1
            self.result.end = self.f.tell()
            if self.result.pickles == 1 and self.last == TORCH_MAGIC:
                expected = TORCH_LEGACY_PICKLES   # then raw storages, never read as opcodes
            if self.result.pickles == expected and expected > 1:
                break
            if not several or not self._another_follows():
                break
        if self.joblib and self.wrappers and not self.quiet:
            # pickle.load (and torch.load) run the bytes joblib skips as opcodes
            plain = Machine(self.data, self.member, self.depth, self.budget, joblib=False,
                            quiet=True).run(start, several=False)
            for key, hit in plain.found.items():
                if hit.verdict != "allowed":
                    self.result.found.setdefault(key, hit)
                    self.result.counts[key] += plain.counts[key]
            self.result.problems += plain.limits    # a quiet machine reports only those
            self.result.limits += plain.limits
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
        data, size = self.data, len(self.data)
        pos = self.f.tell()
        while True:
            self.ops += 1
            if self.ops & 0xFFF == 0 and self.budget.over():
                raise _Stop(pos, "scan time limit reached: treat as unsafe", limit=True)
            if pos >= size:
                raise _Stop(pos, "truncated: the pickle ends without STOP")
            # The frequent opcodes of large pickles (vocabularies, lists of numbers) are read
            # here from the buffer; everything else goes through the full table below.
            try:
                step = self._fast(data[pos], pos, size) if self.fast else 0
            except (IndexError, KeyError, TypeError, ValueError, struct.error,
                    UnicodeDecodeError) as exc:
                raise _Stop(pos, f"inconsistent stream at byte {pos} ({type(exc).__name__}): "
                                 "unparseable, treat as unsafe") from exc
            if step:
                pos += step
                continue
            self.f.seek(pos)
            done = self._slow(pos)
            pos = self.f.tell()
            if done:
                return

    def _fast(self, c: int, pos: int, size: int) -> int:
        """Handle opcode byte `c` at `pos` if it is a simple one: its length, else 0."""
        data = self.data
        if c == 0x8C:                                   # SHORT_BINUNICODE
            n = data[pos + 1]
            if pos + 2 + n > size:
                raise ValueError("string past the end")
            self.stack.append(bytes(data[pos + 2:pos + 2 + n]).decode("utf-8", "surrogatepass"))
            return 2 + n
        if c == 0x94:                                   # MEMOIZE
            self.memo[len(self.memo)] = self.stack[-1]
            return 1
        if c == 0x4B:                                   # BININT1
            self.stack.append(data[pos + 1])
            return 2
        if c == 0x4D:                                   # BININT2
            self.stack.append(_U16.unpack_from(data, pos + 1)[0])
            return 3
        if c == 0x4A:                                   # BININT
            self.stack.append(_I32.unpack_from(data, pos + 1)[0])
            return 5
        if c == 0x68:                                   # BINGET
            self.stack.append(self.memo[data[pos + 1]])
            return 2
        if c == 0x6A:                                   # LONG_BINGET
            self.stack.append(self.memo[_U32.unpack_from(data, pos + 1)[0]])
            return 5
        if c == 0x71:                                   # BINPUT
            self.memo[data[pos + 1]] = self.stack[-1]
            return 2
        if c == 0x72:                                   # LONG_BINPUT
            self.memo[_U32.unpack_from(data, pos + 1)[0]] = self.stack[-1]
            return 5
        if c == 0x47:                                   # BINFLOAT
            self.stack.append(_F64.unpack_from(data, pos + 1)[0])
            return 9
        if c == 0x95:                                   # FRAME
            if pos + 9 > size:
                raise ValueError("frame header past the end")
            return 9
        if c in _FAST_STEPS:                            # no argument
            self._step(_FAST_STEPS[c], None, pos)
            return 1
        return 0

    def _slow(self, offset: int) -> bool:
        """The opcode at `offset` (self.f is there) through the full table; True at STOP."""
        code = self.f.read(1)
        op = CODE_TO_OP.get(code)
        if op is None:
            raise _Stop(offset, f"unknown opcode 0x{code[0]:02x}: loading fails here")
        try:
            if op.name in _BLOBS:
                arg = self._blob(op.name, offset)
            elif op.name in ("GLOBAL", "INST"):
                arg = self._pair()
            else:
                arg = op.arg.reader(cast(_BinaryIO, self.f)) if op.arg is not None else None
        except (ValueError, EOFError, UnicodeDecodeError, OverflowError) as exc:
            raise _Stop(offset, f"malformed {op.name} argument ({exc}): treat as unsafe") from exc
        if isinstance(arg, str) and len(arg) > MAX_TEXT:
            arg = _TEXT
        if op.name == "STOP":
            top = self.stack[-1] if self.stack else None
            self.last = top if isinstance(top, int) else None
            return True
        try:
            self._step(op.name, arg, offset)
        except (IndexError, KeyError, TypeError, AttributeError, ValueError,
                OverflowError, RecursionError) as exc:
            raise _Stop(offset, f"inconsistent stream at {op.name} ({type(exc).__name__}): "
                                "unparseable, treat as unsafe") from exc
        return False

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
            return body.decode("utf-8", "surrogatepass") if n <= MAX_TEXT else _TEXT
        if name == "BINSTRING":
            return body.decode("latin-1") if n <= MAX_TEXT else _TEXT
        return bytearray(body) if name == "BYTEARRAY8" else body

    def _pair(self) -> tuple[str, str]:
        """GLOBAL's and INST's module and name, one line each, read as the unpickler reads them
        (pickletools joins the two with a space, which loses where a module name with a space,
        such as the first line of a text file, ends)."""
        module, name = self.f.readline(), self.f.readline()
        if not module.endswith(b"\n") or not name.endswith(b"\n"):
            raise ValueError("no newline found when trying to read a module and a name")
        return module[:-1].decode("utf-8"), name[:-1].decode("utf-8")

    def _pop_mark(self) -> list[Any]:
        items = self.stack
        self.stack = self.meta.pop()
        return items

    def _global(self, module: str, name: str, offset: int) -> Global:
        if not importable(module) or not name:
            # the import raises (no module has such a name): the load ends here
            raise _Stop(offset, f"imports {module!r}, which no import can find: loading fails "
                                "here")
        g = Global(module, name, offset)
        self._record(g, offset, called=False)
        return g

    def _record(self, func: Any, offset: int, called: bool, passed: bool = False) -> None:
        if isinstance(func, Global):
            verdict, reason = judge(func.module, func.name, called)
            if passed and verdict != "allowed":
                reason += "; it is passed to a call that may call it"
            self.result.add(Hit(func.dotted, offset, called, verdict, reason, self.member))
        elif called and isinstance(func, Call | Unknown):
            if self.quiet:
                # bytes read as opcodes that were never meant as such (a plain reading of a
                # joblib file): a call of what they left on the stack makes the load fail
                raise _Stop(offset, "calls a value in bytes read as opcodes")
            persistent = isinstance(func, Unknown) and func.what == "persistent"
            what = "a value built at run time" if isinstance(func, Call) else \
                "an object the loader's persistent_load returns" if persistent else \
                "an unresolved value"
            self.result.add(Hit("?", offset, True, "unknown" if persistent else "unknown_call",
                                f"calls {what}: the callable cannot be resolved statically",
                                self.member))
        elif called:
            # a constant (number, string, container) is not callable: the load fails here
            raise _Stop(offset, "calls a constant: loading fails here")

    def _call(self, func: Any, args: Any, offset: int) -> Call:
        self._record(func, offset, called=True)
        for g in _globals_in(args):
            # an allowed helper may call what it is given (copyreg._reconstructor calls its
            # base's __init__): whatever is passed is judged as called, except functions of the
            # trusted packages (torch passes its rebuild functions and dtypes this way)
            if judge(g.module, g.name, True)[0] == "unknown" and not (
                    isinstance(func, Global) and func.dotted in _FORWARDERS):
                self._record(g, offset, called=False)
            else:
                self._record(g, offset, called=True, passed=True)
        if isinstance(func, Global) and func.name.rsplit(".", 1)[-1] in _NESTED_LOADERS:
            self._nested(args, offset)
        if isinstance(func, Global) and func.name == "_ufunc_reconstruct" and \
                _top(func.module) == "numpy":
            # numpy's ufunc resolver imports module args[0] and returns its attribute args[1]:
            # what it returns is judged as that global (anything else it could name)
            if isinstance(args, tuple) and len(args) == 2 and all(isinstance(a, str) for a in args):
                return cast(Call, self._global(args[0], args[1], offset))
            self.result.add(Hit(func.dotted, offset, True, "code_execution", "numpy's ufunc "
                                "resolver given names computed at run time imports anything",
                                self.member))
        return Call(func, args, offset)

    def _nested(self, args: Any, offset: int) -> None:
        blob = args[0] if isinstance(args, tuple) and args else None
        if isinstance(blob, bytes | bytearray) and self.depth < MAX_DEPTH:
            inner = Machine(bytes(blob), f"{self.member}@{offset}(nested)", self.depth + 1,
                            self.budget).run()
            self.result.merge(inner)

    def _container(self, items: list[Any]) -> list[Any]:
        if not self.budget.keep(len(items)):
            return []
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
            if len(s) < n:
                raise IndexError("stack underflow")
            packed = tuple(s[-n:])
            del s[-n:]
            s.append(packed)
        elif name == "MARK":
            self.meta.append(s)
            self.stack = []
        elif name == "TUPLE":
            self.stack = self.meta.pop()
            self.stack.append(tuple(self._container(s)))
        elif name in ("LIST", "FROZENSET"):
            self.stack = self.meta.pop()
            self.stack.append(self._container(s))
        elif name == "DICT":
            self.stack = self.meta.pop()
            self.stack.append(_pairs(self._container(s)))
        elif name == "APPEND":
            value = s.pop()
            if isinstance(s[-1], list) and len(s[-1]) < MAX_ITEMS and self.budget.keep(1):
                s[-1].append(value)
        elif name in ("APPENDS", "ADDITEMS"):
            items = self._pop_mark()
            target = self.stack[-1]
            if isinstance(target, list):
                target.extend(self._container(items)[: max(0, MAX_ITEMS - len(target))])
        elif name == "SETITEM":
            value, key = s.pop(), s.pop()
            if isinstance(s[-1], dict) and len(s[-1]) < MAX_ITEMS and self.budget.keep(1):
                _setitem(s[-1], key, value)
        elif name == "SETITEMS":
            items = self._pop_mark()
            target = self.stack[-1]
            if isinstance(target, dict):
                for k, v in _pairs(self._container(items)).items():
                    if len(target) < MAX_ITEMS:
                        target[k] = v
        elif name == "POP":
            if s:
                s.pop()
            else:               # as CPython: POP on an empty frame pops the MARK
                self._pop_mark()
        elif name == "POP_MARK":
            self._pop_mark()
        elif name == "DUP":
            s.append(s[-1])
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            if int(arg) < 0:
                raise ValueError("negative memo index")
            self.memo[int(arg)] = s[-1]
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = s[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            s.append(self.memo[int(arg)])
        elif name == "GLOBAL":
            module, qual = arg
            s.append(self._global(module, qual, offset))
        elif name == "STACK_GLOBAL":
            qual, module = s.pop(), s.pop()
            if isinstance(module, str) and isinstance(qual, str):   # (long ones are _TEXT)
                s.append(self._global(module, qual, offset))
            elif (isinstance(module, Call | Unknown) or isinstance(qual, Call | Unknown)) and \
                    not self.quiet:
                self.result.add(Hit("?", offset, False, "unknown_call",
                                    "STACK_GLOBAL with a name computed at run time: it can name "
                                    "anything", self.member))
                s.append(Unknown("global"))
            else:
                raise _Stop(offset, "STACK_GLOBAL of a constant that is no name: loading fails "
                                    "here")
        elif name == "INST":
            module, qual = arg
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
            if self.quiet:
                raise _Stop(offset, "extension code in bytes read as opcodes")
            self.result.add(Hit(f"copyreg extension {arg}", offset, False, "unknown",
                                "an extension code resolves to a callable registered at load "
                                "time", self.member))
            s.append(Unknown("ext"))
        elif name == "PERSID":
            s.append(Unknown("persistent"))
        elif name == "BINPERSID":
            pid = s.pop()
            # legacy torch.save: ('module', cls, file, source) loads as cls itself
            if isinstance(pid, tuple) and len(pid) > 1 and pid[0] == "module" and \
                    isinstance(pid[1], Global):
                s.append(pid[1])
            else:
                s.append(Unknown("persistent"))
        elif name in ("NEXT_BUFFER",):
            s.append(Unknown("buffer"))
        elif name in ("READONLY_BUFFER", "PROTO", "FRAME"):
            pass
        else:  # pragma: no cover - every opcode of protocols 0-5 is handled above
            raise ValueError(name)

    def _build(self, obj: Any, state: Any, offset: int) -> None:
        if isinstance(obj, Global):
            self.result.add(Hit(obj.dotted, offset, True, "unknown_call",
                                "BUILD on a class, function or module changes it for the whole "
                                "process (attribute injection)", self.member))
            return
        if isinstance(obj, Call):
            obj.state = state
            if isinstance(obj.func, Global) and obj.func.dotted in _OLD_WRAPPERS and \
                    isinstance(state, dict) and isinstance(state.get("filename"), str):
                self.result.external.append((offset, state["filename"]))
            if self.joblib and isinstance(obj.func, Global) and obj.func.dotted in _WRAPPERS:
                self.wrappers += 1
                self._skip_joblib_array(state, offset)

    # ------------------------------------------------------------------ joblib
    def _skip_joblib_array(self, state: Any, offset: int) -> None:
        """Read past the array bytes as NumpyArrayWrapper.read_array does."""
        if not isinstance(state, dict):
            raise ValueError("wrapper state")
        hasobject, itemsize = _dtype_info(state.get("dtype"))
        if hasobject:
            if self.depth >= MAX_DEPTH:
                raise _Stop(offset, "object arrays nested too deep: treat as unsafe")
            inner = Machine(self.data, f"{self.member}@{self.f.tell()}(object array)",
                            self.depth + 1, self.budget)
            result = inner.run(self.f.tell(), several=False)
            self.result.merge(result)
            if result.problems:
                raise _Stop(offset, "the object array's nested pickle is unparseable")
            self.f.seek(result.end)
            return
        count = 1
        shape = state.get("shape", ())
        for n in shape if isinstance(shape, tuple | list) else ():
            if not isinstance(n, int) or n < 0:
                raise ValueError("shape")
            count *= n
        if state.get("numpy_array_alignment_bytes") is not None:
            pad = self.f.read(1)
            self.f.seek(pad[0] if pad else 0, io.SEEK_CUR)
        end = self.f.tell() + count * itemsize
        if itemsize <= 0 or end > len(self.data):
            raise _Stop(offset, "joblib array data runs past the end of the file: treat as unsafe")
        self.f.seek(end)


class _Stop(Exception):  # noqa: N818 - a control-flow signal, not an error
    def __init__(self, offset: int, reason: str, limit: bool = False) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason
        self.limit = limit    # a limit of the scanner (time), not of the stream: always reported


class Budget:
    """What one scanned file may cost, shared by every machine and archive level inside it."""

    def __init__(self, seconds: float = MAX_SECONDS) -> None:
        self.deadline = time.monotonic() + seconds
        self.kept = 0

    @classmethod
    def for_size(cls, size: int) -> Budget:
        """The budget of a file of `size` bytes."""
        return cls(MAX_SECONDS + SECONDS_PER_MB * size / 1e6)

    def over(self) -> bool:
        return time.monotonic() > self.deadline

    def keep(self, n: int) -> bool:
        """Whether `n` more elements may be kept in memory."""
        self.kept += n
        return self.kept <= MAX_KEPT


_WRAPPERS = {"joblib.numpy_pickle.NumpyArrayWrapper"}
# joblib <= 0.9: the array lives in another file, which joblib.load opens (np.load, pickles allowed)
_OLD_WRAPPERS = {"joblib.numpy_pickle_compat.NDArrayWrapper",
                 "joblib.numpy_pickle_compat.ZNDArrayWrapper"}
# functions that unpickle a byte string they are given: the nested pickle is scanned too
_NESTED_LOADERS = {"loads", "load", "_loads", "_load_from_bytes", "load_from_bytes"}
_TEXT = Unknown("text")   # a string too long to be a name; kept as one shared placeholder
# allowed helpers that call a callable they are given, with arguments from the file
_FORWARDERS = {"copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__",
               "torch._tensor._rebuild_from_type", "torch._tensor._rebuild_from_type_v2",
               "torch._utils._rebuild_wrapper_subclass"}
_PUSH_ARG = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING",
             "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
             "BYTEARRAY8", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
             "FLOAT", "BINFLOAT"}
_PUSH_CONST = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
# opcodes without an argument that the fast path hands straight to _step
_FAST_STEPS = {ord(op.code): op.name for op in pickletools.opcodes if op.name in {
    "NONE", "NEWTRUE", "NEWFALSE", "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "EMPTY_TUPLE",
    "TUPLE1", "TUPLE2", "TUPLE3", "MARK", "TUPLE", "LIST", "DICT", "APPEND", "APPENDS",
    "SETITEM", "SETITEMS", "POP", "POP_MARK", "DUP", "ADDITEMS", "FROZENSET"}}
_U16, _U32, _I32, _F64 = (struct.Struct(f) for f in ("<H", "<I", "<i", ">d"))
_BinaryIO = IO[bytes]


def _pairs(items: list[Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for i in range(0, len(items) - 1, 2):
        _setitem(out, items[i], items[i + 1])
    return out


def _setitem(target: dict[Any, Any], key: Any, value: Any) -> None:
    # Only plain keys are kept: hashing a symbolic value nested 200,000 deep would overflow the
    # C stack. Models' state dicts are keyed by strings and numbers.
    if isinstance(key, str | int | float | bytes | bool) or key is None:
        with contextlib.suppress(TypeError):
            target[key] = value


def _globals_in(args: Any, depth: int = 0) -> list[Global]:
    """Globals among a call's arguments (two levels into tuples and lists)."""
    if isinstance(args, Global):
        return [args]
    if depth < 2 and isinstance(args, tuple | list):
        out: list[Global] = []
        for a in args[:64]:
            out += _globals_in(a, depth + 1)
        return out
    return []


def _dtype_info(dtype: Any, depth: int = 0) -> tuple[bool, int]:
    """(has objects, item size) of a pickled numpy dtype, REDUCE(numpy.dtype, (str, ...)) then
    BUILD(state), as numpy's dtype __setstate__ applies the state: the item size of the state is
    used only for flexible types (void, bytes, str), the object flag and the fields always count.
    A state whose object flag disagrees with its type is refused (numpy versions differ there)."""
    import numpy as np
    if not isinstance(dtype, Call) or not isinstance(dtype.args, tuple) or not dtype.args:
        raise ValueError("dtype")
    spec = dtype.args[0]
    if not isinstance(spec, str) or len(spec) > 16 or depth > 8:
        raise ValueError("dtype")
    base = np.dtype(spec)         # parsing a short type string: no code runs
    state = dtype.state if isinstance(dtype.state, tuple) else ()
    itemsize = base.itemsize
    if base.kind in "VSU" and len(state) > 5 and isinstance(state[5], int) and state[5] > 0:
        itemsize = state[5]
    objects = bool(base.hasobject)
    fields = state[4] if len(state) > 4 else None
    if isinstance(fields, dict):
        for value in fields.values():
            if isinstance(value, tuple) and value and isinstance(value[0], Call):
                objects |= _dtype_info(value[0], depth + 1)[0]
    sub = state[2] if len(state) > 2 else None
    if isinstance(sub, tuple) and sub and isinstance(sub[0], Call):
        objects |= _dtype_info(sub[0], depth + 1)[0]
    flags = state[7] if len(state) > 7 and isinstance(state[7], int) else None
    if flags is not None and bool(flags & 0x01) != objects:
        raise ValueError("dtype state's object flag disagrees with its type")
    return objects, int(itemsize)


def scan_pickle_bytes(data: bytes | mmap.mmap, member: str = "",
                      budget: Budget | None = None) -> Result:
    return Machine(data, member, budget=budget).run()
