"""The benign model corpus: real saves of the models the field makes, built from installed libraries.

Every scikit-learn estimator that scikit-learn's own test suite instantiates, plus every one that
builds without arguments (408 in all), fitted on toy data and saved 6 ways (pickle protocols 2-5,
joblib plain and zlib-compressed); PyTorch state dicts, whole modules, optimizers, schedulers,
sparse, quantized and complex tensors, devices and dtypes, and legacy (non-zip) saves of many tensor
sizes; XGBoost, LightGBM and (if installed) CatBoost models pickled and in their own formats; numpy
.npy/.npz, pandas frames, scipy sparse matrices; ONNX (skl2onnx); Keras 3 (torch backend: .keras,
legacy .h5, weights, to_json configs, unzipped archives); safetensors. A scanner must report nothing
at medium or above on any of it.

Run: `.venv/bin/python benchmarks/model_corpus.py OUT_DIR` (the modelfile benchmark calls it).
Libraries that are not installed (torch, xgboost, lightgbm, catboost, skl2onnx, keras) are skipped.
"""

from __future__ import annotations

import json
import pickle
import struct
import sys
import warnings
from pathlib import Path

import joblib
import numpy as np


def _save_ways(folder: Path, stem: str, obj: object) -> int:
    for protocol in (2, 3, 4, 5):
        (folder / f"{stem}.p{protocol}.pkl").write_bytes(pickle.dumps(obj, protocol=protocol))
    joblib.dump(obj, folder / f"{stem}.joblib")
    joblib.dump(obj, folder / f"{stem}.z.joblib", compress=3)
    return 6


def _estimators() -> list[object]:
    """scikit-learn's own test instances, plus every estimator that builds with no arguments."""
    from sklearn.utils import all_estimators
    from sklearn.utils._test_common.instance_generator import _tested_estimators
    out = list(_tested_estimators())
    for _, cls in all_estimators():
        try:
            out.append(cls())
        except Exception:  # noqa: BLE001 - meta-estimators need an estimator
            continue
    return out


def sklearn_models(folder: Path) -> tuple[int, list[str]]:
    """Every estimator of scikit-learn's test-instance generator, fitted and saved 6 ways."""
    from sklearn.datasets import make_classification
    folder.mkdir(parents=True, exist_ok=True)
    x, y = make_classification(80, 6, n_informative=4, random_state=0)
    x_pos = np.abs(x)
    texts = ["the cat sat", "a dog ran", "the dog sat", "a cat ran"] * 20
    dicts = [{"a": float(i % 3), "b": "x" if i % 2 else "y"} for i in range(80)]
    kernel = x_pos @ x_pos.T
    targets = [y, y + 1, np.column_stack([y, 1 - y]), None]
    files, failed = 0, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for est in _estimators():
            name = type(est).__name__
            fitted = None
            for data in (x_pos, x, kernel, x_pos[:, 0], texts, dicts,
                         [[str(i % 4), "k"] for i in range(80)]):
                for target in targets:
                    try:
                        fitted = est.fit(data) if target is None else est.fit(data, target)
                        break
                    except Exception:  # noqa: BLE001 - try the next kind of toy data
                        continue
                if fitted is not None:
                    break
            if fitted is None:
                failed.append(name)
                continue
            try:
                files += _save_ways(folder, f"sk-{name}-{files}", fitted)
            except Exception:  # noqa: BLE001 - some estimators hold unpicklable state
                failed.append(name)
    return files, failed


class TinyNet:   # replaced by a torch module when torch is present
    pass


