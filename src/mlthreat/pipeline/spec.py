"""The pipeline spec: components, flows, assets and pipeline-wide controls, as pydantic models.

Field-level rules live here; rules that need the whole document (unique ids, flow endpoints,
control names from the catalog) live in ``loader.py``, which knows where each value was written.
`mlthreat schema` prints :func:`PipelineSpec.model_json_schema`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

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


class ProbeConstraints(Strict):
    """What an attacker cannot or may change in a record (docs/probes.md). Categorical columns
    need no entry: a changed category is always exactly one category."""

    immutable: StrList = Field(default_factory=list,
                               description="Columns an applicant cannot change (age, records).")
    bounds: dict[str, tuple[float | None, float | None]] = Field(
        default_factory=dict, description="Column: [low, high] in the record's units; null "
                                          "for no bound on that side.")
    integer: StrList = Field(default_factory=list, description="Whole-number columns.")


class ProbeEndpoint(Strict):
    """A serving API queried over HTTP as the attacker would (black-box probes only)."""

    url: str = Field(description="POST address of the model's JSON API.")
    request: Any = Field(default_factory=lambda: {"rows": "$rows"},
                         description='JSON body; the string "$rows" becomes the batch.')
    response: str = Field(default="predictions",
                          description="Dotted path to the list of answers, one per row.")
    records: bool = Field(default=True, description="Send rows as records (column: value) "
                                                    "rather than as encoded number lists.")
    batch: int = Field(default=64, ge=1, description="Rows per request.")
    rate: float | None = Field(default=None, gt=0, description="Requests per second at most.")
    headers: dict[str, str] = Field(default_factory=dict, description="e.g. an API key.")
    images: Literal["chw", "hwc", "png"] = Field(
        default="chw", description="How an image is sent when the probe block has `images:`: "
        "nested lists channels-first (chw) or channels-last (hwc) in the data's pixel units, or "
        "a base64 PNG (png: pixels mapped from images.range to 0-255 and rounded, as an upload "
        "would be; 1, 3 or 4 channels).")


class ProbeImages(Strict):
    """The model takes images (docs/probes.md, Images): how they are shaped, which pixel values
    exist, and how the model normalises them. Budgets and changes are in the data's pixel units."""

    shape: tuple[int, int, int] = Field(
        description="channels, height, width of one image as the model takes it, e.g. [1, 28, 28] "
                    "or [3, 32, 32].")
    range: tuple[float, float] = Field(
        default=(0.0, 1.0), description="The lowest and highest pixel value of the data (0 and 1, "
                                        "or 0 and 255): every adversarial image stays inside.")
    mean: list[float] = Field(default_factory=lambda: [0.0], description=(
        "Per channel (or one for all), subtracted after the attacker's change, before the model: "
        "the model's own normalisation."))
    std: list[float] = Field(default_factory=lambda: [1.0], description=(
        "Per channel (or one for all), the divisor of that normalisation."))
    mask: str | None = Field(default=None, description=(
        ".npy file of shape [height, width] (or the image's shape): non-zero where the attacker "
        "may change pixels (a sticker or patch); none: the whole image."))
    classes: StrList = Field(default_factory=list, description=(
        "Names of the classes in the model's output order (an image folder's sub-folder names "
        "by default)."))
    augmentation: Literal["none", "shifts"] = Field(default="none", description=(
        "How the model was trained: shifts = on images moved by a pixel (the usual "
        "augmentation of small-image classifiers). Membership inference then queries each "
        "image's shifted views too and adds their likelihood ratios, as LiRA does; on a model "
        "trained without them the views only add noise, so leave it none."))


class ProbeText(Strict):
    """The model reads text (docs/probes.md, Text): which column holds it, and how far an
    attacker may change it while a reader still reads the same words."""

    column: str = Field(description="The data's column holding the text the model reads.")
    protected: StrList = Field(default_factory=list, description=(
        "Words the attacker leaves as they are (names, negations, the words that carry the "
        "meaning); case is ignored."))
    words: float = Field(default=0.2, gt=0, le=1, description=(
        "The share of a text's words the attacker may change (at least one word)."))
    edits: int = Field(default=1, ge=1, le=3, description=(
        "Letter edits per changed word (swap two neighbouring letters, drop, insert or replace "
        "one), so that a reader still reads the word."))


