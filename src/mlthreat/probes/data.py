"""Tabular data for probes: a CSV or Parquet file with a target column, encoded the usual way
(median imputation and standardisation for numbers, most-frequent imputation and one-hot for
categories) with scikit-learn's ColumnTransformer.

What a model cannot take is refused here with the file, row and column: a file with a header
and no rows, a numeric column with a few cells that are not numbers (pandas would silently read
the whole column as text), infinite or overflowing numbers, a target that never takes the
positive value, and a file separated by something other than commas."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlthreat.errors import DataError, InputError

SEPARATORS = (";", "\t", "|")


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
    frame = read_frame(path, target)
    frame = frame.drop(columns=[c for c in drop if c in frame.columns])
    frame = _numbers_checked(frame, path, line_offset=2 if path.suffix != ".parquet" else 1)
    raw = frame.pop(target)
    y, values = binary_target(raw, positive, path, target)
    encoder = tabular_encoder(frame)
    return Table(frame, y, np.asarray(encoder.fit_transform(frame), dtype=float), encoder,
                 values)


def read_frame(path: Path, target: str) -> pd.DataFrame:
    """The CSV or Parquet file as a frame with at least one row and the `target` column."""
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except ImportError as exc:
        raise InputError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow "
                         "(mlthreat's parquet extra)") from exc
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the data ({exc})") from exc
    if target not in frame.columns:
        raise DataError(f"{path}: no column {target!r}; columns: {', '.join(map(str, frame.columns))}"
                        + _separator_hint(frame))
    if frame.empty:
        raise DataError(f"{path}: has a header but no rows; the probes need the rows the model "
                        "was trained and tested on")
    return frame


def binary_target(raw: pd.Series, positive: str | int, path: Path, target: str
                  ) -> tuple[np.ndarray, tuple[str, ...]]:
    """1 where the target equals `positive`, else 0; and the target's values, as text."""
    y = ((raw == positive) | (raw.astype(str) == str(positive))).astype(int).to_numpy()
    if y.min() == y.max():
        values = sorted(raw.dropna().astype(str).unique())[:10]
        raise DataError(f"{path}: {target!r} never (or always) equals {positive!r} (its values: "
                        f"{', '.join(values)}); set `positive:` to one of them, in quotes if it "
                        "reads as yes/no/true/false (YAML turns those into true and false)")
    return y, tuple(sorted(raw.dropna().astype(str).unique()))


def tabular_encoder(frame: pd.DataFrame) -> ColumnTransformer:
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in frame.columns if c not in numeric]
    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
         categorical)])


def _separator_hint(frame: pd.DataFrame) -> str:
    if len(frame.columns) != 1:
        return ""
    name = str(frame.columns[0])
    sep = next((s for s in SEPARATORS if s in name), None)
    if sep is None:
        return ""
    shown = "a tab" if sep == "\t" else repr(sep)
    return (f". The file looks separated by {shown}, not commas: save it as comma-separated "
            "CSV (or as Parquet)")


def _numbers_checked(frame: pd.DataFrame, path: Path, line_offset: int) -> pd.DataFrame:
    """Columns of numbers with a few cells that are not (under 10 % of them) are a mistake in
    those cells, not a column of categories; infinite and overflowing numbers are refused too.
    `line_offset` turns a row index into the file's line (the header is line 1)."""
    for col in frame.columns:
        values = frame[col]
        if not pd.api.types.is_numeric_dtype(values):
            present = values.dropna()
            as_numbers = pd.to_numeric(present, errors="coerce")
            bad = as_numbers.isna()
            if len(present) and 0 < bad.sum() <= 0.1 * len(present):
                where = present.index[bad.to_numpy()][0]
                _refuse(path, where, line_offset, col, f"{present[where]!r} is not a number "
                        f"(the column's other {int((~bad).sum())} values are)",
                        "correct the cell, or leave it empty for a missing value")
            continue
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        wild = ~np.isfinite(numbers) & ~np.isnan(numbers) | (np.abs(np.nan_to_num(numbers)) > 1e300)
        if wild.any():
            _refuse(path, frame.index[int(np.argmax(wild))], line_offset, col,
                    f"{float(numbers[int(np.argmax(wild))])} is infinite or too large",
                    "correct the cell, or leave it empty for a missing value")
    return frame


def _refuse(path: Path, index: object, line_offset: int, column: object, what: str,
            todo: str) -> None:
    row = int(index) + 1 if isinstance(index, int | np.integer) else index   # 1-based data row
    line = f":{int(index) + line_offset}" if isinstance(index, int | np.integer) else ""
    raise DataError(f"{path}{line}: row {row}, column {column!r}: {what}; {todo}")
