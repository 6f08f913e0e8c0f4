"""How each feature is scaled: numeric features are standardized, one-hot indicators only
centred (they keep their 0/1 step), as scikit-learn's ``ColumnTransformer(StandardScaler on
numbers, OneHotEncoder on text)`` leaves them. The model file records it per feature
(``model.json``'s ``feature_scaling``); the standardizer's arrays are what predictions apply,
so a run trained before indicators were left unscaled predicts as it was trained."""

from __future__ import annotations

import numpy as np

from softreg.prepare.columns import Columns

STANDARDIZED = "standardized"  # (x - mean) / scale
CENTRED = "centred"  # x - mean: a one-hot indicator keeps its 0/1 step
AS_IS = "as is"  # data.standardize: false


def indicator_mask(columns: Columns | None, n_features: int) -> np.ndarray:
    """Which of the ``n_features`` features are one-hot indicators, a bool array (n_features,)."""
    if columns is None:
        return np.zeros(n_features, dtype=bool)
    return np.array([column.categories is not None for column in columns.columns for _ in column.feature_names],
                    dtype=bool)


def unscaled_indicators(scale: np.ndarray, columns: Columns | None) -> np.ndarray:
    """``scale`` (n_features,) with 1 for every one-hot indicator of ``columns``."""
    return np.where(indicator_mask(columns, len(scale)), 1.0, scale)


def feature_scaling(columns: Columns | None, n_features: int, standardize: bool) -> list[str]:
    """How each of the ``n_features`` features was scaled: `STANDARDIZED`, `CENTRED` or `AS_IS`."""
    if not standardize:
        return [AS_IS] * n_features
    return [CENTRED if indicator else STANDARDIZED for indicator in indicator_mask(columns, n_features)]
