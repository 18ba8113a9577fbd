"""Feature pipeline of the credit-scoring example (scanned by mlthreat, never run by it)."""

import pandas as pd

loans = pd.read_csv("data/credit_data.csv")
loans["debt"] = loans["debt"].fillna(0)
loans["default"] = (loans["status"] == "bad").astype(int)
loans.to_parquet("features/training.parquet")
