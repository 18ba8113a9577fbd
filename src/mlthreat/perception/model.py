"""The perception file: one person's mental model of the pipeline (docs/perception.md).

Per component (or "*" for the whole pipeline): the threats they see, the defenses they believe
they have and against what, who they think is responsible, whether an attacker would gain
anything, and how confident they are. Threats and defenses may be catalog ids or free text.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from mlthreat.fieldtypes import Strict, StrList

WHOLE_PIPELINE = "*"


class Responsibility(StrEnum):
    us = "us"
    other_team = "other_team"
    provider = "provider"
    nobody = "nobody"
    unsure = "unsure"


class Level(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


def _defense(value: object) -> object:
    return {"control": value} if isinstance(value, str) else value


class Defense(Strict):
    control: str = Field(min_length=1, description="Catalog control id or alias, or free text.")
    against: StrList = Field(default_factory=list,
                              description="Threats it is believed to stop: ids or free text.")


DefenseItem = Annotated[Defense, BeforeValidator(_defense, json_schema_input_type=str | Defense)]


class View(Strict):
    component: str = Field(description="Component id from the spec, or '*' for the whole pipeline.")
    threats: StrList = Field(default_factory=list)
    defenses: list[DefenseItem] = Field(default_factory=list)
    responsibility: Responsibility | None = None
    responsible: str | None = Field(default=None, description="Who, when not us.")
    attacker_gain: bool | Literal["unsure"] | None = None
    reason: str | None = None
    confidence: Level | None = None


class Perception(Strict):
    version: Literal[1] = 1
    respondent: str = Field(min_length=1)
    role: str | None = None
    team: str | None = None
    pipeline: str | None = Field(default=None, description="Name of the pipeline (spec name).")
    complete: bool = Field(default=True, description="False while an interview is in progress.")
    views: list[View] = Field(default_factory=list)
