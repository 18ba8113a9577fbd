"""Probes and scans on a Dask cluster against the same work on this machine, in one run.

1. The reference case's probes (what `assess --budget ...` runs after its scan; the scan is
   left out so that only the distributed part is timed), with `--jobs 1`, `--jobs N` (joblib,
   local processes), and on a LocalCluster of 1 and of N worker processes (one thread each) on
   127.0.0.1. Every run must give the same evidence; it prints the seconds, the overhead
   against the local run with the same number of processes, and the scaling from 1 to N.
2. A scan of a synthetic model registry (default 10,000 files under benchmarks/.registry):
   the benchmark corpus's real models of every format (benchmarks/model_corpus.py) and its
   malicious files (benchmarks/modelfile_scan.py), repeated as team/model/version folders of
   hard links, plus a few large PyTorch archives and safetensors files. Scanned with the
   model-file scanner in this process, and on LocalClusters of 1 and N workers; the findings must
   be identical.
3. The per-task costs and the bytes each probe task moves, from which benchmarks/README.md
   estimates the same work on a 20-node cluster.

Run: `.venv/bin/python benchmarks/cluster.py [--budget standard] [--probes KINDS] [--files 10000]
[--workers 2] [--only probes|scan]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))
SPEC = ROOT / "examples" / "credit-scoring" / "pipeline.yaml"
REGISTRY = HERE / ".registry"


def evidence_key(evidence: list[Any]) -> list[tuple[Any, ...]]:
    return [(e.component, e.source, e.metric, e.value, e.interval) for e in evidence]


def probes(budget: str, workers: int, kinds: tuple[str, ...]) -> None:
    from mlthreat.catalog import load_catalog
    from mlthreat.cluster import connect
    from mlthreat.pipeline import load_pipeline
    from mlthreat.probes.cluster import ship
    from mlthreat.probes.runner import run_probes
    pipeline = load_pipeline(SPEC, load_catalog())
    rows: list[tuple[str, int, float]] = []
    reference: list[tuple[Any, ...]] | None = None
    tasks: list[Any] = []
    for label, jobs, cluster_workers in (("--jobs", 1, 0), ("--jobs", workers, 0),
                                         ("LocalCluster", 1, 1),
                                         ("LocalCluster", workers, workers)):
        if cluster_workers:
            with connect(f"local:{cluster_workers}") as client:
                client.wait_for_workers(cluster_workers)
                # workers warmed up (imports) as a long-lived cluster would be
                client.run(__import__, "mlthreat.probes.runner")
                start = time.perf_counter()
                runs = run_probes(pipeline, kinds, budget=budget, cluster=client)
                seconds = time.perf_counter() - start
            found = [e for r in runs for e in r.results]
        else:
            start = time.perf_counter()
            runs = run_probes(pipeline, kinds, budget=budget, jobs=jobs)
            seconds = time.perf_counter() - start
            found = [e for r in runs for e in r.results]
            if jobs == 1:
                tasks = found
        key = evidence_key(found)
        if reference is None:
            reference = key
        same = "same evidence" if key == reference else "EVIDENCE DIFFERS"
        rows.append((label, jobs, seconds))
        print(f"  {label:13s} {jobs} process(es): {seconds:7.1f} s  ({same})", flush=True)
    local1, local_n, cl1, cl_n = (s for _, _, s in rows)
    print(f"probes, budget {budget}: overhead of the cluster against local processes: "
          f"1 worker {cl1 / local1:.2f}x, {workers} workers {cl_n / local_n:.2f}x; scaling 1 -> "
          f"{workers}: local {local1 / local_n:.2f}x, cluster {cl1 / cl_n:.2f}x")
    print("per probe task (one process, --jobs 1): seconds, and the files shipped per component")
    shipped = {c.id: sum(len(b) for b in ship(pipeline, c).files.values())
               for c in pipeline.spec.components if c.probe is not None}
    for e in sorted(tasks, key=lambda e: -e.seconds):
        print(f"  {e.seconds:7.1f} s  {e.source.removeprefix('probe:'):18s} {e.component:18s} "
              f"files {shipped[e.component] / 1e6:.1f} MB")
    total = sum(e.seconds for e in tasks)
    print(f"  sum {total:.1f} s over {len(tasks)} probes; longest {max(e.seconds for e in tasks):.1f} s")


def registry(files: int) -> tuple[Path, int]:
    """benchmarks/.registry with `files` files (built once, reused while the count matches)."""
    stamp = REGISTRY / f".files-{files}"
    if stamp.exists():
        return REGISTRY, files
    shutil.rmtree(REGISTRY, ignore_errors=True)
    seeds = REGISTRY / "_seeds"
    from model_corpus import build
    from modelfile_scan import malicious
    build(seeds, progress=False)
    for name, blob in malicious().items():
        (seeds / "malicious").mkdir(parents=True, exist_ok=True)
        (seeds / "malicious" / name).write_bytes(blob)
    import io
    import json
    import struct

    import numpy as np
    import torch
    large = seeds / "large"
    large.mkdir()
    for n in range(3):                      # some large files: 64-160 MB each
        buf = io.BytesIO()
        torch.save({"w": torch.zeros((n + 2) * 8_000_000)}, buf)
        (large / f"big-{n}.pt").write_bytes(buf.getvalue())
        size = (n + 2) * 16_000_000
        header = json.dumps({"w": {"dtype": "U8", "shape": [size],
                                   "data_offsets": [0, size]}}).encode()
        (large / f"big-{n}.safetensors").write_bytes(struct.pack("<Q", len(header)) + header +
                                                     np.zeros(size, np.uint8).tobytes())
    small = sorted(p for p in seeds.rglob("*") if p.is_file() and p.parent.name != "large")
    big = sorted(large.iterdir())
    made = 0
    out = REGISTRY / "teams"
    while made < files:
        for source in (big if made == 0 else []) + small:
            if made >= files:
                break
            team, model, version = made % 20, (made // 20) % 50, made // 1000
            target = out / f"team-{team:02d}" / f"model-{model:02d}" / f"v{version}" / \
                f"{made:05d}-{source.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, target)
            made += 1
    stamp.touch()
    return REGISTRY, files


def scans(files: int, workers: int) -> None:
    from mlthreat.cluster import connect
    from mlthreat.scanners import scan_paths
    root, _ = registry(files)
    where = [root / "teams"]
    size = sum(p.stat().st_size for p in where[0].rglob("*") if p.is_file())
    start = time.perf_counter()
    local = scan_paths(where, ["modelfile"])
    plain = time.perf_counter() - start
    print(f"registry: {local.files} files, {size / 1e9:.2f} GB (hard links count once each "
          f"time they are read), {len(local.findings)} findings")
    print(f"  this process   : {plain:7.1f} s  ({local.files / plain:.0f} files/s)", flush=True)
    times = {}
    for n in (1, workers):
        with connect(f"local:{n}") as client:
            client.wait_for_workers(n)
            client.run(__import__, "mlthreat.scanners")
            start = time.perf_counter()
            spread = scan_paths(where, ["modelfile"], cluster=client)
            times[n] = time.perf_counter() - start
        same = "same findings" if spread.findings == local.findings else "FINDINGS DIFFER"
        print(f"  LocalCluster {n} : {times[n]:7.1f} s  ({local.files / times[n]:.0f} files/s, "
              f"{same})", flush=True)
    print(f"scan: overhead of a 1-worker cluster {times[1] / plain:.2f}x; scaling 1 -> "
          f"{workers} workers {times[1] / times[workers]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", default="standard", choices=["quick", "standard", "thorough"],
                        help="the probes' budget (thorough's exact evasion alone is up to 200 "
                             "points x 10 s x 3 norms per tree model: hours for four runs)")
    parser.add_argument("--probes", default="membership,extraction,poisoning,evasion",
                        help="comma-separated probe kinds (default: all)")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", choices=["probes", "scan"])
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.only != "scan":
        probes(args.budget, args.workers, tuple(args.probes.split(",")))
    if args.only != "probes":
        scans(args.files, args.workers)


if __name__ == "__main__":
    main()
