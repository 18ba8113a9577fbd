"""Reads a pipeline spec file into a validated :class:`Pipeline`, or raises SpecError.

Every problem a user can make is reported with file:line:column, what is wrong and what to do;
all problems of a file are reported together, so one run shows everything to fix.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from mlthreat.catalog import Catalog
from mlthreat.errors import Problem, SpecError
from mlthreat.pipeline.spec import Component, PipelineSpec
from mlthreat.yamlio import (
    did_you_mean,
    mapping_document,
    parse_yaml,
    read_text,
    sort_problems,
    validate,
)
from mlthreat.yamlpos import Located
from mlthreat.yamlpos import Path as YPath


@dataclass(frozen=True)
class Pipeline:
    """A validated spec, with where each part was written and the controls resolved to ids."""

    spec: PipelineSpec
    file: str
    component_positions: dict[str, tuple[int, int]]
    flow_positions: list[tuple[int, int]]
    controls: dict[str, frozenset[str]]          # component id -> canonical control ids
    pipeline_controls: frozenset[str]
    warnings: list[Problem] = field(default_factory=list)

    @property
    def base_dir(self) -> Path:
        return Path(self.file).parent

    def component(self, component_id: str) -> Component:
        return self._by_id[component_id]

    @functools.cached_property
    def _by_id(self) -> dict[str, Component]:
        return {c.id: c for c in self.spec.components}


def load_pipeline(path: str | Path, catalog: Catalog) -> Pipeline:
    """Load and validate the spec at `path`. Raises SpecError listing every problem found."""
    return parse_pipeline(read_text(Path(path), "spec"), str(path), catalog)


EMPTY: dict[YPath, tuple[str, str]] = {("components",): ("the pipeline has no components",
                           "list at least one component under 'components:'")}


def parse_pipeline(text: str, file: str, catalog: Catalog) -> Pipeline:
    located = parse_yaml(text, file)
    problems = mapping_document(located, file, "spec", "'name', 'components' and 'flows'")
    spec = validate(PipelineSpec, located, file, problems, EMPTY)
    problems = _check_references(spec, located, file, catalog)
    if problems:
        raise SpecError(sort_problems(problems))
    return _build(spec, located, file, catalog)


def _check_references(spec: PipelineSpec, located: Located, file: str,
                      catalog: Catalog) -> list[Problem]:
    problems: list[Problem] = []
    first_seen: dict[str, int] = {}
    for i, comp in enumerate(spec.components):
        if comp.id in first_seen:
            line, col = located.position(("components", i, "id")) or (None, None)
            other = located.position(("components", first_seen[comp.id], "id"))
            problems.append(Problem(file, line, col, f"duplicate component id {comp.id!r}",
                                    f"first defined on line {other[0] if other else '?'}; "
                                    "give each component its own id"))
        else:
            first_seen[comp.id] = i
        problems += _check_controls(comp.controls, ("components", i, "controls"),
                                    located, file, catalog)
    problems += _check_controls(spec.controls, ("controls",), located, file, catalog)
    ids = list(first_seen)
    for i, flow in enumerate(spec.flows):
        for end, key in ((flow.source, "from"), (flow.target, "to")):
            if end not in first_seen:
                line, col = located.position(("flows", i, key)) or (None, None)
                problems.append(Problem(file, line, col,
                                        f"flow #{i + 1} '{key}' names unknown component {end!r}",
                                        did_you_mean(end, ids, "components")))
        if flow.source == flow.target and flow.source in first_seen:
            line, col = located.position(("flows", i)) or (None, None)
            problems.append(Problem(file, line, col,
                                    f"flow #{i + 1} goes from {flow.source!r} to itself",
                                    "a feedback loop runs through other components; draw those"))
    return problems


def _check_controls(names: list[str], path: YPath, located: Located, file: str,
                    catalog: Catalog) -> list[Problem]:
    problems = []
    for j, name in enumerate(names):
        if catalog.control(name) is None:
            line, col = located.position((*path, j)) or (None, None)
            guess = catalog.suggest_control(name)
            hint = (f"did you mean {guess!r}? " if guess else "") + \
                "`mlthreat catalog --controls` lists every control and its aliases"
            problems.append(Problem(file, line, col, f"unknown control {name!r}", hint))
    return problems


def _resolve(names: list[str], catalog: Catalog) -> frozenset[str]:
    return frozenset(c.id for n in names if (c := catalog.control(n)) is not None)


# What a probe block says the interface returns is a control the interface has.
OUTPUT_CONTROL = {"label": "label_only_output", "rounded": "output_rounding"}


def _declared_output(component: Component) -> frozenset[str]:
    output = component.probe.output if component.probe else None
    return frozenset({OUTPUT_CONTROL[output]}) if output in OUTPUT_CONTROL else frozenset()


def _build(spec: PipelineSpec, located: Located, file: str, catalog: Catalog) -> Pipeline:
    positions = {c.id: located.position(("components", i)) or (1, 1)
                 for i, c in enumerate(spec.components)}
    flow_positions = [located.position(("flows", i)) or (1, 1) for i in range(len(spec.flows))]
    connected = {f.source for f in spec.flows} | {f.target for f in spec.flows}
    warnings = [Problem(file, *positions[c.id], f"component {c.id!r} has no flows",
                        "threats that travel along flows cannot reach or leave it")
                for c in spec.components if c.id not in connected and len(spec.components) > 1]
    return Pipeline(
        spec=spec, file=file, component_positions=positions, flow_positions=flow_positions,
        controls={c.id: _resolve(c.controls, catalog) | _declared_output(c)
                  for c in spec.components},
        pipeline_controls=_resolve(spec.controls, catalog), warnings=warnings,
    )
