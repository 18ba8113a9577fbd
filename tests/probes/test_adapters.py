"""Adapters: every framework's model answers the same probabilities as the framework itself,
model files load only through the scanner gate, and records decode back to the data's units."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlthreat.adapters import adapter_for
from mlthreat.adapters.boosters import LightGBMAdapter, XGBoostAdapter
from mlthreat.adapters.http import HttpAdapter
from mlthreat.adapters.loading import load_model
from mlthreat.adapters.onnx import OnnxAdapter
from mlthreat.adapters.sklearn import SklearnAdapter
from mlthreat.errors import InputError, ModelError
from mlthreat.probes import ProbeError
from mlthreat.probes.constraints import from_transform
from mlthreat.probes.data import tabular_encoder
from tests.conftest import reply_json


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    return x, (x[:, 0] + x[:, 1] > 0).astype(int)


def test_xgboost_booster_file_loads_and_answers_as_xgboost(tmp_path: Path) -> None:
    xgboost = pytest.importorskip("xgboost")
    x, y = data()
    model = xgboost.XGBClassifier(n_estimators=20, n_jobs=1).fit(x, y)
    path = tmp_path / "model.json"
    model.save_model(path)
    loaded = load_model(path)
    adapter = adapter_for(loaded)
    assert isinstance(adapter, XGBoostAdapter)
    assert np.allclose(adapter.predict_proba(x[:20]), model.predict_proba(x[:20]), atol=1e-6)
    assert adapter.queries == 20


def test_lightgbm_text_model_loads_and_answers_as_lightgbm(tmp_path: Path) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    x, y = data()
    model = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(x, y)
    path = tmp_path / "model.txt"
    model.booster_.save_model(path)
    adapter = adapter_for(load_model(path))
    assert isinstance(adapter, LightGBMAdapter)
    assert np.allclose(adapter.predict_proba(x[:20]), model.predict_proba(x[:20]), atol=1e-9)


def test_onnx_model_from_skl2onnx_answers_as_scikit_learn(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType
    x, y = data()
    model = LogisticRegression().fit(x, y)
    onx = skl2onnx.convert_sklearn(model, initial_types=[("x", FloatTensorType([None, 4]))],
                                   options={id(model): {"zipmap": False}})
    path = tmp_path / "model.onnx"
    path.write_bytes(onx.SerializeToString())
    adapter = adapter_for(load_model(path))
    assert isinstance(adapter, OnnxAdapter)
    assert np.allclose(adapter.predict_proba(x[:20]), model.predict_proba(x[:20]), atol=1e-5)


def test_torch_state_dict_becomes_the_mlp_it_came_from(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    path = tmp_path / "mlp.pt"
    torch.save(net.state_dict(), path)
    adapter = adapter_for(load_model(path))
    x = data()[0][:10]
    with torch.no_grad():
        expected = torch.softmax(net(torch.tensor(x, dtype=torch.float32)), 1).numpy()
    assert np.allclose(adapter.predict_proba(x), expected, atol=1e-6)
    assert adapter.capabilities.gradients


def test_mlp_gradient_matches_finite_differences() -> None:
    from sklearn.neural_network import MLPClassifier
    x, y = data()
    model = MLPClassifier((6,), activation="tanh", max_iter=2000, random_state=0).fit(x, y)
    adapter = SklearnAdapter(model)
    target = model.predict(x[:5])
    grad = adapter.gradient(x[:5], target)

    def margin(z: np.ndarray) -> np.ndarray:
        logp = np.log(model.predict_proba(z))
        return np.where(target == 1, logp[:, 1] - logp[:, 0], logp[:, 0] - logp[:, 1])
    h = 1e-6
    numeric = np.column_stack([(margin(x[:5] + h * e) - margin(x[:5] - h * e)) / (2 * h)
                               for e in np.eye(4)])
    assert np.allclose(grad, numeric, atol=1e-6)


class _Api(BaseHTTPRequestHandler):
    model: LogisticRegression
    seen: list[dict[str, object]] = []
    fail_once = [True]

    def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.fail_once[0]:          # one 503 first: the adapter must retry
            self.fail_once[0] = False
            self.send_response(503)
            self.end_headers()
            return
        self.seen.append(body)
        rows = np.array(body["rows"]) if "rows" in body else np.array(
            [[r["a"], r["b"]] for r in body["inputs"]["records"]])
        reply_json(self, {"data": {"scores": self.model.predict_proba(rows)[:, 1].tolist()}})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    _Api.model = LogisticRegression().fit(x, (x[:, 0] > x[:, 1]).astype(int))
    _Api.seen.clear()
    _Api.fail_once[0] = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/predict"
    server.shutdown()
    server.server_close()


def test_http_endpoint_batches_counts_and_reads_the_answer(api: str) -> None:
    def records(rows: np.ndarray) -> list[dict[str, float]]:
        return [{"a": float(r[0]), "b": float(r[1])} for r in rows]
    adapter = HttpAdapter(api, request={"inputs": {"records": "$rows"}},
                          response="data.scores", batch=16, encode=records)
    x = np.random.default_rng(1).normal(size=(40, 2))
    proba = adapter.predict_proba(x)
    assert np.allclose(proba, _Api.model.predict_proba(x), atol=1e-9)
    assert adapter.queries == 40
    assert [len(b["inputs"]["records"]) for b in _Api.seen] == [16, 16, 8]   # type: ignore[index]
    assert adapter.requests == 3                                             # the 503 retried


def test_http_endpoint_errors_are_clear(api: str) -> None:
    adapter = HttpAdapter(api, response="nowhere", retries=2)   # default body {"rows": [...]}
    with pytest.raises(ProbeError, match="nothing at 'nowhere'"):
        adapter.predict(np.zeros((2, 2)))
    closed = HttpAdapter("http://127.0.0.1:9/none", timeout=0.5)
    with pytest.raises(ProbeError, match="no answer"):
        closed.predict(np.zeros((1, 2)))


def test_constraints_follow_the_encoder_and_decode_to_records() -> None:
    frame = pd.DataFrame({"age": [20, 30, 40, 50], "income": [1.0, 2.0, 3.0, 4.0],
                          "home": ["rent", "owner", "rent", "parents"]})
    encoder = tabular_encoder(frame).fit(frame)
    c = from_transform(encoder.transform, frame, immutable=["home"], bounds={"income": (0, 3.5)},
                       integer=["age"])
    assert c.columns[:2] == ("age", "income")
    assert c.categorical == (("home=owner", "home=parents", "home=rent"),)
    assert c.immutable == {"home=owner", "home=parents", "home=rent"}
    x = encoder.transform(frame)
    # standardised age: raw = x * std + mean (population std of 20..50 = 11.18)
    assert c.scale is not None and c.scale[0] == pytest.approx(np.std([20, 30, 40, 50]))
    moved = x.copy()
    moved[:, 0] += 0.37          # not a whole year
    moved[:, 1] += 10.0          # far above the bound
    moved[:, 2:] = [0.2, 0.7, 0.1]
    projected = c.project(moved, x)
    assert c.violations(projected, x) == []
    records = c.records(projected)
    assert [r["home"] for r in records] == ["rent", "owner", "rent", "parents"]  # immutable
    assert all(r["income"] == pytest.approx(3.5) for r in records)
    assert all(float(r["age"]) == round(float(r["age"])) for r in records)


@pytest.mark.parametrize("step", ["log", "quantile", "bins"])
def test_constraints_refuse_a_preprocessing_they_cannot_invert(step: str) -> None:
    """The issue's case: the affine map was inferred from one +1 step at row 0, silently wrong
    for log, quantile or binning transforms. Each is refused, naming the column; the same
    pipeline with a standard scaler (affine) is accepted and decodes exactly."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import (
        FunctionTransformer,
        KBinsDiscretizer,
        QuantileTransformer,
        StandardScaler,
    )
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"income": rng.lognormal(10, 1, 300), "age": rng.integers(18, 80, 300)})
    bent = {"log": FunctionTransformer(np.log1p),
            "quantile": QuantileTransformer(n_quantiles=50),
            "bins": KBinsDiscretizer(5, encode="ordinal", quantile_method="averaged_inverted_cdf")
            }[step]
    enc = ColumnTransformer([("bent", bent, ["income"]), ("age", StandardScaler(), ["age"])])
    with pytest.raises(InputError, match="changes 'income' non-linearly"):
        from_transform(enc.fit(frame).transform, frame)
    fine = ColumnTransformer([("num", StandardScaler(), ["income", "age"])]).fit(frame)
    c = from_transform(fine.transform, frame)
    back = c.records(fine.transform(frame.iloc[:3]))
    assert [r["income"] for r in back] == pytest.approx(frame["income"][:3].tolist())


