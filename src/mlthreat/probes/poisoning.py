"""Poisoning: how much does a small share of poisoned training data change the model?

The model is retrained through the pipeline's own training entry point (for scikit-learn,
`clone(estimator).fit`; or any function from (x, y, seed) to a predict function) on training data
with a share of it poisoned, over several seeds, and compared with the model retrained on clean
data with the same seeds:

- `label_flip` (random): flip the labels of a random share of the rows. Reported: drop in
  clean accuracy (clean-trained minus poisoned-trained, on held-out rows).
- `targeted_flip`: flip labels only in a target slice (rows of `source_class`, e.g. "bad"
  applicants relabelled "good"); the rate is the share *of that class's* training rows flipped.
  Reported: the change in how often held-out rows of that class are classified as the attacker
  wants.
- `backdoor`: add a trigger (chosen features set to values) to a share of all training rows,
  labelled with the attacker's class. Reported: backdoor success on held-out rows of other
  classes with the trigger added, *net of* the clean model's own response to the trigger (a
  trigger far outside the data already moves many models: BASELINES.md measured 0.215 for
  gradient-boosted trees without any poison). From a spec, the trigger is a record an attacker
  could submit: each column at its mean plus four of its own standard deviations, then held to
  the spec's bounds and integer rules (`trigger_values`). On images the trigger is a visible
  patch (`images.patch_trigger`); on text, a rare word of the vectoriser's vocabulary added to
  the texts (`textdata.trigger_word`), whose features are computed once for every text.

Every figure is a mean over seeds. Its 95 % interval is a bootstrap over the seeds and the
held-out rows together (both are samples: other seeds train other models, other rows would be
judged); where no row changed in any resample, the interval is widened to what zero changed rows
out of the rows judged still allow (Wilson's upper bound), so it is never zero-width.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlthreat.adapters.sklearn import retrainer
from mlthreat.cluster import fan_out
from mlthreat.errors import InputError, ProbeError
from mlthreat.probes.interface import Budget, Measurement, Meter, Param, Prepared, Probe
from mlthreat.probes.stats import percent, wilson
from mlthreat.probes.training import labels_of
from mlthreat.results import Curve

if TYPE_CHECKING:
    from mlthreat.probes.target import Target

Train = Callable[[np.ndarray, np.ndarray, int], Callable[[np.ndarray], np.ndarray]]
SUCCESS_DROP = 0.02          # two accuracy points lost
SUCCESS_BACKDOOR = 0.5       # half the triggered rows flip beyond what the clean model does


@dataclass(frozen=True)
class PoisoningData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    # the same rows with the backdoor trigger in them, where the trigger is not a setting of
    # columns (a word added to a text gives other features through the vectoriser)
    triggered_train: np.ndarray | None = None
    triggered_test: np.ndarray | None = None


TRIGGER_SDS = 4.0            # a trigger column sits this many of its own SDs above its mean
MIN_SLICE_ROWS = 30          # held-out rows behind a rate before it is worth a warning
RESAMPLES = 400


def effect_interval(effects: np.ndarray, rng: np.random.Generator,
                    resamples: int = RESAMPLES) -> tuple[float, tuple[float, float]]:
    """Mean and 95 % interval of per-row effects (seeds x rows: each row's poisoned minus clean
    outcome under one seed), resampling seeds and rows together; never zero-width: where every
    resample gives the same mean (no row changed), the interval is that mean +- Wilson's upper
    bound for zero changed rows among all the rows judged."""
    seeds, rows = effects.shape
    value = float(effects.mean())
    if rows == 0:
        return value, (-1.0, 1.0)
    boot = np.array([effects[rng.integers(0, seeds, seeds)][:, rng.integers(0, rows, rows)].mean()
                     for _ in range(resamples)])
    lo, hi = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
    lo, hi = min(lo, value), max(hi, value)
    if hi - lo < 1e-12:
        half = wilson(0.0, seeds * rows)[1]
        lo, hi = value - half, value + half
    return value, (lo, hi)


def trigger(x: np.ndarray, features: list[int], value: float | Sequence[float]) -> np.ndarray:
    out = np.array(x, dtype=float, copy=True)
    out[:, features] = value
    return out


def trigger_values(t: Target, features: list[int]) -> list[float]:
    """The trigger as a record an attacker could submit, in the model's input units: each column
    at its mean plus TRIGGER_SDS of its own standard deviations over the data (the same in the
    record's units and the model's, the encoding being affine), then held to the spec's bounds
    and integer rules by the constraints' projection."""
    c = t.constraints
    immutable = [c.columns[i] for i in features if c.columns[i] in c.immutable]
    if immutable:
        raise InputError(f"trigger: {', '.join(immutable)} is immutable in the spec's "
                         "constraints; an attacker cannot set it")
    row = np.array(t.x[:1], dtype=float, copy=True)
    row[0, features] = t.x[:, features].mean(axis=0) + TRIGGER_SDS * t.x[:, features].std(axis=0)
    return [float(v) for v in c.project(row, t.x[:1])[0, features]]


