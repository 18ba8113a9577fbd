"""Analysis: placing catalog threats on the pipeline, tracing paths, scoring risk."""

from mlthreat.analysis.assess import assess
from mlthreat.results import SCHEMA_VERSION, Assessment, AssetGroup, Finding

__all__ = ["SCHEMA_VERSION", "Assessment", "AssetGroup", "Finding", "assess"]
