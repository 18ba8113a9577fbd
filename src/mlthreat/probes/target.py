"""A component prepared for probing: its model loaded through the scanner gate (or its HTTP
endpoint), its data read and split as declared (members: the rows the model was trained on), the
spec's constraints mapped onto the model's input columns, and the model seen as the interface
shows it to an attacker (full probabilities, rounded scores, or the label only).

`Target.capabilities` is what the planner compares with each probe's `requires`: "gradients"
(white-box access), "scores" (more than the label), "retraining" (a model of the target's kind
can be trained again: a scikit-learn estimator, or `train: file.py:function` in the spec),
"trees" (the model file is a tree ensemble whose splits the exact evasion probe reads),
"images" (the model classifies images: `probes.images`), "text" (the model reads text:
`probes.text`), "records" (the attacker sets the model's input row itself: a table's record or
an image's pixels, not text, whose features only a text can give).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from mlthreat.adapters import ModelAdapter, RoundedAdapter, adapter_for, model_object
from mlthreat.adapters.http import HttpAdapter
from mlthreat.adapters.interface import ScaledAdapter, positive_view
from mlthreat.adapters.loading import load_model
from mlthreat.errors import DataError, InputError, ModelError, brief
from mlthreat.pipeline import Component, Pipeline
from mlthreat.pipeline.spec import ProbeSpec
from mlthreat.probes.constraints import Constraints, from_transform
from mlthreat.probes.data import Table, load_table
from mlthreat.probes.training import Fit, sharing_clean, sklearn_fit, user_fit
from mlthreat.probes.trees import supported

CAPABILITIES = ("gradients", "scores", "retraining", "trees", "images", "text", "records")

# The attacker's effort, per budget name (docs/probes.md explains each figure).
BUDGETS: dict[str, dict[str, int]] = {
    "quick": {"references": 8, "seeds": 2, "bootstrap": 100, "points": 50, "per_point": 100,
              "exact_points": 10, "exact_seconds": 5, "exact_norms": 1, "copy_rounds": 3},
    "standard": {"references": 16, "seeds": 3, "bootstrap": 200, "points": 100,
                 "per_point": 200, "exact_points": 25, "exact_seconds": 10, "exact_norms": 1,
                 "copy_rounds": 5},
    "thorough": {"references": 64, "seeds": 5, "bootstrap": 500, "points": 200,
                 "per_point": 400, "exact_points": 200, "exact_seconds": 10, "exact_norms": 3,
                 "copy_rounds": 5},
}


@dataclass(frozen=True)
class Target:
    component: str
    spec: ProbeSpec
    artifact: str               # the model file (as the spec names it) or the endpoint URL
    adapter: ModelAdapter
    x: np.ndarray               # all rows, as the model sees them
    y: np.ndarray
    train: np.ndarray           # indices of training rows (members)
    test: np.ndarray
    constraints: Constraints
    fit: Fit | None             # retrains a model of the target's kind (scores out)
    goal: int | None            # the class the attacker wants
    unit: np.ndarray | None = None   # model input units per standard deviation, per column,
    # where the model's input is not standardised: `x`, the adapter, the constraints and `fit`
    # then all work in standard deviations (`deviation_unit`), and x * unit is the model's input
    classes: tuple[str, ...] = ()    # an image model's classes (`probes.images`); for a table,
    # y is 1 for the positive value and 0 else
    texts: tuple[str, ...] = ()      # a text model's texts, row by row (`probes.text`); x holds
    # their features as the model's vectoriser gives them
    reader: ModelAdapter | None = None   # a text model as an attacker who sends texts sees it

    @property
    def images(self) -> bool:
        """The model classifies images: rows are flattened pixels in the data's units."""
        return self.spec.images is not None

    @property
    def text(self) -> bool:
        """The model reads text: rows of x are its vectoriser's features of `texts`."""
        return self.spec.text is not None

    def no_retraining(self, why: str) -> str:
        """Why a probe that retrains cannot run here: `why`, or for text (where `train:` is
        not taken) what gives the retraining instead."""
        if not self.text:
            return why
        return (f"{why.split(':')[0]}: on text, retraining refits the classifier of the team's "
                "Pipeline on its vectoriser's features, which only the model file holds: probe "
                "the file (artifacts.model, no endpoint:) to measure this")

    @property
    def trees(self) -> bool:
        """The model file is a tree ensemble the exact evasion probe reads."""
        model = model_object(self.adapter)
        return model is not None and supported(model)

    @property
    def capabilities(self) -> frozenset[str]:
        have = {"gradients": self.adapter.capabilities.gradients,
                "scores": self.adapter.capabilities.scores, "retraining": self.fit is not None,
                "trees": self.trees and not self.text, "images": self.images, "text": self.text,
                "records": not self.text}
        return frozenset(k for k, v in have.items() if v)


