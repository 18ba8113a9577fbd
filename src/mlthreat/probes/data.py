"""Tabular data for probes: a CSV or Parquet file with a target column, encoded the usual way
(median imputation and standardisation for numbers, most-frequent imputation and one-hot for
categories) with scikit-learn's ColumnTransformer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlthreat.errors import InputError


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame          # features as read
    y: np.ndarray                # 1 for the positive class, else 0
    x: np.ndarray                # encoded features
    encoder: ColumnTransformer
    values: tuple[str, ...] = ()  # the target's values, as text


def load_table(path: Path, target: str, positive: str | int,
               drop: tuple[str, ...] = ()) -> Table:
    """Read `path`, split off `target` (1 where it equals `positive`) and encode the rest."""
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except ImportError as exc:
        raise InputError(f"{path}: reading Parquet needs pyarrow: pip install "
                         "'mlthreat[parquet]'") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the data ({exc})") from exc
    if target not in frame.columns:
        raise InputError(f"{path}: no column {target!r}; columns: {', '.join(frame.columns)}")
    frame = frame.drop(columns=[c for c in drop if c in frame.columns])
    raw = frame.pop(target)
    y = (raw == positive).astype(int).to_numpy()
    if y.min() == y.max():
        raise InputError(f"{path}: {target!r} never (or always) equals {positive!r}")
    encoder = tabular_encoder(frame)
    return Table(frame, y, np.asarray(encoder.fit_transform(frame), dtype=float), encoder,
                 tuple(sorted(raw.dropna().astype(str).unique())))


def tabular_encoder(frame: pd.DataFrame) -> ColumnTransformer:
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in frame.columns if c not in numeric]
    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
         categorical)])
