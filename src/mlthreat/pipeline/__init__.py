"""Pipeline specs: pydantic models, YAML loading with line-numbered errors, and the flow graph."""

from mlthreat.pipeline.loader import Pipeline, load_pipeline, parse_pipeline
from mlthreat.pipeline.spec import Artifacts, AssetInfo, Component, Flow, PipelineSpec

__all__ = ["Artifacts", "AssetInfo", "Component", "Flow", "Pipeline", "PipelineSpec",
           "load_pipeline", "parse_pipeline"]