def test_a_preprocessing_that_refuses_small_changes_is_refused_not_assumed() -> None:
    def strict(frame: pd.DataFrame) -> np.ndarray:
        if (frame["income"] % 1).abs().max() > 0:
            raise ValueError("income must be whole euros")
        return frame.to_numpy(dtype=float)
    frame = pd.DataFrame({"income": [1000.0, 2000.0, 3000.0, 4000.0]})
    with pytest.raises(InputError, match="refused 'income' moved by .*ValueError: income must"):
        from_transform(strict, frame)


def test_integer_coded_and_many_valued_categories_are_groups() -> None:
    """The issue's cases: a category stored as whole numbers (region 1-9) that the model
    one-hot encodes was read as a number (and its +1 step as a linear map); a text category was
    cut at 200 values. Both are one-hot groups now, every value named, and a projected candidate
    holds exactly one of them."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"region": rng.integers(1, 10, 600),
                          "shop": [f"s{i}" for i in rng.integers(0, 300, 600)],
                          "amount": rng.normal(100, 20, 600)})
    enc = ColumnTransformer([("cat", OneHotEncoder(sparse_output=False), ["region", "shop"]),
                             ("num", StandardScaler(), ["amount"])]).fit(frame)
    c = from_transform(enc.transform, frame)
    region, shop = c.categorical
    assert sorted(region) == [f"region={v}" for v in range(1, 10)]
    assert len(shop) == frame["shop"].nunique() and all(n.startswith("shop=") for n in shop)
    assert not any(n.startswith("x") for n in c.columns)            # every column named
    x = enc.transform(frame.iloc[:5])
    moved = x + rng.normal(0, 0.4, x.shape)
    assert c.violations(c.project(moved, x), x) == []
    assert [r["region"] for r in c.records(x)] == [str(v) for v in frame["region"][:5]]


@pytest.mark.parametrize("thing", [object(), {"coef": [1.0, 2.0]}, [1, 2], "model"])
def test_an_object_that_is_no_model_is_bad_input(thing: object) -> None:
    with pytest.raises(ModelError, match="not a model: probes take scikit-learn") as info:
        adapter_for(thing)
    assert info.value.exit_code == 2


def _framework_models() -> dict[str, object]:
    """One small fitted model per registered framework, on the same data."""
    import lightgbm
    import onnxruntime
    import torch
    import xgboost
    from skl2onnx import to_onnx
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] > 0).astype(int)
    sk = LogisticRegression().fit(x, y)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    return {
        "sklearn": sk, "torch": net,
        "xgboost": xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(x, y), 5),
        "lightgbm": lightgbm.train({"objective": "binary", "verbose": -1},
                                   lightgbm.Dataset(x, y), 5),
        "onnx": onnxruntime.InferenceSession(to_onnx(sk, x[:1]).SerializeToString(),
                                             providers=["CPUExecutionProvider"]),
    }


def test_every_registered_adapter_conforms() -> None:
    """Each framework's model is taken by its own registry entry, answers one probability row
    per input row (summing to one), labels that are the argmax, and counts every row."""
    from mlthreat.adapters import ADAPTERS
    models = _framework_models()
    assert set(models) == set(ADAPTERS)
    x = np.random.default_rng(1).normal(size=(7, 3)).astype(np.float32)
    for name, model in models.items():
        kind = f"{type(model).__module__}.{type(model).__name__}"
        first = next(n for n, (matches, _) in ADAPTERS.items() if matches(kind, model))
        assert first == name, (name, first)
        adapter = adapter_for(model)
        proba = adapter.predict_proba(x)
        assert proba.shape == (7, 2) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5), name
        assert np.array_equal(adapter.predict(x), proba.argmax(axis=1)), name
        assert adapter.queries == 14, name
