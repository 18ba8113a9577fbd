"""Hostile and broken inputs: the scanner never crashes, never hangs, keeps memory bounded, and a
file it cannot scan becomes a finding while the scan goes on."""

from __future__ import annotations

import io
import pickle
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlthreat.scanners import modelfile
from mlthreat.scanners.modelfile import scan_bytes, scan_path

DEEP = "[" * 1000 + "]" * 1000


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _safetensors(header: str) -> bytes:
    raw = header.encode()
    return struct.pack("<Q", len(raw)) + raw


def test_json_nested_deep_in_every_format_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    cases = {
        "a.safetensors": _safetensors('{"x": ' + DEEP + "}"),
        "b.keras": _zip({"config.json": ('{"class_name": "S", "config": ' + DEEP + "}").encode(),
                         "metadata.json": b"{}"}),
        "c.h5": b"\x89HDF\r\n\x1a\n" + ('{"class_name": "S", "config": ' + DEEP + "}").encode(),
        "config.json": ('{"class_name": "S", "config": ' + DEEP + "}").encode(),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        found = scan_path(tmp_path / name)
        assert all(f.rule != "MF-SCAN-FAILED" for f in found), (name, found)
    assert any(f.rule == "MF-SAFETENSORS" for f in scan_path(tmp_path / "a.safetensors"))
    assert any(f.rule == "MF-UNPARSEABLE" for f in scan_path(tmp_path / "b.keras"))


def test_tuple_nested_200000_deep_as_a_dict_key_does_not_kill_the_process(tmp_path: Path) -> None:
    # hashing it would overflow the C stack: run in a child so a segfault fails the test cleanly
    body = b"\x80\x04}" + b"N" + b"\x85" * 200_000 + b"Ns."
    path = tmp_path / "deep.pkl"
    path.write_bytes(body)
    code = ("from pathlib import Path\nfrom mlthreat.scanners.modelfile import scan_path\n"
            f"print(len(scan_path(Path({str(path)!r}))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-500:]


def _object_wrapper_prefix() -> bytes:
    """A joblib NumpyArrayWrapper of an object array (its nested pickle follows BUILD)."""
    from joblib.numpy_pickle import NumpyArrayWrapper
    wrapper = NumpyArrayWrapper.__new__(NumpyArrayWrapper)
    wrapper.__dict__.update({"subclass": np.ndarray, "shape": (1,), "order": "C",
                             "dtype": np.dtype(object), "allow_mmap": False,
                             "numpy_array_alignment_bytes": None})
    return pickle.dumps(wrapper, protocol=2)[:-1]


def test_joblib_object_arrays_nested_300_deep_stop_with_a_finding() -> None:
    prefix = _object_wrapper_prefix()
    data = prefix * 300 + b"N." + b"." * 300
    start = time.monotonic()
    found = scan_bytes(data, "nested.joblib", name="nested.joblib")
    assert time.monotonic() - start < 10
    assert any(f.rule == "MF-UNPARSEABLE" and "deep" in f.message for f in found), found


@pytest.mark.parametrize("damage", ["method", "truncated", "central"])
def test_malformed_zips_are_findings(damage: str, tmp_path: Path) -> None:
    data = bytearray(_zip({"archive/data.pkl": pickle.dumps({"a": 1})}, zipfile.ZIP_DEFLATED))
    if damage == "method":        # an unsupported compression method (NotImplementedError)
        at = data.find(b"archive/data.pkl", 40)
        data[at - 46 + 10:at - 46 + 12] = struct.pack("<H", 99)
        data[8:10] = struct.pack("<H", 99)
    elif damage == "truncated":   # the member's data cut short (EOFError / zlib error)
        data = data[:40] + data[60:]
    else:                         # the central directory points past the end
        data[-6:-2] = struct.pack("<I", len(data) + 1000)
    path = tmp_path / "m.pt"
    path.write_bytes(bytes(data))
    found = scan_path(path)
    assert found and all(f.severity in ("high", "critical") for f in found), found
    assert all(f.rule != "MF-SCAN-FAILED" for f in found)


def test_repeated_braces_in_h5_are_linear(tmp_path: Path) -> None:
    path = tmp_path / "m.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b'{"class_name": "A", ' * 50_000)   # 1 MB
    start = time.monotonic()
    scan_path(path)
    assert time.monotonic() - start < 5


def test_decompression_bomb_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    z = zlib.compressobj(9)
    zero = b"\x00" * 1024**2
    packed = b"".join(z.compress(zero) for _ in range(400)) + z.flush()   # 400 MiB in ~400 kB
    path = tmp_path / "bomb.joblib"
    path.write_bytes(packed)
    # VmHWM: the peak of this process's own memory (ru_maxrss would carry pytest's over exec)
    code = ("from pathlib import Path\n"
            "from mlthreat.scanners.modelfile import scan_path\n"
            f"found = scan_path(Path({str(path)!r}))\n"
            "print([f.rule for f in found])\n"
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)
    rules, peak_kib = done.stdout.strip().splitlines()
    assert "MF-BOMB" in rules
    assert int(peak_kib) < 1024 * 1024          # under 1 GiB resident, whatever it unpacks to


def test_nested_archives_share_one_deadline(tmp_path: Path) -> None:
    data = pickle.dumps({"a": 1})
    for _ in range(8):
        data = _zip({"inner.zip": data})
    found = scan_bytes(data, "deep.zip", name="deep.zip")
    assert any(f.rule == "MF-NESTING" for f in found)
    # one budget for every level: a budget already spent stops at once
    budget = modelfile.Budget(seconds=0)
    time.sleep(0.01)
    found = scan_bytes(data, "deep.zip", name="deep.zip", at=modelfile.At(0, budget))
    assert [f.rule for f in found] == ["MF-TIMEOUT"]


def test_a_scanner_failure_on_one_file_is_a_finding_and_the_scan_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.npy").write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f8'}")
    (tmp_path / "b.pkl").write_bytes(pickle.dumps(__import__("os").system, protocol=4))

    def broken(*args: object) -> list[object]:
        raise MemoryError("simulated")
    monkeypatch.setitem(modelfile._HANDLERS, "npy", broken)
    found = scan_path(tmp_path)
    assert [f.rule for f in found if f.file.endswith("a.npy")] == ["MF-SCAN-FAILED"]
    assert any(f.file.endswith("b.pkl") and f.severity == "critical" for f in found)


def _seeds() -> dict[str, bytes]:
    import joblib
    buf = io.BytesIO()
    joblib.dump({"w": np.arange(12.0), "o": np.array(["a", 1], dtype=object)}, buf, compress=3)
    npy = io.BytesIO()
    np.save(npy, np.arange(6))
    return {"joblib": buf.getvalue(), "npy": npy.getvalue(),
            "pickle": pickle.dumps({"a": [1, 2.0, "x"], "b": np.arange(3)}, protocol=4),
            "keras": _zip({"config.json": b'{"class_name": "Sequential", "config": {}}',
                           "metadata.json": b"{}"}),
            "safetensors": _safetensors('{"w": {"dtype": "F32", "shape": [1], '
                                        '"data_offsets": [0, 4]}}') + b"\x00" * 4,
            "torchzip": _zip({"archive/data.pkl": pickle.dumps({"x": 1}, protocol=2),
                              "archive/version": b"3\n"}),
            "h5": b"\x89HDF\r\n\x1a\n" + b"\x00" * 64 + b'{"class_name": "Sequential", '
                  b'"config": {"layers": [{"class_name": "Dense", "module": "keras.layers"}]}}',
            "onnx": _onnx_seed(), "gguf": _gguf_seed(), "tar": _tar_seed(),
            "legacy": _legacy_torch_seed()}


def _onnx_seed() -> bytes:
    from onnx import TensorProto, helper
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                          [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    return bytes(helper.make_model(graph).SerializeToString())


def _gguf_seed() -> bytes:
    from benchmarks import payloads
    return payloads.gguf("{% for m in messages %}{{ m['content'] }}{% endfor %}")


def _tar_seed() -> bytes:
    from benchmarks import payloads
    return payloads.torch_legacy_tar(("builtins", "int", "1"))


def _legacy_torch_seed() -> bytes:
    magic = pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2)
    return magic + pickle.dumps(1001, protocol=2) + pickle.dumps({}, protocol=2) + \
        pickle.dumps({"w": 1}, protocol=2) + pickle.dumps([], protocol=2) + b"\x00" * 40


SEEDS = _seeds()


@settings(max_examples=400, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(SEEDS)), st.lists(st.tuples(st.integers(0, 10**6),
                                                          st.integers(0, 255)), max_size=8),
       st.integers(0, 10**6))
