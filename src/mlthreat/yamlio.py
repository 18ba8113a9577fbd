"""Reading user YAML files into pydantic models with every problem located (file:line:column).

Shared by every input format (pipeline specs, perception files, answer files): reading bytes
(missing files, folders, non-UTF-8), parsing YAML (syntax errors with marks, duplicate keys) and
translating pydantic's validation errors into messages that say where, what and what to do.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from mlthreat.errors import Problem, SpecError
from mlthreat.yamlpos import Located, load_located
from mlthreat.yamlpos import Path as YPath

M = TypeVar("M", bound=BaseModel)


def read_text(path: Path, what: str = "spec") -> str:
    """The file's text, or SpecError saying why it cannot be read."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise SpecError([Problem(file, None, None, "file not found",
                                 "check the path; `mlthreat demo` shows a complete example")]) from exc
    except IsADirectoryError as exc:
        raise SpecError([Problem(file, None, None, f"is a folder, not a {what} file",
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
                                 f"save the file as UTF-8; a binary file is not a {what}")]) from exc


def parse_yaml(text: str, file: str) -> Located:
    """Parse YAML with positions; syntax errors become a located SpecError."""
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


def mapping_document(located: Located, file: str, what: str, keys: str) -> list[Problem]:
    """Duplicate keys as problems; raises for an empty file or a top level that is no mapping."""
    problems = [Problem(file, *pos, f"key {p[-1]!r} appears twice in the same mapping",
                        "remove or rename one of them; YAML keeps only the last")
                for p, pos in located.duplicates]
    if located.data is None:
        raise SpecError([Problem(file, 1, 1, "the file is empty",
                                 f"a {what} is a mapping with {keys}")])
    if not isinstance(located.data, dict):
        raise SpecError([Problem(file, *(located.position(()) or (1, 1)),
                                 f"the top level is a {type_name(located.data)}, not a mapping",
                                 f"a {what} is a mapping with {keys}")])
    return problems


def validate(model: type[M], located: Located, file: str, problems: list[Problem],
             empty: dict[YPath, tuple[str, str]] | None = None) -> M:
    """Validate located data; raise SpecError with every problem, sorted by position."""
    try:
        result = model.model_validate(located.data)
    except ValidationError as exc:
        problems = problems + [_translate(e, located, file, model, empty or {})
                               for e in exc.errors()]
        raise SpecError(sort_problems(problems)) from exc
    if problems:
        raise SpecError(sort_problems(problems))
    return result


def sort_problems(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


def did_you_mean(value: str, choices: Iterable[str], label: str) -> str:
    choices = list(choices)
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
    known = f"{label}: {', '.join(choices)}"
    return f"did you mean {close[0]!r}? {known}" if close else known


def type_name(value: object) -> str:
    return {dict: "mapping", list: "list", str: "string", int: "number", float: "number",
            bool: "true/false", type(None): "empty value"}.get(type(value), type(value).__name__)


def readable(path: YPath) -> str:
    """('components', 0, 'kind') -> "component #1, field 'kind'"."""
    if not path:
        return "top level"
    if len(path) >= 2 and isinstance(path[0], str) and isinstance(path[1], int):
        head = f"{path[0].removesuffix('s')} #{path[1] + 1}"
        return head + (f", field {'.'.join(str(p) for p in path[2:])!r}" if len(path) > 2 else "")
    return ".".join(str(p) for p in path)


def owner(path: YPath) -> str:
    return "the file" if not path else readable(path)


def _model_in(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The pydantic model inside an annotation, and whether a dict sits between (keyed items)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (dict, typing.Dict):  # noqa: UP006 - typing.Dict may appear in annotations
        inner, _ = _model_in(args[1]) if len(args) == 2 else (None, False)
        return inner, True
    if origin in (typing.Annotated,) and args:
        return _model_in(args[0])
    for arg in args:
        if origin is types.UnionType or origin is typing.Union or origin in (list, tuple):
            found, keyed = _model_in(arg)
            if found is not None:
                return found, keyed
    return None, False


def _allowed_fields(root: type[BaseModel], parent: YPath) -> list[str]:
    model: type[BaseModel] | None = root
    keyed = False
    for part in parent:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        if keyed:            # a user-chosen key of a dict[str, Model]
            keyed = False
            continue
        info = model.model_fields.get(str(part)) or next(
            (f for f in model.model_fields.values() if f.alias == part), None)
        if info is None:
            return []
        model, keyed = _model_in(info.annotation)
    return [info.alias or name for name, info in model.model_fields.items()] if model else []


def _choices(err: Any) -> list[str]:
    expected = str(err.get("ctx", {}).get("expected", ""))
    return re.findall(r"'([^']*)'", expected) or re.findall(r"\b(\w+)\b", expected)


def _translate(err: Any, located: Located, file: str, root: type[BaseModel],
               empty: dict[YPath, tuple[str, str]]) -> Problem:
    loc: YPath = tuple(err["loc"])
    kind, value = err["type"], err.get("input")
    is_key = bool(loc) and loc[-1] == "[key]"
    path = loc[:-1] if is_key else loc
    line, col = (located.key_position(path) if is_key else located.position(path)) or (None, None)
    name = readable(path)
    if kind == "missing":
        return Problem(file, line, col, f"{owner(path[:-1])} is missing required field {path[-1]!r}",
                       f"add '{path[-1]}:'")
    if kind == "extra_forbidden":
        line, col = located.key_position(path) or (line, col)
        return Problem(file, line, col, f"unknown field {path[-1]!r} in {owner(path[:-1])}",
                       did_you_mean(str(path[-1]), _allowed_fields(root, path[:-1]),
                                    "allowed fields"))
    if kind in ("enum", "literal_error"):
        what = str(path[-2]).removesuffix("s") if is_key and len(path) >= 2 else str(path[-1])
        choices = _choices(err)
        return Problem(file, line, col, f"{value!r} is not a valid {what} (at {name})",
                       did_you_mean(str(value), choices, f"valid {what} values") if choices
                       else err["msg"])
    if kind == "too_short" and path in empty:
        message, hint = empty[path]
        return Problem(file, line, col, message, hint)
    if kind in ("too_short", "string_too_short"):
        return Problem(file, line, col, f"{name} must not be empty", None)
    if kind == "string_pattern_mismatch":
        return Problem(file, line, col, f"{value!r} is not a valid id (at {name})",
                       "ids start with a letter and use letters, digits, '_', '-' or '.'")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        expected = err["msg"].removeprefix("Input should be ").removesuffix(".")
        return Problem(file, line, col, f"{name} should be {expected}, not {type_name(value)}",
                       None)
    return Problem(file, line, col, f"{name}: {err['msg']}", None)
