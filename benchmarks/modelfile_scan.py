"""Model-file scanner benchmark: mlthreat against modelscan 0.8.8 and fickling 0.1.12.

Builds its own corpus under benchmarks/.corpus: benign files are real models of scikit-learn,
joblib (plain and every compression), PyTorch (zip, legacy, full modules, optimizer
checkpoints), xgboost, lightgbm, numpy, pandas, scipy, safetensors, ONNX and Keras, some tens of
MB in all; malicious files carry harmless payloads (each would only `touch` a marker file) built
with the public techniques: REDUCE/INST/OBJ/NEWOBJ/STACK_GLOBAL-from-memo, eval/exec/runpy/
subprocess/webbrowser, nested loads, payloads after a benign model or after joblib arrays,
inside PyTorch archives (zip and legacy), joblib compressions, numpy object arrays, Keras Lambda
layers, ONNX external data escaping the folder, and pickles named .safetensors/.bin/none.

The baselines run in their own virtual environment (benchmarks/.baselines-venv, created on first
run from PyPI), each over the whole corpus in one process; mlthreat runs in this process. Nothing
in the corpus is ever loaded: the benchmark checks after every run that no marker file exists.

Run: `make bench` or `.venv/bin/python benchmarks/modelfile_scan.py [--rebuild] [--no-baselines]`.
Goals (issue #4): every code-executing payload detected, no benign model flagged, and at least
10x modelscan's throughput (MB/s) on the same files.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import joblib
import numpy as np

HERE = Path(__file__).resolve().parent
CORPUS = HERE / ".corpus"
VENV = HERE / ".baselines-venv"
BASELINE_PINS = ["modelscan==0.8.8", "fickling==0.1.12", "typing_extensions"]
MARKER_DIR = Path(tempfile.gettempdir()) / "mlthreat-bench-markers"


# ---------------------------------------------------------------------------- payloads
class _Reduce:
    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (self.func, self.args)


def _marker(name: str) -> str:
    return str(MARKER_DIR / name)


def _touch(name: str) -> str:
    return f"touch {_marker(name)}"


def _stack_global(module: str, name: str, arg: str) -> bytes:
    out = b"\x80\x04"
    for text in (module, name):
        raw = text.encode()
        out += b"\x8c" + bytes([len(raw)]) + raw + b"\x94"
    raw = arg.encode()
    return out + b"h\x00h\x01\x93\x8c" + bytes([len(raw)]) + raw + b"\x85R."


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def malicious() -> dict[str, bytes]:
    import bz2
    import gzip
    import lzma
    import zlib
    os_system = _Reduce(os.system, _touch("os"))
    p = {
        "reduce_os_system_p0.pkl": pickle.dumps(os_system, 0),
        "reduce_os_system_p2.pkl": pickle.dumps(os_system, 2),
        "reduce_os_system_p4.pkl": pickle.dumps(os_system, 4),
        "reduce_os_system_p5.pkl": pickle.dumps(os_system, 5),
        "eval.pkl": pickle.dumps(_Reduce(eval, f"open({_marker('eval')!r}, 'w')")),
        "exec.pkl": pickle.dumps(_Reduce(exec, f"open({_marker('exec')!r}, 'w')")),
        "subprocess_popen.pkl": pickle.dumps(_Reduce(subprocess.Popen, ["touch", _marker("sp")])),
        "runpy.pkl": _stack_global("runpy", "_run_code", f"open({_marker('runpy')!r},'w')"),
        "webbrowser.pkl": _stack_global("webbrowser", "open", "http://127.0.0.1:9/"),
        "stack_global_memo.pkl": _stack_global("os", "system", _touch("memo")),
        "inst_p0.pkl": f"(S'{_touch('inst')}'\nios\nsystem\n.".encode(),
        "obj_p1.pkl": b"(cos\nsystem\nX" + struct.pack("<I", len(_touch("obj"))) +
        _touch("obj").encode() + b"o.",
        "builtins_import.pkl": pickle.dumps(_Reduce(__import__, "os")),
        "nested_loads.pkl": pickle.dumps(_Reduce(pickle.loads, pickle.dumps(os_system))),
        "no_extension": pickle.dumps(os_system),
        "named.safetensors": pickle.dumps(os_system),
        "pytorch_model.bin": pickle.dumps(os_system),
        "after_benign_model.pkl": pickle.dumps({"coef": list(range(100))}) + pickle.dumps(os_system),
    }
    from sklearn.linear_model import LogisticRegression
    lr = LogisticRegression().fit(np.random.RandomState(0).randn(100, 5), np.arange(100) % 2)
    buf = io.BytesIO()
    joblib.dump({"model": lr, "weights": np.ones((200, 200))}, buf)
    p["after_joblib_arrays.joblib"] = buf.getvalue() + pickle.dumps(os_system)
    raw = pickle.dumps(os_system)
    p["joblib_zlib.joblib"] = zlib.compress(raw)
    p["joblib_gzip.joblib"] = gzip.compress(raw)
    p["joblib_bz2.joblib"] = bz2.compress(raw)
    p["joblib_lzma.joblib"] = lzma.compress(raw, format=lzma.FORMAT_ALONE)
    p["joblib_xz.joblib"] = lzma.compress(raw)
    p["torch_zip.pt"] = _zip({"archive/data.pkl": raw, "archive/version": b"3\n",
                              "archive/data/0": b"\x00" * 64})
    legacy = b"".join(pickle.dumps(x, 2) for x in (0x1950A86A20F9469CFC6C, 1001, {})) + raw
    p["torch_legacy.pt"] = legacy
    arr = np.array([os_system], dtype=object)
    npy = io.BytesIO()
    np.save(npy, arr, allow_pickle=True)
    p["object_array.npy"] = npy.getvalue()
    npz = io.BytesIO()
    np.savez(npz, w=arr)
    p["object_array.npz"] = npz.getvalue()
    keras_cfg = json.dumps({"class_name": "Sequential", "config": {"layers": [
        {"class_name": "Lambda", "config": {"function": ["4wEAAAAAAAAA", None, None]}}]}})
    p["lambda.keras"] = _zip({"config.json": keras_cfg.encode(), "metadata.json": b"{}",
                              "model.weights.h5": b"\x89HDF\r\n\x1a\n" + b"\x00" * 32})
    p["lambda.h5"] = b"\x89HDF\r\n\x1a\n" + b"\x00" * 64 + keras_cfg.encode() + b"\x00"
    return p


def onnx_escape() -> bytes:
    def v(n: int) -> bytes:
        out = b""
        while True:
            b, n = n & 0x7F, n >> 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out

    def f(num: int, payload: bytes) -> bytes:
        return v(num << 3 | 2) + v(len(payload)) + payload
    tensor = f(13, f(1, b"location") + f(2, b"../../../../etc/shadow"))
    return b"\x08\x07" + f(7, f(5, tensor))


# ---------------------------------------------------------------------------- benign
def benign(folder: Path) -> None:
    import pandas as pd
    import scipy.sparse as sp
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC
    rng = np.random.RandomState(0)
    x, y = rng.randn(4000, 20), rng.randint(0, 2, 4000)
    df = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": np.where(x[:, 2] > 0, "u", "v")})
    models = {
        "rf": RandomForestClassifier(60, random_state=0, n_jobs=1).fit(x, y),
        "hgb": HistGradientBoostingClassifier(max_iter=50).fit(x, y),
        "lr": LogisticRegression(max_iter=300).fit(x, y),
        "svc": SVC(probability=True).fit(x[:800], y[:800]),
        "mlp": MLPClassifier((64,), max_iter=30).fit(x, y),
        "kmeans": KMeans(8, n_init=2, random_state=0).fit(x),
        "pipeline": make_pipeline(ColumnTransformer([("n", StandardScaler(), ["a", "b"]),
                                                     ("c", OneHotEncoder(), ["c"])]),
                                  LogisticRegression()).fit(df, y),
        "frame": pd.DataFrame(x), "sparse": sp.random(2000, 2000, density=0.01, format="csr"),
    }
    for name, m in models.items():
        for proto in (2, 4, 5):
            (folder / f"{name}_p{proto}.pkl").write_bytes(pickle.dumps(m, proto))
        for comp, tag in ((0, "plain"), (3, "zlib"), (("gzip", 3), "gzip"), (("bz2", 3), "bz2"),
                          (("lzma", 3), "lzma"), (("xz", 3), "xz")):
            joblib.dump(m, folder / f"{name}_{tag}.joblib", compress=comp)
    np.save(folder / "weights.npy", rng.randn(1500, 1000))
    np.savez_compressed(folder / "arrays.npz", a=rng.randn(300, 300), b=np.arange(1000))
    _torch(folder)
    _boosters(folder, x, y)
    _safetensors(folder, rng)
    (folder / "model.onnx").write_bytes(_onnx_ok())
    (folder / "dense.keras").write_bytes(_zip({"config.json": json.dumps({
        "class_name": "Sequential", "module": "keras", "config": {"layers": [
            {"class_name": "Dense", "module": "keras.layers", "config": {"units": 4}}]}}).encode(),
        "metadata.json": b"{}", "model.weights.h5": b"\x89HDF\r\n\x1a\n" + b"\x00" * 64}))


def _torch(folder: Path) -> None:
    try:
        import torch
    except ImportError:
        print("torch not installed: PyTorch files left out of the benign corpus")
        return
    net = torch.nn.Sequential(torch.nn.Linear(512, 2048), torch.nn.ReLU(),
                              torch.nn.Linear(2048, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    torch.save(net.state_dict(), folder / "mlp_state.pt")
    torch.save(net.state_dict(), folder / "mlp_legacy.pt", _use_new_zipfile_serialization=False)
    torch.save(net, folder / "mlp_module.pt")
    opt = torch.optim.Adam(net.parameters())
    net(torch.randn(4, 512)).sum().backward()
    opt.step()
    torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 7},
               folder / "checkpoint.pth")


def _boosters(folder: Path, x: np.ndarray, y: np.ndarray) -> None:
    try:
        import lightgbm
        import xgboost
    except ImportError:
        print("xgboost/lightgbm not installed: boosters left out of the benign corpus")
        return
    xgb = xgboost.XGBClassifier(n_estimators=80, max_depth=5).fit(x, y)
    lgb = lightgbm.LGBMClassifier(n_estimators=80, verbose=-1).fit(x, y)
    for name, m in (("xgb", xgb), ("lgbm", lgb)):
        (folder / f"{name}.pkl").write_bytes(pickle.dumps(m, 4))
        joblib.dump(m, folder / f"{name}.joblib")
    xgb.get_booster().save_model(str(folder / "xgb_booster.ubj"))


def _safetensors(folder: Path, rng: np.random.RandomState) -> None:
    tensors = {"w1": rng.randn(512, 512).astype(np.float32), "b1": np.zeros(512, np.float32)}
    header, body, offset = {}, b"", 0
    for name, t in tensors.items():
        raw = t.tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        body += raw
        offset += len(raw)
    text = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + body)


def _onnx_ok() -> bytes:
    def f(num: int, payload: bytes) -> bytes:
        return bytes([num << 3 | 2, len(payload)]) + payload
    return b"\x08\x07" + f(7, f(1, f(4, b"Relu")))


def build(rebuild: bool) -> tuple[list[Path], list[Path]]:
    bad_dir, good_dir = CORPUS / "malicious", CORPUS / "benign"
    if rebuild or not bad_dir.exists() or not good_dir.exists():
        shutil.rmtree(CORPUS, ignore_errors=True)
        bad_dir.mkdir(parents=True)
        good_dir.mkdir(parents=True)
        for name, data in malicious().items():
            (bad_dir / name).write_bytes(data)
        (bad_dir / "escape.onnx").write_bytes(onnx_escape())
        benign(good_dir)
    return sorted(bad_dir.iterdir()), sorted(good_dir.iterdir())


# ---------------------------------------------------------------------------- runners
def run_mlthreat(files: list[Path]) -> tuple[dict[str, str], float]:
    from mlthreat.scanners.modelfile import scan_path
    verdicts: dict[str, str] = {}
    start = time.perf_counter()
    for path in files:
        findings = scan_path(path)
        worst = max((["low", "medium", "high", "critical"].index(f.severity) for f in findings),
                    default=-1)
        verdicts[path.name] = "flagged" if worst >= 1 else "clean"
    return verdicts, time.perf_counter() - start


HELPER = r'''
import json, sys, time, io, contextlib, logging
logging.disable(logging.CRITICAL)
tool, files = sys.argv[1], sys.argv[2:]
out, start = {}, time.perf_counter()
if tool == "modelscan":
    from modelscan.modelscan import ModelScan
    for f in files:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                r = ModelScan().scan(f)
            out[f] = "flagged" if r.get("issues") else ("error" if r.get("errors") else "clean")
        except Exception:
            out[f] = "error"
else:
    import fickling
    for f in files:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                out[f] = "clean" if fickling.is_likely_safe(f) else "flagged"
        except Exception:
            out[f] = "error"
print(json.dumps({"verdicts": out, "seconds": time.perf_counter() - start}))
'''


def baseline_python() -> Path | None:
    python = VENV / "bin" / "python"
    if python.exists():
        return python
    print(f"creating {VENV} with {', '.join(BASELINE_PINS)} (first run only) …")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *BASELINE_PINS],
                       check=True, timeout=900)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"baselines unavailable ({exc}); reporting mlthreat alone")
        shutil.rmtree(VENV, ignore_errors=True)
        return None
    return python


def run_baseline(python: Path, tool: str, files: list[Path]) -> tuple[dict[str, str], float]:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(HELPER)
    proc = subprocess.run([str(python), f.name, tool, *map(str, files)], capture_output=True,
                          text=True, timeout=3600)
    os.unlink(f.name)
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return {Path(k).name: v for k, v in data["verdicts"].items()}, float(data["seconds"])


def _same_files(results: dict[str, tuple[dict[str, str], float]], files: list[Path]) -> None:
    """Throughput on the files modelscan scans without error, timed again for both tools."""
    scanned = [p for p in files if results["modelscan"][0].get(p.name) != "error"]
    python = baseline_python()
    if not scanned or python is None:
        return
    mb = sum(p.stat().st_size for p in scanned) / 1e6
    _, ours = run_mlthreat(scanned)
    _, theirs = run_baseline(python, "modelscan", scanned)
    print(f"throughput on the {len(scanned)} files modelscan scans without error ({mb:.1f} MB): "
          f"mlthreat {mb / ours:.1f} MB/s, modelscan API in one process {mb / theirs:.1f} MB/s, "
          f"ratio {theirs / ours:.1f}x")
    cli = python.parent / "modelscan"
    if cli.exists():
        start = time.perf_counter()
        for p in scanned:
            subprocess.run([str(cli), "-p", str(p)], capture_output=True, timeout=600)
        per_file = time.perf_counter() - start
        print(f"same files, modelscan CLI once per file as users run it (BASELINES.md measured "
              f"it this way): {mb / per_file:.1f} MB/s, ratio {per_file / ours:.0f}x")


# ---------------------------------------------------------------------------- report
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="rebuild the corpus")
    parser.add_argument("--no-baselines", action="store_true", help="measure mlthreat only")
    args = parser.parse_args()
    MARKER_DIR.mkdir(exist_ok=True)
    bad, good = build(args.rebuild)
    files = bad + good
    mb = sum(p.stat().st_size for p in files) / 1e6
    print(f"corpus: {len(bad)} malicious, {len(good)} benign files, {mb:.1f} MB in {CORPUS}")
    results = {"mlthreat": run_mlthreat(files)}
    python = None if args.no_baselines else baseline_python()
    if python:
        for tool in ("modelscan", "fickling"):
            results[tool] = run_baseline(python, tool, files)
    bad_names, good_names = {p.name for p in bad}, {p.name for p in good}
    print(f"\n{'tool':<10} {'detected malicious':>19} {'flagged benign':>15} {'errors':>7} "
          f"{'seconds':>8} {'MB/s':>8}")
    speed = {}
    for tool, (verdicts, seconds) in results.items():
        det = sum(verdicts.get(n) == "flagged" for n in bad_names)
        fp = sum(verdicts.get(n) == "flagged" for n in good_names)
        err = sum(v == "error" for v in verdicts.values())
        speed[tool] = mb / seconds
        print(f"{tool:<10} {det:>8}/{len(bad_names):<3} ({det / len(bad_names):>5.1%}) "
              f"{fp:>5}/{len(good_names):<3}({fp / len(good_names):>5.1%}) {err:>6} "
              f"{seconds:>8.2f} {speed[tool]:>8.1f}")
    ours = results["mlthreat"][0]
    missed = sorted(n for n in bad_names if ours[n] != "flagged")
    false_pos = sorted(n for n in good_names if ours[n] == "flagged")
    print(f"\nmlthreat missed: {missed or 'nothing'}; flagged benign: {false_pos or 'nothing'}")
    if "modelscan" in speed:
        print(f"throughput, whole corpus: mlthreat / modelscan = "
              f"{speed['mlthreat'] / speed['modelscan']:.1f}x (goal: at least 10x); modelscan "
              "stops at once on the files it errors on")
        _same_files(results, files)
    ran = sorted(MARKER_DIR.iterdir())
    print(f"payload markers created during the benchmark: {len(ran)} (must be 0)")
    if ran:
        sys.exit(1)


if __name__ == "__main__":
    main()