class ProbeSpec(Strict):
    """What probes need to measure attacks on the component's model (docs/probes.md)."""

    data: str = Field(description="CSV or Parquet file with the model's features (or text) and "
                                  "target; for images, an .npz file (arrays x and y) or a folder with one "
                                  "sub-folder of images per class.")
    target: str | None = Field(default=None, description="The target column (tables).")
    positive: str | int | None = Field(
        default=None, description="The target value of the positive class (tables).")
    images: ProbeImages | None = Field(
        default=None, description="The model takes images: their shape, range and normalisation.")
    text: ProbeText | None = Field(
        default=None, description="The model reads text: its column and what an attacker may "
                                  "change.")
    module: str | None = Field(default=None, description=(
        "For a PyTorch state dict that is not a stack of Linear layers: file.py:function "
        "returning the untrained torch.nn.Module the weights load into (your own code, run)."))
    drop: StrList = Field(default_factory=list, description="Columns that are not features.")
    test_size: int = Field(default=1000, ge=10,
                           description="Rows held out when the model was trained (non-members).")
    seed: int = Field(default=0, description="Seed of that stratified split.")
    output: Literal["probabilities", "rounded", "label"] = Field(
        default="probabilities", description="What the interface returns to an attacker.")
    queries: int = Field(default=1000, ge=10, description="The attacker's query budget.")
    constraints: ProbeConstraints = Field(default_factory=ProbeConstraints)
    endpoint: ProbeEndpoint | None = Field(
        default=None, description="Query this HTTP API instead of loading the model file.")
    goal: str | int | None = Field(
        default=None, description="The target value the attacker wants the model to output "
                                  "(e.g. good: approved); none: any change of decision.")
    trigger: StrList = Field(
        default_factory=list, description="Numeric columns the backdoor probe's trigger sets to "
                                          "their mean + 4 of their standard deviations, held "
                                          "to the constraints' bounds and integers (default: "
                                          "the pair of changeable numeric columns the model "
                                          "least reads as the goal already).")
    train: str | None = Field(
        default=None, description="The pipeline's own training entry point, file.py:function, "
                                  "called as function(x, y, seed) -> fitted model with "
                                  "predict_proba; used to retrain (poisoning, membership) "
                                  "models scikit-learn cannot clone.")

    @model_validator(mode="after")
    def _what_is_predicted(self) -> ProbeSpec:
        if self.images is not None and self.text is not None:
            raise ValueError("a probe block takes `images:` or `text:`, not both: one model "
                             "reads one kind of input")
        if self.images is None and (self.target is None or self.positive is None):
            kind = "text" if self.text is not None else "a table"
            raise ValueError(f"a probe block on {kind} needs `target:` (the column the model "
                             "predicts) and `positive:` (its positive value); a model of images "
                             "needs `images:` (shape, range)")
        return self


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
    third_party: bool = Field(
        default=False, description="Built and run outside the team (a vendor's tool server, a "
                                   "SaaS): what it tells a model is the supplier's.")
    captures: list[Literal["camera", "microphone", "document", "sensor"]] = Field(
        default_factory=list,
        description="What the component captures from the physical world (a client's camera "
                    "for face or ID checks, a microphone): where deepfakes and injected "
                    "streams enter.")
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
    enters: Literal["context", "training"] | None = Field(
        default=None,
        description="What the data becomes at the target: 'context' (read by a model at "
                    "inference: a prompt, retrieved passages, tool results) or 'training' "
                    "(trains or fine-tunes a model). Default: context into hosted_model and llm, "
                    "training into training.")
    notes: str | None = None


class Domain(Strict):
    """What the model is about, in the team's words: finding texts use them (docs/spec.md)."""

    about: str | None = Field(default=None, description="Whom or what the model's inputs "
                              "describe, plural: 'loan applicants', 'patients', 'e-mails'.")
    decides: str | None = Field(default=None, description="What the model decides, as a noun "
                                "phrase: 'the loan decision', 'the triage priority'.")


class AssetInfo(Strict):
    criticality: Criticality = Criticality.medium
    notes: str | None = None


class PipelineSpec(Strict):
    """A whole ML pipeline. Flows may form cycles: feedback loops are real."""

    version: Literal[1] = Field(default=1, description="Spec format version.")
    name: str = Field(min_length=1)
    description: str | None = None
    owner: str | None = Field(default=None, description="Team that owns the pipeline.")
    domain: Domain = Field(default_factory=Domain,
                           description="What the model is about; finding texts use these words.")
    assets: dict[Asset, AssetInfo] = Field(
        default_factory=dict, description="How much each asset matters; default medium.")
    controls: StrList = Field(
        default_factory=list, description="Controls that apply to every component.")
    components: list[Component] = Field(min_length=1)
    flows: list[Flow] = Field(default_factory=list)
