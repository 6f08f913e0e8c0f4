"""The losses and normalizers beyond cross-entropy and softmax, as plain functions.

`softreg.softmax` is the model of the spec: p = softmax(z), loss -log p_y. This page lets
the two pieces vary, to show on data why that choice is the right one:

    u = z / T                                          temperature T > 0 (``model.temperature``)
    p_k = f(u_k) / sum_j f(u_j)                        the normalizer (``model.normalizer``)
        softmax     f(u) = exp(u)
        taylor      f(u) = 1 + u + u^2 / 2             second-order Taylor expansion of exp
        spherical   f(u) = u^2 + eps                   de Brebisson & Vincent, arXiv 1511.05042
    L(p, y) = -log p_y                                 ``cross_entropy``
    L(p, y) = sum_k (p_k - [k = y])^2                  ``squared_error`` (the Brier score of the row)

Every normalizer is handled through ``log f`` and its derivative ``r = f'/f``::

    log p = log f(u) - logsumexp(log f(u))
    dp_k/du_j = p_k ([k = j] - p_j) r_j,   i.e.  dp/du = (diag(p) - p p^T) diag(r)

For softmax r = 1 and this is the softmax Jacobian diag(p) - p p^T. The gradient of a
loss with respect to the logits is therefore (g = dL/dp)::

    dL/dz = r * p * (g - <g, p>) / T                   a vector-Jacobian product, no K x K matrix
    cross_entropy:  dL/dz = r * (p - e_y) / T          (g = -e_y / p_y, simplified: no division by p_y)
    squared_error:  g = 2 (p - e_y)

Both ``log f`` and ``r`` are written with ``hypot`` so that no finite logit overflows:
taylor's f = ((u + 1)^2 + 1) / 2 >= 1/2, spherical's f = u^2 + eps >= eps > 0.

``sum`` (p = z / sum z) is refused: for real logits it is not a probability map (a negative
logit gives a negative "probability", and logits summing to zero divide by zero).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from softreg import softmax
from softreg.kernels import Batch, Matrix

LOSSES = ("cross_entropy", "squared_error")
NORMALIZERS = ("softmax", "taylor", "spherical")
# Keeps spherical's f = u^2 + eps positive where a logit is 0. Small against trained logits
# (several units), and large enough that log f stays smooth on the scale of SGD steps near
# u = 0 (its curvature there is ~1/eps).
SPHERICAL_EPSILON = 1e-2
SUM_REFUSED = (
    "sum is refused: p = z / sum(z) is not a probability map for real logits (z = (2, -1) gives a negative "
    "probability, p = (2, -1); z = (1, -1) makes it divide by zero); use softmax, taylor (1 + z + z^2/2 > 0) "
    "or spherical (z^2 + eps > 0)"
)
# Where training starts the intercepts: at z = 0 spherical's f'(z) = 2z vanishes for every
# class, so the zero start is a stationary point it never leaves; equal intercepts of 1 keep
# p uniform and give the softmax's first gradient (f'(1)/f(1) is the same for every class).
START_INTERCEPT = {"spherical": 1.0}
SPHERICAL_START = "its gradient vanishes at z = 0, so training starts its intercepts at 1 and must fit them"
DEFAULTS = {"loss": "cross_entropy", "normalizer": "softmax", "temperature": 1.0}


def check_options(loss: str, normalizer: str, temperature: float) -> None:
    """Raise ValueError naming the option that is not one of `LOSSES`, `NORMALIZERS`, or T > 0."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if normalizer == "sum":
        raise ValueError(f"normalizer {SUM_REFUSED}")
    if normalizer not in NORMALIZERS:
        raise ValueError(f"normalizer must be one of {', '.join(NORMALIZERS)}, got {normalizer!r}")
    if not (isinstance(temperature, int | float) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")


def is_fast_path(loss: str, normalizer: str, temperature: float) -> bool:
    """Whether the options are cross-entropy + softmax at T = 1: `softreg.softmax` and `softreg.kernels`."""
    return loss == "cross_entropy" and normalizer == "softmax" and temperature == 1.0


def log_f_and_ratio(scaled: np.ndarray, normalizer: str) -> tuple[np.ndarray, np.ndarray | None]:
    """``log f(u)`` and ``r = f'(u) / f(u)`` for the normalizer, both (n_samples, n_classes).

    ``r`` is None for softmax (r = 1). Finite for every finite ``u``.
    """
    if normalizer == "softmax":
        return scaled, None
    if normalizer == "taylor":  # f = ((u + 1)^2 + 1) / 2, f' = u + 1
        shifted = scaled + 1.0
        length = np.hypot(shifted, 1.0)
        return 2.0 * np.log(length) - math.log(2.0), 2.0 * (shifted / length) / length
    if normalizer == "spherical":  # f = u^2 + eps, f' = 2u
        length = np.hypot(scaled, math.sqrt(SPHERICAL_EPSILON))
        return 2.0 * np.log(length), 2.0 * (scaled / length) / length
    check_options("cross_entropy", normalizer, 1.0)  # refuses sum with its explanation
    raise AssertionError("unreachable")


def log_proba(logits: np.ndarray, normalizer: str = "softmax", temperature: float = 1.0) -> np.ndarray:
    """Row-wise ``log p`` (n_samples, n_classes) of the normalizer at ``u = logits / T``;
    finite for every finite input (a log-sum-exp over ``log f``, never ``log`` of ``p``)."""
    log_f, _ = log_f_and_ratio(logits / temperature, normalizer)
    return softmax.log_softmax(log_f)


def proba(logits: np.ndarray, normalizer: str = "softmax", temperature: float = 1.0) -> np.ndarray:
    """Row-wise probabilities (n_samples, n_classes) of the normalizer at ``u = logits / T``:
    in [0, 1], rows summing to one, no NaN or inf for finite input."""
    log_f, _ = log_f_and_ratio(logits / temperature, normalizer)
    return softmax.softmax(log_f)


def proba_vjp(
    logits: np.ndarray, upstream: np.ndarray, normalizer: str = "softmax", temperature: float = 1.0
) -> np.ndarray:
    """``(dp/dz)^T g`` row by row: ``r * p * (g - <g, p>) / T``, shape (n_samples, n_classes).

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)
    upstream : ndarray of shape (n_samples, n_classes), g = dL/dp
    """
    log_f, ratio = log_f_and_ratio(logits / temperature, normalizer)
    p = softmax.softmax(log_f)
    out = p * (upstream - np.einsum("ij,ij->i", upstream, p)[:, None])
    if ratio is not None:
        out *= ratio
    return out / temperature


def sample_losses(
    logits: np.ndarray,
    y: np.ndarray,
    loss: str = "cross_entropy",
    normalizer: str = "softmax",
    temperature: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample losses (n_samples,) and the probabilities (n_samples, n_classes) they come from.

    ``logits`` (n_samples, n_classes), ``y`` (n_samples,) class indices. The predicted class is
    ``argmax p``, which differs from ``argmax z`` for taylor and spherical (their f grows again
    for very negative logits).
    """
    check_options(loss, normalizer, temperature)
    rows = np.arange(len(y))
    log_p = log_proba(logits, normalizer, temperature)
    p = np.exp(log_p)
    if loss == "cross_entropy":
        return -log_p[rows, y], p
    residual = p.copy()
    residual[rows, y] -= 1.0
    return np.einsum("ij,ij->i", residual, residual), p


def logit_loss_gradient(
    logits: np.ndarray,
    y: np.ndarray,
    loss: str = "cross_entropy",
    normalizer: str = "softmax",
    temperature: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample losses and their gradients with respect to the logits.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)
    y : ndarray of shape (n_samples,), class indices

    Returns
    -------
    losses : ndarray of shape (n_samples,), L(p(z_i), y_i)
    grad_logits : ndarray of shape (n_samples, n_classes), dL_i/dz_i
    """
    check_options(loss, normalizer, temperature)
    rows = np.arange(len(y))
    log_f, ratio = log_f_and_ratio(logits / temperature, normalizer)
    log_p = softmax.log_softmax(log_f)
    p = np.exp(log_p)
    if loss == "cross_entropy":
        losses = -log_p[rows, y]
        grad = p  # r * (p - e_y)
        grad[rows, y] -= 1.0
    else:
        residual = p.copy()
        residual[rows, y] -= 1.0  # p - e_y
        losses = np.einsum("ij,ij->i", residual, residual)
        upstream = 2.0 * residual
        grad = p * (upstream - np.einsum("ij,ij->i", upstream, p)[:, None])
    if ratio is not None:
        grad *= ratio
    if temperature != 1.0:
        grad /= temperature
    return losses, grad


def weighted_loss_gradient(
    coef: np.ndarray,
    intercept: np.ndarray,
    X: Matrix,
    y: np.ndarray,
    row_weight: np.ndarray | float,
    loss: str = "cross_entropy",
    normalizer: str = "softmax",
    temperature: float = 1.0,
    center: np.ndarray | None = None,
) -> tuple[float, np.ndarray, np.ndarray]:
    """``sum_i c_i L_i`` and its gradient, for per-row coefficients ``c`` (no weight decay);
    over the rows ``X - center`` when ``center`` is given (sparse rows stored scaled, not centred).

    The building block of `loss_gradient` (c = 1/n or s/sum s), of a minibatch's estimate
    (c = relative weight / batch size) and of a full pass in chunks (c = relative weight / n).

    Parameters
    ----------
    coef : ndarray of shape (n_classes, n_features)
    intercept : ndarray of shape (n_classes,)
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    row_weight : float or ndarray of shape (n_samples,), c

    Returns
    -------
    weighted_loss : float
    grad_coef : ndarray of shape (n_classes, n_features), sum_i c_i dL_i/dW
    grad_intercept : ndarray of shape (n_classes,), sum_i c_i dL_i/db
    """
    shifted = softmax.centred_intercept(coef, intercept, center)
    logits = softmax.decision_function(coef, shifted, X)  # (n, K)
    losses, grad_logits = logit_loss_gradient(logits, y, loss, normalizer, temperature)
    if np.ndim(row_weight) == 0:
        weighted_loss = float(row_weight) * float(losses.sum())
        grad_logits *= row_weight
    else:
        weighted_loss = float(np.dot(row_weight, losses))
        grad_logits *= np.asarray(row_weight)[:, None]
    if isinstance(X, np.ndarray):
        grad_coef = grad_logits.T @ X  # (K, d)
    else:
        grad_coef = np.asarray((X.T @ grad_logits).T)
    grad_intercept = grad_logits.sum(axis=0)
    if center is not None:  # d/dW of the rows X - center: a rank-one correction
        grad_coef = grad_coef - np.outer(grad_intercept, center)
    return weighted_loss, grad_coef.astype(coef.dtype, copy=False), grad_intercept.astype(coef.dtype)


def loss_gradient(
    coef: np.ndarray,
    intercept: np.ndarray,
    X: Matrix,
    y: np.ndarray,
    weight_decay: float,
    loss: str = "cross_entropy",
    normalizer: str = "softmax",
    temperature: float = 1.0,
    sample_weight: np.ndarray | None = None,
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Objective ``J = mean L + weight_decay / 2 ||W||^2`` and its gradient, for any option.

    With the defaults this is exactly `softmax.loss_gradient` (it is called); the arguments
    and the returned tuple are the same as there, with the loss, normalizer and temperature
    of the module docstring. With sample weights ``s`` the data term is
    ``sum_i s_i L_i / sum_i s_i``.

    Returns
    -------
    data_loss : float, the (weighted) mean loss
    objective : float, ``data_loss + weight_decay / 2 * ||coef||^2``
    grad_coef : ndarray of shape (n_classes, n_features)
    grad_intercept : ndarray of shape (n_classes,)
    """
    check_options(loss, normalizer, temperature)
    if is_fast_path(loss, normalizer, temperature):
        return softmax.loss_gradient(coef, intercept, X, y, weight_decay, sample_weight)
    if sample_weight is None:
        row_weight: np.ndarray | float = 1.0 / X.shape[0]
    else:
        row_weight = np.asarray(sample_weight, dtype=np.float64) / float(np.sum(sample_weight))
    data_loss, grad_coef, grad_intercept = weighted_loss_gradient(
        coef, intercept, X, y, row_weight, loss, normalizer, temperature
    )
    grad_coef += softmax.penalty_gradient(coef, weight_decay)
    objective = data_loss + softmax.penalty(coef, weight_decay)
    return data_loss, objective, grad_coef, grad_intercept


def chunked_loss_gradient(
    coef: np.ndarray,
    intercept: np.ndarray,
    chunks: Iterable[Batch],
    n_samples: int,
    weight_decay: float,
    loss: str = "cross_entropy",
    normalizer: str = "softmax",
    temperature: float = 1.0,
    center: np.ndarray | None = None,
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """`loss_gradient` over all rows given as ``chunks`` ``(X, y, relative weight or None)``,
    ``n_samples`` rows in all (relative weights average 1 over all rows, as `ArrayData` keeps them).

    Returns the same tuple as `loss_gradient`.
    """
    data_loss = 0.0
    grad_coef, grad_intercept = np.zeros_like(coef), np.zeros_like(intercept)
    for X, y, weight in chunks:
        row_weight = 1.0 / n_samples if weight is None else weight / n_samples
        chunk_loss, chunk_coef, chunk_intercept = weighted_loss_gradient(
            coef, intercept, X, y, row_weight, loss, normalizer, temperature, center
        )
        data_loss += chunk_loss
        grad_coef += chunk_coef
        grad_intercept += chunk_intercept
    grad_coef += softmax.penalty_gradient(coef, weight_decay)
    objective = data_loss + softmax.penalty(coef, weight_decay)
    return data_loss, objective, grad_coef, grad_intercept
