"""Schema of the threat and control catalog (package data in ``catalog/data/*.yaml``).

Every field is declarative: where a threat applies is a set of kinds, exposures and derived facts,
never an expression to evaluate. Cross-references (a control naming a threat) are checked by the
loader, which sees both files.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlthreat.vocabulary import Asset, Attacker, Exposure, Fact, Family, Goal, Kind, Strength

ATLAS_ID = re.compile(r"^AML\.(T|M)\d{4}(\.\d{3})?$")
CWE_ID = re.compile(r"^CWE-\d+$")
OWASP_ML_ID = re.compile(r"^ML(0[1-9]|10)$")
OWASP_LLM_ID = re.compile(r"^LLM(0[1-9]|10)$")
NIST_CLASSES = (
    "evasion",
    "poisoning-availability",
    "poisoning-targeted",
    "poisoning-backdoor",
    "poisoning-model",
    "privacy-membership-inference",
    "privacy-attribute-inference",
    "privacy-data-reconstruction",
    "privacy-model-extraction",
    "privacy-property-inference",
    "availability",
    "genai-direct-prompt-injection",
    "genai-indirect-prompt-injection",
    "genai-supply-chain",
    "genai-misuse",
)
Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
Level = Annotated[int, Field(ge=1, le=5)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class References(_Strict):
    atlas: tuple[str, ...] = ()
    owasp_ml: tuple[str, ...] = ()
    owasp_llm: tuple[str, ...] = ()
    cwe: tuple[str, ...] = ()
    nist: str | None = None

    @field_validator("atlas")
    @classmethod
    def _atlas(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _check_ids(v, ATLAS_ID, "MITRE ATLAS id")

    @field_validator("owasp_ml")
    @classmethod
    def _owasp(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _check_ids(v, OWASP_ML_ID, "OWASP ML Top 10 id")

    @field_validator("owasp_llm")
    @classmethod
    def _owasp_llm(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _check_ids(v, OWASP_LLM_ID, "OWASP Top 10 for LLM Applications 2025 id")

    @field_validator("cwe")
    @classmethod
    def _cwe(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _check_ids(v, CWE_ID, "CWE id")

    @field_validator("nist")
    @classmethod
    def _nist(cls, v: str | None) -> str | None:
        if v is not None and v not in NIST_CLASSES:
            raise ValueError(f"unknown NIST AI 100-2 class {v!r}; known: {', '.join(NIST_CLASSES)}")
        return v


def _check_ids(ids: tuple[str, ...], pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    bad = [i for i in ids if not pattern.match(i)]
    if bad:
        raise ValueError(f"not a {what}: {', '.join(bad)}")
    return ids


class Where(_Strict):
    """Where the attacker acts: every listed condition must hold for a component."""

    kinds: tuple[Kind, ...] = Field(min_length=1)
    exposure: tuple[Exposure, ...] = ()
    facts: tuple[Fact, ...] = ()
    unless: tuple[Fact, ...] = ()     # facts that must not hold (the outsiders' threat covers it)
    controls: tuple[Slug, ...] = ()   # the component lists at least one (a detector to evade)


class Threat(_Strict):
    id: Slug
    name: str
    family: Family
    goal: Goal
    goal_if_personal_data: Goal | None = None
    asset: Asset
    attacker: Attacker
    acts_at: Where
    via: tuple[Kind, ...] = ()     # kinds the harm passes through, in order of preference
    reaches: tuple[Kind, ...] = ()
    likelihood: Level
    impact: Level
    description: str
    preconditions: tuple[str, ...] = ()
    recommendation: str
    references: References
    ruled_out_by: tuple[Slug, ...] = ()   # a control that, listed where it acts, rules it out
    measured_by: tuple[Annotated[str, Field(pattern=r"^(probe|scanner|external):[a-z_-]+$")],
                       ...] = ()
    keywords: tuple[str, ...] = ()   # how practitioners say it; used to map free text

    @field_validator("via", mode="before")
    @classmethod
    def _one_or_more(cls, v: object) -> object:
        return (v,) if isinstance(v, str) else v

    @field_validator("id")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v.startswith(("aml-", "cls-")):
            raise ValueError("threat ids start with 'aml-' or 'cls-'")
        return v


class Control(_Strict):
    id: Slug
    name: str
    family: Family
    incidental: bool = False
    scope: Literal["approach", "path"] = "path"
    aliases: tuple[Slug, ...] = ()
    covered_by: tuple[Slug, ...] = ()   # where one of these is in place, this one adds nothing
    applies_to: tuple[Kind, ...] = ()   # the kinds it is put on: recommended there on the path
    keywords: tuple[str, ...] = ()
    description: str
    references: References = References()
    mitigates: dict[str, Strength] = Field(min_length=1)


class ThreatFile(_Strict):
    version: int
    threats: tuple[Threat, ...]


class ControlFile(_Strict):
    version: int
    controls: tuple[Control, ...]
