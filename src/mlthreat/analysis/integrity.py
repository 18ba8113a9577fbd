"""Pipeline integrity: every route by which untrusted data reaches a training component, with
the gates that check data on the way in and the monitoring that would notice what got through.

This is where adversarial ML meets pipeline engineering: a missing data check lets poisoned data
into training, and missing monitoring lets the resulting drift go unseen.
"""

from __future__ import annotations

from mlthreat.analysis.findings import PIPELINE_WIDE, Context
from mlthreat.pipeline.graph import bfs_parents
from mlthreat.results import ControlUse, IntegrityPath
from mlthreat.vocabulary import Fact, Kind

GATES = ("data_validation", "data_sanitization", "human_review", "data_provenance",
         "model_validation")
WATCHERS = ("drift_monitoring",)
SERVED = (Kind.serving, Kind.edge_deployment)

_EXPLAIN = {
    "open": ("Nothing checks data between {entry} and {training}, and nothing watches the "
             "served model: poisoned records reach training unchecked and the drift they cause "
             "goes unseen."),
    "ungated": ("Nothing checks data between {entry} and {training}; {watch} would notice "
                "drift afterwards, once the poisoned model is serving."),
    "unwatched": ("{gates} check data on the way to {training}, but nothing watches the served "
                  "model: whatever passes the checks changes the model unnoticed."),
    "guarded": ("{gates} check data on the way to {training} and {watch} watches the result: "
                "keep both, and test them with a poisoning probe."),
}


def _uses(controls: tuple[str, ...], nodes: list[str], ctx: Context) -> list[ControlUse]:
    out = []
    for cid in controls:
        control = ctx.catalog.control(cid)
        assert control is not None
        if cid in ctx.pipeline.pipeline_controls:
            where = [PIPELINE_WIDE]
        else:
            where = [n for n in nodes if cid in ctx.pipeline.controls[n]]
        if where:
            out.append(ControlUse(cid, "", control.family.value, control.incidental, tuple(where)))
    return out


def integrity_paths(ctx: Context) -> list[IntegrityPath]:
    graph = ctx.graph.graph
    watchers_at = _watched_served(ctx)
    # One reverse BFS from every watched served component: next hop towards the nearest one.
    towards = bfs_parents(graph, list(watchers_at), reverse=True)
    out = []
    for comp in ctx.pipeline.spec.components:
        if comp.kind != Kind.training or Fact.untrusted_input not in ctx.graph.facts[comp.id]:
            continue
        path = ctx.graph.path_from_entry(comp.id)
        gates = _uses(GATES, path, ctx)
        watchers: list[ControlUse] = []
        if comp.id in towards:
            node = comp.id
            while (nxt := towards[node]) is not None:
                node = nxt
            watchers = watchers_at[node]
        verdict = {(False, False): "open", (False, True): "ungated",
                   (True, False): "unwatched", (True, True): "guarded"}[(bool(gates), bool(watchers))]
        text = _EXPLAIN[verdict].format(
            entry=path[0], training=comp.id,
            gates=", ".join(f"{g.control} on {', '.join(g.components)}" for g in gates),
            watch=", ".join(f"{w.control} on {', '.join(w.components)}" for w in watchers))
        out.append(IntegrityPath(entry=path[0], training=comp.id, path=tuple(path),
                                 gates=tuple(gates), monitored_by=tuple(watchers),
                                 verdict=verdict, explanation=text))
    return out


def _watched_served(ctx: Context) -> dict[str, list[ControlUse]]:
    """Served components whose behaviour a drift watcher sees, with those watchers."""
    out = {}
    for comp in ctx.pipeline.spec.components:
        if comp.kind in SERVED:
            uses = _uses(WATCHERS, [comp.id, *ctx.observers([comp.id])], ctx)
            if uses:
                out[comp.id] = uses
    return out
