"""Predictions of a fitted softmax model, as a scikit-learn mixin (as its `LinearClassifierMixin`):
logits, probabilities through the trained normalizer and temperature, labels and accuracy."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from softreg import losses, softmax
from softreg.estimator.fitting import encode
from softreg.model import raw_logits


class SoftmaxPredictions(ClassifierMixin):
    """`decision_function`, `predict_proba`, `predict_log_proba`, `predict` and `score` of a
    fitted `SoftmaxRegression` (its ``coef_``, ``intercept_``, ``classes_``, standardizer,
    ``normalizer`` and ``temperature``)."""

    coef_: np.ndarray  # (n_classes, n_features)
    intercept_: np.ndarray  # (n_classes,)
    classes_: np.ndarray  # (n_classes,)
    normalizer: str
    temperature: float

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits ``X W^T + b``, shape (n_samples, n_classes); with two classes the logit
        difference ``z_2 - z_1`` of shape (n_samples,), positive for ``classes_[1]`` (the
        logistic-regression form, as scikit-learn's binary classifiers give it)."""
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0] if len(self.classes_) == 2 else logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), rows summing to one (the
        normalizer at the temperature the model was trained with)."""
        if self._is_softmax():
            return softmax.softmax(self._logits(X))
        return losses.proba(self._logits(X), self.normalizer, self.temperature)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log-probabilities from a log-softmax (finite where ``log(predict_proba)`` underflows)."""
        if self._is_softmax():
            return softmax.log_softmax(self._logits(X))
        return losses.log_proba(self._logits(X), self.normalizer, self.temperature)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row, shape (n_samples,)."""
        if not self._is_softmax():  # taylor and spherical: argmax p is not argmax z
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        logits = self._logits(X)
        return self.classes_[logits.argmax(axis=1)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy on ``(X, y)``: the ``accuracy`` that ``softreg evaluate`` computes
        (`softreg.evaluate.model_metrics`); with ``sample_weight`` or labels outside ``classes_``,
        scikit-learn's (the same number for the same rows)."""
        if sample_weight is not None:
            return float(super().score(X, y, sample_weight=sample_weight))
        from softreg.estimator.saving import estimator_model
        from softreg.evaluate import model_metrics

        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float64, np.float32], reset=False)
        model = estimator_model(self)
        try:
            y_index = encode(self.classes_, np.asarray(y), "y")
        except (ValueError, TypeError):  # labels the model never saw: wrong, as scikit-learn counts them
            return float(super().score(X, y))
        return float(model_metrics(model, [(X, y_index)]).metrics(model.classes)["accuracy"])

    def _is_softmax(self) -> bool:
        return self.normalizer == "softmax" and self.temperature == 1.0

    def _logits(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float64, np.float32], reset=False)
        mean, scale = getattr(self, "feature_mean_", None), getattr(self, "feature_scale_", None)
        if mean is not None and scale is not None:  # a run's standardizer (sparse rows centred exactly)
            return raw_logits(self.coef_, self.intercept_, mean, scale, X)
        if not sp.issparse(X):
            X = X.astype(self.coef_.dtype, copy=False)
        return softmax.decision_function(self.coef_, self.intercept_, X)
