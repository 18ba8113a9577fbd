"""Poisoning: how much does a small share of poisoned training data change the model?

The model is retrained through the pipeline's own training entry point (for scikit-learn,
`clone(estimator).fit`; or any function from (x, y, seed) to a predict function) on training data
with a share of it poisoned, over several seeds, and compared with the model retrained on clean
data with the same seeds:

- `label_flip` (random): flip the labels of a random share of the rows. Reported: drop in
  clean accuracy (clean-trained minus poisoned-trained, on held-out rows).
- `targeted_flip`: flip labels only in a target slice (rows whose `target_class` the attacker
  wants to flip, e.g. "bad" applicants relabelled "good"). Reported: the change in how often held-out
  rows of that class are classified as the attacker wants.
- `backdoor`: add a trigger (chosen features set to a value, e.g. +4 standard deviations) to a
  share of rows, labelled with the attacker's class. Reported: backdoor success on held-out rows
  of other classes with the trigger added, *net of* the clean model's own response to the trigger
  (a trigger far outside the data already moves many models: BASELINES.md measured 0.215 for
  gradient-boosted trees without any poison).

Every figure is a mean over seeds with a t-interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from joblib import Parallel, delayed
from scipy import stats

from mlthreat.adapters.sklearn import retrainer
from mlthreat.errors import InputError, ProbeError
from mlthreat.probes.interface import Budget, Measurement, Meter, Param, Prepared, Probe
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


def _mean_interval(values: list[float]) -> tuple[float, tuple[float, float] | None]:
    arr = np.asarray(values, dtype=float)
    mean = float(arr.mean())
    if len(arr) < 2 or float(arr.std(ddof=1)) == 0.0:
        return mean, (mean, mean) if len(arr) >= 2 else None
    half = float(stats.t.ppf(0.975, len(arr) - 1) * arr.std(ddof=1) / np.sqrt(len(arr)))
    return mean, (mean - half, mean + half)


def trigger(x: np.ndarray, features: list[int], value: float) -> np.ndarray:
    out = np.array(x, dtype=float, copy=True)
    out[:, features] = value
    return out


def trigger_columns(t: Target) -> list[int]:
    """Encoded columns of the backdoor trigger: those the spec names; else, among pairs of the
    first six numeric columns an attacker can change, the pair whose +4 SD trigger the deployed
    model least already reads as the attacker's class (so the backdoor, not the trigger, is
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
    response = [float(np.mean(t.adapter.predict(trigger(rows, pair, 4.0)) == wanted))
                for pair in pairs]
    return pairs[int(np.argmin(response))]


TITLES = {"label_flip": "label flipping", "targeted_flip": "targeted flipping",
          "backdoor": "backdoor"}


