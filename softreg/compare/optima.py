"""The exact optima of both objectives, and scikit-learn's LogisticRegression against them."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from softreg import softmax
from softreg.compare import logistic
from softreg.kernels import Matrix
from softreg.solve import Optimum, exact_optimum

if TYPE_CHECKING:
    pass


@dataclass
class Optima:
    """Both exact optima and their gaps.

    softmax : Optimum with coef (2, n_features); logistic : Optimum with coef (1, n_features)
    softmax_proba, logistic_proba : ndarray of shape (n_samples,), probability of class B
    """

    softmax: Optimum
    logistic: Optimum
    softmax_proba: np.ndarray
    logistic_proba: np.ndarray

    def gaps(self) -> dict[str, Any]:
        mapped = _flat(*logistic.from_softmax(self.softmax.coef, self.softmax.intercept))
        reference = _flat(self.logistic.coef, self.logistic.intercept)
        return {
            "max_abs_prob_diff": float(np.abs(self.softmax_proba - self.logistic_proba).max()),
            "coef_rel_diff": float(np.linalg.norm(mapped - reference) / max(np.linalg.norm(reference), 1e-300)),
            "sum_norm": float(np.linalg.norm(self.softmax.coef.sum(axis=0))),
            "objective": {"softmax": self.softmax.objective, "logistic": self.logistic.objective},
            "grad_norm": {"softmax": self.softmax.grad_norm, "logistic": self.logistic.grad_norm},
            "iterations": {"softmax": self.softmax.iterations, "logistic": self.logistic.iterations},
        }

def _flat(coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """``(w, b)`` as one vector: the coefficients and the intercept are compared together."""
    return np.concatenate([np.ravel(coef), np.ravel(intercept)])

def exact_optima(X: Matrix, y: np.ndarray, weight_decay: float, fit_intercept: bool = True) -> Optima:
    """Softmax optimum (`softreg.solve`) with decay lambda, logistic optimum with lambda / 2."""
    softmax_optimum = exact_optimum(X, y, 2, weight_decay, fit_intercept)
    logistic_optimum = logistic.exact_optimum(X, y, logistic.logistic_weight_decay(weight_decay), fit_intercept)
    return Optima(
        softmax=softmax_optimum,
        logistic=logistic_optimum,
        softmax_proba=softmax.predict_proba(softmax_optimum.coef, softmax_optimum.intercept, X)[:, 1],
        logistic_proba=logistic.predict_proba(logistic_optimum.coef, logistic_optimum.intercept, X),
    )

def sklearn_gap(
    X: Matrix,
    y: np.ndarray,
    C: float,
    fit_intercept: bool,
    reference_proba: np.ndarray,
    reference_coef: np.ndarray,
) -> dict[str, float]:
    """Fit ``LogisticRegression(C)`` to tight tolerance; its gaps to the exact optimum.

    ``reference_proba`` (n_samples,) and ``reference_coef`` (1, n_features) are the
    exact optimum's probability of class B and ``w_2 - w_1``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    estimator = LogisticRegression(C=C, tol=1e-10, max_iter=10000, fit_intercept=fit_intercept)
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the gap below says how far it got
        estimator.fit(X, y)
    coef_gap = np.linalg.norm(estimator.coef_ - reference_coef) / max(np.linalg.norm(reference_coef), 1e-300)
    return {
        "C": float(C),
        "max_abs_prob_diff": float(np.abs(estimator.predict_proba(X)[:, 1] - reference_proba).max()),
        "coef_rel_diff": float(coef_gap),
        "iterations": int(np.max(estimator.n_iter_)),
    }

def sklearn_gaps(
    X: Matrix, y: np.ndarray, weight_decay: float, fit_intercept: bool, optima: Optima
) -> dict[str, dict[str, float]]:
    """``sklearn`` (C = 2/(n lambda)) and ``sklearn_naive`` (C = 1/(n lambda)) against the softmax optimum."""
    reference_coef, _ = logistic.from_softmax(optima.softmax.coef, optima.softmax.intercept)
    n_samples = X.shape[0]
    choices = {
        "sklearn": logistic.sklearn_C(n_samples, weight_decay),
        "sklearn_naive": 1.0 / (n_samples * weight_decay),
    }
    return {
        name: sklearn_gap(X, y, C, fit_intercept, optima.softmax_proba, reference_coef) for name, C in choices.items()
    }
