"""Locating the bundled examples, in a wheel (``mlthreat/_examples``) or in a source checkout."""

from __future__ import annotations

from pathlib import Path

REFERENCE = "credit-scoring"


def examples_root() -> Path:
    packaged = Path(__file__).parent / "_examples"      # in a wheel
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "examples"


def example_spec(name: str = REFERENCE) -> Path:
    return examples_root() / name / "pipeline.yaml"


def list_examples() -> list[str]:
    root = examples_root()
    return sorted(p.parent.name for p in root.glob("*/pipeline.yaml")) if root.is_dir() else []
