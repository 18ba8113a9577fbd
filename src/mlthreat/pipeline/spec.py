"""The pipeline spec: components, flows, assets and pipeline-wide controls, as pydantic models.

Field-level rules live here; rules that need the whole document (unique ids, flow endpoints,
control names from the catalog) live in ``loader.py``, which knows where each value was written.
`mlthreat schema` prints :func:`PipelineSpec.model_json_schema`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from mlthreat.fieldtypes import Strict, StrList
from mlthreat.vocabulary import Asset, Criticality, Exposure, Kind

ComponentId = Annotated[
    str,
    Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=200,
          description="Unique id: a letter, then letters, digits, '_', '-' or '.'."),
]


class Artifacts(Strict):
    """Where the component's real things are: paths relative to the spec file, or a URL."""

    data: StrList = Field(default_factory=list, description="Data files or folders.")
    model: StrList = Field(default_factory=list, description="Model files or folders.")
    code: StrList = Field(default_factory=list, description="Code, notebooks, configs.")
    endpoint: str | None = Field(default=None, description="URL of a served endpoint.")
    model_format: Literal["pickle", "joblib", "torch", "safetensors", "onnx", "keras",
                          "xgboost_json", "other"] | None = Field(
        default=None, description="Format of the model files, when the extension does not say.")


class ProbeSpec(Strict):
    """What probes need to measure attacks on the component's model (docs/probes.md)."""

    data: str = Field(description="CSV or Parquet file with the model's features and target.")
    target: str = Field(description="The target column.")
    positive: str | int = Field(description="The target value of the positive class.")
    drop: StrList = Field(default_factory=list, description="Columns that are not features.")
    test_size: int = Field(default=1000, ge=10,
                           description="Rows held out when the model was trained (non-members).")
    seed: int = Field(default=0, description="Seed of that stratified split.")
    output: Literal["probabilities", "rounded", "label"] = Field(
        default="probabilities", description="What the interface returns to an attacker.")
    queries: int = Field(default=1000, ge=10, description="The attacker's query budget.")


class Component(Strict):
    id: ComponentId
    kind: Kind
    name: str | None = Field(default=None, description="Human-readable name.")
    exposure: Exposure = Field(
        default=Exposure.internal,
        description="Who can reach it: public (anyone), partner, internal, offline.")
    owner: str | None = Field(default=None, description="Team or provider responsible.")
    controls: StrList = Field(default_factory=list, description="Control ids from the catalog.")
    artifacts: Artifacts = Field(default_factory=Artifacts)
    personal_data: bool = Field(default=False, description="Holds or handles data about people.")
    probe: ProbeSpec | None = Field(
        default=None, description="Measure attacks on this component's model (mlthreat probe).")
    notes: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.id


class Flow(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    source: ComponentId = Field(alias="from", description="Component the data leaves.")
    target: ComponentId = Field(alias="to", description="Component the data reaches.")
    data: str | None = Field(default=None, description="What flows, in a few words.")
    notes: str | None = None


class AssetInfo(Strict):
    criticality: Criticality = Criticality.medium
    notes: str | None = None


class PipelineSpec(Strict):
    """A whole ML pipeline. Flows may form cycles: feedback loops are real."""

    version: Literal[1] = Field(default=1, description="Spec format version.")
    name: str = Field(min_length=1)
    description: str | None = None
    owner: str | None = Field(default=None, description="Team that owns the pipeline.")
    assets: dict[Asset, AssetInfo] = Field(
        default_factory=dict, description="How much each asset matters; default medium.")
    controls: StrList = Field(
        default_factory=list, description="Controls that apply to every component.")
    components: list[Component] = Field(min_length=1)
    flows: list[Flow] = Field(default_factory=list)
