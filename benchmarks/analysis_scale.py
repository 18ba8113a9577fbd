"""How analysis time grows with pipeline size: synthetic pipelines of 10 to 10,000 components.

Each synthetic pipeline is a federation of ten-component team pipelines (public client and
feedback form, data store, preprocessing, training, validation, registry, serving, monitoring,
code repo) with a feedback loop each, all drawing on shared data lakes and a shared registry, so
paths cross team boundaries. Reported per size, all measured in this one run:

- parse: YAML -> validated Pipeline; analyse: Pipeline -> Assessment (the goal: < 2 s at 10,000)
- us/component, and its ratio to the 10-component run (flat = linear)
- floor ratio: analysis time over a linear-time floor measured in the same run (building the
  networkx graph and one BFS from every public component), so machine speed cancels out
- the fitted exponent of time ~ size^k over the sizes (1.0 = linear)

Run: `make bench` or `.venv/bin/python benchmarks/analysis_scale.py [--sizes 10,100,1000]`.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import networkx as nx
import yaml

from mlthreat.analysis import assess
from mlthreat.catalog import load_catalog
from mlthreat.pipeline import Pipeline, parse_pipeline

TEAM = [  # (suffix, kind, exposure, controls)
    ("web", "client", "public", ["tls"]),
    ("fb", "feedback", "public", []),
    ("db", "data_store", "internal", ["encryption_at_rest"]),
    ("prep", "preprocessing", "internal", ["data_validation"]),
    ("train", "training", "internal", ["retraining"]),
    ("val", "validation", "internal", ["model_validation"]),
    ("reg", "model_registry", "internal", ["access_control"]),
    ("api", "serving", "public", ["rate_limiting"]),
    ("mon", "monitoring", "internal", []),
    ("repo", "code_repository", "internal", []),
]
FLOWS = [("web", "api"), ("api", "web"), ("web", "fb"), ("fb", "db"), ("db", "prep"),
         ("prep", "train"), ("train", "val"), ("val", "reg"), ("reg", "api"), ("api", "mon"),
         ("repo", "train"), ("api", "db")]


def synthetic(n: int) -> str:
    teams, lakes = max(1, n // len(TEAM)), max(1, n // 200)
    comps: list[dict[str, object]] = [
        {"id": f"lake{j}", "kind": "data_store", "personal_data": True} for j in range(lakes)]
    flows: list[dict[str, str]] = []
    for t in range(teams):
        for suffix, kind, exposure, controls in TEAM:
            comp: dict[str, object] = {"id": f"t{t}_{suffix}", "kind": kind,
                                       "exposure": exposure, "controls": controls}
            if kind == "serving":
                comp["artifacts"] = {"model": [f"models/t{t}.joblib"]}
            comps.append(comp)
        flows += [{"from": f"t{t}_{a}", "to": f"t{t}_{b}"} for a, b in FLOWS]
        flows.append({"from": f"lake{t % lakes}", "to": f"t{t}_prep"})
        flows.append({"from": f"t{t}_db", "to": f"lake{(t + 1) % lakes}"})
    comps = comps[:n] if len(comps) > n else comps
    ids = {c["id"] for c in comps}
    flows = [f for f in flows if f["from"] in ids and f["to"] in ids]
    return yaml.safe_dump({"name": f"synthetic-{n}", "components": comps, "flows": flows},
                          sort_keys=False)


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def floor(pipeline: Pipeline) -> None:
    """A linear-time floor for any flow analysis: build the graph, one multi-source BFS."""
    spec = pipeline.spec
    g = nx.DiGraph()
    g.add_nodes_from(c.id for c in spec.components)
    g.add_edges_from((f.source, f.target) for f in spec.flows)
    sources = [c.id for c in spec.components if c.exposure.value == "public"]
    nx.multi_source_dijkstra_path_length(g, sources or [spec.components[0].id])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,100,1000,3000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    catalog = load_catalog()
    rows = []
    for n in sizes:
        text = synthetic(n)
        pipeline = parse_pipeline(text, f"synthetic-{n}.yaml", catalog)
        t_parse = best_of(1, lambda t=text: parse_pipeline(t, "s.yaml", catalog))
        t_analyse = best_of(args.repeat, lambda p=pipeline: assess(p, catalog))
        t_floor = best_of(args.repeat, lambda p=pipeline: floor(p))
        findings = len(assess(pipeline, catalog).findings)
        rows.append((n, len(pipeline.spec.flows), findings, t_parse, t_analyse, t_floor))
    base = rows[0][4] / rows[0][0]
    print(f"{'components':>10} {'flows':>7} {'findings':>9} {'parse s':>8} {'analyse s':>10} "
          f"{'us/comp':>8} {'vs smallest':>11} {'vs floor':>9}")
    for n, flows, findings, tp, ta, tf in rows:
        print(f"{n:>10} {flows:>7} {findings:>9} {tp:>8.3f} {ta:>10.3f} {ta / n * 1e6:>8.1f} "
              f"{(ta / n) / base:>10.2f}x {ta / tf:>8.1f}x")
    xs = [math.log(r[0]) for r in rows]
    ys = [math.log(r[4]) for r in rows]
    if len(rows) > 1:
        slope = statistics.linear_regression(xs, ys).slope
        print(f"\nfitted exponent: analysis time ~ size^{slope:.2f} (1.00 = linear)")
    largest = rows[-1]
    verdict = "meets" if largest[4] < 2.0 else "MISSES"
    print(f"goal: {largest[0]} components analysed in {largest[4]:.2f} s ({verdict} the < 2 s goal)")


if __name__ == "__main__":
    main()
