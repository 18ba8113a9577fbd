"""The model-file scanner: real models pass, every payload technique is caught, hostile bytes
never crash or hang it, and nothing it scans ever runs."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlthreat.scanners.modelfile import safetensors_problems, scan_bytes, scan_path, sniff
from tests.scanners.conftest import (
    EvalPayload,
    Payload,
    dumps,
    inst_pickle,
    memo_stack_global,
    nested_loads,
)


def bad(findings: list, at_least: str = "medium") -> list:  # type: ignore[type-arg]
    order = ["low", "medium", "high", "critical"]
    return [f for f in findings if order.index(f.severity) >= order.index(at_least)]


@pytest.fixture(scope="module")
def benign_models() -> dict[str, object]:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    rng = np.random.RandomState(0)
    x = rng.randn(300, 4)
    y = (x[:, 0] > 0).astype(int)
    df = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": np.where(x[:, 2] > 0, "u", "v")})
    pipe = make_pipeline(ColumnTransformer([("n", StandardScaler(), ["a", "b"]),
                                            ("c", OneHotEncoder(), ["c"])]), LogisticRegression())
    return {
        "rf": RandomForestClassifier(10, random_state=0).fit(x, y),
        "hgb": HistGradientBoostingClassifier(max_iter=10).fit(x, y),
        "pipeline": pipe.fit(df, y), "frame": df, "array": x,
        "objects": np.array(["a", 1, None], dtype=object),
    }


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_real_sklearn_pickles_pass(benign_models: dict[str, object], protocol: int) -> None:
    for name, model in benign_models.items():
        findings = scan_bytes(dumps(model, protocol), f"{name}.pkl", name=f"{name}.pkl")
        assert findings == [], (name, protocol, findings)


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("lzma", 3), ("xz", 3)])
def test_real_joblib_files_pass(benign_models: dict[str, object], compress: object,
                                tmp_path: Path) -> None:
    for name, model in benign_models.items():
        path = tmp_path / f"{name}.joblib"
        joblib.dump(model, path, compress=compress)
        assert scan_path(path) == [], (name, compress)


def test_real_torch_checkpoints_pass(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    torch.save(net.state_dict(), tmp_path / "state.pt")
    torch.save({"model": net.state_dict(), "epoch": 3, "opt": torch.optim.Adam(
        net.parameters()).state_dict()}, tmp_path / "ckpt.pth")
    torch.save(net.state_dict(), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    for name in ("state.pt", "ckpt.pth", "legacy.pt"):
        assert scan_path(tmp_path / name) == [], name


def test_torch_full_module_pickle_is_allowed(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.save(torch.nn.Linear(3, 1), tmp_path / "module.pt")  # pickles the class itself
    assert bad(scan_path(tmp_path / "module.pt")) == []


class _Net:  # built lazily: torch is an optional extra
    @staticmethod
    def make(torch):  # type: ignore[no-untyped-def]
        class Net(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = torch.nn.Conv2d(1, 2, 3)
                self.out = torch.nn.Linear(2 * 4 * 4, 3)

            def forward(self, x):  # type: ignore[no-untyped-def]
                return self.out(torch.relu(self.conv(x)).flatten(1))
        return Net()


def _rewritten(source: Path, target: Path, replace: dict[str, bytes]) -> Path:
    """A copy of a zip archive with some members' bytes replaced or added."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        names = old.namelist()
        for name in names:
            new.writestr(name, replace.get(name, old.read(name)))
        for name, data in replace.items():
            if name not in names:
                new.writestr(name, data)
    return target


