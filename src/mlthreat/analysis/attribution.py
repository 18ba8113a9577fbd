"""Which findings a piece of evidence speaks to, decided from placements (threat, component,
attack path), not from a finished Assessment, so that findings are scored once with all their
evidence.

Scanner evidence (reach "component") speaks to the findings of its threats placed at the
component whose artifact was scanned. Probe evidence (reach "path") speaks to every finding of
its threats whose attack path passes through the probed component, and, for threats that act
through training (poisoning, backdoors, feedback loops), whose path passes through a training
step the probed model is served from: poisoned records that reach the weekly retraining reach
every model trained there, not only the one on the shortest path.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence

import networkx as nx

from mlthreat.analysis.findings import Placement
from mlthreat.results import Evidence
from mlthreat.vocabulary import Kind

Key = tuple[str, str]     # (threat id, component id) of a finding


def attribute(placements: Iterable[Placement], evidence: Sequence[Evidence], graph: nx.DiGraph,
              kinds: dict[str, Kind]) -> dict[Key, tuple[str, ...]]:
    """Evidence ids per finding key, in the order the evidence was given."""
    training = {n for n, k in kinds.items() if k == Kind.training}
    upstream: dict[str, set[str]] = {}
    for ev in evidence:
        if ev.reach == "path" and ev.component not in upstream:
            above = nx.ancestors(graph, ev.component) if ev.component in graph else set()
            upstream[ev.component] = above & training
    out: dict[Key, list[str]] = {}
    for p in placements:
        for ev in evidence:
            if p.threat.id in ev.threat_ids and _reaches(ev, p, upstream):
                out.setdefault((p.threat.id, p.component.id), []).append(ev.id)
    return {k: tuple(v) for k, v in out.items()}


def _reaches(ev: Evidence, p: Placement, upstream: dict[str, set[str]]) -> bool:
    if ev.reach == "component":
        return ev.component == p.component.id
    if ev.component in p.path:
        return True
    return Kind.training in p.threat.via and bool(upstream[ev.component] & set(p.path))


def number(evidence: Sequence[Evidence]) -> list[Evidence]:
    """Evidence with ids unique in the assessment: source@component#n, n counting from 1 in
    the order given (so the same run gives the same ids)."""
    seen: Counter[str] = Counter()
    out = []
    for e in evidence:
        base = f"{e.source}@{e.component}"
        seen[base] += 1
        out.append(dataclasses.replace(e, id=f"{base}#{seen[base]}"))
    return out
