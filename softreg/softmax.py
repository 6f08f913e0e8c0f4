"""The model: softmax, log-softmax, loss and gradient of L2-regularized softmax regression.

For features ``x`` in R^d, classes 0..K-1, ``coef`` W of shape (K, d) and ``intercept``
b of shape (K,)::

    z = W x + b                      logits, shape (K,)
    log p_k = z_k - logsumexp(z)     log-softmax, with the max subtracted first
    J(W, b) = (1/n) sum_i -log p_{y_i}(x_i) + (weight_decay / 2) ||W||_F^2
    dJ/dZ = (P - Y) / n,   dJ/dW = (P - Y)^T X / n + weight_decay * W,   dJ/db = sum_i (P - Y)_i / n

The intercept is not decayed. Everything here is a plain function of explicit arrays:
no state, no I/O (the training loop's in-place versions write into a `Workspace` of
buffers that the caller owns and passes in). ``X`` may be a dense ndarray or a scipy
sparse matrix (CSR); the dtype of ``X`` (float64 or float32) is the dtype of the computation.
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import scipy.sparse as sp

Matrix: TypeAlias = np.ndarray | sp.csr_matrix  # X: dense, or CSR


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax, stable for any finite input.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)

    Returns
    -------
    log_proba : ndarray of shape (n_samples, n_classes)
        ``z - max z - log(sum(exp(z - max z)))``; finite whenever ``logits`` is.
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, ``exp(z - max z) / sum(exp(z - max z))``.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes)
        Rows sum to one; no NaN or inf for finite input.
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def decision_function(coef: np.ndarray, intercept: np.ndarray, X: Matrix) -> np.ndarray:
    """Logits ``X @ coef.T + intercept``.

    Parameters
    ----------
    coef : ndarray of shape (n_classes, n_features)
    intercept : ndarray of shape (n_classes,)
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)

    Returns
    -------
    logits : ndarray of shape (n_samples, n_classes)
    """
    logits = np.asarray(X @ coef.T)  # (n, K)
    logits += intercept
    return logits


def predict_proba(coef: np.ndarray, intercept: np.ndarray, X: Matrix) -> np.ndarray:
    """Class probabilities, shape (n_samples, n_classes)."""
    return softmax(decision_function(coef, intercept, X))


def cross_entropy(coef: np.ndarray, intercept: np.ndarray, X: Matrix, y: np.ndarray) -> float:
    """Mean cross-entropy ``(1/n) sum_i -log p_{y_i}(x_i)`` (no weight decay).

    Parameters
    ----------
    coef : ndarray of shape (n_classes, n_features)
    intercept : ndarray of shape (n_classes,)
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        Class indices in ``0..n_classes-1``.
    """
    log_proba = log_softmax(decision_function(coef, intercept, X))
    return float(-log_proba[np.arange(len(y)), y].mean())


def loss_gradient(
    coef: np.ndarray,
    intercept: np.ndarray,
    X: Matrix,
    y: np.ndarray,
    weight_decay: float,
    sample_weight: np.ndarray | None = None,
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Objective J and its gradient, computing the logits once.

    With sample weights ``s`` the data term is their weighted mean,
    ``sum_i s_i (-log p_{y_i}(x_i)) / sum_i s_i``, so weight 2 counts a row twice, and
    ``dJ/dZ = diag(s) (P - Y) / sum_i s_i``.

    Parameters
    ----------
    coef : ndarray of shape (n_classes, n_features)
    intercept : ndarray of shape (n_classes,)
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        Class indices in ``0..n_classes-1``.
    weight_decay : float
        lambda >= 0; the penalty is ``lambda / 2 * ||coef||_F^2``.
    sample_weight : ndarray of shape (n_samples,) or None
        Non-negative weights with a positive sum; None weighs every row 1.

    Returns
    -------
    data_loss : float
        Mean (weighted) cross-entropy (without the penalty).
    objective : float
        ``data_loss + weight_decay / 2 * ||coef||^2``.
    grad_coef : ndarray of shape (n_classes, n_features)
    grad_intercept : ndarray of shape (n_classes,)
    """
    n_samples = X.shape[0]
    rows = np.arange(n_samples)
    logits = decision_function(coef, intercept, X)  # (n, K)
    logits -= logits.max(axis=1, keepdims=True)
    proba = np.exp(logits)
    norm = proba.sum(axis=1)  # (n,)
    losses = np.log(norm) - logits[rows, y]  # (n,) per-sample cross-entropy
    proba /= norm[:, None]
    proba[rows, y] -= 1.0  # now P - Y
    if sample_weight is None:
        data_loss = float(losses.sum()) / n_samples
        proba /= n_samples
    else:
        total = float(np.sum(sample_weight))
        data_loss = float(np.dot(sample_weight, losses)) / total
        proba *= (sample_weight / total)[:, None]
    grad_coef = _transpose_product(proba, X)
    grad_coef += penalty_gradient(coef, weight_decay)
    grad_intercept = proba.sum(axis=0)
    objective = data_loss + penalty(coef, weight_decay)
    return data_loss, objective, grad_coef, grad_intercept


def penalty(coef: np.ndarray, weight_decay: float) -> float:
    """The weight-decay term of J: ``weight_decay / 2 * ||coef||_F^2`` (the intercept is not decayed).

    Parameters
    ----------
    coef : ndarray of shape (n_classes, n_features)
    weight_decay : float
    """
    return 0.5 * weight_decay * float(np.vdot(coef, coef))


def penalty_gradient(coef: np.ndarray, weight_decay: float, out: np.ndarray | None = None) -> np.ndarray:
    """The gradient of `penalty`: ``weight_decay * coef``, shape (n_classes, n_features), in
    ``out`` when given (same shape), else in a new array of ``coef``'s dtype."""
    return np.multiply(weight_decay, coef, out=out)


def centred_intercept(coef: np.ndarray, intercept: np.ndarray, center: np.ndarray | None) -> np.ndarray:
    """The intercept that makes ``X @ coef.T + result`` the logits of ``X - center``.

    Sparse rows are stored scaled but not centred (centring would fill them); the centring
    folds into the intercept: ``(X - center) @ coef.T + intercept = X @ coef.T + (intercept - coef @ center)``.

    Parameters
    ----------
    coef : ndarray of shape (n_classes, n_features)
    intercept : ndarray of shape (n_classes,)
    center : ndarray of shape (n_features,) or None
        None: the rows are used as they are, and ``intercept`` itself is returned.
    """
    return intercept if center is None else intercept - coef @ center


def _transpose_product(residual: np.ndarray, X: Matrix) -> np.ndarray:
    """``residual.T @ X`` of shape (K, d), efficient for dense and CSR ``X``."""
    if isinstance(X, np.ndarray):
        return residual.T @ X
    return np.asarray((X.T @ residual).T)


def gradient_norm(grad_coef: np.ndarray, grad_intercept: np.ndarray) -> float:
    """Euclidean norm of the full gradient (coef and intercept together)."""
    return float(np.sqrt(np.vdot(grad_coef, grad_coef) + np.vdot(grad_intercept, grad_intercept)))
