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

Each probe run is saved under benchmarks/.results; the report compares every saved run of the
budget. `--runs` makes some of them only, so that the two one-process runs of a long budget can
run side by side, one per core (`taskset -c 0 ... --runs jobs1 & taskset -c 1 ... --runs
cluster1`), before the two-process runs.

Run: `.venv/bin/python benchmarks/cluster.py [--budget standard] [--probes KINDS] [--files 10000]
[--workers 2] [--only probes|scan] [--runs jobs1,jobsN,cluster1,clusterN]`.
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


RUNS = ("jobs1", "jobsN", "cluster1", "clusterN")
RESULTS = HERE / ".results"


def evidence_key(evidence: list[Any]) -> list[Any]:
    """What must be the same whatever runs the probes (JSON, so that runs in separate
    processes compare)."""
    import json
    return json.loads(json.dumps([(e.component, e.source, e.metric, e.value, e.interval)
                                  for e in evidence]))


def _saved(budget: str, kinds: tuple[str, ...], run: str) -> Path:
    return RESULTS / f"probes-{budget}-{'+'.join(kinds)}-{run}.json"


def probes(budget: str, workers: int, kinds: tuple[str, ...], runs: tuple[str, ...]) -> None:
    """The chosen runs, each saved under benchmarks/.results (so that runs made in separate
    processes, e.g. the two one-process runs side by side on two cores, are compared), then
    the comparison of every saved run of this budget and these probes."""
    import json

    from mlthreat.catalog import load_catalog
    from mlthreat.cluster import connect
    from mlthreat.pipeline import load_pipeline
    from mlthreat.probes.cluster import ship
    from mlthreat.probes.runner import run_probes
    pipeline = load_pipeline(SPEC, load_catalog())
    RESULTS.mkdir(exist_ok=True)
    for run in runs:
        processes = 1 if run.endswith("1") else workers
        start = time.perf_counter()
        if run.startswith("cluster"):
            with connect(f"local:{processes}") as client:
                client.wait_for_workers(processes)
                # workers warmed up (imports) as a long-lived cluster would be
                client.run(__import__, "mlthreat.probes.runner")
                start = time.perf_counter()
                done = run_probes(pipeline, kinds, budget=budget, cluster=client)
                seconds = time.perf_counter() - start
        else:
            done = run_probes(pipeline, kinds, budget=budget, jobs=processes)
            seconds = time.perf_counter() - start
        found = [e for r in done for e in r.results]
        _saved(budget, kinds, run).write_text(json.dumps({
            "run": run, "processes": processes, "seconds": seconds,
            "cpus": sorted(os.sched_getaffinity(0)), "evidence": evidence_key(found),
            "tasks": [(e.seconds, e.source, e.component) for e in found]}))
        print(f"  {run:9s} {processes} process(es): {seconds:7.1f} s", flush=True)
    saved = {r: json.loads(_saved(budget, kinds, r).read_text()) for r in RUNS
             if _saved(budget, kinds, r).exists()}
    if not saved:
        return
    print(f"probes, budget {budget} ({', '.join(kinds)}): runs saved in {RESULTS.name}/")
    reference = next(iter(saved.values()))["evidence"]
    for r, got in saved.items():
        same = "same evidence" if got["evidence"] == reference else "EVIDENCE DIFFERS"
        print(f"  {r:9s} {got['processes']} process(es) on cpus {got['cpus']}: "
              f"{got['seconds']:7.1f} s  ({same})")
    sec = {r: got["seconds"] for r, got in saved.items()}
    for label, top, bottom in (
            ("overhead of a 1-worker cluster against --jobs 1", "cluster1", "jobs1"),
            (f"overhead of {workers} workers against --jobs {workers}", "clusterN", "jobsN"),
            (f"scaling 1 -> {workers} local processes", "jobs1", "jobsN"),
            (f"scaling 1 -> {workers} workers", "cluster1", "clusterN")):
        if top in sec and bottom in sec:
            print(f"  {label}: {sec[top] / sec[bottom]:.2f}x")
    if "jobs1" not in saved:
        return
    print("per probe task (one process, --jobs 1): seconds, and the files shipped per component")
    shipped = {c.id: sum(len(b) for b in ship(pipeline, c).files.values())
               for c in pipeline.spec.components if c.probe is not None}
    tasks = saved["jobs1"]["tasks"]
    for seconds, source, component in sorted(tasks, key=lambda t: -t[0]):
        print(f"  {seconds:7.1f} s  {source.removeprefix('probe:'):18s} {component:18s} "
              f"files {shipped[component] / 1e6:.1f} MB")
    total = sum(t[0] for t in tasks)
    print(f"  sum {total:.1f} s over {len(tasks)} probes; longest {max(t[0] for t in tasks):.1f} s")


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
    parser.add_argument("--runs", default=",".join(RUNS),
                        help="which probe runs to make: jobs1 (--jobs 1), jobsN (--jobs "
                             "WORKERS), cluster1, clusterN (LocalClusters); each is saved under "
                             "benchmarks/.results and the report compares every saved run "
                             "(default: all four, one after the other)")
    args = parser.parse_args()
    runs = tuple(r for r in args.runs.split(",") if r)
    unknown = sorted(set(runs) - set(RUNS))
    if unknown:
        parser.error(f"unknown run(s) {', '.join(unknown)}; choose from {', '.join(RUNS)}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.only != "scan":
        probes(args.budget, args.workers, tuple(args.probes.split(",")), runs)
    if args.only != "probes":
        scans(args.files, args.workers)


if __name__ == "__main__":
    main()
