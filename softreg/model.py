"""A trained model and what it needs to read raw features: no I/O (`softreg.rundir`
writes and reads it)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import DTypeLike

from softreg import losses, softmax
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
    loss, normalizer, temperature : the output the model was trained with (`softreg.losses`);
        predictions use its normalizer at its temperature
    """

    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    feature_names: list[str] = field(default_factory=list)
    label_name: str = "label"
    dtype: str = "float64"
    loss: str = "cross_entropy"
    normalizer: str = "softmax"
    temperature: float = 1.0

    @property
    def is_softmax(self) -> bool:
        """Whether predictions are the plain softmax of the logits (softmax at T = 1)."""
        return self.normalizer == "softmax" and self.temperature == 1.0

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
        if self.is_softmax:
            return softmax.predict_proba(self.coef, self.intercept, X)
        logits = softmax.decision_function(self.coef, self.intercept, X)
        return losses.proba(logits, self.normalizer, self.temperature)

    def predict(self, X_raw: Matrix) -> np.ndarray:
        """The most probable class label of each row, shape (n_samples,)."""
        X = self.standardize(X_raw)
        if not self.is_softmax:  # taylor and spherical: argmax p is not argmax z
            return np.asarray(self.classes)[self.predict_proba_standardized(X).argmax(axis=1)]
        logits = softmax.decision_function(self.coef, self.intercept, X)
        return np.asarray(self.classes)[logits.argmax(axis=1)]
