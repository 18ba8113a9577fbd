"""Rebuild the three models of the credit-scoring example from data/credit_data.csv:

- credit_model.joblib: the public scoring API's model, a scikit-learn Pipeline (encoding +
  HistGradientBoosting);
- risk_forest.joblib: the partner pre-screen's model, a Pipeline (encoding + a random forest of
  fully grown trees);
- mobile_mlp.pt: the mobile app's on-device pre-check, a PyTorch MLP's state dict over the
  encoded rows (models/mlp.py trains it).

All train on the same stratified split (1,000 held-out rows, seed 0) that the spec's probe
blocks declare. Run from the repository root: `.venv/bin/python
examples/credit-scoring/models/make_models.py`.
"""

import sys
from pathlib import Path

import joblib
import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from mlthreat.probes.data import load_table, tabular_encoder

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from mlp import fit  # noqa: E402 - the example's own training code, beside this script

table = load_table(HERE.parent / "data" / "credit_data.csv", "Status", "bad", drop=("rownames",))
tr, te = train_test_split(np.arange(len(table.y)), test_size=1000, stratify=table.y,
                          random_state=0)
frame, y = table.frame.iloc[tr], table.y[tr]
for name, final in (("credit_model", HistGradientBoostingClassifier(random_state=0)),
                    ("risk_forest", RandomForestClassifier(60, random_state=0, n_jobs=1))):
    model = make_pipeline(tabular_encoder(table.frame), final).fit(frame, y)
    joblib.dump(model, HERE / f"{name}.joblib", compress=3)
    print(name, "test accuracy", round(model.score(table.frame.iloc[te], table.y[te]), 3))
mlp = fit(table.x[tr], y, seed=0)
torch.save(mlp.net.state_dict(), HERE / "mobile_mlp.pt")
accuracy = np.mean(mlp.predict_proba(table.x[te]).argmax(1) == table.y[te])
print("mobile_mlp test accuracy", round(float(accuracy), 3))
