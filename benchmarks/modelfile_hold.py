"""Does the model-file scanner hold? The goals of issue #14, measured on corpora built here.

1. Payloads (benchmarks/payloads.py plus the release-0.1 corpus of modelfile_scan.py): every
   code-executing file at high or above; the hold-out techniques reported apart.
2. Benign models (benchmarks/model_corpus.py: every scikit-learn estimator 6 ways, torch,
   boosters, numpy, pandas, scipy, ONNX, safetensors): findings at medium or above (goal 0).
3. Fuzz: a seeded, mutated copy of the small benign and payload files (bytes flipped, cut,
   duplicated, spliced) plus hostile generators, scanned in a child process: crashes (an
   exception, a "could not be scanned" finding, or the child killed) and files over the deadline
   (goal 0 each), and the child's peak resident memory (goal under 1 GiB; inputs are < 10 MB).
4. Throughput on tensor-heavy files (torch archives, .npy, safetensors), beside reading the same
   bytes with sha256 in this process as the yardstick (the ratio is what to compare).
5. Real files nobody here wrote: this environment's site-packages (tens of thousands of files,
   the test data of numpy, joblib, ONNX and others among them), findings at medium or above.

Run: `.venv/bin/python benchmarks/modelfile_hold.py [--rebuild] [--fuzz N]` (make bench).
Nothing is ever loaded; markers that a payload would create are checked to be absent.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import model_corpus, payloads  # noqa: E402

ROOT = HERE / ".corpus-hold"
ORDER = ["low", "medium", "high", "critical"]


def worst(findings: list) -> int:  # type: ignore[type-arg]
    return max((ORDER.index(f.severity) for f in findings), default=-1)


def build(rebuild: bool, marker: Path) -> tuple[Path, dict[str, list[Path]]]:
    benign = ROOT / "benign"
    if rebuild or not benign.exists():
        shutil.rmtree(benign, ignore_errors=True)
        model_corpus.build(benign)
    bad = payloads.write_all(ROOT / "payloads", marker)
    return benign, bad


def payload_goal(bad: dict[str, list[Path]]) -> None:
    from mlthreat.scanners.modelfile import scan_path
    old = HERE / ".corpus" / "malicious"
    extra = {f"release-0.1/{p.name}": [p] for p in sorted(old.iterdir())} if old.exists() else {}
    missed, seen, hold = [], 0, [0, 0]
    for name, paths in {**bad, **extra}.items():
        top = max(worst(scan_path(p)) for p in paths)
        seen += 1
        if name.startswith("holdout-"):
            hold[0] += 1
            hold[1] += top >= 2
        if top < 2:
            missed.append(f"{name} ({ORDER[top] if top >= 0 else 'nothing'})")
    print(f"payloads at high or above: {seen - len(missed)}/{seen}"
          f" (hold-out techniques: {hold[1]}/{hold[0]}); below high: {missed or 'none'}")
    if not extra:
        print("  (release-0.1 payloads not built: run benchmarks/modelfile_scan.py once)")


def benign_goal(benign: Path) -> None:
    from mlthreat.scanners.modelfile import scan_path
    files = sorted(p for p in benign.rglob("*") if p.is_file())
    flagged, low = [], 0
    for p in files:
        found = scan_path(p)
        low += sum(f.severity == "low" for f in found)
        if worst(found) >= 1:
            flagged.append((p.relative_to(benign), sorted({f.rule for f in found})))
    mb = sum(p.stat().st_size for p in files) / 1e6
    print(f"benign saves with a finding at medium or above: {len(flagged)}/{len(files)} "
          f"({mb:.0f} MB; low findings: {low})")
    for name, rules in flagged[:20]:
        print(f"  {name}: {rules}")


def _mutations(seeds: list[bytes], n: int, rng: random.Random) -> list[bytes]:
    out = []
    for _ in range(n):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.choice(["flip", "cut", "dup", "splice", "insert"])
            if not data:
                data = bytearray(b"\x80")
            at = rng.randrange(len(data))
            if op == "flip":
                for _ in range(rng.randint(1, 8)):
                    data[rng.randrange(len(data))] = rng.randrange(256)
            elif op == "cut":
                data = data[:at]
            elif op == "dup":
                data = data[:at] + data[at:at + 64] * rng.randint(2, 50) + data[at:]
            elif op == "splice":
                other = rng.choice(seeds)
                data = data[:at] + other[rng.randrange(len(other)):][:4096]
            else:
                data[at:at] = bytes([rng.choice(b"(0.}]N\x80\x93\x94Rcbs")]) * rng.randint(1, 40)
        out.append(bytes(data[: 10 * 1024**2]))
    return out


def _hostile() -> dict[str, bytes]:
    import struct
    deep = b"[" * 100_000 + b"]" * 100_000
    return {
        "deep.safetensors": struct.pack("<Q", len(deep) + 7) + b'{"x": ' + deep + b"}",
        "braces.h5": b"\x89HDF\r\n\x1a\n" + b'{"class_name": "A", ' * 50_000,
        "deep-key.pkl": b"\x80\x04}N" + b"\x85" * 200_000 + b"Ns.",
        "deep-list.pkl": b"\x80\x04" + b"]" * 500_000 + b"a" * 499_999 + b".",
        "memo-flood.pkl": b"\x80\x04" + b"N\x94" * 2_000_000 + b".",
        "marks.pkl": b"(" * 1_000_000 + b".",
        "bomb.z": __import__("zlib").compress(b"\x00" * (300 * 1024**2), 9),
    }


CHILD = r'''
import json, sys, time
from pathlib import Path
from mlthreat.scanners.modelfile import scan_path
from mlthreat.scanners.pickle_scan import MAX_SECONDS
folder = Path(sys.argv[1])
crashes, slow, slowest = [], [], 0.0
for p in sorted(folder.iterdir()):
    start = time.monotonic()
    try:
        found = scan_path(p)
        if any(f.rule == "MF-SCAN-FAILED" for f in found):
            crashes.append(p.name)
    except BaseException as exc:
        crashes.append(f"{p.name}: {type(exc).__name__}")
    took = time.monotonic() - start
    slowest = max(slowest, took)
    if took > MAX_SECONDS + 5:
        slow.append(p.name)
peak = [l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps({"crashes": crashes, "slow": slow, "slowest": slowest,
                  "peak_mib": int(peak) / 1024}))
'''


def fuzz_goal(benign: Path, bad: dict[str, list[Path]], n: int) -> None:
    rng = random.Random(14)
    small = [p for p in benign.rglob("*") if p.is_file() and p.stat().st_size < 200_000]
    small += [p for paths in bad.values() for p in paths if p.is_file()]
    seeds = [p.read_bytes() for p in rng.sample(small, min(400, len(small)))]
    with tempfile.TemporaryDirectory(prefix="mlthreat-fuzz-") as tmp:
        folder = Path(tmp)
        for i, data in enumerate(_mutations(seeds, n, rng)):
            (folder / f"m{i:05d}.bin").write_bytes(data)
        for name, data in _hostile().items():
            (folder / name).write_bytes(data)
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-c", CHILD, str(folder)], capture_output=True,
                              text=True, check=False)
        took = time.monotonic() - start
    if done.returncode != 0:
        print(f"fuzz: the scanning process died (exit {done.returncode}): "
              f"{done.stderr[-400:]}")
        return
    r = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"fuzz: {n} mutated files + {len(_hostile())} hostile ones in {took:.0f} s: crashes "
          f"{len(r['crashes'])}, over the deadline {len(r['slow'])}, slowest file "
          f"{r['slowest']:.1f} s, peak memory {r['peak_mib']:.0f} MiB (goal < 1024)")
    for what in (r["crashes"] + r["slow"])[:10]:
        print(f"  {what}")


def throughput(benign: Path) -> None:
    from mlthreat.scanners.modelfile import scan_path
    tmp = Path(tempfile.mkdtemp(prefix="mlthreat-tensors-"))
    try:
        import numpy as np
        rng = np.random.RandomState(0)
        for i in range(4):
            np.save(tmp / f"big{i}.npy", rng.randn(4_000_000))
        try:
            import torch
            for i in range(4):
                torch.save({"w": torch.randn(4_000_000), "b": torch.randn(1000)},
                           tmp / f"big{i}.pt")
                torch.save({"w": torch.randn(2_000_000)}, tmp / f"legacy{i}.pt",
                           _use_new_zipfile_serialization=False)
        except ImportError:
            pass
        files = sorted(tmp.iterdir()) + sorted(benign.rglob("*.safetensors"))
        mb = sum(p.stat().st_size for p in files) / 1e6
        best_scan = best_hash = 1e9
        for _ in range(3):
            start = time.perf_counter()
            for p in files:
                scan_path(p)
            best_scan = min(best_scan, time.perf_counter() - start)
            start = time.perf_counter()
            for p in files:
                hashlib.sha256(p.read_bytes()).digest()
            best_hash = min(best_hash, time.perf_counter() - start)
        print(f"throughput on {len(files)} tensor-heavy files ({mb:.0f} MB): scan "
              f"{mb / best_scan:.0f} MB/s; reading + sha256 {mb / best_hash:.0f} MB/s "
              f"(scan / sha256 = {best_hash / best_scan:.2f})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def installed_goal() -> None:
    import sysconfig

    from mlthreat.scanners.modelfile import scan_path, walk
    root = Path(sysconfig.get_paths()["purelib"])
    files = 0
    flagged: list[tuple[str, str]] = []
    start = time.monotonic()
    for path, _ in walk(root):
        files += 1
        flagged += [(str(path.relative_to(root)), f.rule) for f in scan_path(path)
                    if f.severity != "low"]
    print(f"site-packages ({files} files, {time.monotonic() - start:.0f} s): findings at medium "
          f"or above: {len(flagged)}")
    for name, rule in flagged[:10]:
        print(f"  {name}: {rule}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="rebuild the benign corpus")
    parser.add_argument("--fuzz", type=int, default=3000, help="mutated files (default 3000)")
    args = parser.parse_args()
    marker_dir = Path(tempfile.mkdtemp(prefix="mlthreat-markers-"))
    marker = marker_dir / "payload-ran"
    benign, bad = build(args.rebuild, marker)
    payload_goal(bad)
    benign_goal(benign)
    fuzz_goal(benign, bad, args.fuzz)
    throughput(benign)
    installed_goal()
    ran = marker.exists()
    print(f"payload markers created: {int(ran)} (must be 0)")
    shutil.rmtree(marker_dir, ignore_errors=True)
    if ran:
        sys.exit(1)


if __name__ == "__main__":
    main()
