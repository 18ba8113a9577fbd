"""Loads the packaged catalog, checks it against its schema and its own cross-references.

A catalog that fails here is a bug in mlthreat (exit 3), not a user error, so problems are raised
as :class:`~mlthreat.errors.CatalogError` with every problem listed at once.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mlthreat.catalog.schema import Control, ControlFile, Threat, ThreatFile
from mlthreat.errors import CatalogError
from mlthreat.vocabulary import Family, Strength

REFERENCE_SCHEMES = ("atlas", "owasp_ml", "owasp_llm", "cwe")
# Catalog texts say {about} (whom or what the inputs describe) and {decides} (what the model
# decides); a spec's `domain` fills them, these words where it does not.
DEFAULT_WORDS = {"about": "the people or cases the model judges", "decides": "its decision"}


def in_words(text: str, about: str | None = None, decides: str | None = None) -> str:
    """A catalog text with {about} and {decides} filled in."""
    return (text.replace("{about}", about or DEFAULT_WORDS["about"])
            .replace("{decides}", decides or DEFAULT_WORDS["decides"]))


@dataclass(frozen=True)
class Catalog:
    """Threats, controls and reference names, with the lookups the analysis needs."""

    threats: tuple[Threat, ...]
    controls: tuple[Control, ...]
    reference_names: dict[str, dict[str, str]]
    atlas_version: str
    _threat_by_id: dict[str, Threat] = field(init=False, repr=False)
    _control_by_name: dict[str, Control] = field(init=False, repr=False)
    _mitigations: dict[str, tuple[tuple[Control, Strength], ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_name: dict[str, Control] = {}
        for c in self.controls:
            for name in (c.id, *c.aliases):
                by_name[name] = c
        mitigations: dict[str, list[tuple[Control, Strength]]] = {t.id: [] for t in self.threats}
        for c in self.controls:
            for threat_id, strength in c.mitigates.items():
                mitigations.setdefault(threat_id, []).append((c, strength))
        object.__setattr__(self, "_threat_by_id", {t.id: t for t in self.threats})
        object.__setattr__(self, "_control_by_name", by_name)
        object.__setattr__(
            self, "_mitigations", {k: tuple(v) for k, v in mitigations.items()}
        )

    def threat(self, threat_id: str) -> Threat:
        return self._threat_by_id[threat_id]

    def control(self, name: str) -> Control | None:
        """The control with this id or alias, or None."""
        return self._control_by_name.get(name)

    def control_names(self) -> list[str]:
        return sorted(self._control_by_name)

    def suggest_control(self, name: str) -> str | None:
        """The nearest control id or alias to a misspelt name, for "did you mean"."""
        close = difflib.get_close_matches(name, self.control_names(), n=1, cutoff=0.6)
        return close[0] if close else None

    def mitigations(self, threat_id: str) -> tuple[tuple[Control, Strength], ...]:
        return self._mitigations.get(threat_id, ())

    def by_family(self, family: Family | None) -> tuple[Threat, ...]:
        return tuple(t for t in self.threats if family is None or t.family == family)

    def reference_name(self, scheme: str, ref_id: str) -> str:
        return self.reference_names.get(scheme, {}).get(ref_id, "")


def _read(name: str) -> Any:
    # package data beside this module (importlib.resources would add 17 ms to every start-up)
    text = (Path(__file__).parent / "data" / name).read_text("utf-8")
    # libyaml's loader where PyYAML has it: the catalog is a third of a second in pure Python
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506


def _cross_check(threats: tuple[Threat, ...], controls: tuple[Control, ...],
                 refs: dict[str, dict[str, str]]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for t in threats:
        if t.id in seen:
            problems.append(f"duplicate threat id {t.id}")
        seen.add(t.id)
        if t.id.startswith("aml-") != (t.family == Family.aml):
            problems.append(f"threat {t.id}: id prefix does not match family {t.family}")
        for scheme in REFERENCE_SCHEMES:
            for ref in getattr(t.references, scheme):
                if ref not in refs.get(scheme, {}):
                    problems.append(f"threat {t.id}: {scheme} id {ref} has no name in references.yaml")
    names: set[str] = set()
    mitigated: set[str] = set()
    for c in controls:
        for name in (c.id, *c.aliases):
            if name in names:
                problems.append(f"control name {name} is used twice")
            names.add(name)
        for ref in c.references.atlas:
            if ref not in refs.get("atlas", {}):
                problems.append(f"control {c.id}: atlas id {ref} has no name in references.yaml")
        for cid in c.covered_by:
            if cid not in {x.id for x in controls}:
                problems.append(f"control {c.id}: covered by unknown control {cid}")
        for threat_id in c.mitigates:
            if threat_id not in seen:
                problems.append(f"control {c.id} mitigates unknown threat {threat_id}")
            mitigated.add(threat_id)
    problems += [f"threat {t} has no mitigating control" for t in sorted(seen - mitigated)]
    for t in threats:
        for text in (t.description, t.recommendation):
            unknown = set(re.findall(r"\{[^}]*\}", text)) - {"{about}", "{decides}"}
            if unknown:
                problems.append(f"threat {t.id}: unknown placeholder {', '.join(sorted(unknown))}")
        for cid in (*t.ruled_out_by, *t.acts_at.controls):
            if cid not in names:
                problems.append(f"threat {t.id}: unknown control {cid}")
    return problems


@cache
def load_catalog() -> Catalog:
    """The packaged catalog, validated. Cached: the data ship with the package and do not change."""
    try:
        threats = ThreatFile.model_validate(_read("threats.yaml")).threats
        controls = ControlFile.model_validate(_read("controls.yaml")).controls
    except ValidationError as exc:
        raise CatalogError(f"the packaged catalog fails its schema:\n{exc}") from exc
    raw_refs = _read("references.yaml")
    refs = {k: {str(i): str(n) for i, n in v.items()} for k, v in raw_refs.items()
            if isinstance(v, dict)}
    problems = _cross_check(threats, controls, refs)
    if problems:
        raise CatalogError("the packaged catalog is inconsistent:\n" + "\n".join(problems))
    return Catalog(threats, controls, refs, str(raw_refs.get("atlas_version", "")))