def torch_models(folder: Path) -> int:
    try:
        import torch
    except ImportError:
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3), torch.nn.BatchNorm1d(4), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.LSTM(4, 8), torch.nn.Embedding(50, 4),
                              torch.nn.LayerNorm(4), torch.nn.Dropout(0.1),
                              torch.nn.TransformerEncoderLayer(8, 2, 16))
    opt = torch.optim.Adam(net.parameters())
    opt2 = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, 3)
    out = {
        "state": net.state_dict(),
        "module": net,
        "checkpoint": {"model": net.state_dict(), "optimizer": opt.state_dict(),
                       "sgd": opt2.state_dict(), "scheduler": sched.state_dict(), "epoch": 3,
                       "device": torch.device("cpu"), "dtype": torch.float16,
                       "dtypes": [torch.bfloat16, torch.int8, torch.complex64, torch.bool]},
        "sparse": {"coo": torch.eye(5).to_sparse(), "csr": torch.eye(4).to_sparse_csr(),
                   "csc": torch.eye(4).to_sparse_csc()},
        "kinds": {"complex": torch.randn(3, dtype=torch.complex64), "half": torch.randn(4).half(),
                  "bf16": torch.randn(4).bfloat16(), "int": torch.arange(10),
                  "bool": torch.ones(3, dtype=torch.bool), "param": torch.nn.Parameter(torch.ones(2)),
                  "view": torch.arange(20)[5:15], "quant": torch.quantize_per_tensor(
                      torch.randn(4), 0.1, 0, torch.qint8)},
        "numpy_in": {"arr": np.arange(5.0), "rng": np.random.RandomState(0)},
    }
    n = 0
    for name, obj in out.items():
        torch.save(obj, folder / f"torch-{name}.pt")
        torch.save(obj, folder / f"torch-{name}.legacy.pt", _use_new_zipfile_serialization=False)
        n += 2
    rng = np.random.RandomState(1)
    for i in range(120):
        size = int(rng.choice([1, 2, 3, 7, 16, 33, 100, 255, 256, 1000, 4097]))
        dtype = [torch.float32, torch.float64, torch.int64, torch.uint8, torch.float16][i % 5]
        t = (torch.randn(size) * 100).to(dtype)
        torch.save({"w": t, "b": t[: max(1, size // 2)]}, folder / f"torch-legacy-{i}.pt",
                   _use_new_zipfile_serialization=False)
        n += 1
    scripted = torch.jit.script(torch.nn.Linear(3, 2))
    torch.jit.save(scripted, str(folder / "torch-scripted.pt"))
    return n + 1


def booster_models(folder: Path) -> int:
    from sklearn.datasets import make_classification
    x, y = make_classification(200, 5, random_state=0)
    n = 0
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import xgboost
        m = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(x, y)
        n += _save_ways(folder, "xgb-classifier", m)
        n += _save_ways(folder, "xgb-booster", m.get_booster())
        m.save_model(folder / "xgb.json")
        m.save_model(folder / "xgb.ubj")
        n += 2
    except ImportError:
        pass
    try:
        import catboost
        m3 = catboost.CatBoostClassifier(iterations=5, verbose=False, allow_writing_files=False).fit(x, y)
        n += _save_ways(folder, "catboost-classifier", m3)
        m3.save_model(str(folder / "catboost.cbm"))
        m3.save_model(str(folder / "catboost.json"), format="json")
        n += 2
    except ImportError:
        pass
    try:
        import lightgbm
        m2 = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(x, y)
        n += _save_ways(folder, "lgbm-classifier", m2)
        n += _save_ways(folder, "lgbm-booster", m2.booster_)
        m2.booster_.save_model(str(folder / "lgbm.txt"))
        n += 1
    except ImportError:
        pass
    return n


def array_files(folder: Path) -> int:
    import pandas as pd
    import scipy.sparse as sp
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    n = 0
    for i, arr in enumerate([rng.randn(10, 3), np.arange(7, dtype=np.int16),
                             rng.randn(3).astype(np.float16), np.array([b"ab", b"c"]),
                             np.array(["u", "vw"]), np.zeros((2, 2), dtype=[("a", "<i4"),
                                                                           ("b", "<f8")])]):
        np.save(folder / f"np-{i}.npy", arr)
        n += 1
    np.savez(folder / "np-many.npz", a=rng.randn(4), b=np.arange(3))
    np.savez_compressed(folder / "np-many-z.npz", a=rng.randn(4), b=np.arange(3))
    sp.save_npz(folder / "sparse.npz", sp.random(20, 20, 0.1, format="csr", random_state=0))
    n += 3
    frame = pd.DataFrame({"x": rng.randn(6), "s": list("abcabc"),
                          "c": pd.Categorical(list("xyzxyz")),
                          "t": pd.date_range("2024-01-01", periods=6),
                          "d": pd.to_timedelta(range(6), unit="s"),
                          "i": pd.array([1, None, 3, 4, 5, 6], dtype="Int64")})
    objs = {"frame": frame, "series": frame["x"], "index": pd.Index(list("abc")),
            "multi": pd.MultiIndex.from_product([[1, 2], ["a", "b"]]),
            "csr": sp.random(10, 10, 0.2, format="csr", random_state=0),
            "coo": sp.random(10, 10, 0.2, format="coo", random_state=0).tocoo(),
            "csr_array": sp.csr_array(np.eye(3)),
            "rng": np.random.default_rng(0), "legacy_rng": np.random.RandomState(0),
            "scalars": [np.float32(1), np.int64(2), np.datetime64("2024-01-01"), np.bool_(True)],
            "vocab": {f"w{i}": i for i in range(20_000)}}
    for name, obj in objs.items():
        n += _save_ways(folder, f"data-{name}", obj)
    return n


def onnx_models(folder: Path) -> int:
    try:
        from skl2onnx import to_onnx
    except ImportError:
        return 0
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    x, y = make_classification(100, 4, random_state=0)
    x = x.astype(np.float32)
    for name, model in {"lr": LogisticRegression(), "rf": RandomForestClassifier(5)}.items():
        (folder / f"onnx-{name}.onnx").write_bytes(to_onnx(model.fit(x, y), x[:1]).SerializeToString())
    return 2


def keras_models(folder: Path) -> int:
    """Keras 3 (torch backend) saves: .keras, legacy .h5, weights, to_json configs, unzipped."""
    import importlib.util
    import os
    import zipfile
    if importlib.util.find_spec("keras") is None:
        return 0
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    folder.mkdir(parents=True, exist_ok=True)
    inp = keras.Input((8,))
    x = keras.layers.Dense(4, activation="relu",
                           kernel_regularizer=keras.regularizers.L2(0.01))(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Dropout(0.2)(x)
    functional = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(x))
    functional.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    functional.fit(np.random.RandomState(0).rand(16, 8), np.arange(16) % 2, epochs=1, verbose=0)
    models = {
        "functional": functional,
        "sequence": keras.Sequential([keras.Input((10,)), keras.layers.Embedding(50, 4),
                                      keras.layers.LSTM(3), keras.layers.Dense(2, activation="softmax")]),
        "conv": keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3),
                                  keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                                  keras.layers.Dense(1)]),
        "normalized": keras.Sequential([keras.Input((5, 4)), keras.layers.LayerNormalization(),
                                        keras.layers.GlobalAveragePooling1D(),
                                        keras.layers.Dense(3)]),
    }
    n = 0
    for name, model in models.items():
        model.save(folder / f"keras-{name}.keras")
        model.save(folder / f"keras-{name}.h5")
        model.save_weights(folder / f"keras-{name}.weights.h5")
        (folder / f"keras-{name}-config.json").write_text(model.to_json())
        with zipfile.ZipFile(folder / f"keras-{name}.keras") as z:
            z.extractall(folder / f"keras-{name}-unzipped")
        n += 5
    return n


