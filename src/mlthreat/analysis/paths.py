"""Tracing where harm lands: from the component where the attacker acts, along flows, to the
nearest component of the kinds the threat reaches (in the catalog's order of preference).

One reverse BFS per kind, computed on first use and shared by every threat: linear in the graph.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlthreat.pipeline.graph import PipelineGraph, bfs_parents
from mlthreat.vocabulary import Kind


class HarmTracer:
    def __init__(self, pg: PipelineGraph) -> None:
        self._pg = pg
        self._towards: dict[Kind, dict[str, str | None]] = {}

    def _tree(self, kind: Kind) -> dict[str, str | None]:
        if kind not in self._towards:
            graph = self._pg.graph
            targets = [n for n, k in graph.nodes(data="kind") if k == kind]
            self._towards[kind] = bfs_parents(graph, targets, reverse=True)
        return self._towards[kind]

    def to_harm(self, node: str, kinds: Sequence[Kind]) -> list[str]:
        """Flow path from `node` to the nearest component of the first reachable kind."""
        for kind in kinds:
            tree = self._tree(kind)
            if node in tree:
                path = [node]
                while (nxt := tree[path[-1]]) is not None:
                    path.append(nxt)
                return path
        return [node]

    def attack_path(self, node: str, kinds: Sequence[Kind], from_entry: bool,
                    via: Sequence[Kind] = ()) -> list[str]:
        """Entry (for external attackers) ... node [... via] ... harm, no node repeated in a row."""
        head = self._pg.path_from_entry(node) if from_entry else [node]
        if via:
            through = self.to_harm(node, via)
            head += through[1:]
            node = head[-1]
        return head + self.to_harm(node, kinds)[1:]