def test_torchscript_archives_are_one_program_finding(tmp_path: Path) -> None:
    """Scripted and traced models: their data.pkl names `__torch__.` classes that jit.load
    resolves in the archive's own code/. The scanner finds exactly the classes torch compiled,
    reports the archive once as a TorchScript program (low), and no per-class custom import."""
    torch = pytest.importorskip("torch")
    from mlthreat.scanners.modelfile import At, Budget, _torchscript
    torch.jit.script(_Net.make(torch)).save(str(tmp_path / "scripted.pt"))
    torch.jit.trace(_Net.make(torch), torch.zeros(1, 1, 6, 6)).save(str(tmp_path / "traced.pt"))
    for name in ("scripted.pt", "traced.pt"):
        findings = scan_path(tmp_path / name)
        assert [(f.rule, f.severity) for f in findings] == [("MF-TORCHSCRIPT", "low")], findings
        loaded = torch.jit.load(str(tmp_path / name))     # the oracle: torch's compiled types
        compiled = {m._c._type().qualified_name() for m in loaded.modules()}
        with zipfile.ZipFile(tmp_path / name) as archive:
            own, _ = _torchscript(archive, archive.infolist(), name, "", At(0, Budget(60)))
        assert compiled <= own and all(n.startswith("__torch__.") for n in own), (compiled, own)