def prepare(pipeline: Pipeline, comp: Component, trust: bool) -> Target:
    """The component ready for probing; an input problem names the spec entry it comes from."""
    try:
        return _prepare(pipeline, comp, trust)
    except InputError as exc:
        line, col = pipeline.component_positions.get(comp.id, (0, 0))
        raise type(exc)(f"{pipeline.file}:{line}:{col}: probe block of {comp.id}: {exc}"
                        ) from exc


def _prepare(pipeline: Pipeline, comp: Component, trust: bool) -> Target:
    spec = comp.probe
    assert spec is not None
    if spec.images is not None:
        return _prepare_images(pipeline, comp, trust)
    if spec.text is not None:
        return _prepare_text(pipeline, comp, trust)
    assert spec.target is not None and spec.positive is not None
    if spec.endpoint is not None and "images" in spec.endpoint.model_fields_set:
        raise InputError("endpoint.images: only for a probe block with images: (a table's rows "
                         "are sent as records, or as number lists with records: false)")
    table = load_table(pipeline.base_dir / spec.data, spec.target, spec.positive,
                       tuple(spec.drop))
    train, test = _split(table.y, spec, "rows", f" by {spec.target!r}")
    model: Any = None
    transform: Callable[[Any], np.ndarray] = table.encoder.transform
    if spec.endpoint is None:
        if not comp.artifacts.model:
            raise InputError(f"{comp.id}: a probe block needs a model in artifacts.model (or "
                             "an endpoint)")
        path = pipeline.base_dir / comp.artifacts.model[0]
        model = load_model(path, trust=trust)
        if hasattr(model, "steps") and len(model.steps) > 1:      # a scikit-learn Pipeline
            fits_columns(model, table, path, spec.data)
            transform, model = model[:-1].transform, model[-1]
        else:
            fits_encoding(model, table, path, spec.data)
    constraints = from_transform(transform, table.frame, spec.constraints.immutable,
                                 dict(spec.constraints.bounds), spec.constraints.integer)
    x = np.asarray(transform(table.frame), dtype=float)
    base = None
    if model is not None:
        base = positive_view(_adapter(model, path), model, spec.positive)
        fits_rows(base, x, table, path, spec.data)
    fit = _fit(pipeline, spec, model)
    unit = deviation_unit(x, constraints)
    if unit is not None:
        x, constraints = x / unit, constraints.rescaled(unit)
        base = None if base is None else ScaledAdapter(base, unit)
        fit = None if fit is None else _scaled_fit(fit, unit)
    adapter = _view(base, spec, constraints)
    if fit is not None:
        fit = sharing_clean(fit, x[train], table.y[train])
    artifact = spec.endpoint.url if spec.endpoint else comp.artifacts.model[0]
    return Target(comp.id, spec, artifact, adapter, x, table.y, train, test, constraints, fit,
                  _goal(spec, table.values), unit)


def _prepare_images(pipeline: Pipeline, comp: Component, trust: bool) -> Target:
    """A component whose model classifies images, ready for probing (`probes.images`'s
    docstring: pixel rows in the data's units, range bounds, mask immutables)."""
    from mlthreat.probes.images import image_model, load_images, load_mask
    spec, images = comp.probe, comp.probe.images if comp.probe else None
    assert spec is not None and images is not None
    _refuse_table_entries(spec, "images", "the pixels' range and images.mask say what an "
                          "attacker may change; the backdoor is a patch", endpoint=False)
    _refuse_endpoint_entries(spec, "images")
    pixels, y, classes = load_images(pipeline.base_dir / spec.data, images)
    x = pixels.reshape(len(pixels), -1)
    train, test = _split(y, spec, "images")
    columns = tuple(f"c{c}_y{i}_x{j}" for c in range(images.shape[0])
                    for i in range(images.shape[1]) for j in range(images.shape[2]))
    low, high = images.range
    movable = (np.ones(x.shape[1], dtype=bool) if images.mask is None
               else load_mask(pipeline.base_dir / images.mask, images.shape))
    constraints = Constraints(columns, frozenset(c for c, m in zip(columns, movable,
                                                                   strict=True) if not m),
                              dict.fromkeys(columns, (low, high)))
    base = None
    if spec.endpoint is None:
        if not comp.artifacts.model:
            raise InputError(f"{comp.id}: a probe block on images needs the model in "
                             "artifacts.model (or an endpoint)")
        path = pipeline.base_dir / comp.artifacts.model[0]
        base = image_model(path, spec, pipeline.base_dir, trust)
        fits_rows_of(base, x, path, spec.data)
    fit = _fit(pipeline, spec, None)
    if fit is not None:
        fit = _on_images(fit, images.shape)
        fit = sharing_clean(fit, x[train], y[train])
    adapter = _view(base, spec, constraints, image_items(images, spec.endpoint.images)
                    if spec.endpoint else None)
    artifact = spec.endpoint.url if spec.endpoint else comp.artifacts.model[0]
    return Target(comp.id, spec, artifact, adapter, x, y, train, test, constraints,
                  fit, _class_goal(spec, classes), None, classes)


