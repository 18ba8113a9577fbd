"""Membership inference: can an attacker tell whether a person's record was in the training data?

Three attacks, all black-box; the first two read the model's scores, the third its labels only:

- `threshold`: the model's confidence in the true label (a loss threshold; Yeom et al. 2018).
- `reference` (default): a likelihood-ratio test in the style of LiRA (Carlini et al., 2022).
  The attacker trains reference models of the same kind on random halves of data it could have,
  so each record is in about half of them; for each record it fits a Gaussian to the logit-scaled
  confidences of the models that saw it and of those that did not, and scores the target model's
  confidence by the log-likelihood ratio.
- `label_only` (what runs when the interface returns labels only): robustness to noise (Choo et
  al., "Label-only membership inference attacks", 2021). A model tends to hold its answer on
  the records it was trained on even when they are perturbed; the attacker sends `noise_queries`
  noisy copies of each record (Gaussian, `noise` of each column's standard deviation, held to
  the spec's constraints) and scores the record by the share answered with its true label, below
  every correctly answered record when the record itself is answered wrongly. At most
  `candidates` records are scored (all non-members first, up to half), `noise_queries` + 1
  queries each.

Members are real training rows and non-members held-out rows. Reported: ROC AUC and the true
positive rate at low false positive rates (the figures that matter: can the attacker be *sure*
about *some* people), each with a stratified bootstrap interval, and the ROC curve. A rate at a
false positive rate is reported only where the non-members support it: at least 10 false
positives behind it (1 % FPR needs 1,000 non-members, 0.1 % needs 10,000); below that, the TPR
is given at the lowest FPR the sample supports, 10 / non-members, and the report says why.

The attack is confirmed when it beats guessing even at the cautious end of its intervals: the
AUC's lower bound reaches 0.6, or the TPR's lower bound at the lowest supported FPR is at least
three times that FPR (guessing gives TPR = FPR). A model that fits the declared members no better
than the non-members (the loss threshold's AUC interval reaches down to 0.5, and the accuracy on
members is not clearly higher) gets a warning: either it generalises well, or the rows declared as
training rows are not the ones it was trained on (a wrong split seed or test size), and then no
membership figure means anything.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import norm
from sklearn.metrics import roc_auc_score, roc_curve

from mlthreat.adapters.interface import ModelAdapter
from mlthreat.cluster import fan_out
from mlthreat.errors import ProbeError
from mlthreat.probes.interface import Budget, Measurement, Meter, Param, Prepared, Probe
from mlthreat.probes.stats import percent
from mlthreat.probes.training import Fit
from mlthreat.results import Curve

if TYPE_CHECKING:
    from mlthreat.probes.target import Target

SUCCESS_AUC = 0.6                 # the AUC interval's lower bound must reach this
SUCCESS_TPR_RATIO = 3.0           # TPR lower bound over the FPR it is read at (guessing: 1)
MIN_FALSE_POSITIVES = 10          # behind every reported TPR at a fixed FPR
LEVELS = (0.001, 0.01)            # the FPRs the field reports, where the sample supports them
CLIP = 1e-4


@dataclass(frozen=True)
class MembershipData:
    """Candidate records with their true labels, and which were training rows."""

    x: np.ndarray
    y: np.ndarray
    member: np.ndarray                  # bool per row
    population_x: np.ndarray | None = None   # data the attacker could have (default: x)
    population_y: np.ndarray | None = None
    population_index: np.ndarray | None = None   # where each candidate is in the population;
    # None with a population: candidates are outside it, no reference model saw them (offline)
    project: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None   # (noisy, original)
    # -> realisable records, for the label-only attack's queries


def logit_confidence(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) of the probability given to the true label, clipped away from 0 and 1."""
    p = np.clip(proba[np.arange(len(y)), y], CLIP, 1 - CLIP)
    return np.asarray(np.log(p) - np.log1p(-p), dtype=float)