def trigger_columns(t: Target) -> list[int]:
    """Encoded columns of the backdoor trigger: those the spec names; else, among pairs of the
    first six numeric columns an attacker can change, the pair whose trigger (`trigger_values`)
    the deployed model least already reads as the attacker's class (so the backdoor, not the trigger, is
    measured; at most 15 x 100 queries)."""
    c = t.constraints
    if t.spec.trigger:
        unknown = [n for n in t.spec.trigger if n not in c.columns]
        if unknown:
            raise InputError(f"trigger: {', '.join(unknown)} is not a numeric column of the "
                             "model's input")
        return [c.columns.index(n) for n in t.spec.trigger]
    grouped = {n for g in c.categorical for n in g}
    free = [i for i, n in enumerate(c.columns) if n not in grouped and n not in c.immutable][:6]
    if len(free) < 2:
        raise ProbeError("no two changeable numeric columns for a backdoor trigger; name them "
                         "in the probe block (trigger: [a, b])")
    wanted = 0 if t.goal is None else t.goal
    rows = t.x[t.test][t.y[t.test] != wanted][:100]
    pairs = [[a, b] for i, a in enumerate(free) for b in free[i + 1:]]
    response = [float(np.mean(t.adapter.predict(trigger(rows, pair, trigger_values(t, pair)))
                              == wanted)) for pair in pairs]
    return pairs[int(np.argmin(response))]


def source_class(t: Target, wanted: int) -> int:
    """Whose labels targeted flipping turns into `wanted`: the other class of a binary model;
    with more classes, the one the deployed model already finds most like `wanted` (highest
    mean probability of `wanted` on its training rows; labels alone: most often predicted as
    it), where a few flipped labels move the boundary furthest."""
    classes = np.unique(t.y)
    if len(classes) <= 2:
        return 1 - wanted
    x, y = t.x[t.train], t.y[t.train]
    if t.adapter.capabilities.scores:
        like = t.adapter.predict_proba(x)[:, wanted]
    else:
        like = (t.adapter.predict(x) == wanted).astype(float)
    others = [int(c) for c in classes if c != wanted]
    return max(others, key=lambda c: (float(like[y == c].mean()), -c))


TITLES = {"label_flip": "label flipping", "targeted_flip": "targeted flipping",
          "backdoor": "backdoor", "clean_label": "clean-label backdoor"}
CLEAN_LABEL_SHARE = 16 / 255  # the crafted images' L∞ change, as a share of the pixel range


