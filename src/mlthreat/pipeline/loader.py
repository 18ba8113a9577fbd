"""Reads a pipeline spec file into a validated :class:`Pipeline`, or raises SpecError.

Every problem a user can make is reported with file:line:column, what is wrong and what to do;
all problems of a file are reported together, so one run shows everything to fix.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mlthreat.catalog import Catalog
from mlthreat.errors import Problem, SpecError
from mlthreat.pipeline.spec import Artifacts, AssetInfo, Component, Flow, PipelineSpec
from mlthreat.pipeline.yamlpos import Located, load_located
from mlthreat.pipeline.yamlpos import Path as YPath
from mlthreat.vocabulary import Asset, Criticality, Exposure, Kind

_ENUMS: dict[str, list[str]] = {
    "kind": [k.value for k in Kind],
    "exposure": [e.value for e in Exposure],
    "criticality": [c.value for c in Criticality],
    "[key]": [a.value for a in Asset],
}


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
    file = str(path)
    text = _read_text(Path(path), file)
    return parse_pipeline(text, file, catalog)


def parse_pipeline(text: str, file: str, catalog: Catalog) -> Pipeline:
    located = _parse_yaml(text, file)
    problems = [Problem(file, *pos, f"key {p[-1]!r} appears twice in the same mapping",
                        "remove or rename one of them; YAML keeps only the last")
                for p, pos in located.duplicates]
    data = located.data
    if data is None:
        raise SpecError([Problem(file, 1, 1, "the file is empty",
                                 "start from the example in docs/spec.md")])
    if not isinstance(data, dict):
        raise SpecError([Problem(file, *(located.position(()) or (1, 1)),
                                 f"the top level is a {_type_name(data)}, not a mapping",
                                 "a spec is a mapping with 'name', 'components' and 'flows'")])
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        problems += [_translate(err, located, file) for err in exc.errors()]
        raise SpecError(_sorted(problems)) from exc
    problems += _check_references(spec, located, file, catalog)
    if problems:
        raise SpecError(_sorted(problems))
    return _build(spec, located, file, catalog)


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


def _read_text(path: Path, file: str) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise SpecError([Problem(file, None, None, "file not found",
                                 "check the path; `mlthreat demo` shows a complete example")]) from exc
    except IsADirectoryError as exc:
        raise SpecError([Problem(file, None, None, "is a folder, not a spec file",
                                 "name the YAML file itself")]) from exc
    except OSError as exc:
        raise SpecError([Problem(file, None, None, f"cannot read: {exc.strerror}")]) from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError([Problem(file, line, column,
                                 f"not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                                 "save the file as UTF-8; a binary file is not a spec")]) from exc


def _parse_yaml(text: str, file: str) -> Located:
    try:
        return load_located(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        what = " ".join(x for x in (exc.context, exc.problem) if x) or "invalid YAML"
        raise SpecError([Problem(file, line, col, f"not valid YAML: {what}",
                                 "check indentation and quoting on this line or the one before")]) from exc
    except yaml.YAMLError as exc:
        raise SpecError([Problem(file, None, None, f"not valid YAML: {exc}")]) from exc


_MODELS: dict[tuple[str, ...], type[BaseModel]] = {
    (): PipelineSpec, ("components",): Component, ("components", "artifacts"): Artifacts,
    ("flows",): Flow, ("assets",): AssetInfo,
}


def _allowed_fields(parent: YPath) -> list[str]:
    shape = tuple(p for p in parent if isinstance(p, str))
    if shape and shape[0] == "assets":
        shape = ("assets",)
    model = _MODELS.get(shape)
    if model is None:
        return []
    names = []
    for name, info in model.model_fields.items():
        names.append(info.alias or name)
    return names


def _translate(err: Any, located: Located, file: str) -> Problem:
    loc: YPath = tuple(err["loc"])
    kind, value = err["type"], err.get("input")
    is_key = bool(loc) and loc[-1] == "[key]"
    path = loc[:-1] if is_key else loc
    where = located.key_position(path) if is_key else located.position(path)
    line, col = where or (None, None)
    name = _readable(path)
    if kind == "missing":
        return Problem(file, line, col, f"{_owner(path[:-1])} is missing required field {path[-1]!r}",
                       f"add '{path[-1]}:'")
    if kind == "extra_forbidden":
        line, col = located.key_position(path) or (line, col)
        allowed = _allowed_fields(path[:-1])
        return Problem(file, line, col, f"unknown field {path[-1]!r} in {_owner(path[:-1])}",
                       _did_you_mean(str(path[-1]), allowed, "allowed fields"))
    if kind in ("enum", "literal_error"):
        field_name = "[key]" if is_key else str(path[-1])
        choices = _ENUMS.get(field_name, [])
        what = "asset" if is_key else field_name
        return Problem(file, line, col, f"{value!r} is not a valid {what} (at {name})",
                       _did_you_mean(str(value), choices, f"valid {what} values") if choices
                       else err["msg"])
    if kind == "too_short" and path == ("components",):
        return Problem(file, line, col, "the pipeline has no components",
                       "list at least one component under 'components:'")
    if kind in ("too_short", "string_too_short"):
        return Problem(file, line, col, f"{name} must not be empty", None)
    if kind == "string_pattern_mismatch":
        return Problem(file, line, col, f"{value!r} is not a valid id (at {name})",
                       "ids start with a letter and use letters, digits, '_', '-' or '.'")
    if kind.endswith("_type") or kind in ("model_attributes_type", "dict_type", "list_type"):
        expected = err["msg"].removeprefix("Input should be ").removesuffix(".")
        return Problem(file, line, col, f"{name} should be {expected}, not {_type_name(value)}",
                       None)
    return Problem(file, line, col, f"{name}: {err['msg']}", None)


def _readable(path: YPath) -> str:
    if not path:
        return "top level"
    if path[0] in ("components", "flows") and len(path) >= 3:
        return f"{_owner(path[:2])}, field {'.'.join(str(p) for p in path[2:])!r}"
    return _owner(path)


def _owner(path: YPath) -> str:
    if not path:
        return "the spec"
    if path[0] == "components" and len(path) >= 2:
        return f"component #{int(path[1]) + 1}" + (f" ({path[2]})" if len(path) > 2 else "")
    if path[0] == "flows" and len(path) >= 2:
        return f"flow #{int(path[1]) + 1}"
    return ".".join(str(p) for p in path)


def _did_you_mean(value: str, choices: Iterable[str], label: str) -> str:
    choices = list(choices)
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
    known = f"{label}: {', '.join(choices)}"
    return f"did you mean {close[0]!r}? {known}" if close else known


def _type_name(value: object) -> str:
    return {dict: "mapping", list: "list", str: "string", int: "number", float: "number",
            bool: "true/false", type(None): "empty value"}.get(type(value), type(value).__name__)


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
                                        _did_you_mean(end, ids, "components")))
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
        controls={c.id: _resolve(c.controls, catalog) for c in spec.components},
        pipeline_controls=_resolve(spec.controls, catalog), warnings=warnings,
    )