def test_torchscript_file_operators_and_forged_classes(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")

    class Reads(torch.nn.Module):
        def forward(self, x):  # type: ignore[no-untyped-def]
            torch.save(x, "/tmp/out.pt")
            return x + torch.from_file("/etc/hostname", size=1, dtype=torch.uint8).sum()
    torch.jit.script(Reads()).save(str(tmp_path / "reads.pt"))
    findings = scan_path(tmp_path / "reads.pt")
    files = [f for f in findings if f.rule == "MF-TORCHSCRIPT-FILE"]
    assert {f.severity for f in files} == {"high"} and len(files) == 2
    assert any("torch.save" in f.message for f in files)
    assert any("torch.from_file" in f.message for f in files)
    assert all("/code/__torch__" in f.member and f.member.endswith(".py") for f in files)

    torch.jit.script(_Net.make(torch)).save(str(tmp_path / "net.pt"))
    # a global the code does not define, and a class defined outside __torch__, stay custom;
    # a payload in a TorchScript archive's data.pkl is still what it is
    cases = {"undefined": (memo_stack_global("__torch__.nowhere", "Thing", "x"), {}),
             "outside": (memo_stack_global("evilpkg", "Thing", "x"),
                         {"net/code/evilpkg.py": b"class Thing(Module):\n  pass\n"}),
             "payload": (memo_stack_global("os", "system", "touch x"), {})}
    for case, (pkl, extra) in cases.items():
        forged = _rewritten(tmp_path / "net.pt", tmp_path / f"{case}.pt",
                            {"net/data.pkl": pkl, **extra})
        rules = {f.rule for f in scan_path(forged)}
        want = "MF-PICKLE-CODE_EXECUTION" if case == "payload" else "MF-PICKLE-CUSTOM"
        assert want in rules, (case, rules)


PAYLOADS = {
    "reduce os.system": lambda m: dumps(Payload(m)),
    "reduce eval": lambda m: dumps(EvalPayload(m)),
    "protocol 0": lambda m: dumps(Payload(m), 0),
    "protocol 2": lambda m: dumps(Payload(m), 2),
    "protocol 5": lambda m: dumps(Payload(m), 5),
    "stack_global from memo": lambda m: memo_stack_global("os", "system", f"touch {m}"),
    "inst": lambda m: inst_pickle("os", "system", f"touch {m}"),
    "nested loads": lambda m: nested_loads(dumps(Payload(m))),
    "subprocess": lambda m: memo_stack_global("subprocess", "getoutput", f"touch {m}"),
    "builtins exec": lambda m: memo_stack_global("builtins", "exec", f"open('{m}','w')"),
    "runpy": lambda m: memo_stack_global("runpy", "_run_code", "x"),
    "unknown module": lambda m: memo_stack_global("antigravity", "fly", "x"),
}


@pytest.mark.parametrize("technique", sorted(PAYLOADS))
def test_payload_techniques_detected_never_run(technique: str, marker: Path) -> None:
    data = PAYLOADS[technique](marker)
    findings = scan_bytes(data, "x.bin", name="x.bin")
    assert bad(findings), technique
    assert not marker.exists()


def _zip_torch(payload: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


CONTAINERS = {
    "after a benign model": lambda p: dumps({"w": [1.0, 2.0]}) + p,
    "torch zip": _zip_torch,
    "zlib joblib": lambda p: zlib.compress(p),
    "gzip": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "named .safetensors": lambda p: p,
    "inside a zip inside a zip": lambda p: _zip_torch(_zip_torch(p)),
}


@pytest.mark.parametrize("container", sorted(CONTAINERS))
def test_payload_in_containers(container: str, marker: Path, tmp_path: Path) -> None:
    data = CONTAINERS[container](dumps(Payload(marker)))
    path = tmp_path / "model.safetensors"
    path.write_bytes(data)
    findings = scan_path(path)
    assert any(f.severity == "critical" and "system" in f.message for f in findings), findings
    assert not marker.exists()


def test_payload_after_joblib_arrays(benign_models: dict[str, object], marker: Path,
                                     tmp_path: Path) -> None:
    path = tmp_path / "m.joblib"
    joblib.dump(benign_models["pipeline"], path)
    path.write_bytes(path.read_bytes() + dumps(Payload(marker)))
    assert any(f.severity == "critical" for f in scan_path(path))
    assert not marker.exists()


def test_object_array_npy_and_npz(marker: Path, tmp_path: Path) -> None:
    arr = np.array([Payload(marker)], dtype=object)
    np.save(tmp_path / "a.npy", arr, allow_pickle=True)
    np.savez(tmp_path / "b.npz", x=arr, y=np.arange(3))
    np.save(tmp_path / "ok.npy", np.arange(10))
    for name in ("a.npy", "b.npz"):
        assert any(f.severity == "critical" for f in scan_path(tmp_path / name)), name
    assert scan_path(tmp_path / "ok.npy") == []
    assert not marker.exists()


def test_keras_lambda_at_depth(tmp_path: Path) -> None:
    config = {"class_name": "Functional", "config": {"layers": [
        {"class_name": "Dense", "module": "keras.layers", "config": {}},
        {"class_name": "Sequential", "config": {"layers": [
            {"class_name": "Lambda", "module": "keras.layers", "config": {"function": "x"}},
            {"class_name": "MyLayer", "module": "evil_pkg.layers", "config": {}}]}}]}}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        import json
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", "{}")
        z.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    (tmp_path / "m.keras").write_bytes(buf.getvalue())
    rules = {f.rule for f in scan_path(tmp_path / "m.keras")}
    assert {"MF-KERAS-LAMBDA", "MF-KERAS-CUSTOM"} <= rules
    h5 = b"\x89HDF\r\n\x1a\n" + b"\x00" * 100 + b'{"class_name": "Sequential", "config": ' \
        b'{"layers": [{"class_name": "Lambda", "config": {}}]}}' + b"\x00" * 10
    (tmp_path / "m.h5").write_bytes(h5)
    assert any(f.rule == "MF-KERAS-LAMBDA" for f in scan_path(tmp_path / "m.h5"))


def _varint(n: int) -> bytes:
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def test_onnx_external_data_and_custom_domain(tmp_path: Path) -> None:
    entry = _field(1, b"location") + _field(2, b"../../etc/passwd")
    tensor = _field(13, entry)
    node = _field(4, b"EvilOp") + _field(7, b"com.evil")
    graph = _field(1, node) + _field(5, tensor)
    model = b"\x08\x07" + _field(7, graph) + _field(8, _field(1, b"com.evil"))
    (tmp_path / "m.onnx").write_bytes(model)
    messages = [f.message for f in scan_path(tmp_path / "m.onnx")]
    assert any("escapes the model folder" in m for m in messages)
    assert any("com.evil" in m for m in messages)
    ok_graph = _field(1, _field(4, b"Relu"))
    (tmp_path / "ok.onnx").write_bytes(b"\x08\x07" + _field(7, ok_graph))
    assert scan_path(tmp_path / "ok.onnx") == []


def test_safetensors_header_checks() -> None:
    import json
    def st(header: dict[str, object], body: bytes) -> bytes:
        raw = json.dumps(header).encode()
        return struct.pack("<Q", len(raw)) + raw + body
    good = st({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, b"\x00" * 16)
    assert sniff(good[:16]) == "safetensors" and safetensors_problems(good) == []
    short = st({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, b"\x00" * 8)
    assert "outside the data" in safetensors_problems(short)[0]
    wrong = st({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}, b"\x00" * 16)
    assert "16 bytes declared, 12 needed" in safetensors_problems(wrong)[0]
    assert "runs past the end" in safetensors_problems(struct.pack("<Q", 10**6) + b"{}")[0]


def test_folder_scans_everything_and_ignores_text(marker: Path, tmp_path: Path) -> None:
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    (tmp_path / "README.md").write_text("Some model\n")
    (tmp_path / "config.json").write_text('{"a": 1}')
    sub = tmp_path / "weights"
    sub.mkdir()
    (sub / "pytorch_model.bin").write_bytes(dumps(Payload(marker)))
    findings = scan_path(tmp_path)
    assert {Path(f.file).name for f in findings} == {"pytorch_model.bin"}
    assert not marker.exists()


@settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash(data: bytes) -> None:
    for prefix in (b"", b"\x80\x04", b"PK\x03\x04", b"\x93NUMPY\x01\x00", b"\x1f\x8b"):
        scan_bytes(prefix + data, "fuzz.bin", name="fuzz.pkl")


@settings(max_examples=300, deadline=2000)
@given(st.data())
def test_truncated_and_mutated_models_never_crash(data: st.DataObject) -> None:
    blob = dumps({"weights": list(range(50)), "name": "m"}, 4) + dumps(Payload(Path("/x")), 2)
    cut = data.draw(st.integers(0, len(blob)))
    flip = data.draw(st.integers(0, len(blob) - 1))
    mutated = bytearray(blob[:cut])
    if mutated and flip < len(mutated):
        mutated[flip] ^= data.draw(st.integers(1, 255))
    findings = scan_bytes(bytes(mutated), "m.pkl", name="m.pkl")
    assert all(f.severity in ("low", "medium", "high", "critical") for f in findings)


def test_hostile_inputs_are_bounded(tmp_path: Path) -> None:
    import time
    bomb = zlib.compress(b"\x00" * (50 * 1024 * 1024))          # 50 MB of zeros in 50 KB
    deep = b"\x80\x04" + b"(" * 200_000 + b"."                   # a huge metastack
    huge_memo = b"\x80\x04" + b"N\x94" * 300_000 + b"."
    for name, blob in (("bomb", bomb), ("deep", deep), ("memo", huge_memo)):
        start = time.monotonic()
        scan_bytes(blob, name, name=f"{name}.pkl")
        assert time.monotonic() - start < 20, name


def test_scanner_never_imports_scanned_modules(tmp_path: Path) -> None:
    data = memo_stack_global("mlthreat_never_imported_module", "boom", "x")
    scan_bytes(data, "x.pkl", name="x.pkl")
    assert "mlthreat_never_imported_module" not in sys.modules


def test_a_text_file_read_as_a_global_opcode_names_the_module_its_first_line_does() -> None:
    """ask-multiple-pdfs' htmlTemplates.py starts with "css = '''": as a pickle, GLOBAL's module
    is that whole first line, which no import finds (pickle.loads raises ModuleNotFoundError),
    not "ss" (pickletools joins module and name with a space). A module line without spaces is
    still judged."""
    import pickle
    text = b"css = '''\n<style>\n.chat-message {\n"
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(text + b".")
    assert scan_bytes(text, "htmlTemplates.py", name="htmlTemplates.py") == []
    found = scan_bytes(b"cos\nsystem\n(S'echo'\ntR.", "x.pkl", name="x.pkl")
    assert any(f.severity == "critical" and "os.system" in f.message for f in found)
