"""Team view: how much several people agree on which threats sit where, where they disagree
most, and which adversarial-ML and classical concepts they name together.

Agreement is computed by the field's libraries on the same binary ratings: each item is a
(component, threat) pair; a respondent rates it 1 if they name the threat at that component (or
for the whole pipeline), 0 if they answered about the component without naming it, and leave it
missing if they were not asked about the component. Cohen's kappa (scikit-learn) for each pair,
Fleiss' kappa (statsmodels) over the items every respondent rated, Krippendorff's alpha
(`krippendorff`, nominal) over all items with missing ratings allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from mlthreat.catalog import Catalog
from mlthreat.perception.agreement import alpha, cohen, fleiss
from mlthreat.perception.loader import ResolvedPerception
from mlthreat.perception.model import WHOLE_PIPELINE
from mlthreat.results import Assessment
from mlthreat.vocabulary import Family

Item = tuple[str, str]  # (component, threat id)


@dataclass(frozen=True)
class PairAgreement:
    a: str
    b: str
    kappa: float | None      # None when undefined (no variation in both ratings)
    items: int


@dataclass(frozen=True)
class Disagreement:
    component: str
    threat_id: str
    threat: str
    yes: tuple[str, ...]
    no: tuple[str, ...]
    level: str | None        # mlthreat's risk level for this item, if it is a finding
    split: float             # 1.0 for an even split, 0 for unanimity


@dataclass(frozen=True)
class TeamView:
    respondents: tuple[str, ...]
    items: tuple[Item, ...]
    ratings: tuple[tuple[float, ...], ...]     # respondents x items; nan = not asked
    pairs: tuple[PairAgreement, ...]
    fleiss_kappa: float | None
    fleiss_items: int
    krippendorff_alpha: float | None
    disagreements: tuple[Disagreement, ...]
    aml_concepts: tuple[str, ...]
    classical_concepts: tuple[str, ...]
    cooccurrence: tuple[tuple[int, ...], ...]  # aml x classical: respondents naming both
    model_agreement: tuple[PairAgreement, ...]  # each respondent vs mlthreat (medium or above)


def ratings(people: list[ResolvedPerception], items: list[Item]) -> np.ndarray:
    out = np.full((len(people), len(items)), np.nan)
    for r, p in enumerate(people):
        answered = p.answered()
        for i, (component, threat) in enumerate(items):
            if component in answered or WHOLE_PIPELINE in answered:
                out[r, i] = 1.0 if threat in p.seen(component) else 0.0
    return out


def team_view(people: list[ResolvedPerception], a: Assessment, catalog: Catalog,
              top: int = 15) -> TeamView:
    level = {(f.component, f.threat_id): f.level.value for f in a.findings}
    named = {(c, t) for p in people for v in p.views for t in v.threat_ids()
             for c in ([v.component] if v.component != WHOLE_PIPELINE else
                       sorted({f.component for f in a.findings if f.threat_id == t}) or ["*"])}
    items = sorted(set(level) | named)
    matrix = ratings(people, items)
    names = [p.respondent for p in people]
    pairs = [PairAgreement(names[i], names[j], *cohen(matrix[i], matrix[j]))
             for i, j in combinations(range(len(people)), 2)]
    fleiss_value, fleiss_n = fleiss(matrix)
    model = np.array([1.0 if level.get(item) in ("medium", "high", "critical") else 0.0
                      for item in items])
    vs_model = [PairAgreement(names[i], "mlthreat", *cohen(matrix[i], model))
                for i in range(len(people))]
    aml, cls, co = _cooccurrence(people, catalog)
    return TeamView(
        respondents=tuple(names), items=tuple(items),
        ratings=tuple(tuple(float(x) for x in row) for row in matrix), pairs=tuple(pairs),
        fleiss_kappa=fleiss_value, fleiss_items=fleiss_n, krippendorff_alpha=alpha(matrix),
        disagreements=tuple(_disagreements(matrix, items, names, level, catalog)[:top]),
        aml_concepts=tuple(aml), classical_concepts=tuple(cls),
        cooccurrence=tuple(tuple(row) for row in co), model_agreement=tuple(vs_model))


def _disagreements(matrix: np.ndarray, items: list[Item], names: list[str],
                   level: dict[Item, str], catalog: Catalog) -> list[Disagreement]:
    out = []
    for i, (component, threat) in enumerate(items):
        col = matrix[:, i]
        rated = ~np.isnan(col)
        if rated.sum() < 2:
            continue
        share = float(col[rated].mean())
        split = round(1 - abs(2 * share - 1), 4)
        if split == 0:
            continue
        out.append(Disagreement(
            component, threat, catalog.threat(threat).name,
            tuple(n for n, v in zip(names, col, strict=True) if v == 1.0),
            tuple(n for n, v in zip(names, col, strict=True) if v == 0.0),
            level.get((component, threat)), split))
    order = ["critical", "high", "medium", "low", "info", None]
    out.sort(key=lambda d: (-d.split, order.index(d.level), d.component, d.threat_id))
    return out


def _cooccurrence(people: list[ResolvedPerception], catalog: Catalog
                  ) -> tuple[list[str], list[str], list[list[int]]]:
    named = [{t for v in p.views for t in v.threat_ids()} for p in people]
    everything = set().union(*named) if named else set()
    aml = sorted(t for t in everything if catalog.threat(t).family == Family.aml)
    cls = sorted(t for t in everything if catalog.threat(t).family == Family.classical)
    counts = [[sum(1 for n in named if x in n and y in n) for y in cls] for x in aml]
    return aml, cls, counts