def _prepare_text(pipeline: Pipeline, comp: Component, trust: bool) -> Target:
    """A component whose model reads text, ready for probing (`probes.text`'s docstring: the
    vectoriser's features for the probes that work on rows, the texts for evasion)."""
    from mlthreat.probes.textdata import (
        TextAdapter,
        TextRowsAdapter,
        load_texts,
        own_features,
        text_features,
    )
    spec = comp.probe
    assert spec is not None and spec.text is not None
    assert spec.target is not None and spec.positive is not None
    _refuse_table_entries(spec, "text", "text.protected and text.words say what an attacker "
                          "may change; retraining refits the Pipeline's classifier on its "
                          "vectoriser's features", module=True, train=True, endpoint=False)
    _refuse_endpoint_entries(spec, "text")
    data = load_texts(pipeline.base_dir / spec.data, spec.text, spec.target, spec.positive)
    train, test = _split(data.y, spec, "texts", f" by {spec.target!r}")
    if spec.endpoint is not None:
        # the vectoriser is behind the URL: the probes that work on rows get the attacker's
        # own features of the texts, each row answered by sending its text
        own, names = own_features(data.texts, [data.texts[i] for i in train])
        x = own(data.texts)
        constraints = Constraints(names, frozenset(names))
        reader = _view(None, spec, constraints, items=lambda texts: [str(t) for t in texts])
        return Target(comp.id, spec, spec.endpoint.url, TextRowsAdapter(reader, x, data.texts),
                      x, data.y, train, test, constraints, None, _goal(spec, data.values),
                      None, (), data.texts, reader)
    if not comp.artifacts.model:
        raise InputError(f"{comp.id}: a probe block on text needs the model in artifacts.model "
                         "(or an endpoint)")
    path = pipeline.base_dir / comp.artifacts.model[0]
    model = load_model(path, trust=trust)
    transform, classifier, names = text_features(model, data.texts, path, spec.data)
    x = transform(data.texts)
    base = positive_view(_adapter(classifier, path), classifier, spec.positive)
    fits_rows_of(base, x, path, spec.data)
    constraints = Constraints(names, frozenset(names))     # no feature is set by hand
    fit = _fit(pipeline, spec, classifier)
    if fit is not None:
        fit = sharing_clean(fit, x[train], data.y[train])
    adapter = _view(base, spec, constraints)
    return Target(comp.id, spec, comp.artifacts.model[0], adapter, x, data.y, train, test,
                  constraints, fit, _goal(spec, data.values), None, (), data.texts,
                  TextAdapter(adapter, transform))


def _refuse_table_entries(spec: ProbeSpec, kind: str, instead: str, module: bool = False,
                          train: bool = False, endpoint: bool = True) -> None:
    """Entries of the probe block that mean nothing for this kind of input are refused, with what
    says it instead (a block written for a table and then given `images:` or `text:`)."""
    entries: list[tuple[str, object]] = [
        ("constraints", spec.constraints.immutable or spec.constraints.bounds or
         spec.constraints.integer), ("trigger", spec.trigger), ("drop", spec.drop)]
    entries += [("endpoint", spec.endpoint)] if endpoint else []
    entries += [("module", spec.module)] if module else []
    entries += [("train", spec.train)] if train else []
    ignored = [name for name, given in entries if given]
    if ignored:
        raise InputError(f"{', '.join(ignored)}: not for {kind} ({instead})")


def _refuse_endpoint_entries(spec: ProbeSpec, kind: str) -> None:
    """An endpoint for images or text: the model file and the table's record encoding are not
    used, so saying them is a mistake to point out (the model is behind the URL)."""
    e = spec.endpoint
    if e is None:
        return
    if "records" in e.model_fields_set:
        raise InputError(f"endpoint.records: not for {kind} (each item sent is "
                         f"{'an image, as endpoint.images says' if kind == 'images' else 'a text'})")
    if kind != "images" and "images" in e.model_fields_set:
        raise InputError("endpoint.images: only for a probe block with images:")
    if spec.module:
        raise InputError("module: not with an endpoint (the model is behind the URL; module: "
                         "is the architecture a state dict in artifacts.model loads into)")