class Poisoning(Probe):
    """Parameters: attack ("label_flip", "targeted_flip", "backdoor"), train (the training entry
    point), rates ([0.01, 0.05, 0.1]), seeds (3), jobs (1); for targeted_flip and backdoor:
    target_class (the class the attacker wants; default 0) and, for targeted_flip, source_class
    (whose labels are flipped, a share `rate` of that class's rows; default 1); for backdoor:
    features ([0, 1]) and value (4.0, or one value per feature)."""

    name = "poisoning"
    threat_ids = ("aml-poisoning-label-flip", "aml-poisoning-targeted",
                  "aml-poisoning-availability", "aml-backdoor-data",
                  "aml-feedback-loop-manipulation",
                  "aml-poisoned-public-dataset", "aml-poisoning-clean-label")
    parameters = {
        "attack": Param("label_flip", choices=tuple(TITLES)),
        "train": Param(None, doc="the training entry point, labels out"),
        "rates": Param([0.01, 0.05, 0.1], 0.0, 0.5, doc="shares of training rows poisoned"),
        "seeds": Param(3, 1, 100, doc="retrainings per rate"),
        "jobs": Param(1, 1, 256, doc="processes for the retrainings"),
        "target_class": Param(0, 0, 1e6, doc="the class the attacker wants"),
        "source_class": Param(1, 0, 1e6, doc="whose labels targeted flipping turns"),
        "features": Param([0, 1], 0, 1e6, doc="encoded columns of the backdoor trigger"),
        "names": Param(None, doc="the trigger columns' names, for the summary"),
        "value": Param(4.0, -1e12, 1e12, doc="the trigger's value in the model's input units: "
                                               "one for every column, or one per column"),
        "shown": Param(None, doc="the trigger's values in the record's units, for the summary"),
        "patch": Param(None, doc="the trigger described, where it is an image patch"),
        "word": Param(None, doc="the trigger word added to texts (text models)"),
        "crafted": Param(None, doc="the clean-label images' L∞ change, in pixel units"),
        "share": Param(CLEAN_LABEL_SHARE, 0.0, 1.0, doc="that change as a share of the pixel "
                                                         "range (16/255: Turner et al.'s)"),
    }
    requires = {"retraining": "poisoning retrains the model: name the training function in the "
                              "probe block (train: file.py:function)"}

    @classmethod
    def configure(cls, target: Target, settings: dict[str, int], fixed: dict[str, Any],
                  seed: int, jobs: int) -> Prepared:
        """Random label flips, targeted flips (the other class turned into the goal) or a
        backdoor, each retrained through the target's training entry point."""
        t = target
        assert t.fit is not None             # the planner checked `requires`
        wanted = 0 if t.goal is None else t.goal
        params: dict[str, Any] = {"attack": "label_flip", "rates": [0.05, 0.1, 0.2], **fixed}
        if params["attack"] == "targeted_flip":
            params.update(target_class=wanted, source_class=source_class(t, wanted))
        split = PoisoningData(t.x[t.train], t.y[t.train], t.x[t.test], t.y[t.test])
        if params["attack"] == "clean_label":
            split, extra = _clean_label(t, wanted, split, float(params.get(
                "share", CLEAN_LABEL_SHARE)))
            params.update(rates=[0.1, 0.3, 0.5], target_class=wanted, **extra)
        elif params["attack"] == "backdoor" and t.text:       # a word added to the texts
            from mlthreat.probes.textdata import trigger_word
            word, triggered = trigger_word(t, wanted)
            params.update(rates=[0.01, 0.05, 0.1], target_class=wanted, word=word)
            split = PoisoningData(t.x[t.train], t.y[t.train], t.x[t.test], t.y[t.test],
                                  triggered[t.train], triggered[t.test])
        elif params["attack"] == "backdoor" and t.images:     # a visible patch
            from mlthreat.probes.images import patch_trigger
            assert t.spec.images is not None
            features, values, patch = patch_trigger(t.spec.images, t.constraints)
            params.update(rates=[0.01, 0.05, 0.1], target_class=wanted, value=values,
                          features=features, patch=patch)
        elif params["attack"] == "backdoor":
            features = trigger_columns(t)
            values = trigger_values(t, features)
            row = trigger(t.x[:1], features, values)
            names = [t.constraints.columns[i] for i in features]
            record = t.constraints.records(row)[0]
            params.update(rates=[0.01, 0.05, 0.1], target_class=wanted, value=values,
                          features=features, names=names,
                          shown=[record.get(n, v) for n, v in zip(names, values, strict=True)])
        probe = cls(train=labels_of(t.fit), seeds=settings["seeds"], jobs=jobs, **params)
        return Prepared(probe, None, split, Budget(seed=seed))

    def measures(self) -> tuple[str, ...]:
        attack = self.param("attack")
        if attack == "backdoor":
            return ("aml-backdoor-data",)
        if attack == "clean_label":
            return ("aml-poisoning-clean-label", "aml-backdoor-data")
        if attack == "targeted_flip":
            return ("aml-poisoning-targeted",)
        return tuple(t for t in self.threat_ids
                     if t not in ("aml-backdoor-data", "aml-poisoning-targeted",
                                  "aml-poisoning-clean-label"))

    def title(self) -> str:
        return TITLES.get(str(self.param("attack")), self.name)

    def curves(self, m: Measurement) -> tuple[Curve, ...]:
        """Accuracy, rows turned or backdoor success against the poison rate, with the band of
        the retrainings' spread where every rate has one."""
        rates = m.series.get("rates") or []
        bounds = m.extra.get("intervals") or []
        known = bool(bounds) and all(bounds)
        if "accuracy_drop" in m.series:
            clean = float(m.extra.get("clean_score", 0.0))
            acc = (clean, *(clean - d for d in m.series["accuracy_drop"]))
            lo = (clean, *(clean - b[1] for b in bounds)) if known else None
            hi = (clean, *(clean - b[0] for b in bounds)) if known else None
            bottom = max(0.0, math.floor((min(lo or acc) - 0.05) * 10) / 10)
            return (Curve((0.0, *rates), acc, "share of training labels flipped", "test accuracy",
                          lo, hi, y_range=(bottom, 1.0)),)
        if "targeted_shift" in m.series:
            shift = m.series["targeted_shift"]
            return (Curve((0.0, *rates), (0.0, *shift), "share of the slice's labels flipped",
                          "more rows turned",
                          (0.0, *(b[0] for b in bounds)) if known else None,
                          (0.0, *(b[1] for b in bounds)) if known else None,
                          y_range=(min(0.0, *shift), 1.0)),)
        if "backdoor_success" in m.series and rates:
            return (Curve(tuple(rates), tuple(m.series["backdoor_success"]),
                          "share of the target class's images poisoned"
                          if self.param("attack") == "clean_label"
                          else "share of training rows poisoned", "backdoor success (net)",
                          tuple(b[0] for b in bounds) if known else None,
                          tuple(b[1] for b in bounds) if known else None,
                          x_range=(0.0, max(rates))),)
        return ()

    def _measure(self, model: Any, data: PoisoningData, rng: np.random.Generator,
                 meter: Meter) -> Measurement:
        train: Train | None = self.param("train")
        if train is None:
            raise ProbeError("poisoning needs `train`: the pipeline's training entry point")
        attack = self.param("attack")
        rates = [float(r) for r in self.param("rates")]
        seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=int(self.param("seeds")))]
        jobs = [(rate, seed) for rate in [0.0, *rates] for seed in seeds]
        outcomes = fan_out(_retrained, (self, train, data, attack), jobs, int(self.param("jobs")))
        by = {(rate, seed): np.asarray(o, dtype=float)
              for (rate, seed), o in zip(jobs, outcomes, strict=True)}
        sign = -1.0 if attack == "label_flip" else 1.0   # accuracy lost vs. rows turned
        curve = [effect_interval(np.array([sign * (by[(rate, s)] - by[(0.0, s)]) for s in seeds]),
                                 rng) for rate in rates]
        worst_rate = max(rates)
        value, interval = curve[-1]
        backdoor = ("backdoor_success", "backdoor success net of the clean model")
        metric, unit = {"label_flip": ("accuracy_drop", "clean accuracy lost"),
                        "targeted_flip": ("targeted_shift", "more target-class rows turned"),
                        "backdoor": backdoor, "clean_label": backdoor}[attack]
        # the bar reached, and an effect the seeds and rows show is not zero
        succeeded = interval[0] > 0 and value >= (
            SUCCESS_BACKDOOR if attack in ("backdoor", "clean_label") else SUCCESS_DROP)
        parts = [f"{percent(r)}: {m:+.3f} [{lo:+.3f}, {hi:+.3f}]"
                 for r, (m, (lo, hi)) in zip(rates, curve, strict=True)]
        judged = len(by[(0.0, seeds[0])])
        head = TITLES[attack] if attack == "clean_label" else attack.replace("_", " ")
        summary = (f"{head} retrained over {len(seeds)} seeds, {unit} at "
                   f"poison rates {', '.join(parts)}{self._rates_of(data)}; judged on {judged} "
                   "held-out rows")
        if attack == "clean_label":
            summary += (f" ({self.param('patch')} on images of class {self.param('target_class')}"
                        f" first moved away from it within L∞ {_number(self.param('crafted'))}; "
                        "their labels are right)")
        elif attack == "backdoor" and self.param("word"):
            summary += f" (trigger: the word “{self.param('word')}” added to a text)"
        elif attack == "backdoor" and self.param("patch"):
            summary += f" (trigger: {self.param('patch')})"
        elif attack == "backdoor" and self.param("names"):
            names = self.param("names")
            shown = self.param("shown") or self._values(len(names))
            values = ", ".join(f"{n} = {_number(v)}" for n, v in zip(names, shown, strict=True))
            summary += (f" (trigger: {values}"
                        f"{'' if self.param('shown') else ' in the model input units'})")
        clean = float(np.mean([by[(0.0, s)].mean() for s in seeds]))
        poisoned = float(np.mean([by[(worst_rate, s)].mean() for s in seeds]))
        return Measurement(metric, value, interval, bool(succeeded), summary,
                           {"rates": rates, metric: [m for m, _ in curve]},
                           {"at_rate": worst_rate, "clean_score": clean,
                            "poisoned_score": poisoned, "judged_rows": judged,
                            "intervals": [list(i) for _, i in curve],
                            "warnings": self._warnings(data, rates, judged)})

    def _values(self, n: int) -> list[float]:
        value = self.param("value")
        return [float(v) for v in value] if isinstance(value, list | tuple) else [float(value)] * n

    def _rates_of(self, data: PoisoningData) -> str:
        if self.param("attack") == "clean_label":
            return (f" (shares of the {int(np.sum(data.y_train == int(self.param('target_class'))))}"
                    f" training images of class {int(self.param('target_class'))})")
        if self.param("attack") != "targeted_flip":
            return " (shares of all training rows)"
        source = int(self.param("source_class"))
        return (f" (shares of the {int(np.sum(data.y_train == source))} training rows of class "
                f"{source}, relabelled {int(self.param('target_class'))})")

    def _warnings(self, data: PoisoningData, rates: list[float], judged: int) -> list[str]:
        """The class the attack works on is too rare for the figure to rest on much."""
        out = []
        if self.param("attack") == "targeted_flip":
            pool = int(np.sum(data.y_train == int(self.param("source_class"))))
            none = [r for r in rates if r > 0 and round(r * pool) == 0]
            if none:
                out.append(f"targeted flipping: {', '.join(map(percent, none))} of the "
                           f"{pool} training rows of the source class is no row; those rates "
                           "measured nothing")
        if 0 < judged < MIN_SLICE_ROWS:
            out.append(f"{TITLES[self.param('attack')]}: only {judged} held-out rows of the "
                       "class the attack works on; the figure's interval is wide, and a "
                       "larger held-out set (test_size) narrows it")
        return out

    def _one(self, train: Train, data: PoisoningData, attack: str, rate: float,
             seed: int) -> Any:
        """One retraining's outcome per judged held-out row (a boolean array): correct, turned into the
        target class (source rows), or turned by the trigger (rows of other classes)."""
        rng = np.random.default_rng(seed)
        x, y = np.array(data.x_train, dtype=float, copy=True), np.array(data.y_train, copy=True)
        target = int(self.param("target_class"))
        if attack == "label_flip" and (n := int(round(rate * len(y)))):
            idx = rng.choice(len(y), size=n, replace=False)
            classes = np.unique(data.y_train)
            y[idx] = np.array([rng.choice(classes[classes != v]) for v in y[idx]])
        elif attack == "targeted_flip":
            pool = np.flatnonzero(y == int(self.param("source_class")))
            if n := int(round(rate * len(pool))):
                y[rng.choice(pool, size=n, replace=False)] = target
        elif attack == "clean_label":     # the target class's own images, labels kept
            pool = np.flatnonzero(y == target)
            if n := int(round(rate * len(pool))):
                idx = rng.choice(pool, size=n, replace=False)
                assert data.triggered_train is not None
                x[idx] = data.triggered_train[idx]
        elif attack == "backdoor" and (n := int(round(rate * len(y)))):
            feats = list(self.param("features"))
            idx = rng.choice(len(y), size=n, replace=False)
            x[idx] = trigger(x[idx], feats, self._values(len(feats))) \
                if data.triggered_train is None else data.triggered_train[idx]
            y[idx] = target
        predict = train(x, y, seed)
        if attack == "label_flip":
            return np.asarray(predict(data.x_test)) == np.asarray(data.y_test)
        if attack == "targeted_flip":
            rows = data.x_test[data.y_test == int(self.param("source_class"))]
            return np.equal(predict(rows), target)
        if data.triggered_test is not None:
            return np.equal(predict(data.triggered_test[data.y_test != target]), target)
        feats = list(self.param("features"))
        others = data.x_test[data.y_test != target]
        return np.equal(predict(trigger(others, feats, self._values(len(feats)))), target)