def test_mutated_files_of_every_format_never_crash(kind: str, flips: list[tuple[int, int]],
                                                   cut: int) -> None:
    data = bytearray(SEEDS[kind])
    for at, value in flips:
        data[at % len(data)] = value
    data = data[: max(1, cut % (len(data) + 1))]
    found = scan_bytes(bytes(data), f"x.{kind}", name=f"x.{kind}")
    assert isinstance(found, list)
    assert all(f.rule != "MF-SCAN-FAILED" for f in found), found


def test_lz4_joblib_files_are_scanned(tmp_path: Path) -> None:
    import joblib
    pytest.importorskip("lz4")
    joblib.dump({"w": np.arange(5.0)}, tmp_path / "ok.joblib", compress="lz4")
    assert scan_path(tmp_path / "ok.joblib") == []
    joblib.dump({"w": __import__("os").system}, tmp_path / "bad.joblib", compress="lz4")
    assert any(f.severity == "critical" for f in scan_path(tmp_path / "bad.joblib"))


def test_lz4_without_the_lz4_package_is_reported_unscanned(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lz4", None)          # import lz4 now fails
    monkeypatch.setitem(sys.modules, "lz4.frame", None)
    found = scan_bytes(b"\x04\x22\x4d\x18" + b"\x00" * 32, "m.joblib", name="m.joblib")
    assert [f.rule for f in found] == ["MF-UNSCANNED"]


@pytest.mark.parametrize("text", [b"x = 1\n", b"x^2 + y\n", b"x}\n", b"ZF is not a header\n"])
def test_text_that_passes_the_zlib_header_check_is_no_model(text: bytes, tmp_path: Path) -> None:
    # 0x78 0x20 ("x ") passes zlib's check ((0x78 * 256 + 0x20) % 31 == 0), as do many others:
    # such a file was read as a broken joblib stream and called unsafe (found by the pre-commit
    # hook on a one-line Python file). joblib's reader fails on it before unpickling anything.
    (tmp_path / "a.py").write_bytes(text)
    assert "zlib" in modelfile.kinds(text)
    with pytest.raises(zlib.error):
        zlib.decompress(text)
    assert scan_path(tmp_path / "a.py") == []


def test_a_zlib_stream_broken_after_its_first_bytes_stays_a_finding(tmp_path: Path) -> None:
    # joblib streams what it inflates into the unpickler: what came out before the break runs
    evil = b"cos\nsystem\n(S'id'\ntR." + b"N" * 200_000 + b"."
    stream = zlib.compress(evil)
    (tmp_path / "m.joblib").write_bytes(stream[:-20])
    found = scan_path(tmp_path / "m.joblib")
    assert any(f.severity in ("high", "critical") for f in found), found