def safetensors_files(folder: Path) -> int:
    rng = np.random.RandomState(0)
    tensors = {"w": rng.randn(4, 3).astype("<f4"), "b": np.arange(3, dtype="<i8")}
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    body, offset = b"", 0
    for key, arr in tensors.items():
        raw = arr.tobytes()
        header[key] = {"dtype": {"<f4": "F32", "<i8": "I64"}[arr.dtype.str], "shape": list(arr.shape),
                       "data_offsets": [offset, offset + len(raw)]}
        body += raw
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + body)
    return 1


def build(folder: Path, progress: bool = True) -> dict[str, object]:
    """Write the whole corpus under `folder`; returns counts and what was skipped."""
    folder.mkdir(parents=True, exist_ok=True)
    counts: dict[str, object] = {}
    files, failed = sklearn_models(folder / "sklearn")
    counts["sklearn"] = files
    counts["sklearn_not_fitted"] = failed
    counts["torch"] = torch_models(folder / "torch")
    counts["boosters"] = booster_models(folder / "boosters")
    counts["arrays"] = array_files(folder / "arrays")
    other = folder / "other"
    other.mkdir(exist_ok=True)
    counts["onnx"] = onnx_models(other)
    counts["keras"] = keras_models(folder / "keras")
    counts["safetensors"] = safetensors_files(other)
    if progress:
        print(json.dumps(counts), file=sys.stderr)
    return counts


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: model_corpus.py OUT_DIR")
    build(Path(sys.argv[1]))