def tpr_at_fpr(scores: np.ndarray, member: np.ndarray, fpr_max: float) -> float:
    """The highest true-positive rate among thresholds with false-positive rate <= fpr_max."""
    fpr, tpr, _ = roc_curve(member, scores)
    ok = fpr <= fpr_max + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def supported_fprs(non_members: int) -> tuple[float, ...]:
    """The false positive rates a TPR can be reported at with `non_members` negatives: the
    field's levels with at least MIN_FALSE_POSITIVES false positives behind them, else the lowest
    such rate, MIN_FALSE_POSITIVES / non_members (1.0 when there are fewer non-members)."""
    levels = tuple(a for a in LEVELS if a * non_members >= MIN_FALSE_POSITIVES - 1e-9)
    return levels or (min(1.0, MIN_FALSE_POSITIVES / max(non_members, 1)),)


def _metrics(scores: np.ndarray, member: np.ndarray, fprs: tuple[float, ...]) -> list[float]:
    return [float(roc_auc_score(member, scores)), *(tpr_at_fpr(scores, member, a) for a in fprs)]


def _bootstrap(scores: np.ndarray, member: np.ndarray, rng: np.random.Generator, n: int,
               fprs: tuple[float, ...]) -> np.ndarray:
    out = []
    members, others = np.flatnonzero(member), np.flatnonzero(~member)
    for _ in range(n):   # stratified: the member share stays that of the sample
        idx = np.concatenate([rng.choice(members, len(members)), rng.choice(others, len(others))])
        out.append(_metrics(scores[idx], member[idx], fprs))
    return np.array(out)


def _reference_confidences(fit: Fit, px: np.ndarray, py: np.ndarray, x: np.ndarray,
                           y: np.ndarray, k: int, seeds: np.ndarray, jobs: int,
                           augment: Callable[[np.ndarray], list[np.ndarray]] | None = None
                           ) -> tuple[np.ndarray, np.ndarray]:
    """(in-mask k x n, confidence k x n, or k x views x n with `augment`) of k reference models
    on the candidates."""
    masks = [np.random.default_rng(int(s)).random(len(px)) < 0.5 for s in seeds]
    conf = fan_out(_reference, (fit, px, py, x, y, augment),
                   [(m, int(s)) for m, s in zip(masks, seeds, strict=True)], jobs)
    return np.array(masks), np.array(conf)


def _reference(shared: tuple[Fit, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                             Callable[[np.ndarray], list[np.ndarray]] | None],
               part: tuple[np.ndarray, int]) -> np.ndarray:
    """One reference model, trained on the rows of its mask: its confidence on the candidates
    (on each augmented view of them, with `augment`)."""
    fit, px, py, x, y, augment = shared
    mask, seed = part
    predict = fit(px[mask], py[mask], seed)
    if augment is None:
        return logit_confidence(np.asarray(predict(x)), y)
    return np.stack([logit_confidence(np.asarray(predict(view)), y) for view in augment(x)])


