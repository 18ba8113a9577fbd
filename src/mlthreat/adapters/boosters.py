"""Native gradient-boosting boosters, XGBoost and LightGBM, each imported only when used."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlthreat.adapters.interface import ModelAdapter, two_columns


class XGBoostAdapter(ModelAdapter):
    """A native xgboost.Booster (binary:logistic or multi:softprob)."""

    def __init__(self, booster: Any) -> None:
        super().__init__()
        import xgboost
        self.xgboost = xgboost
        self.booster = booster

    def _proba(self, x: Any) -> Any:
        return two_columns(self.booster.predict(self.xgboost.DMatrix(np.asarray(x))))


class LightGBMAdapter(ModelAdapter):
    """A native lightgbm.Booster (binary or multiclass objective)."""

    def __init__(self, booster: Any) -> None:
        super().__init__()
        self.booster = booster

    def _proba(self, x: Any) -> Any:
        return two_columns(self.booster.predict(np.asarray(x, dtype=float)))
