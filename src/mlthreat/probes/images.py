"""Images for probes: a component whose model classifies images, prepared so that every probe
works on it as on a table (docs/probes.md, Images).

An image is one row of pixels in the data's own units (`images.range`: 0..1, 0..255, ...),
flattened in the model's channel-height-width order; the model's adapter reshapes the rows and
applies the model's normalisation (`images.mean`, `images.std`) after the attacker's change, so
budgets, distances and the robustness curve are in pixel units. Every pixel is bounded by the
range; pixels outside `images.mask` are immutable (the attacker's patch or sticker). Labels are
class indices in the model's output order; `goal` names one class.

Data: an `.npz` file with arrays `x` (images: N×C×H×W, N×H×W×C or N×H×W) and `y` (class indices
or names), or a folder with one sub-folder of images per class (read with Pillow, the images
extra). Models: a PyTorch state dict loaded with `weights_only=True` after the model-file scanner
passed it, into the module `module: file.py:function` returns (the team's own code); or an ONNX
model, or a state dict of Linear layers on the flattened image.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlthreat.adapters.interface import ModelAdapter
from mlthreat.errors import DataError, InputError, ModelError, brief
from mlthreat.pipeline.spec import ProbeImages, ProbeSpec

if TYPE_CHECKING:
    from mlthreat.probes.constraints import Constraints

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def load_images(path: Path, images: ProbeImages) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(pixels N×C×H×W as float, class index per image, class names) from an .npz file or a
    folder of class sub-folders; DataError naming the file and what is wrong."""
    if not path.exists():
        raise DataError(f"{path}: not found; `data:` names an .npz file (arrays x and y) or a "
                        "folder with one sub-folder of images per class")
    if path.is_dir():
        x, labels = _folder(path, images)
    elif path.suffix.lower() == ".npz":
        x, labels = _npz(path, images)
    else:
        raise DataError(f"{path}: images are read from an .npz file (arrays x and y) or a folder "
                        f"with one sub-folder per class, not a {path.suffix or 'plain'} file")
    y, classes = _classes(path, labels, images)
    low, high = images.range
    if not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))[0])
        raise DataError(f"{path}: image {bad} has pixels that are not finite numbers")
    outside = (x < low) | (x > high)
    if outside.any():
        bad = int(np.flatnonzero(outside.reshape(len(x), -1).any(axis=1))[0])
        raise DataError(f"{path}: image {bad} has pixel values outside images.range [{low:g}, "
                        f"{high:g}] (its values span {x[bad].min():g} to {x[bad].max():g}); set "
                        "images.range to the data's units, e.g. [0, 255]")
    if len(np.unique(y)) < 2:
        raise DataError(f"{path}: every image has the same label; the probes need images of at "
                        "least two classes")
    return x, y, classes


def _npz(path: Path, images: ProbeImages) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as arrays:    # data only: no pickled objects
            names = list(arrays.files)
            xk = next((k for k in ("x", "X", "images", "x_test") if k in names), None)
            yk = next((k for k in ("y", "Y", "labels", "y_test") if k in names), None)
            if xk is None or yk is None:
                raise DataError(f"{path}: needs an array x (the images) and an array y (their "
                                f"labels); it has {', '.join(names) or 'none'}")
            x, y = np.asarray(arrays[xk]), np.asarray(arrays[yk])
    except DataError:
        raise
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read it as .npz ({brief(exc)}); save it with "
                        "numpy.savez(path, x=images, y=labels)") from exc
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{path}: y should hold one label per image ({len(x)}), it has shape "
                        f"{y.shape}")
    return _shaped(path, x, images.shape), y


