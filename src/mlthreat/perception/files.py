"""Reading and writing perception files and answer files for the interview."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from mlthreat.errors import InputError, Problem, SpecError
from mlthreat.perception.elicit import QUESTIONS, AnswersFileIo
from mlthreat.perception.model import Perception
from mlthreat.pipeline import Pipeline
from mlthreat.yamlio import (
    did_you_mean,
    mapping_document,
    parse_yaml,
    read_text,
    sort_problems,
    validate,
)

HEADER = ("# Perception file written by `mlthreat elicit` (format: docs/perception.md).\n"
          "# Compare with the threat model: mlthreat model SPEC --perception THIS_FILE\n")


def read_perception(path: Path) -> Perception:
    located = parse_yaml(read_text(path, "perception"), str(path))
    problems = mapping_document(located, str(path), "perception file", "'respondent' and 'views'")
    return validate(Perception, located, str(path), problems)


def save_perception(p: Perception, path: Path) -> None:
    """Write atomically: an interrupted write never leaves half a file."""
    data = p.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
    text = HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


ANSWER_KEYS = ("respondent", "role", "team", "components")


def load_answers(path: Path, components: Sequence[str]) -> dict[str, Any]:
    """The answers file, with every unknown key or component reported where it stands (an
    answer under a misspelt name would otherwise be dropped without a word)."""
    file = str(path)
    located = parse_yaml(read_text(path, "answers"), file)
    problems = mapping_document(located, file, "answers file", "'components'")
    data = located.data
    if not isinstance(data.get("components"), dict):
        raise InputError(f"{path}: 'components' must map component ids to their answers")

    def unknown(where: tuple[Any, ...], key: str, known: Sequence[str], label: str) -> None:
        line, column = located.key_position((*where, key)) or (None, None)
        problems.append(Problem(file, line, column, f"unknown {label.rstrip('s')} {key!r}",
                                did_you_mean(key, known, label)))
    for key in data:
        if key not in ANSWER_KEYS:
            unknown((), str(key), ANSWER_KEYS, "keys")
    for comp, answers in data["components"].items():
        if str(comp) not in components:
            unknown(("components",), str(comp), components, "components")
        elif isinstance(answers, dict):
            for question in answers:
                if question not in QUESTIONS:
                    unknown(("components", comp), str(question), QUESTIONS, "questions")
    if problems:
        raise SpecError(sort_problems(problems))
    return dict(data)


def answers_io(path: Path, pipeline: Pipeline) -> AnswersFileIo:
    """An Io that answers from a file: {respondent, role, team, components: {id: answers}}."""
    data = load_answers(path, [c.id for c in pipeline.spec.components])
    return AnswersFileIo({str(k): dict(v or {}) for k, v in data["components"].items()},
                         {k: str(data[k]) for k in ("respondent", "role", "team") if data.get(k)})
