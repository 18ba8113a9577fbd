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
from mlthreat.vocabulary import GENERATIVE_KINDS, UNTRUSTED_EXPOSURES, Fact, Kind

PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib", ".jbl", ".pt", ".pth", ".ckpt",
                             ".bin", ".sav", ".dill", ".cloudpickle"})
PICKLE_FORMATS = frozenset({"pickle", "joblib", "torch"})
MODEL_KINDS = frozenset({Kind.training, Kind.validation, Kind.model_registry, Kind.serving,
                         Kind.edge_deployment, Kind.pretrained_model, *GENERATIVE_KINDS})
DATA_ENTRY_KINDS = frozenset({Kind.feedback, Kind.data_source, Kind.labeling})
CODE_KINDS = frozenset({Kind.code_repository, Kind.ci_cd, Kind.training})
# Queries reach a model through inference inputs, never through what builds or ships it: a public
# hub model that is fine-tuned, registered and served internally gives nobody query access.
SUPPLY_KINDS = frozenset({Kind.training, Kind.validation, Kind.model_registry,
                          Kind.pretrained_model, Kind.code_repository, Kind.ci_cd, Kind.labeling,
                          Kind.system_prompt})


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
    kind = {c.id: c.kind for c in spec.components}
    for flow in spec.flows:
        graph.add_edge(flow.source, flow.target,
                       enters=flow.enters or _enters(kind[flow.target]))

    def ids(pred: object) -> list[str]:
        return [c.id for c in spec.components if pred(c)]  # type: ignore[operator]

    # Data-contributing entry points first: on ties, paths then start where data comes in.
    exposed = sorted(ids(lambda c: c.exposure in UNTRUSTED_EXPOSURES),
                     key=lambda i: pipeline.component(i).kind not in DATA_ENTRY_KINDS)
    entry_parent = bfs_parents(graph, exposed)
    not_context = nx.subgraph_view(graph, filter_edge=lambda a, b: graph[a][b]["enters"] != "context")
    training = ids(lambda c: c.kind == Kind.training)
    feeds_training = bfs_parents(not_context, training, reverse=True)
    personal = bfs_parents(graph, ids(lambda c: c.personal_data))
    pretrained = bfs_parents(graph, ids(lambda c: c.kind == Kind.pretrained_model))
    generative = ids(lambda c: c.kind in GENERATIVE_KINDS)
    # what reaches a generative model's context: never through training (that is training data)
    # nor along a flow that says it trains
    inference = nx.subgraph_view(
        graph, filter_node=lambda n: kind[n] != Kind.training,
        filter_edge=lambda a, b: graph[a][b]["enters"] != "training")
    feeds_context = bfs_parents(inference, generative, reverse=True)
    after_llm = bfs_parents(graph, [s for g in generative for s in graph.successors(g)])
    query_graph = nx.subgraph_view(graph, filter_node=lambda n: kind[n] not in SUPPLY_KINDS)
    queryable = bfs_parents(query_graph, [i for i in exposed if kind[i] not in SUPPLY_KINDS])
    personal_training = bfs_parents(graph, [t for t in training if t in personal])
    trained_upstream = bfs_parents(graph, training)
    loop_nodes = _training_cycles(graph)

    facts: dict[str, frozenset[Fact]] = {}
    exposed_set = set(exposed)
    for c in spec.components:
        f: set[Fact] = set()
        if c.id in exposed_set:
            f.add(Fact.exposed)
        if c.id in entry_parent:
            f.add(Fact.untrusted_input)
        if c.id in queryable:
            f.add(Fact.queryable)
        if c.id in feeds_training:
            f.add(Fact.feeds_training)
        if c.id in loop_nodes:
            f.add(Fact.feedback_loop)
        if _holds_model(c.id, graph, kind, c.artifacts.model):
            f.add(Fact.holds_model)
        if c.id in personal:
            f.add(Fact.personal_data_upstream)
        # the people in the training data: personal data reached a training job upstream, or
        # the spec shows no training and marks personal data upstream (trained elsewhere)
        if c.id in personal_training or (c.id not in trained_upstream and c.id in personal):
            f.add(Fact.trained_on_personal)
        if c.id in pretrained and c.kind != Kind.pretrained_model:
            f.add(Fact.downstream_of_pretrained)
        if c.id in feeds_context and c.kind not in GENERATIVE_KINDS:
            f.add(Fact.feeds_context)
        if c.id in after_llm:
            f.add(Fact.downstream_of_llm)
        if c.kind in GENERATIVE_KINDS and any(kind[p] == Kind.system_prompt
                                              for p in graph.predecessors(c.id)):
            f.add(Fact.prompted)
        if c.captures:
            f.add(Fact.captures_media)
        if c.third_party or c.kind == Kind.hosted_model:
            f.add(Fact.third_party)
        if _pickle_artifact(c.artifacts.model, c.artifacts.model_format):
            f.add(Fact.pickle_model_artifact)
        if c.artifacts.code or c.kind in CODE_KINDS:
            f.add(Fact.has_code)
        facts[c.id] = frozenset(f)
    return PipelineGraph(graph=graph, facts=facts, entry_parent=entry_parent,
                         monitors=_monitors(graph))


def _enters(target: Kind) -> str | None:
    """What a flow's data becomes at a target of this kind when the spec does not say."""
    if target in GENERATIVE_KINDS:
        return "context"
    return "training" if target == Kind.training else None


def _holds_model(node: str, graph: nx.DiGraph, kind: dict[str, Kind], artifacts: list[str]
                 ) -> bool:
    """A component of a model kind, or one listing model files. A serving app that hands its
    requests to a generative model and lists no model file of its own hosts none: it is a
    wrapper, and attacks on "its" model are attacks on the model it calls."""
    if artifacts:
        return True
    if kind[node] == Kind.serving and any(kind[s] in GENERATIVE_KINDS
                                          for s in graph.successors(node)):
        return False
    return kind[node] in MODEL_KINDS


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