def _shaped(path: Path, x: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Images as N×C×H×W floats; channels-last and single-channel N×H×W are accepted."""
    c, h, w = shape
    if x.dtype.kind not in "fiub":
        raise DataError(f"{path}: the images are {x.dtype} values, not numbers")
    if x.ndim == 3 and c == 1 and x.shape[1:] == (h, w):
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1:] == (h, w, c) and x.shape[1:] != (c, h, w):
        x = np.moveaxis(x, -1, 1)
    if x.ndim != 4 or x.shape[1:] != (c, h, w):
        raise DataError(f"{path}: the images have shape {tuple(x.shape[1:])}, but images.shape "
                        f"says {list(shape)} (channels, height, width)")
    return np.asarray(x, dtype=float)


def _folder(path: Path, images: ProbeImages) -> tuple[np.ndarray, np.ndarray]:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:
        raise InputError(f"{path}: reading image folders needs Pillow: pip install pillow "
                         "(mlthreat's images extra), or save the images as .npz") from exc
    c, h, w = images.shape
    if c not in (1, 3):
        raise DataError(f"{path}: image folders are read as grey (1 channel) or RGB (3); for "
                        f"{c} channels save the images as .npz")
    folders = sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    pixels, labels = [], []
    for folder in folders:
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(file) as opened:
                    arr = np.asarray(opened.convert("L" if c == 1 else "RGB"), dtype=float)
            except (OSError, UnidentifiedImageError) as exc:
                raise DataError(f"{file}: cannot read it as an image ({brief(exc)})") from exc
            if arr.shape[:2] != (h, w):
                raise DataError(f"{file}: is {arr.shape[1]}×{arr.shape[0]} pixels, but "
                                f"images.shape says {w}×{h}; resize the images the way the "
                                "model's own preprocessing does, then probe")
            pixels.append(arr[None] if c == 1 else np.moveaxis(arr, -1, 0))
            labels.append(folder.name)
    if not pixels:
        raise DataError(f"{path}: no images found; the folder should hold one sub-folder per "
                        f"class with {', '.join(IMAGE_SUFFIXES[:3])} files in it")
    return np.stack(pixels), np.array(labels)


def _classes(path: Path, labels: np.ndarray, images: ProbeImages
             ) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class indices and names: integer labels are indices already; names are numbered by
    images.classes, else in sorted order (the sub-folders' order)."""
    if labels.dtype.kind in "iu":
        top = int(labels.max()) + 1
        names = tuple(images.classes) or tuple(str(i) for i in range(top))
        if labels.min() < 0 or top > len(names):
            raise DataError(f"{path}: labels run from {labels.min()} to {labels.max()}, but "
                            f"images.classes names {len(names)} classes")
        return labels.astype(int), names
    text = labels.astype(str)
    names = tuple(images.classes) or tuple(sorted(set(text)))
    unknown = sorted(set(text) - set(names))
    if unknown:
        raise DataError(f"{path}: labels {', '.join(unknown[:5])} are not in images.classes "
                        f"({', '.join(names)})")
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[t] for t in text]), names


