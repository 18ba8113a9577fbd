"""A data set the probes were never tuned on (issue #17, part 7): breast-cancer diagnoses
(scikit-learn's bundled copy, 569 rows, 30 numbers in their own units), a gradient-boosted model
fed the raw numbers, run through `assess` at the quick budget as a user would. Only sanity
properties are checked, the ones a sceptical reviewer checks: no success bar a constant copy
passes, no rate without an interval of positive width, TPRs only at false positive rates the
non-members support, distances in standard deviations, and every reported record realisable."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from mlthreat.assessor import Assessor

SPEC = """\
name: diagnosis
components:
  - id: clinic
    kind: client
    exposure: public
  - id: triage
    kind: serving
    exposure: public
    artifacts: {model: [model.joblib]}
    probe:
      data: cells.csv
      target: diagnosis
      positive: malignant
      test_size: 170
      seed: 3
      goal: benign
      constraints:
        bounds: {BOUNDS}
flows:
  - {from: clinic, to: triage}
"""


@pytest.fixture(scope="module")
def assessed(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, pd.DataFrame]:
    root = tmp_path_factory.mktemp("holdout")
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["diagnosis"] = np.where(frame.pop("target") == 0, "malignant", "benign")
    frame.to_csv(root / "cells.csv", index=False)
    x, y = frame.drop(columns="diagnosis"), frame["diagnosis"] == "malignant"
    tr, _ = train_test_split(np.arange(len(y)), test_size=170, random_state=3, stratify=y)
    model = make_pipeline(ColumnTransformer([("raw", "passthrough", list(x.columns))]),
                          HistGradientBoostingClassifier(max_iter=60, random_state=0))
    joblib.dump(model.fit(x.iloc[tr], y.iloc[tr]), root / "model.joblib")
    bounds = "{" + ", ".join(f"{c}: [0, null]" for c in x.columns) + "}"
    (root / "pipeline.yaml").write_text(SPEC.replace("{BOUNDS}", bounds))
    assessment = Assessor(probes=True, budget="quick", trust=True,
                          only=("membership", "extraction", "poisoning", "evasion")
                          ).assess(root / "pipeline.yaml")
    return assessment, frame


def test_every_measured_rate_has_an_interval_of_positive_width(assessed: tuple) -> None:
    assessment, _ = assessed
    probes = [e for e in assessment.evidence if e.source.startswith("probe:")]
    assert {e.kind for e in probes} >= {"membership", "extraction", "poisoning",
                                        "evasion-whitebox", "evasion-blackbox"} - {
        "evasion-whitebox"}                                 # boosted trees have no gradients
    for e in probes:
        assert e.interval is not None, e.summary
        assert e.interval[1] - e.interval[0] > 0, e.summary
        assert e.interval[0] <= e.value <= e.interval[1], e.summary


def test_no_bar_a_constant_copy_passes(assessed: tuple) -> None:
    assessment, _ = assessed
    (ext,) = [e for e in assessment.evidence if e.kind == "extraction"]
    constant = ext.extra["constant_copy_fidelity"]
    assert "always giving the majority answer agrees on" in ext.summary
    if ext.confirmed:
        assert ext.extra["kappa"] >= 0.8 and ext.interval[0] > constant


def test_rates_at_supported_false_positive_rates_only(assessed: tuple) -> None:
    assessment, _ = assessed
    (mem,) = [e for e in assessment.evidence if e.kind == "membership"]
    assert mem.extra["non_members"] == 170
    for entry in mem.extra["tpr_at_fpr"]:
        assert entry["fpr"] * 170 >= 10 - 1e-9
    assert "1% and 0.1% FPR not reported" in mem.summary
    assert mem.extra["warnings"] == []                  # the declared split is the real one


def test_records_are_realisable_and_distances_in_deviations(assessed: tuple) -> None:
    assessment, frame = assessed
    (black,) = [e for e in assessment.evidence if e.kind == "evasion-blackbox"]
    for example in black.extra.get("examples", []):
        for column, (_before, after) in example["changed"].items():
            assert after >= 0, (column, after)           # the declared bounds
    (door,) = [e for e in assessment.evidence if e.title == "backdoor"]
    # the trigger is in the record's units: mean + 4 SD of each column, within its bounds
    names, shown = door.parameters["names"], door.parameters["shown"]
    for name, value in zip(names, shown, strict=True):
        col = frame[name]
        assert value == pytest.approx(col.mean() + 4 * col.std(ddof=0), rel=1e-6)
    # distances in standard deviations: the raw columns span 0.001 to 4,254 units, yet the
    # smallest flipping changes are a few deviations, not thousands of units; the exact optimum
    # bounds every black-box change from below
    (exact,) = [e for e in assessment.evidence if e.kind == "evasion-exact"]
    assert 0 < exact.extra["median_minimal_perturbation"] < 20
    found = np.array(black.extra["minimal"])
    assert np.isfinite(found).any() and found[np.isfinite(found)].max() < 50
