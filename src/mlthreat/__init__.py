"""mlthreat: threat modelling and security assessment of whole machine-learning pipelines.

The public API (docs/api.md)::

    from mlthreat import Assessor, load_catalog, load_pipeline
    assessment = Assessor(probes=True, budget="quick").assess("pipeline.yaml")

Names are imported on first use, so that `import mlthreat` (and `mlthreat --version`) stays fast.
"""

from __future__ import annotations

import sys

from mlthreat.version import __version__

# typing and importlib are not imported here: the command line (`mlthreat`, `python -m
# mlthreat.cli`) imports this package before it can catch Ctrl-C, so this module imports only
# what the interpreter already holds (tests/test_interrupt.py)
TYPE_CHECKING = False

_PUBLIC = {
    "Assessor": "mlthreat.assessor", "Observer": "mlthreat.progress",
    "load_pipeline": "mlthreat.pipeline", "Pipeline": "mlthreat.pipeline",
    "load_catalog": "mlthreat.catalog", "Catalog": "mlthreat.catalog",
    "Assessment": "mlthreat.results", "Evidence": "mlthreat.results",
    "Finding": "mlthreat.results", "Gap": "mlthreat.results", "Skipped": "mlthreat.results",
    "Curve": "mlthreat.results",
    "MlthreatError": "mlthreat.errors", "InputError": "mlthreat.errors",
    "SpecError": "mlthreat.errors", "DataError": "mlthreat.errors",
    "ModelError": "mlthreat.errors", "OutputError": "mlthreat.errors",
    "Interrupted": "mlthreat.errors", "ToolError": "mlthreat.errors",
}
__all__ = ["Assessment", "Assessor", "Catalog", "Curve", "DataError", "Evidence", "Finding", "Gap",
           "InputError", "Interrupted", "MlthreatError", "ModelError", "Observer", "OutputError",
           "Pipeline", "Skipped", "SpecError", "ToolError", "__version__", "load_catalog",
           "load_pipeline"]

if TYPE_CHECKING:
    from typing import Any

    from mlthreat.assessor import Assessor
    from mlthreat.catalog import Catalog, load_catalog
    from mlthreat.errors import (
        DataError,
        InputError,
        Interrupted,
        MlthreatError,
        ModelError,
        OutputError,
        SpecError,
        ToolError,
    )
    from mlthreat.pipeline import Pipeline, load_pipeline
    from mlthreat.progress import Observer
    from mlthreat.results import Assessment, Curve, Evidence, Finding, Gap, Skipped


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        __import__(_PUBLIC[name])
        return getattr(sys.modules[_PUBLIC[name]], name)
    raise AttributeError(f"module 'mlthreat' has no attribute {name!r}")
