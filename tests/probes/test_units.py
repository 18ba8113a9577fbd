"""One unit for distances (issue #17, part 2): from a spec, every evasion distance is in standard
deviations of the data's own columns, whatever scaling the model applies. Known answers: the
closed-form smallest change of a linear model, and a decision stump's threshold, on a model fed
raw amounts (spread in the thousands)."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from mlthreat.catalog import load_catalog
from mlthreat.pipeline import load_pipeline
from mlthreat.probes.execute import attempt
from mlthreat.probes.target import BUDGETS, Target, prepare

SPEC = """\
name: raw units
components:
  - id: api
    kind: serving
    exposure: public
    artifacts: {{model: [{model}]}}
    probe: {{data: data.csv, target: label, positive: 'yes', test_size: 100, seed: 0}}
"""


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"amount": rng.normal(5000, 2000, 500),
                          "years": rng.normal(10, 3, 500),
                          "kind": rng.choice(["a", "b"], 500)})
    score = (frame["amount"] - 5000) / 2000 + (frame["years"] - 10) / 3
    frame["label"] = np.where(score + rng.normal(0, 0.3, 500) > 0, "yes", "no")
    return frame


def _target(tmp_path: Path, final: object, name: str) -> Target:
    frame = _frame()
    frame.to_csv(tmp_path / "data.csv", index=False)
    raw = ColumnTransformer([("num", "passthrough", ["amount", "years"]),
                             ("cat", OneHotEncoder(), ["kind"])])    # no scaling: raw units
    model = make_pipeline(raw, final).fit(frame.drop(columns="label"), frame["label"] == "yes")
    joblib.dump(model, tmp_path / name)
    (tmp_path / "pipeline.yaml").write_text(SPEC.format(model=name))
    pipeline = load_pipeline(tmp_path / "pipeline.yaml", load_catalog())
    return prepare(pipeline, pipeline.spec.components[0], trust=True)


def test_the_target_works_in_standard_deviations(tmp_path: Path) -> None:
    t = _target(tmp_path, LogisticRegression(max_iter=5000), "lr.joblib")
    frame = _frame()
    assert t.unit is not None
    assert t.unit[:2] == pytest.approx([frame["amount"].std(ddof=0), frame["years"].std(ddof=0)])
    assert t.unit[2:].tolist() == [1.0, 1.0]                     # one-hot columns move by 1
    assert t.x[:, :2].std(axis=0) == pytest.approx([1.0, 1.0])
    # records come back in the data's units
    assert t.constraints.records(t.x[:1])[0]["amount"] == pytest.approx(frame["amount"][0])


def test_whitebox_distances_match_the_closed_form_in_deviations(tmp_path: Path) -> None:
    """For a linear model f(x) = w.x + b fed raw amounts, the smallest L2 change in standard
    deviations that flips a point is |f(x)| / ||w * sd|| over the numeric columns (the category
    is a whole step of 1 and costs more here). In raw units it would be |f(x)| / ||w||, thousands
    of times smaller, since w is per euro."""
    t = _target(tmp_path, LogisticRegression(max_iter=5000), "lr.joblib")
    lr = joblib.load(tmp_path / "lr.joblib")[-1]
    w, b = lr.coef_[0], lr.intercept_[0]
    ev = attempt("evasion-whitebox", t, BUDGETS["quick"], 1, seed=0)
    assert not isinstance(ev, str), ev
    x = t.x[t.test][:BUDGETS["quick"]["points"]] * t.unit          # the points, in raw units
    closed = np.abs(x @ w + b) / np.linalg.norm(w[:2] * t.unit[:2])
    assert ev.extra["median_minimal_perturbation"] == pytest.approx(np.median(closed), rel=0.05)


def test_exact_evasion_of_a_stump_is_its_threshold_in_deviations(tmp_path: Path) -> None:
    """A forest of one stump on raw amounts: the smallest change of a point below the split is
    (threshold - value) / sd of that column, solved where the trees split (raw units) and
    measured in standard deviations."""
    stump = RandomForestClassifier(1, max_depth=1, bootstrap=False, max_features=None,
                                   random_state=0)
    t = _target(tmp_path, stump, "stump.joblib")
    tree = joblib.load(tmp_path / "stump.joblib")[-1].estimators_[0].tree_
    j, threshold = int(tree.feature[0]), float(tree.threshold[0])
    ev = attempt("evasion-exact", t, {**BUDGETS["quick"], "exact_points": 5}, 1, seed=0)
    assert not isinstance(ev, str), ev
    points = t.x[t.test][:5] * t.unit         # no goal: the first five held-out rows
    expected = np.abs(threshold - points[:, j]) / t.unit[j]
    # just past the split (float32 thresholds): equal to a few parts in a million
    assert ev.extra["minimal"] == pytest.approx(expected.tolist(), rel=1e-4)
    # in raw units these would be thousands of times larger: the unit is the column's SD
    assert t.unit[j] > 1000


def test_a_change_reads_as_the_columns_it_changes_in_the_datas_units(tmp_path: Path) -> None:
    # one record moved by +1 standard deviation of amount and switched from one kind to the
    # other: the change names exactly those two columns, amount in euros, kind as a category
    t = _target(tmp_path, LogisticRegression(max_iter=5000), "lr.joblib")
    frame = _frame()
    x = t.x[0].copy()
    x_adv = x.copy()
    x_adv[0] += 1.0
    x_adv[2:] = x[2:][::-1]
    kinds = {"a": "b", "b": "a"}
    assert t.constraints.changed(x, x_adv) == {
        "amount": [pytest.approx(frame["amount"][0]),
                   pytest.approx(frame["amount"][0] + frame["amount"].std(ddof=0))],
        "kind": [frame["kind"][0], kinds[frame["kind"][0]]]}
    assert t.constraints.changed(x, x) == {}
