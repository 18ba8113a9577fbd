"""Shared fixtures: the catalog, the bundled examples, and small specs written on the fly."""

from __future__ import annotations

import os

# PyTorch and scikit-learn each bring an OpenMP runtime; in one process (as in this test session)
# their thread pools oversubscribe two cores and small fits slow down several-fold. One thread each.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import json  # noqa: E402
import textwrap  # noqa: E402
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from mlthreat.analysis import Assessment, assess
from mlthreat.catalog import Catalog, load_catalog
from mlthreat.pipeline import Pipeline, load_pipeline

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
EXAMPLE_NAMES = sorted(p.parent.name for p in EXAMPLES.glob("*/pipeline.yaml"))
ATLAS_YAML = ROOT.parent / "shared" / "reference" / "atlas" / "ATLAS.yaml"


def reply_json(handler: BaseHTTPRequestHandler, answer: object) -> None:
    """A test server's 200 answer, `answer` as its JSON body."""
    out = json.dumps(answer).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(out)))
    handler.end_headers()
    handler.wfile.write(out)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """A file that harmless test payloads would create if they ever ran."""
    path = tmp_path / "PAYLOAD-RAN"
    assert not path.exists()
    return path


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str, name: str = "pipeline.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path
    return write


@pytest.fixture
def model_of(write_spec: Callable[[str], Path], catalog: Catalog
             ) -> Callable[[str], Assessment]:
    """Threat-model a spec given as YAML text."""
    def run(text: str) -> Assessment:
        return assess(load_pipeline(write_spec(text), catalog), catalog)
    return run


@pytest.fixture(scope="session")
def example_pipeline(catalog: Catalog) -> Callable[[str], Pipeline]:
    return lambda name: load_pipeline(EXAMPLES / name / "pipeline.yaml", catalog)


@pytest.fixture(scope="session")
def credit(catalog: Catalog) -> Assessment:
    return assess(load_pipeline(EXAMPLES / "credit-scoring" / "pipeline.yaml", catalog), catalog)