class MembershipInference(Probe):
    """Parameters: attack ("reference", "threshold" or "label_only"), fit (for reference: trains a
    model of the target's kind and returns its predict_proba), references (32), bootstrap (200),
    jobs (1); for label_only: noise_queries (32), noise (0.05), candidates (2000)."""

    name = "membership"
    threat_ids = ("aml-membership-inference", "aml-attribute-inference")

    parameters = {
        "attack": Param("reference", choices=("reference", "threshold", "label_only"),
                        doc="LiRA-style reference models, the loss threshold, or robustness "
                            "to noise read from labels only"),
        "fit": Param(None, doc="trains a model of the target's kind (reference attack)"),
        "references": Param(32, 2, 1024, doc="reference models trained"),
        "bootstrap": Param(200, 10, 10_000, doc="resamples for the intervals"),
        "jobs": Param(1, 1, 256, doc="processes for the reference models"),
        "noise_queries": Param(32, 1, 10_000, doc="noisy copies of each record (label-only)"),
        "noise": Param(0.05, 0.0, 100.0, doc="noise in standard deviations of each column "
                                           "(label-only)"),
        "candidates": Param(2000, 20, 10_000_000, doc="records scored (label-only)"),
        "augment": Param(None, doc="rows -> the same records in a few augmented views, the "
                                   "first the records themselves (reference attack: every "
                                   "view queried, the likelihood ratios added, as LiRA does "
                                   "with its augmentations)"),
    }
    RETRAINING = ("the reference attack retrains models of this kind: name the training function "
                  "in the probe block (train: file.py:function)")

    @classmethod
    def configure(cls, target: Target, settings: dict[str, int], fixed: dict[str, Any],
                  seed: int, jobs: int) -> Prepared:
        """Candidates: the training rows (members) and the held-out rows; the attacker's
        reference models are trained on halves of all rows. An interface that returns labels
        only gets the label-only attack (no retraining needed); with scores, the reference
        attack needs the training entry point."""
        t = target
        members = np.isin(np.arange(len(t.y)), t.train)
        cand = np.concatenate([t.train, t.test])
        data = MembershipData(t.x[cand], t.y[cand], members[cand], population_x=t.x,
                              population_y=t.y, population_index=cand,
                              project=t.constraints.project)
        attack = "reference" if "scores" in t.capabilities else "label_only"
        if attack == "label_only" and t.text:
            raise ProbeError("label-only membership inference adds noise to records; on text it "
                             "would need word-level noise, not measured yet (with scores, the "
                             "reference attack runs)")
        if attack == "reference" and t.fit is None:
            raise ProbeError(t.no_retraining(cls.RETRAINING))
        augment = None
        if t.images and t.spec.images is not None and t.spec.images.augmentation == "shifts":
            from mlthreat.probes.images import ImageShifts
            augment = ImageShifts(t.spec.images.shape)
        probe = cls(**{"attack": attack, "fit": t.fit, "jobs": jobs, "augment": augment,
                       "references": settings["references"],
                       "noise_queries": 2 * settings["references"],
                       "bootstrap": settings["bootstrap"], **fixed})
        return Prepared(probe, t.adapter, data, Budget(seed=seed))

    def curves(self, m: Measurement) -> tuple[Curve, ...]:
        """The ROC on log axes, where the attacks that matter show (low false positives)."""
        pairs = [(f, t) for f, t in zip(m.series.get("fpr", []), m.series.get("tpr", []),
                                        strict=True) if f > 0]
        if not pairs:
            return ()
        fpr, tpr = zip(*pairs, strict=True)
        low = max(min(fpr), 1e-4)
        return (Curve(tuple(fpr), tuple(max(t, low) for t in tpr), "false positive rate (log)",
                      "true positive rate (log)", log_x=True, log_y=True, x_range=(low, 1.0),
                      y_range=(low, 1.0), diagonal=True),)

    def _measure(self, model: ModelAdapter, data: MembershipData, rng: np.random.Generator,
                 meter: Meter) -> Measurement:
        member = np.asarray(data.member, dtype=bool)
        if member.all() or not member.any():
            raise ProbeError("membership inference needs both members and non-members")
        attack = self.param("attack")
        if attack == "label_only":
            data, member = _sample(data, member, int(self.param("candidates")), rng)
            scores = self._label_only(model, data, rng)
            proba = None
        else:
            proba = np.asarray(model.predict_proba(data.x))
            observed = logit_confidence(proba, data.y)
            augment = self.param("augment")
            if augment is not None and attack == "reference":   # one row per view
                observed = np.stack([observed, *(logit_confidence(np.asarray(
                    model.predict_proba(view)), data.y) for view in augment(data.x)[1:])])
            scores = self.scores(observed, data, rng)
        members, others = int(member.sum()), int((~member).sum())
        fprs = supported_fprs(others)
        point = _metrics(scores, member, fprs)
        boot = _bootstrap(scores, member, rng, int(self.param("bootstrap")), fprs)
        lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
        auc = point[0]
        tprs = {a: (point[i + 1], float(lo[i + 1]), float(hi[i + 1])) for i, a in enumerate(fprs)}
        lowest = fprs[0]
        succeeded = lo[0] >= SUCCESS_AUC or tprs[lowest][1] >= SUCCESS_TPR_RATIO * lowest
        fpr, tpr, _ = roc_curve(member, scores)
        keep = np.unique(np.geomspace(1, len(fpr), 200).astype(int) - 1)
        rates = ", ".join(f"TPR {t:.1%} [{t_lo:.1%}, {t_hi:.1%}] at {percent(a)} FPR"
                          for a, (t, t_lo, t_hi) in tprs.items())
        summary = (f"{attack.replace('_', '-')} attack: AUC {auc:.3f} [{lo[0]:.3f}, "
                   f"{hi[0]:.3f}], {rates}, on {members} members and {others} non-members")
        if attack == "label_only":
            summary += (f" (labels only: {int(self.param('noise_queries'))} noisy copies per "
                        f"record, noise {float(self.param('noise')):g} SD per column)")
        unsupported = [a for a in LEVELS if a not in fprs]
        if unsupported:
            summary += (f" ({' and '.join(percent(a) for a in sorted(unsupported, reverse=True))} "
                        f"FPR not reported: {others} non-members give fewer than "
                        f"{MIN_FALSE_POSITIVES} false positives there)")
        warnings_ = [] if proba is None else _fit_warnings(
            proba, observed if observed.ndim == 1 else observed[0], data.y, member, rng)
        if others < 100:
            warnings_.append(f"only {others} non-members: the lowest false positive rate they "
                             f"support is {percent(lowest)}, so whether the attacker can be sure "
                             "about a few people cannot be measured here; hold out more rows "
                             "(test_size)")
        extra: dict[str, Any] = {
            "attack": attack, "members": members, "non_members": others,
            "tpr_at_fpr": [{"fpr": a, "tpr": t, "interval": [t_lo, t_hi]}
                           for a, (t, t_lo, t_hi) in tprs.items()],
            "lowest_supported_fpr": lowest, "warnings": warnings_}
        if 0.01 in tprs:            # the field's headline figure, under its usual name
            extra["tpr_at_1pct_fpr"] = tprs[0.01][0]
            extra["tpr_at_1pct_interval"] = list(tprs[0.01][1:])
        return Measurement(
            "roc_auc", auc, (float(lo[0]), float(hi[0])), bool(succeeded), summary,
            {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist()}, extra)

    def scores(self, observed: np.ndarray, data: MembershipData, rng: np.random.Generator
               ) -> np.ndarray:
        """The attack's membership score per candidate (higher: more likely a member), from the
        target's logit confidences; `run` draws from `rng` here first, so the same seed gives the
        scores a run used (benchmarks compare them with other attacks on shared resamples)."""
        attack = self.param("attack")
        if attack == "threshold":
            return observed if observed.ndim == 1 else observed[0]
        if attack == "reference":
            return self._likelihood_ratio(observed, data, rng)
        raise ProbeError(f"unknown membership attack {attack!r}")

    def _label_only(self, model: ModelAdapter, data: MembershipData,
                    rng: np.random.Generator) -> np.ndarray:
        """Per record: -1 when the model answers it wrongly, else the share of its noisy copies
        the model still answers with the record's label (higher: more likely a member)."""
        x, y = np.asarray(data.x, dtype=float), np.asarray(data.y)
        k, sd = int(self.param("noise_queries")), x.std(axis=0)
        right = np.asarray(model.predict(x)) == y
        kept = np.full(len(y), -1.0)
        batch = max(1, 20_000 // k)                  # records whose copies go in one call
        for start in range(0, len(y), batch):
            rows = np.flatnonzero(right[start:start + batch]) + start
            if not len(rows):
                continue
            original = np.repeat(x[rows], k, axis=0)
            noisy = original + rng.normal(size=original.shape) * sd * float(self.param("noise"))
            if data.project is not None:
                noisy = data.project(noisy, original)
            answers = np.asarray(model.predict(noisy)).reshape(len(rows), k)
            kept[rows] = np.mean(answers == y[rows, None], axis=1)
        return kept

    def _likelihood_ratio(self, observed: np.ndarray, data: MembershipData,
                          rng: np.random.Generator) -> np.ndarray:
        fit: Fit | None = self.param("fit")
        if fit is None:
            raise ProbeError("the reference attack needs `fit`: how to train a model of the "
                             "target's kind")
        where: np.ndarray | None
        if data.population_x is None:
            px, py, where = data.x, data.y, np.arange(len(data.y))
        elif data.population_y is None:
            raise ProbeError("population_x needs population_y: the labels of the attacker's data")
        else:
            px, py, where = data.population_x, data.population_y, data.population_index
        k = int(self.param("references"))
        seeds = rng.integers(0, 2**31 - 1, size=k)
        augment = self.param("augment") if observed.ndim == 2 else None
        masks, conf = _reference_confidences(fit, px, py, data.x, data.y, k, seeds,
                                             int(self.param("jobs")), augment)
        # Which reference models saw each candidate; none, for candidates outside the pool.
        seen = masks[:, where] if where is not None else np.zeros((k, len(data.y)), dtype=bool)
        if augment is None:
            return _ratio(observed, conf, seen)
        # LiRA with augmentations: a Gaussian per record and view, the log ratios added
        return np.asarray(sum(_ratio(observed[v], conf[:, v, :], seen)
                              for v in range(len(observed))), dtype=float)


def _sample(data: MembershipData, member: np.ndarray, most: int, rng: np.random.Generator
            ) -> tuple[MembershipData, np.ndarray]:
    """At most `most` candidates: non-members first (the low false positive rates need them), up
    to half, members for the rest."""
    outs, ins = np.flatnonzero(~member), np.flatnonzero(member)
    n_out = min(len(outs), max(most // 2, most - len(ins)))
    n_in = min(len(ins), most - n_out)
    keep = np.sort(np.concatenate([rng.choice(outs, n_out, replace=False),
                                   rng.choice(ins, n_in, replace=False)]))
    return (MembershipData(data.x[keep], data.y[keep], member[keep], project=data.project),
            member[keep])


def _fit_warnings(proba: np.ndarray, observed: np.ndarray, y: np.ndarray, member: np.ndarray,
                  rng: np.random.Generator) -> list[str]:
    """A warning when the declared members are fitted no better than the non-members: the loss
    threshold's AUC (the chance that a member's confidence in its label beats a non-member's)
    with its bootstrap interval reaching down to 0.5, and an accuracy on members not clearly
    above the non-members' (a model certain about nearly every row ties on confidence)."""
    hits = proba.argmax(axis=1) == y
    a, b = float(hits[member].mean()), float(hits[~member].mean())
    spread = np.sqrt(a * (1 - a) / member.sum() + b * (1 - b) / (~member).sum())
    if a - b - 1.96 * spread > 0:
        return []     # members fitted better by accuracy (certain models tie on confidence)
    boot = _bootstrap(observed, member, rng, 100, ())
    auc, low = float(roc_auc_score(member, observed)), float(np.percentile(boot[:, 0], 2.5))
    if low > 0.5:
        return []     # members fitted better by confidence
    return [f"the model fits the declared training rows no better than the held-out ones "
            f"(accuracy {a:.3f} against {b:.3f}; a member's "
            f"confidence in its label beats a non-member's with probability {auc:.3f}, 95 % "
            f"interval from {low:.3f}). Either it generalises well, or these are not the rows it "
            "was trained on: check that the probe block's seed and test_size reproduce the "
            "training split, else no membership figure here means anything"]


def _ratio(observed: np.ndarray, conf: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Log-likelihood ratio of `observed` under per-record Gaussians of in and out confidences."""
    eps = 1e-3
    ins, outs = np.where(masks, conf, np.nan), np.where(~masks, conf, np.nan)
    # Records no reference model saw (or all saw) give empty slices: filled in below.
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mu_out = np.nanmean(outs, axis=0)
        sd_out = np.nanstd(outs, axis=0) + eps
        if not masks.any():       # offline: no reference model saw any candidate
            return np.asarray((observed - mu_out) / sd_out, dtype=float)
        mu_in = np.nanmean(ins, axis=0)
        sd_in = np.nanstd(ins, axis=0) + eps
        fallback_in, fallback_out = np.nanmedian(sd_in), np.nanmedian(sd_out)
    sd_in = np.where(np.isfinite(sd_in), sd_in, fallback_in)
    sd_out = np.where(np.isfinite(sd_out), sd_out, fallback_out)
    mu_in = np.where(np.isfinite(mu_in), mu_in, np.nanmax(conf))
    mu_out = np.where(np.isfinite(mu_out), mu_out, np.nanmin(conf))
    return np.asarray(norm.logpdf(observed, mu_in, sd_in) - norm.logpdf(observed, mu_out, sd_out),
                      dtype=float)