class Poisoning(Probe):
    """Parameters: attack ("label_flip", "targeted_flip", "backdoor"), train (the training entry
    point), rates ([0.01, 0.05, 0.1]), seeds (3), jobs (1); for targeted_flip and backdoor:
    target_class (the class the attacker wants; default 0) and, for targeted_flip, source_class
    (whose labels are flipped; default 1); for backdoor: features ([0, 1]) and value (4.0)."""

    name = "poisoning"
    threat_ids = ("aml-poisoning-label-flip", "aml-poisoning-targeted",
                  "aml-poisoning-availability", "aml-backdoor-data",
                  "aml-feedback-loop-manipulation",
                  "aml-poisoned-public-dataset")
    parameters = {
        "attack": Param("label_flip", choices=tuple(TITLES)),
        "train": Param(None, doc="the training entry point, labels out"),
        "rates": Param([0.01, 0.05, 0.1], 0.0, 0.5, doc="shares of training rows poisoned"),
        "seeds": Param(3, 1, 100, doc="retrainings per rate"),
        "jobs": Param(1, 1, 256, doc="processes for the retrainings"),
        "target_class": Param(0, 0, 1, doc="the class the attacker wants"),
        "source_class": Param(1, 0, 1, doc="whose labels targeted flipping turns"),
        "features": Param([0, 1], 0, 1e6, doc="encoded columns of the backdoor trigger"),
        "names": Param(None, doc="the trigger columns' names, for the summary"),
        "value": Param(4.0, -1e6, 1e6, doc="the trigger's value in the model's input units"),
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
            params.update(target_class=wanted, source_class=1 - wanted)
        if params["attack"] == "backdoor":
            features = trigger_columns(t)
            params.update(rates=[0.01, 0.05, 0.1], target_class=wanted, value=4.0,
                          features=features, names=[t.constraints.columns[i] for i in features])
        split = PoisoningData(t.x[t.train], t.y[t.train], t.x[t.test], t.y[t.test])
        probe = cls(train=labels_of(t.fit), seeds=settings["seeds"], jobs=jobs, **params)
        return Prepared(probe, None, split, Budget(seed=seed))

    def measures(self) -> tuple[str, ...]:
        attack = self.param("attack")
        if attack == "backdoor":
            return ("aml-backdoor-data",)
        if attack == "targeted_flip":
            return ("aml-poisoning-targeted",)
        return tuple(t for t in self.threat_ids
                     if t not in ("aml-backdoor-data", "aml-poisoning-targeted"))

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
                          "share of training rows poisoned", "backdoor success (net)",
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
        scores = Parallel(n_jobs=int(self.param("jobs")))(
            delayed(self._one)(train, data, attack, rate, seed) for rate, seed in jobs)
        by = {(rate, seed): score for (rate, seed), score in zip(jobs, scores, strict=True)}
        sign = -1.0 if attack == "label_flip" else 1.0   # accuracy lost vs. rows turned
        effects = {rate: [sign * (by[(rate, s)] - by[(0.0, s)]) for s in seeds] for rate in rates}
        curve = [_mean_interval(effects[r]) for r in rates]
        worst_rate = max(rates)
        value, interval = curve[-1]
        metric, unit = {"label_flip": ("accuracy_drop", "clean accuracy lost"),
                        "targeted_flip": ("targeted_shift", "more target-class rows turned"),
                        "backdoor": ("backdoor_success", "backdoor success net of the clean "
                                                         "model")}[attack]
        succeeded = value >= (SUCCESS_BACKDOOR if attack == "backdoor" else SUCCESS_DROP)
        parts = [f"{r:.0%}: {m:+.3f}" for r, (m, _) in zip(rates, curve, strict=True)]
        summary = (f"{attack.replace('_', ' ')} retrained over {len(seeds)} seeds, {unit} at "
                   f"poison rates {', '.join(parts)}")
        if attack == "backdoor" and self.param("names"):
            summary += (f" (trigger: {' and '.join(self.param('names'))} set to "
                        f"{float(self.param('value')):+g} in the model's input units)")
        clean = _mean_interval([by[(0.0, s)] for s in seeds])[0]
        poisoned = _mean_interval([by[(worst_rate, s)] for s in seeds])[0]
        return Measurement(metric, value, interval, bool(succeeded), summary,
                           {"rates": rates, metric: [m for m, _ in curve]},
                           {"at_rate": worst_rate, "clean_score": clean,
                            "poisoned_score": poisoned,
                            "intervals": [list(i) if i else None for _, i in curve]})

    def _one(self, train: Train, data: PoisoningData, attack: str, rate: float,
             seed: int) -> float:
        """One retraining's figure: test accuracy, share of source rows turned, or backdoor
        success on triggered rows of other classes."""
        rng = np.random.default_rng(seed)
        x, y = np.array(data.x_train, dtype=float, copy=True), np.array(data.y_train, copy=True)
        target = int(self.param("target_class"))
        n = int(round(rate * len(y)))
        if attack == "label_flip" and n:
            idx = rng.choice(len(y), size=n, replace=False)
            classes = np.unique(data.y_train)
            y[idx] = np.array([rng.choice(classes[classes != v]) for v in y[idx]])
        elif attack == "targeted_flip" and n:
            source = int(self.param("source_class"))
            pool = np.flatnonzero(y == source)
            y[rng.choice(pool, size=min(n, len(pool)), replace=False)] = target
        elif attack == "backdoor" and n:
            feats, value = list(self.param("features")), float(
                self.param("value"))
            idx = rng.choice(len(y), size=n, replace=False)
            x[idx] = trigger(x[idx], feats, value)
            y[idx] = target
        predict = train(x, y, seed)
        if attack == "label_flip":
            return float(np.mean(np.asarray(predict(data.x_test)) == data.y_test))
        if attack == "targeted_flip":
            source = int(self.param("source_class"))
            rows = data.x_test[data.y_test == source]
            return float(np.mean(np.asarray(predict(rows)) == target))
        feats, value = list(self.param("features")), float(
            self.param("value"))
        others = data.x_test[data.y_test != target]
        return float(np.mean(np.asarray(predict(trigger(others, feats, value))) == target))


def sklearn_train(estimator: Any) -> Train:
    """The training entry point of a scikit-learn estimator: clone, seed, fit; labels out."""
    return retrainer(estimator, "predict")
