"""Weekly retraining job of the credit-scoring example (scanned by mlthreat, never run by it)."""

import joblib
import pandas as pd
from sklearn.linear_model import LogisticRegression

FEATURES = ["income", "debt", "age", "seniority"]

frame = pd.read_parquet("features/training.parquet")
model = LogisticRegression(max_iter=1000).fit(frame[FEATURES], frame["default"])
joblib.dump(model, "models/credit_model.joblib")