def image_items(images: Any, encoding: str) -> Callable[[np.ndarray], list[Any]]:
    """Rows of pixels (channel, row, column order) as the items an image endpoint takes."""
    c, h, w = images.shape
    low, high = images.range
    if encoding == "png":
        if c not in (1, 3, 4):
            raise InputError(f"endpoint.images: png holds 1, 3 or 4 channels; these images have "
                             f"{c}: send them as chw or hwc lists")
        try:
            from PIL import Image
        except ImportError as exc:
            raise InputError("endpoint.images: png needs Pillow: pip install pillow (mlthreat's "
                             "images extra)") from exc

    def items(rows: np.ndarray) -> list[Any]:
        cube = np.asarray(rows, dtype=float).reshape(-1, c, h, w)
        if encoding == "chw":
            return list(cube.tolist())
        if encoding == "hwc":
            return list(cube.transpose(0, 2, 3, 1).tolist())
        import base64
        import io
        levels = np.clip(np.rint((cube - low) / (high - low) * 255), 0, 255).astype(np.uint8)
        out = []
        for image in levels:
            picture = Image.fromarray(image[0] if c == 1 else image.transpose(1, 2, 0),
                                      {1: "L", 3: "RGB", 4: "RGBA"}[c])
            buffer = io.BytesIO()
            picture.save(buffer, format="PNG")
            out.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
        return out
    return items


def _on_images(fit: Any, shape: tuple[int, int, int]) -> Any:
    """The team's training function sees images (N×C×H×W), as it was written to; what it
    returns answers flattened rows."""
    def train(x: np.ndarray, y: np.ndarray, seed: int) -> Any:
        predict = fit(np.asarray(x, dtype=float).reshape(-1, *shape), y, seed)
        return lambda rows: predict(np.asarray(rows, dtype=float).reshape(-1, *shape))
    return train


def _class_goal(spec: ProbeSpec, classes: tuple[str, ...]) -> int | None:
    """The class the attacker wants, by name or index."""
    if spec.goal is None:
        return None
    if str(spec.goal) in classes:
        return classes.index(str(spec.goal))
    if isinstance(spec.goal, int) and 0 <= spec.goal < len(classes):
        return spec.goal
    raise InputError(f"goal {spec.goal!r} is not one of the classes ({', '.join(classes)})")


def deviation_unit(x: np.ndarray, constraints: Constraints, tolerance: float = 0.1
                   ) -> np.ndarray | None:
    """Per column, the model's input units per standard deviation of the data: a column's own
    standard deviation for numbers, 1 for one-hot columns (a category is changed whole) and for
    constant columns. None when every number is already within `tolerance` of unit spread (the
    model standardises its input: nothing to convert)."""
    grouped = {constraints.columns.index(n) for g in constraints.categorical for n in g}
    sd = x.std(axis=0)
    unit = np.array([1.0 if j in grouped or not np.isfinite(sd[j]) or sd[j] <= 1e-12
                     else float(sd[j]) for j in range(x.shape[1])])
    if np.all(np.abs(np.log(unit)) <= np.log1p(tolerance)):
        return None
    return unit


def _scaled_fit(fit: Fit, unit: np.ndarray) -> Fit:
    """Retraining on rows in standard deviations: the team's training sees its own units."""
    def scaled(z: np.ndarray, y: np.ndarray, seed: int) -> Callable[[np.ndarray], np.ndarray]:
        predict = fit(np.asarray(z, dtype=float) * unit, y, seed)
        return lambda rows: predict(np.asarray(rows, dtype=float) * unit)
    return scaled


def fits_columns(model: Any, table: Table, path: Path, data: str) -> None:
    """A scikit-learn Pipeline fitted on named columns finds them all in the data."""
    wanted = [str(c) for c in getattr(model, "feature_names_in_", [])]
    missing = [c for c in wanted if c not in table.frame.columns]
    if missing:
        raise ModelError(f"{path}: the model was fitted on the column(s) "
                         f"{', '.join(map(repr, missing))}, which {data} lacks (it has "
                         f"{', '.join(map(repr, map(str, table.frame.columns)))}); give the data "
                         "the model was trained on, or rename the columns")


