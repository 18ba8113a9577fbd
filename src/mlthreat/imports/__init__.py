"""Evidence from other tools' reports: `mlthreat assess --evidence FILE[@COMPONENT]`.

Today garak's JSONL report (`garak.py`); which catalog threats each of its probes measures is
catalog data (`catalog/data/external.yaml`). `load` resolves the component and checks the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import yaml

from mlthreat.errors import InputError
from mlthreat.pipeline import Pipeline
from mlthreat.results import Evidence
from mlthreat.vocabulary import GENERATIVE_KINDS


@cache
def garak_map() -> dict[str, tuple[str, ...]]:
    """garak probe module (or module.Class) -> the catalog threats it measures."""
    path = Path(__file__).parents[1] / "catalog" / "data" / "external.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {str(k): tuple(v) for k, v in data["garak"].items()}


def split(arg: str) -> tuple[Path, str | None]:
    """FILE or FILE@COMPONENT."""
    file, sep, component = arg.rpartition("@")
    if sep and file and component and "/" not in component:
        return Path(file), component
    return Path(arg), None


def target_component(pipeline: Pipeline, named: str | None, file: Path) -> str:
    """The component the report measured: the one named, else the spec's only generative
    model."""
    ids = [c.id for c in pipeline.spec.components]
    if named is not None:
        if named not in ids:
            raise InputError(f"--evidence {file}@{named}: no component {named!r} in "
                             f"{pipeline.file}; components: {', '.join(ids)}")
        return named
    models = [c.id for c in pipeline.spec.components if c.kind in GENERATIVE_KINDS]
    if len(models) == 1:
        return models[0]
    which = (f"the spec has {len(models)} generative models ({', '.join(models)})" if models
             else "the spec has no hosted_model or llm component")
    raise InputError(f"--evidence {file}: say which component garak tested, as {file}@COMPONENT "
                     f"({which})")


def load(pipeline: Pipeline, args: Sequence[str]) -> tuple[list[Evidence], list[str]]:
    """Evidence and notes from every `--evidence` argument, each checked before any work."""
    from mlthreat.imports.garak import garak_evidence
    evidence: list[Evidence] = []
    notes: list[str] = []
    for arg in args:
        file, named = split(arg)
        component = target_component(pipeline, named, file)
        found, said = garak_evidence(file, component, garak_map())
        evidence += found
        notes += said
    return evidence, notes

