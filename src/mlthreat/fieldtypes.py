"""Pydantic building blocks shared by every user-written file format (specs, perceptions)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict


def as_list(value: object) -> object:
    """A single string where a list is expected becomes a one-item list."""
    return [value] if isinstance(value, str) else value


# A list of strings that may also be written as one string.
StrList = Annotated[list[str], BeforeValidator(as_list, json_schema_input_type=str | list[str])]


class Strict(BaseModel):
    """Unknown fields are errors (with "did you mean"); parsed values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
