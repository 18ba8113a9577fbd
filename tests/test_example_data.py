"""The credit data kept in the repository is the data set BASELINES.md and the issues describe."""

from __future__ import annotations

import hashlib

import pandas as pd

from tests.conftest import EXAMPLES

CSV = EXAMPLES / "credit-scoring" / "data" / "credit_data.csv"


def test_credit_data_is_modeldata_credit_data() -> None:
    digest = hashlib.sha256(CSV.read_bytes()).hexdigest()
    assert digest == "bdd4569d8cfa1a8f03fcd7315b6eab6925a5800024985bf10a7da77844e68df2"
    df = pd.read_csv(CSV)
    assert len(df) == 4454                                  # BASELINES.md: 4,454 applicants
    assert df["Status"].value_counts().to_dict() == {"good": 3200, "bad": 1254}
    assert df["Income"].isna().sum() == 381
    assert list(df.columns[1:]) == ["Status", "Seniority", "Home", "Time", "Age", "Marital",
                                    "Records", "Job", "Expenses", "Income", "Assets", "Debt",
                                    "Amount", "Price"]