def load_mask(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """Which pixels the attacker may change, as one flag per column of the flattened image."""
    try:
        mask = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the mask as .npy ({brief(exc)})") from exc
    c, h, w = shape
    if mask.shape == (h, w):
        mask = np.broadcast_to(mask, (c, h, w))
    if mask.shape != (c, h, w):
        raise DataError(f"{path}: the mask has shape {list(mask.shape)}; it should be "
                        f"[{h}, {w}] or the image's shape {list(shape)}")
    if not mask.any():
        raise DataError(f"{path}: the mask allows no pixel to change")
    return np.asarray(mask != 0).reshape(-1)


def image_model(path: Path, spec: ProbeSpec, base_dir: Path, trust: bool) -> ModelAdapter:
    """The model file as an adapter over flattened pixel rows in the data's units."""
    from mlthreat.adapters.loading import load_model, load_state
    from mlthreat.probes.training import user_function
    images = spec.images
    assert images is not None
    if spec.module:
        build = user_function(base_dir, spec.module, "module")
        state = load_state(path)
        try:
            import torch
            module = build()
            if not isinstance(module, torch.nn.Module):
                raise InputError(f"module: {spec.module} returned a {type(module).__name__}, "
                                 "not a torch.nn.Module")
            module.load_state_dict(state)
        except InputError:
            raise
        except Exception as exc:     # the weights do not fit the architecture: say how
            raise ModelError(f"{path}: the weights do not load into the module {spec.module} "
                             f"returns ({brief(exc)}); is it the architecture they were saved "
                             "from?") from exc
        return pixel_adapter(module, images)
    model = load_model(path, trust=trust)
    first = next(iter(model.children()), None) if hasattr(model, "children") else None
    if first is not None and type(first).__name__ == "Linear":   # an MLP rebuilt from its weights
        import torch
        model = torch.nn.Sequential(torch.nn.Flatten(), model).eval()
    return pixel_adapter(model, images)


def pixel_adapter(model: Any, images: ProbeImages) -> ModelAdapter:
    """A PyTorch module (gradients through the reshape and normalisation), or any other model's
    adapter fed N×C×H×W normalised float32 images."""
    shape, mean, std = _normalisation(images)
    if type(model).__module__.startswith("torch."):
        from mlthreat.adapters.torch import TorchAdapter, pixels_module
        return TorchAdapter(pixels_module(model, images.shape, mean, std))
    from mlthreat.adapters import adapter_for
    inner = adapter_for(model)
    # an ONNX graph says whether it takes images or flat rows; other models (scikit-learn on
    # the pixels, boosters) take flat rows
    inputs = model.get_inputs()[0].shape if hasattr(model, "get_inputs") else [None, None]
    return PixelsAdapter(inner, shape, mean, std, flat=len(inputs) == 2)


def _normalisation(images: ProbeImages) -> tuple[tuple[int, int, int], np.ndarray, np.ndarray]:
    c = images.shape[0]
    for name, values in (("mean", images.mean), ("std", images.std)):
        if len(values) not in (1, c):
            raise InputError(f"images.{name} has {len(values)} values; give one, or one per "
                             f"channel ({c})")
    if min(images.std) <= 0:
        raise InputError("images.std must be positive")
    mean = np.array(np.broadcast_to(np.asarray(images.mean, float), (c,))).reshape(c, 1, 1)
    std = np.array(np.broadcast_to(np.asarray(images.std, float), (c,))).reshape(c, 1, 1)
    return images.shape, mean, std


class PixelsAdapter(ModelAdapter):
    """A model other than a PyTorch module fed the rows normalised: as N×C×H×W float32 images
    (an ONNX graph taking images), or as flat rows (`flat`: scikit-learn on the pixels, an ONNX
    graph taking rows). Gradients, where the inner model has them (flat rows only), follow the
    chain rule through the normalisation."""

    def __init__(self, inner: ModelAdapter, shape: tuple[int, int, int], mean: np.ndarray,
                 std: np.ndarray, flat: bool = False) -> None:
        super().__init__()
        self.inner, self.shape, self.mean, self.std, self.flat = inner, shape, mean, std, flat
        self.capabilities = inner.capabilities

    def attach(self, meter: Any) -> None:
        super().attach(meter)
        self.inner.attach(None)      # rows are counted here, once

    def _images(self, x: Any) -> np.ndarray:
        rows = np.asarray(x, dtype=float).reshape(-1, *self.shape)
        scaled = (rows - self.mean) / self.std
        if self.flat:
            return np.asarray(scaled.reshape(len(rows), -1), dtype=float)
        return np.asarray(scaled, dtype=np.float32)

    def gradient(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        if not self.flat:
            return super().gradient(x, target)
        self._count(len(x))
        inner = self.inner.gradient(self._images(x), target)
        per_pixel = np.broadcast_to(self.std, self.shape).reshape(-1)
        return np.asarray(inner / per_pixel, dtype=float)

    def _proba(self, x: Any) -> Any:
        return self.inner._proba(self._images(x))

    def _labels(self, x: Any) -> Any:
        return self.inner._labels(self._images(x))


# budgets of the robustness curves for images, as shares of the pixel range: L-infinity at the
# field's usual 2/255 ... 8/255 (CIFAR-10) up to 0.3 (MNIST); L2 as shares of the range times
# the square root of the pixel count (0.5 on CIFAR-10 is about 0.01 of it, 2 on MNIST 0.07)
LINF_SHARES = (2 / 255, 4 / 255, 8 / 255, 16 / 255, 0.1, 0.2, 0.3)
L2_SHARES = (0.01, 0.02, 0.05, 0.1, 0.2)


def image_epsilons(images: ProbeImages, norm: str) -> list[float]:
    """The robustness curve's budgets in the data's pixel units."""
    low, high = images.range
    c, h, w = images.shape
    span = (high - low) * (1.0 if norm == "linf" else float(np.sqrt(c * h * w)))
    return [round(span * s, 6) for s in (LINF_SHARES if norm == "linf" else L2_SHARES)]


class ImageShifts:
    """The augmented views LiRA queries on images (Carlini et al. 2022 use flips and shifts):
    the rows themselves, then each image moved by one pixel up, down, left and right, the border
    row or column repeated. No mirror: on digits or text a flip changes the class. A class, not
    a closure, so that the views travel to worker processes."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.shape = tuple(int(v) for v in shape)

    def __call__(self, rows: np.ndarray) -> list[np.ndarray]:
        c, h, w = self.shape
        cube = np.asarray(rows, dtype=float).reshape(-1, c, h, w)
        padded = np.pad(cube, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
        views = [rows]
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            views.append(padded[:, :, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
                         .reshape(len(cube), -1))
        return views


def patch_trigger(images: ProbeImages, constraints: Constraints
                  ) -> tuple[list[int], list[float], str]:
    """The backdoor trigger on images: a visible checkerboard patch of the range's highest and
    lowest values in the bottom-right corner (side: an eighth of the smaller side, at least 2
    pixels; every channel), as (pixel columns, values, description)."""
    c, h, w = images.shape
    low, high = images.range
    side = max(2, min(h, w) // 8)
    columns, values = [], []
    for ch in range(c):
        for i in range(h - side, h):
            for j in range(w - side, w):
                columns.append(ch * h * w + i * w + j)
                values.append(high if (i + j) % 2 == 0 else low)
    fixed = [constraints.columns[k] for k in columns
             if constraints.columns[k] in constraints.immutable]
    if fixed:
        raise InputError(f"the backdoor's {side}×{side} patch sits in the images' bottom-right "
                         "corner, which images.mask does not let the attacker change")
    return columns, values, (f"a {side}×{side} checkerboard patch of pixel values {high:g} and "
                             f"{low:g} in the bottom-right corner")
