"""Loads a perception file, checks it against the spec and resolves every threat and defense to
catalog ids (free text through the TF-IDF mapper, with the mapping kept for the report)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlthreat.catalog import Catalog
from mlthreat.errors import Problem, SpecError
from mlthreat.perception.mapping import Mapper, Mapping, control_mapper, threat_mapper
from mlthreat.perception.model import WHOLE_PIPELINE, Perception, View
from mlthreat.pipeline import Pipeline
from mlthreat.yamlio import did_you_mean, mapping_document, parse_yaml, read_text, validate


@dataclass(frozen=True, slots=True)
class ResolvedDefense:
    control: Mapping
    against: tuple[Mapping, ...]


@dataclass(frozen=True, slots=True)
class ResolvedView:
    view: View
    line: int
    threats: tuple[Mapping, ...]
    defenses: tuple[ResolvedDefense, ...]

    @property
    def component(self) -> str:
        return self.view.component

    def threat_ids(self) -> set[str]:
        return {m.target for m in self.threats if m.target}


@dataclass(frozen=True)
class ResolvedPerception:
    perception: Perception
    file: str
    views: tuple[ResolvedView, ...]

    @property
    def respondent(self) -> str:
        return self.perception.respondent

    def mappings(self) -> list[Mapping]:
        """Every free-text phrase and what it was mapped to (ids are left out)."""
        out: dict[str, Mapping] = {}
        for v in self.views:
            for m in (*v.threats, *(x for d in v.defenses for x in (d.control, *d.against))):
                if m.how in ("text", "unmapped"):
                    out.setdefault(m.text, m)
        return list(out.values())

    def seen(self, component: str) -> set[str]:
        """Threat ids this person names at a component or for the whole pipeline."""
        return {t for v in self.views if v.component in (component, WHOLE_PIPELINE)
                for t in v.threat_ids()}

    def answered(self) -> set[str]:
        return {v.component for v in self.views}


@dataclass
class Mappers:
    threats: Mapper
    controls: Mapper

    @classmethod
    def for_catalog(cls, catalog: Catalog) -> Mappers:
        return cls(threat_mapper(catalog), control_mapper(catalog))


def load_perception(path: str | Path, pipeline: Pipeline, catalog: Catalog,
                    mappers: Mappers | None = None) -> ResolvedPerception:
    file = str(path)
    located = parse_yaml(read_text(Path(path), "perception"), file)
    problems = mapping_document(located, file, "perception file", "'respondent' and 'views'")
    perception = validate(Perception, located, file, problems)
    ids = [c.id for c in pipeline.spec.components]
    problems = []
    for i, view in enumerate(perception.views):
        if view.component != WHOLE_PIPELINE and view.component not in ids:
            line, col = located.position(("views", i, "component")) or (None, None)
            problems.append(Problem(file, line, col,
                                    f"view #{i + 1} names unknown component {view.component!r}",
                                    did_you_mean(view.component, [*ids, WHOLE_PIPELINE],
                                                 "components of the spec")))
    if problems:
        raise SpecError(problems)
    return resolve(perception, file, [located.position(("views", i)) or (1, 1)
                                      for i in range(len(perception.views))],
                   mappers or Mappers.for_catalog(catalog))


def resolve(perception: Perception, file: str, positions: list[tuple[int, int]],
            mappers: Mappers) -> ResolvedPerception:
    views = []
    for view, (line, _) in zip(perception.views, positions, strict=True):
        threats = tuple(mappers.threats.map(t) for t in view.threats)
        defenses = tuple(ResolvedDefense(mappers.controls.map(d.control),
                                         tuple(mappers.threats.map(a) for a in d.against))
                         for d in view.defenses)
        views.append(ResolvedView(view, line, threats, defenses))
    return ResolvedPerception(perception, file, tuple(views))
