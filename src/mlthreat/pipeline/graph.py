"""The pipeline as a directed graph, and the facts about components that threats are placed by.

Every fact is computed for all components at once with a linear pass (multi-source BFS, strongly
connected components), so analysis stays linear in the size of the pipeline.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

import networkx as nx

from mlthreat.pipeline.loader import Pipeline
from mlthreat.vocabulary import UNTRUSTED_EXPOSURES, Fact, Kind

PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib", ".jbl", ".pt", ".pth", ".ckpt",
                             ".bin", ".sav", ".dill", ".cloudpickle"})
PICKLE_FORMATS = frozenset({"pickle", "joblib", "torch"})
MODEL_KINDS = frozenset({Kind.training, Kind.validation, Kind.model_registry, Kind.serving,
                         Kind.edge_deployment, Kind.pretrained_model})
DATA_ENTRY_KINDS = frozenset({Kind.feedback, Kind.data_source, Kind.labeling})
CODE_KINDS = frozenset({Kind.code_repository, Kind.ci_cd, Kind.training})


@dataclass(frozen=True)
class PipelineGraph:
    """The flow graph with per-component facts and shortest-path trees for tracing."""

    graph: nx.DiGraph
    facts: dict[str, frozenset[Fact]]
    entry_parent: dict[str, str | None]   # BFS tree from every untrusted component
    monitors: dict[str, tuple[str, ...]]  # monitoring components with a flow to or from each

    def path_from_entry(self, node: str) -> list[str]:
        """Shortest flow path from the nearest public/partner component to `node`."""
        if node not in self.entry_parent:
            return [node]
        path = [node]
        while (parent := self.entry_parent[path[-1]]) is not None:
            path.append(parent)
        return path[::-1]


def bfs_parents(graph: nx.DiGraph, sources: Iterable[str], reverse: bool = False
                ) -> dict[str, str | None]:
    """Multi-source BFS; each reached node maps to its predecessor on a shortest path."""
    step = graph.predecessors if reverse else graph.successors
    parent: dict[str, str | None] = {}
    queue: deque[str] = deque()
    for s in sources:
        if s not in parent:
            parent[s] = None
            queue.append(s)
    while queue:
        node = queue.popleft()
        for nxt in step(node):
            if nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    return parent


def build_graph(pipeline: Pipeline) -> PipelineGraph:
    spec = pipeline.spec
    graph = nx.DiGraph()
    for c in spec.components:
        graph.add_node(c.id, kind=c.kind, exposure=c.exposure)
    graph.add_edges_from((f.source, f.target) for f in spec.flows)

    def ids(pred: object) -> list[str]:
        return [c.id for c in spec.components if pred(c)]  # type: ignore[operator]

    # Data-contributing entry points first: on ties, paths then start where data comes in.
    exposed = sorted(ids(lambda c: c.exposure in UNTRUSTED_EXPOSURES),
                     key=lambda i: pipeline.component(i).kind not in DATA_ENTRY_KINDS)
    entry_parent = bfs_parents(graph, exposed)
    feeds_training = bfs_parents(graph, ids(lambda c: c.kind == Kind.training), reverse=True)
    personal = bfs_parents(graph, ids(lambda c: c.personal_data))
    pretrained = bfs_parents(graph, ids(lambda c: c.kind == Kind.pretrained_model))
    loop_nodes = _training_cycles(graph)

    facts: dict[str, frozenset[Fact]] = {}
    exposed_set = set(exposed)
    for c in spec.components:
        f: set[Fact] = set()
        if c.id in exposed_set:
            f.add(Fact.exposed)
        if c.id in entry_parent:
            f.add(Fact.untrusted_input)
        if c.id in feeds_training:
            f.add(Fact.feeds_training)
        if c.id in loop_nodes:
            f.add(Fact.feedback_loop)
        if c.kind in MODEL_KINDS or c.artifacts.model:
            f.add(Fact.holds_model)
        if c.id in personal:
            f.add(Fact.personal_data_upstream)
        if c.id in pretrained and c.kind != Kind.pretrained_model:
            f.add(Fact.downstream_of_pretrained)
        if _pickle_artifact(c.artifacts.model, c.artifacts.model_format):
            f.add(Fact.pickle_model_artifact)
        if c.artifacts.code or c.kind in CODE_KINDS:
            f.add(Fact.has_code)
        facts[c.id] = frozenset(f)
    return PipelineGraph(graph=graph, facts=facts, entry_parent=entry_parent,
                         monitors=_monitors(graph))


def _monitors(graph: nx.DiGraph) -> dict[str, tuple[str, ...]]:
    kinds = dict(graph.nodes(data="kind"))
    out: dict[str, list[str]] = {}
    for a, b in graph.edges:
        if kinds[b] == Kind.monitoring:
            out.setdefault(a, []).append(b)
        if kinds[a] == Kind.monitoring:
            out.setdefault(b, []).append(a)
    return {n: tuple(dict.fromkeys(ms)) for n, ms in out.items()}


def _training_cycles(graph: nx.DiGraph) -> set[str]:
    """Components on a cycle that passes through a training component (a feedback loop)."""
    nodes: set[str] = set()
    for scc in nx.strongly_connected_components(graph):
        if len(scc) > 1 and any(graph.nodes[n]["kind"] == Kind.training for n in scc):
            nodes |= scc
    return nodes


def _pickle_artifact(paths: list[str], declared: str | None) -> bool:
    if declared is not None:
        return declared in PICKLE_FORMATS
    return any(PurePosixPath(p).suffix.lower() in PICKLE_SUFFIXES for p in paths)
