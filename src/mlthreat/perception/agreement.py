"""Agreement statistics on binary ratings, computed by the field's libraries and shared by the
team view (people rating threats) and research mode (coders applying codes).

A rating matrix has one row per rater and one column per item, 1 or 0, NaN where the rater did
not rate the item. Undefined statistics (no shared items, no variation) are None, not numbers.
"""

from __future__ import annotations

import math
import warnings

import numpy as np


def cohen(x: np.ndarray, y: np.ndarray) -> tuple[float | None, int]:
    """Cohen's kappa (scikit-learn) of two raters over the items both rated, and their number."""
    from sklearn.metrics import cohen_kappa_score
    both = ~np.isnan(x) & ~np.isnan(y)
    if both.sum() == 0:
        return None, 0
    with warnings.catch_warnings():   # undefined kappa is handled below, not warned about
        warnings.simplefilter("ignore")
        value = float(cohen_kappa_score(x[both].astype(int), y[both].astype(int)))
    return (None if math.isnan(value) else round(value, 4)), int(both.sum())


def fleiss(matrix: np.ndarray) -> tuple[float | None, int]:
    """Fleiss' kappa (statsmodels) over the items every rater rated, and their number."""
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa
    complete = matrix[:, ~np.isnan(matrix).any(axis=0)]
    if complete.shape[1] == 0 or matrix.shape[0] < 2:
        return None, 0
    table, _ = aggregate_raters(complete.T.astype(int), n_cat=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(fleiss_kappa(table, method="fleiss"))
    return (None if math.isnan(value) else round(value, 4)), int(complete.shape[1])


def alpha(matrix: np.ndarray) -> float | None:
    """Krippendorff's alpha (krippendorff, nominal) over all items, missing ratings allowed."""
    import krippendorff
    if matrix.shape[0] < 2 or np.all(np.isnan(matrix)):
        return None
    values = matrix[~np.isnan(matrix)]
    if np.unique(values).size < 2:
        return None  # one value everywhere: alpha is undefined
    return round(float(krippendorff.alpha(reliability_data=matrix,
                                          level_of_measurement="nominal")), 4)