def fits_encoding(model: Any, table: Table, path: Path, data: str) -> None:
    """A bare model (no preprocessing saved with it) takes the data as mlthreat encodes it:
    numbers standardised, categories one-hot; its input width must match that encoding."""
    width = table.x.shape[1]
    names = [str(c) for c in getattr(model, "feature_names_in_", [])]
    expected = _input_width(model)
    if expected is None or expected == width:
        return
    fitted = f" ({', '.join(map(repr, names))})" if names else ""
    raise ModelError(f"{path}: the model takes {expected} inputs{fitted} but {data} gives "
                     f"{width} columns after encoding (was fitted on other columns or another "
                     "encoding); save the model with its preprocessing as one scikit-learn "
                     "Pipeline, or `drop:` the columns it does not use")


def _input_width(model: Any) -> int | None:
    width = getattr(model, "n_features_in_", None)
    if width is not None:
        return int(width)
    if type(model).__module__.startswith("torch."):
        first = next((m for m in model.modules() if hasattr(m, "in_features")), None)
        return int(first.in_features) if first is not None else None
    return None


def _adapter(model: Any, path: Path) -> ModelAdapter:
    try:
        return adapter_for(model)
    except ModelError as exc:       # an object that is no model: say which file holds it
        raise ModelError(f"{path}: {exc}") from exc


def fits_rows(adapter: ModelAdapter, x: np.ndarray, table: Table, path: Path, data: str) -> None:
    """The model answers every row of the data once before any probe starts, so that a data
    problem is named here rather than deep inside an attack."""
    try:
        adapter._labels(x)
    except Exception as exc:  # the framework's own error types, translated at the boundary
        gaps = [str(c) for c in table.frame.columns if table.frame[c].isna().any()]
        hint = (f"; {data} has missing values in {', '.join(map(repr, gaps))} and the model has "
                "no imputer: fill them or drop those rows") if gaps and np.isnan(x).any() \
            else "; is this the data the model was trained on?"
        raise ModelError(f"{path}: the model cannot answer the rows of {data} "
                         f"({brief(exc)}){hint}") from exc


def fits_rows_of(adapter: ModelAdapter, x: np.ndarray, path: Path, data: str) -> None:
    """The model answers the first rows of the data before any probe starts (images: the
    shape and normalisation fit the model)."""
    try:
        adapter._labels(x[:64])
    except Exception as exc:  # the framework's own error types, translated at the boundary
        raise ModelError(f"{path}: the model cannot answer the images of {data} ({brief(exc)}); "
                         "do images.shape and the module match the model?") from exc


def _split(y: np.ndarray, spec: ProbeSpec, rows: str, by: str = ""
           ) -> tuple[np.ndarray, np.ndarray]:
    """The stratified split the model was trained with (members: its training `rows`)."""
    try:
        train, test = train_test_split(np.arange(len(y)), test_size=spec.test_size,
                                       stratify=y, random_state=spec.seed)
    except ValueError as exc:     # too few rows, or a class with a single row
        raise DataError(f"{spec.data}: cannot split {len(y)} {rows} into training and held-out "
                        f"{rows}{by} ({exc}); the probes need at least a few {rows} of each "
                        "class on both sides (test_size)") from exc
    return train, test


def _view(view: ModelAdapter | None, spec: ProbeSpec, constraints: Constraints,
          items: Callable[[np.ndarray], list[Any]] | None = None) -> ModelAdapter:
    """The model (its adapter; None for an endpoint) as the interface shows it to an
    attacker. `items`: how an endpoint for images or text takes its inputs."""
    if spec.endpoint is not None:
        e = spec.endpoint
        encode = items or (constraints.records if e.records else None)
        return HttpAdapter(e.url, e.request, e.response,
                           "label" if spec.output == "label" else "probabilities", e.batch,
                           e.rate, e.headers, encode)
    assert view is not None         # no endpoint: the model file was loaded
    if spec.output == "rounded":
        return RoundedAdapter(view, 2)
    if spec.output == "label":
        return RoundedAdapter(view, None)
    return view


def _fit(pipeline: Pipeline, spec: ProbeSpec, model: Any) -> Fit | None:
    if spec.train:
        return user_fit(pipeline.base_dir, spec.train)
    if model is not None and hasattr(model, "get_params") and hasattr(model, "predict_proba"):
        return sklearn_fit(model)
    return None


def _goal(spec: ProbeSpec, values: tuple[str, ...]) -> int | None:
    """The attacker's wanted class as the probes number it (1: the positive value)."""
    if spec.goal is None:
        return None
    if str(spec.goal) not in values:
        raise InputError(f"{spec.data}: goal {spec.goal!r} is not a value of {spec.target!r} "
                         f"(values: {', '.join(values)})")
    return 1 if str(spec.goal) == str(spec.positive) else 0
