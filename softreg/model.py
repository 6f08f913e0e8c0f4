"""A trained model and what it needs to read raw features: no I/O (`softreg.rundir`
writes and reads it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import DTypeLike

from softreg import softmax
from softreg.columns import Columns
from softreg.kernels import Matrix


def standardize(X: Matrix, mean: np.ndarray, scale: np.ndarray, dtype: DTypeLike = np.float64) -> Matrix:
    """``(X - mean) / scale`` in ``dtype``; X (n_samples, n_features), mean and scale (n_features,).

    Sparse X is only scaled (``X / scale``) and stays CSR.
    """
    if sp.issparse(X):
        return (sp.csr_matrix(X) @ sp.diags(1.0 / scale)).astype(dtype).tocsr()
    out = np.subtract(X, mean, dtype=dtype)
    out /= scale.astype(dtype)
    return out


@dataclass
class Model:
    """A trained softmax regression with its standardizer.

    coef : ndarray of shape (n_classes, n_features), in standardized feature space
    intercept : ndarray of shape (n_classes,)
    classes : ndarray of shape (n_classes,), the labels in the model's order
    feature_mean, feature_scale : ndarray of shape (n_features,), the standardizer
    feature_names : list of str, length n_features
    """

    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    feature_names: list[str] = field(default_factory=list)
    label_name: str = "label"
    dtype: str = "float64"
    columns: Columns | None = None  # how raw input columns become the features (None: they are the features)
    header: bool | None = None  # whether the delimited training file had a header row (None: not text)
    id_name: str | None = None  # the training file's row-id column, copied to predictions

    @property
    def input_names(self) -> list[str]:
        """The raw input columns a file needs (before one-hot encoding)."""
        return self.columns.names if self.columns is not None else list(self.feature_names)

    def input_json(self) -> dict[str, Any]:
        """What model.json keeps of the input format (see `softreg.rundir.save_model`)."""
        return {
            "columns": None if self.columns is None else self.columns.to_json(),
            "header": self.header,
            "id": self.id_name,
        }

    @property
    def n_features(self) -> int:
        return int(self.coef.shape[1])

    @property
    def n_classes(self) -> int:
        return int(self.coef.shape[0])

    def standardize(self, X_raw: Matrix) -> Matrix:
        """Raw features (n_samples, n_features) in the space the coefficients live in."""
        return standardize(X_raw, self.feature_mean, self.feature_scale, self.coef.dtype)

    def predict_proba(self, X_raw: Matrix) -> np.ndarray:
        """Probabilities (n_samples, n_classes) for raw (unstandardized) features (n_samples, n_features)."""
        return self.predict_proba_standardized(self.standardize(X_raw))

    def predict_proba_standardized(self, X: Matrix) -> np.ndarray:
        """Probabilities (n_samples, n_classes) for features already standardized."""
        return softmax.predict_proba(self.coef, self.intercept, X)

    def predict(self, X_raw: Matrix) -> np.ndarray:
        """The most probable class label of each row, shape (n_samples,)."""
        logits = softmax.decision_function(self.coef, self.intercept, self.standardize(X_raw))
        return np.asarray(self.classes)[logits.argmax(axis=1)]
