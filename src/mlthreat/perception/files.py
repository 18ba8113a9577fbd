"""Reading and writing perception files for the interview, and the terminal's Io."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from mlthreat.errors import InputError
from mlthreat.perception.elicit import AnswersFileIo
from mlthreat.perception.model import Perception
from mlthreat.yamlio import mapping_document, parse_yaml, read_text, validate

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


def load_answers(path: Path) -> dict[str, Any]:
    located = parse_yaml(read_text(path, "answers"), str(path))
    mapping_document(located, str(path), "answers file", "'components'")
    data = located.data
    if not isinstance(data.get("components"), dict):
        raise InputError(f"{path}: 'components' must map component ids to their answers")
    return dict(data)


def answers_io(path: Path) -> AnswersFileIo:
    """An Io that answers from a file: {respondent, role, team, components: {id: answers}}."""
    data = load_answers(path)
    return AnswersFileIo({str(k): dict(v or {}) for k, v in data["components"].items()},
                         {k: str(data[k]) for k in ("respondent", "role", "team") if data.get(k)})


class TerminalIo:
    interactive = True

    def __init__(self, console: Console) -> None:
        self.console = console

    def ask(self, component: str, question: str, prompt: str) -> str:
        return self.console.input(f"[bold]{prompt}[/]\n> ")

    def say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)
