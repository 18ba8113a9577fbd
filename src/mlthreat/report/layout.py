"""Layered (Sugiyama-style) layout of the pipeline for the inline SVG diagram.

Feedback loops are real, so cycles are broken first by pipeline stage (an edge from a later stage
to an earlier one, such as serving -> data store, is a feedback edge), then by DFS back edges for
any cycle left; feedback edges are drawn as dashed return arcs under the diagram. Layers come
from longest paths in the remaining DAG (networkx), order within a layer from a few barycenter
sweeps to reduce crossings.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from mlthreat.vocabulary import Kind

# Where each kind usually sits, left to right; flows against this order are drawn as feedback.
STAGE = {
    Kind.data_source: 0, Kind.feedback: 0, Kind.code_repository: 0, Kind.labeling: 1,
    Kind.pretrained_model: 1, Kind.data_store: 2, Kind.ci_cd: 2, Kind.preprocessing: 3,
    Kind.feature_store: 4, Kind.training: 5, Kind.validation: 6, Kind.model_registry: 7,
    Kind.serving: 8, Kind.edge_deployment: 8, Kind.client: 9, Kind.monitoring: 9,
    Kind.system_prompt: 1, Kind.retrieval_index: 4, Kind.memory: 4, Kind.hosted_model: 8,
    Kind.llm: 8, Kind.agent_tool: 9,
}

NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN, ARC_STEP = 170, 58, 56, 26, 24, 12


@dataclass(frozen=True)
class Box:
    id: str
    x: float
    y: float
    layer: int


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    d: str          # SVG path data
    back: bool      # closes a cycle (feedback)


@dataclass(frozen=True)
class Layout:
    boxes: dict[str, Box]
    edges: list[Edge]
    width: float
    height: float


def _back_edges(graph: nx.DiGraph, order: list[str]) -> set[tuple[str, str]]:
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}  # 1 on stack, 2 done
    roots = [n for n in order if graph.in_degree(n) == 0] + order
    for root in roots:
        if root in state:
            continue
        stack = [(root, iter(graph.successors(root)))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(graph.successors(child))))
    return back


def layout(nodes: list[str], edges: list[tuple[str, str]],
           stage: dict[str, int] | None = None) -> Layout:
    """Place `nodes`; `stage` (optional) ranks nodes by where they sit in a pipeline."""
    stage = stage or {}
    back = {(s, t) for s, t in edges if stage.get(t, 0) < stage.get(s, 0)}
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(e for e in edges if e not in back)
    back |= _back_edges(graph, nodes)
    dag = nx.DiGraph()
    dag.add_nodes_from(nodes)
    dag.add_edges_from(e for e in edges if e not in back)
    layer: dict[str, int] = {}
    for n in nx.topological_sort(dag):
        layer[n] = max((layer[p] + 1 for p in dag.predecessors(n)), default=0)
    columns: dict[int, list[str]] = {}
    for n in nodes:
        columns.setdefault(layer[n], []).append(n)
    _sweep(columns, dag)
    boxes = {}
    for col, members in columns.items():
        for row, n in enumerate(members):
            boxes[n] = Box(n, MARGIN + col * (NODE_W + GAP_X), MARGIN + row * (NODE_H + GAP_Y), col)
    rows = max(len(m) for m in columns.values())
    floor = MARGIN + rows * (NODE_H + GAP_Y)
    returns = [e for e in edges if e in back or boxes[e[1]].layer <= boxes[e[0]].layer]
    lane = {e: floor + 8 + i * ARC_STEP for i, e in enumerate(returns)}
    height = floor + len(returns) * ARC_STEP + MARGIN
    width = MARGIN * 2 + len(columns) * (NODE_W + GAP_X) - GAP_X
    drawn = [_edge(boxes[s], boxes[t], lane.get((s, t))) for s, t in edges]
    return Layout(boxes, drawn, width, height)


def _sweep(columns: dict[int, list[str]], dag: nx.DiGraph, rounds: int = 4) -> None:
    for r in range(rounds):
        layers = sorted(columns) if r % 2 == 0 else sorted(columns, reverse=True)
        for col in layers:
            neighbours = dag.predecessors if r % 2 == 0 else dag.successors
            ref = {n: i for c in (col - 1, col + 1) for i, n in enumerate(columns.get(c, []))}
            keyed = [(_barycenter(list(neighbours(n)), ref, i), i, n)
                     for i, n in enumerate(columns[col])]
            columns[col] = [n for _, _, n in sorted(keyed)]


def _barycenter(neighbours: list[str], ref: dict[str, int], default: int) -> float:
    pos = [ref[m] for m in neighbours if m in ref]
    return sum(pos) / len(pos) if pos else float(default)


def _edge(a: Box, b: Box, lane: float | None) -> Edge:
    if lane is not None:
        # Return arc in its own lane under every row: down from the source, back, up into the target.
        x1, y1 = a.x + NODE_W / 2 + 12, a.y + NODE_H
        x2, y2 = b.x + NODE_W / 2 - 12, b.y + NODE_H + 6
        d = (f"M{x1:.0f},{y1:.0f} L{x1:.0f},{lane - 8:.0f} Q{x1:.0f},{lane:.0f} {x1 - 8:.0f},{lane:.0f} "
             f"L{x2 + 8:.0f},{lane:.0f} Q{x2:.0f},{lane:.0f} {x2:.0f},{lane - 8:.0f} L{x2:.0f},{y2:.0f}")
        return Edge(a.id, b.id, d, True)
    x1, y1 = a.x + NODE_W, a.y + NODE_H / 2
    x2, y2 = b.x - 6, b.y + NODE_H / 2
    mid = (x1 + x2) / 2
    return Edge(a.id, b.id, f"M{x1:.0f},{y1:.0f} C{mid:.0f},{y1:.0f} {mid:.0f},{y2:.0f} {x2:.0f},{y2:.0f}",
                False)
