"""The probe foundation: budgets, seeding and evidence; adapters; scanner-gated loading; and
constraints that make every perturbed record realisable."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mlthreat.adapters import RoundedAdapter
from mlthreat.analysis import assess
from mlthreat.analysis.attribution import number
from mlthreat.catalog import Catalog
from mlthreat.errors import InputError, ModelError
from mlthreat.pipeline import load_pipeline
from mlthreat.probes import (
    Budget,
    BudgetExceeded,
    CallableAdapter,
    Constraints,
    Measurement,
    Meter,
    Probe,
    ProbeError,
    SklearnAdapter,
    load_model,
)
from mlthreat.probes.interface import Param
from tests.conftest import EXAMPLES
from tests.scanners.conftest import Payload


class QueryProbe(Probe):
    """Toy probe: queries `n` random rows and reports the mean top-class probability."""

    name = "toy"
    threat_ids = ("aml-evasion-blackbox",)
    parameters = {"n": Param(10, 1, 1000)}

    def _measure(self, model: Any, data: Any, rng: np.random.Generator, meter: Meter
                 ) -> Measurement:
        x = rng.normal(size=(self.param("n"), 2))
        p = model.predict_proba(x).max(axis=1)
        return Measurement("mean_confidence", float(p.mean()), None, True, f"{p.mean():.3f}")


def _logistic(x: Any) -> np.ndarray:
    z = np.asarray(x) @ np.array([1.0, -2.0])
    p = 1 / (1 + np.exp(-z))
    return np.column_stack([1 - p, p])


def test_probe_is_seeded_counted_and_budgeted() -> None:
    model = CallableAdapter(_logistic)
    first = QueryProbe(n=50).run(model, None, Budget(queries=100, seed=3))
    again = QueryProbe(n=50).run(model, None, Budget(queries=100, seed=3))
    other = QueryProbe(n=50).run(model, None, Budget(queries=100, seed=4))
    assert first.value == again.value and first.value != other.value
    assert first.queries == 50 and model.queries == 150
    assert first.budget == {"queries": 100, "seconds": None, "seed": 3}
    with pytest.raises(BudgetExceeded):
        QueryProbe(n=101).run(model, None, Budget(queries=100))


@pytest.mark.parametrize(("params", "message"), [
    ({"n": 0}, "n is 0, outside [1, 1000]"), ({"n": "ten"}, "n is 'ten', not a number"),
    ({"m": 3}, "m: unknown (declared: n)")])
def test_declared_parameters_are_checked_before_any_query(params: dict[str, Any],
                                                          message: str) -> None:
    model = CallableAdapter(_logistic)
    with pytest.raises(InputError, match=re.escape(message)):
        QueryProbe(**params).run(model, None, Budget())
    assert model.queries == 0


def test_probe_evidence_moves_a_finding(catalog: Catalog) -> None:
    pipeline = load_pipeline(EXAMPLES / "credit-scoring" / "pipeline.yaml", catalog)
    ev = QueryProbe(n=10).run(CallableAdapter(_logistic), None, Budget(), component="scoring_api")
    plain = {f.id: f for f in assess(pipeline, catalog).findings}
    after = assess(pipeline, catalog, number([ev]))
    measured = {f.id: f for f in after.findings}
    key = "aml-evasion-blackbox@scoring_api"
    assert measured[key].likelihood == min(5.0, plain[key].likelihood + 1)
    assert [e.source for e in after.evidence_of(measured[key])] == ["probe:toy"]


def test_sklearn_pipeline_adapter_with_categoricals() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"income": rng.normal(50, 10, 200), "home": rng.choice(["rent", "own"], 200)})
    y = (df["income"] > 50).astype(int)
    model = make_pipeline(ColumnTransformer([("n", StandardScaler(), ["income"]),
                                             ("c", OneHotEncoder(), ["home"])]),
                          LogisticRegression()).fit(df, y)
    adapter = SklearnAdapter(model)
    proba = adapter.predict_proba(df.head(5))
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1)
    assert list(adapter.predict(df.head(5))) == list(model.predict(df.head(5)))
    assert adapter.queries == 10 and adapter.capabilities.scores
    label_only = RoundedAdapter(adapter, None)
    with pytest.raises(ProbeError, match="labels only"):
        label_only.predict_proba(df.head(1))
    coarse = RoundedAdapter(adapter, 1).predict_proba(df.head(3))
    assert np.allclose(coarse, np.round(coarse, 1))
    with pytest.raises(ModelError, match="no predict"):
        SklearnAdapter(object())


def test_loading_is_gated_by_the_scanner(tmp_path: Path, marker: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    model = LogisticRegression().fit(np.eye(4), [0, 1, 0, 1])
    joblib.dump(model, tmp_path / "ok.joblib", compress=3)
    loaded = load_model(tmp_path / "ok.joblib")
    assert list(loaded.predict(np.eye(4))) == [0, 1, 0, 1]
    (tmp_path / "evil.joblib").write_bytes(pickle.dumps(Payload(marker)))
    for trust in (False, True):   # --trust never overrides a scanner finding
        with pytest.raises(InputError, match="never unpickles a flagged file"):
            load_model(tmp_path / "evil.joblib", trust=trust)
    assert not marker.exists()
    (tmp_path / "weights.bin").write_bytes(b"\x00\x01 opaque")   # no format the scanner reads
    with pytest.raises(InputError, match="--trust"):
        load_model(tmp_path / "weights.bin")
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x07")        # scanned, but not a model
    with pytest.raises(InputError, match="cannot load"):
        load_model(tmp_path / "broken.onnx")


CREDIT = Constraints(
    columns=("age", "income", "debt", "seniority", "home_rent", "home_own", "home_other"),
    immutable=frozenset({"age"}),
    bounds={"income": (0.0, None), "debt": (0.0, 1e6), "seniority": (0.0, 60.0)},
    integer=frozenset({"seniority"}),
    categorical=(("home_rent", "home_own", "home_other"),),
)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, (3, 7), elements=st.floats(-1e4, 1e4)),
       arrays(np.float64, (3, 7), elements=st.floats(-1e4, 1e4)))
def test_projection_is_always_realisable(candidate: np.ndarray, base: np.ndarray) -> None:
    original = CREDIT.project(base, base)          # a realisable starting record
    assert CREDIT.violations(original, original) == []
    projected = CREDIT.project(candidate, original)
    assert CREDIT.violations(projected, original) == []
    assert np.array_equal(projected[:, 0], original[:, 0])   # age untouched


def test_violations_name_each_broken_rule() -> None:
    original = np.array([[40, 100, 0, 3, 1, 0, 0]], dtype=float)
    bad = np.array([[41, -5, 0, 2.5, 1, 1, 0]], dtype=float)
    assert CREDIT.violations(bad, original) == [
        "age changed but is immutable", "income outside [0.0, None]",
        "seniority is not an integer", "one-hot group home_rent/home_own/home_other is not "
        "exactly one category"]


def test_constraint_mistakes_are_input_errors() -> None:
    with pytest.raises(InputError, match="unknown feature"):
        Constraints(columns=("a",), immutable=frozenset({"b"}))
    with pytest.raises(InputError, match="lower 2 is above upper 1"):
        Constraints(columns=("a",), bounds={"a": (2, 1)})


def test_parquet_and_csv_give_the_same_table(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    from mlthreat.probes.data import load_table
    csv = EXAMPLES / "credit-scoring" / "data" / "credit_data.csv"
    parquet = tmp_path / "credit.parquet"
    pd.read_csv(csv).to_parquet(parquet)
    a = load_table(csv, "Status", "bad", ("rownames",))
    b = load_table(parquet, "Status", "bad", ("rownames",))
    assert np.array_equal(a.y, b.y) and np.allclose(a.x, b.x, equal_nan=True)
    assert a.y.sum() == 1254            # applicants with Status "bad" in credit_data (by count)
    with pytest.raises(InputError, match="never \\(or always\\) equals 'nobody'"):
        load_table(parquet, "Status", "nobody", ("rownames",))
