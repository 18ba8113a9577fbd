"""Physical-style patch evasion on images: one sticker for every image (Brown, Mané, Roy, Abadi
and Gilmer, "Adversarial patch", 2017), where the spec's `images.mask` says the attacker can
put one.

The sticker replaces the pixels of the mask (it covers them, it is not added to them); its
pixel values are free within the data's range. The attacker optimises it on their own images
(the training images, with their labels) with the model's gradients: each step moves every
sticker pixel by a share of the range in the sign of the summed gradient over a random batch,
lowering the margin of each image's own class (or raising the goal class's margin, when the
spec names a goal). Reported: the share of held-out images the model answered correctly (and
not already with the goal) whose decision the sticker changes, with its Wilson interval, beside
a random sticker of the same pixels (uniform values in the range) as the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlthreat.adapters.interface import ModelAdapter
from mlthreat.errors import ProbeError
from mlthreat.probes.evasion import SUCCESS_RATE
from mlthreat.probes.interface import Budget, Measurement, Meter, Param, Prepared, Probe
from mlthreat.probes.stats import wilson

if TYPE_CHECKING:
    from mlthreat.probes.target import Target

MAX_HELD_OUT = 500          # held-out images the sticker is judged on
MAX_OWN = 2000              # of the attacker's images the sticker is optimised on


@dataclass(frozen=True)
class PatchData:
    own: np.ndarray             # the attacker's images (rows of pixels) and their labels
    own_y: np.ndarray
    x: np.ndarray               # held-out images the model answers correctly, to judge on
    y: np.ndarray
    movable: np.ndarray         # bool per pixel: the sticker's place
    low: float
    high: float
    goal: int | None = None


def stuck(x: np.ndarray, movable: np.ndarray, sticker: np.ndarray) -> np.ndarray:
    """The images with the sticker over the mask's pixels."""
    out = np.array(x, dtype=float, copy=True)
    out[:, movable] = sticker
    return out


class PatchEvasion(Probe):
    """Parameters: steps (optimisation steps, 100), step (share of the range per step, 0.05),
    batch (images per step, 128)."""

    name = "evasion-patch"
    threat_ids = ("aml-physical-adversarial", "aml-evasion-whitebox")
    parameters = {
        "steps": Param(100, 1, 100_000, doc="optimisation steps of the sticker"),
        "step": Param(0.05, 1e-6, 1.0, doc="share of the pixel range a step moves"),
        "batch": Param(128, 1, 1_000_000, doc="attacker's images per step"),
    }
    requires = {"images": "a sticker is a patch of pixels: it needs a model that takes images",
                "gradients": "the sticker is optimised with the model's gradients; this model "
                             "has none (the black-box and Square probes cover it)"}

    @classmethod
    def configure(cls, target: Target, settings: dict[str, int], fixed: dict[str, Any],
                  seed: int, jobs: int) -> Prepared:
        """The sticker's place from images.mask; the attacker's images are the training
        images; held-out images the model gets right (and not already the goal) judge it."""
        t = target
        images = t.spec.images
        assert images is not None            # the planner checked `requires`
        if images.mask is None:
            raise ProbeError("a sticker needs its place: images.mask names the pixels an "
                             "attacker can cover (a .npy file, non-zero there); without one the "
                             "other evasion probes measure changes anywhere in the image")
        movable = np.array([c not in t.constraints.immutable for c in t.constraints.columns])
        if not movable.any():
            raise ProbeError("images.mask lets the attacker change no pixel")
        x, y = t.x[t.test], t.y[t.test]
        answered = t.adapter.predict(x)
        keep = (answered == y) & ((answered != t.goal) if t.goal is not None else True)
        if not keep.any():
            raise ProbeError("no held-out image the model answers correctly (and not already "
                             "with the goal) to judge the sticker on")
        low, high = images.range
        data = PatchData(t.x[t.train][:MAX_OWN], t.y[t.train][:MAX_OWN], x[keep][:MAX_HELD_OUT],
                         y[keep][:MAX_HELD_OUT], movable, float(low), float(high), t.goal)
        return Prepared(cls(**fixed), t.adapter, data, Budget(seed=seed))

    def _measure(self, model: ModelAdapter, data: PatchData, rng: np.random.Generator,
                 meter: Meter) -> Measurement:
        if not model.capabilities.gradients:
            raise ProbeError("the sticker is optimised with the model's gradients")
        span = data.high - data.low
        sticker = rng.uniform(data.low, data.high, size=int(data.movable.sum()))
        at_random = float(self._success(model, data, sticker).mean())
        batch = min(int(self.param("batch")), len(data.own))
        for _ in range(int(self.param("steps"))):
            idx = rng.choice(len(data.own), size=batch, replace=False)
            rows = stuck(data.own[idx], data.movable, sticker)
            if data.goal is None:            # lower each image's own margin
                push = -model.gradient(rows, data.own_y[idx])
            else:                            # raise the goal's margin
                push = model.gradient(rows, np.full(batch, data.goal))
            move = np.sign(push[:, data.movable].sum(axis=0))
            sticker = np.clip(sticker + float(self.param("step")) * span * move, data.low,
                              data.high)
        flipped = self._success(model, data, sticker)
        n = len(flipped)
        rate = float(flipped.mean())
        low, high = wilson(rate, n)
        pixels = int(data.movable.sum())
        what = "the goal class" if data.goal is not None else "another class"
        summary = (f"one sticker over {pixels} pixels ({pixels / len(data.movable):.0%} of each "
                   f"image), optimised on the attacker's {len(data.own)} images: {rate:.0%} "
                   f"[{low:.0%}, {high:.0%}] of {n} held-out images turned to {what} "
                   f"(a random sticker there: {at_random:.0%})")
        return Measurement("success_rate", rate, (low, high), rate >= SUCCESS_RATE, summary, {},
                           {"at_random": at_random, "pixels": pixels, "points": n,
                            "sticker": [float(v) for v in sticker]})

    @staticmethod
    def _success(model: ModelAdapter, data: PatchData, sticker: np.ndarray) -> np.ndarray:
        answered = np.asarray(model.predict(stuck(data.x, data.movable, sticker)))
        return np.asarray(answered == data.goal if data.goal is not None else answered != data.y)