def _clean_label(t: Target, wanted: int, split: PoisoningData, share: float
                 ) -> tuple[PoisoningData, dict[str, Any]]:
    """The label-consistent backdoor of Turner, Tsipras and Madry (2019) on images: training
    images of the attacker's class, first moved away from it by PGD within L∞ 16/255 of the range
    (so the model cannot learn them from their content and leans on the patch), then stamped
    with the backdoor's patch; their labels stay right, so a labeller passes them. The crafting
    uses the deployed model's gradients, standing in for the copy an attacker would train: an
    upper side of what a copy's gradients give."""
    if not t.images or t.spec.images is None:
        raise ProbeError("the clean-label backdoor is measured on images (a change a labeller "
                         "does not see, then a patch); on tables and text the backdoor probe "
                         "measures a trigger with flipped labels")
    if "gradients" not in t.capabilities:
        raise ProbeError("the clean-label backdoor crafts its images with the model's gradients "
                         "(standing in for the attacker's own copy); this model offers none")
    from mlthreat.probes.evasion import EvasionData, WhiteBoxEvasion
    from mlthreat.probes.images import patch_trigger
    features, values, patch = patch_trigger(t.spec.images, t.constraints)
    low, high = t.spec.images.range
    eps = (high - low) * share
    own = np.flatnonzero(split.y_train == wanted)
    if not len(own):
        raise ProbeError(f"no training image of class {wanted} to poison")
    crafted = np.array(split.x_train, dtype=float, copy=True)
    pgd = WhiteBoxEvasion(norm="linf", steps=20, restarts=1)
    _, moved = pgd.pgd(t.adapter, crafted[own], np.full(len(own), wanted),
                       np.full(len(own), eps), "linf", EvasionData(crafted[own], t.constraints),
                       early=False)
    crafted[own] = trigger(moved, features, values)
    data = PoisoningData(split.x_train, split.y_train, split.x_test, split.y_test, crafted,
                         trigger(split.x_test, features, values))
    return data, {"features": features, "value": values, "patch": patch, "crafted": eps,
                  "share": share}


def _number(v: object) -> str:
    return f"{v:,.4g}" if isinstance(v, float) else str(v)


def sklearn_train(estimator: Any) -> Train:
    """The training entry point of a scikit-learn estimator: clone, seed, fit; labels out."""
    return retrainer(estimator, "predict")


def _retrained(shared: tuple[Poisoning, Train, PoisoningData, str], part: tuple[float, int]
               ) -> Any:
    """One retraining of a poisoning run: the probe's outcome at this rate and seed."""
    probe, train, data, attack = shared
    rate, seed = part
    return probe._one(train, data, attack, rate, seed)
