"""How far from the optimum: a rigorous upper bound on J(W, b) - J*, from the weights alone.

J(W, b) = (1/n) sum_i s_i l(W x_i + b, y_i) + (lambda/2) ||W||_F^2, with l(z, y) = logsumexp(z) - z_y
and row weights s_i of mean 1. The intercept is not decayed, so J is lambda-strongly convex in W
but not in b, and a bound needs b optimal for W. `certify` therefore

1. computes the logits Z = X W^T (n, K) once and solves the K-dimensional strictly convex problem
   b*(W) = argmin_b J(W, b) by damped Newton steps on Z (`optimal_intercept`);
2. takes the dual point q_i = p_i(W, b*) (row i's softmax), which satisfies the intercept's
   constraint (1/n) sum_i s_i (q_i - e_{y_i}) = r = dJ/db = 0 up to rounding, and
3. bounds the duality gap of the L2-regularised problem. With H the entropy and
   A(q) = (1/n) sum_i s_i (q_i - e_{y_i}) x_i^T (K, d), any q_i in the simplex with r(q) = 0 gives
   D(q) = (1/n) sum_i s_i H(q_i) - ||A(q)||^2 / (2 lambda) <= J*, and for q = p(W, b)
   (Fenchel-Young equality) J(W, b) - D(q) = ||A + lambda W||^2 / (2 lambda) + r . b.

Rounding leaves r != 0, so q is moved to q' = (1 - theta) q + theta u, with the distribution
u = pi - r (1 - theta) / theta (pi the weighted class shares) and the smallest theta that keeps
u >= 0: then r(q') = 0 exactly, and D(q) - D(q') <= theta log K + (||A'||^2 - ||A||^2) / (2 lambda)
with ||A' - A|| = theta ||A(u) - A|| <= theta (sqrt(2) mean_i s_i ||x_i|| + ||A||). Classes absent
from the rows (pi_k = 0) get q_ik = 0 (b_k = -inf in the certificate; the model keeps its own
finite b_k, whose extra loss J(W, b) - J(W, b with b_k = -inf) is added). So

    J(W, b) - J* <= gap = ||dJ/dW(W, b*)||^2 / (2 lambda) + r . b* + theta log K
                          + (2 theta ||A|| U + theta^2 U^2) / (2 lambda) + extra,

which is the strong-convexity bound of phi(W) = min_b J(W, b) plus terms of the order of the
rounding. Without an intercept no constraint binds and gap = ||dJ/dW||^2 / (2 lambda) exactly.
The relative form is (J - J*) / J* <= gap / (J - gap) when J > gap. At lambda = 0 no bound exists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from softreg.kernels import Chunked
from softreg.softmax import penalty, penalty_gradient
from softreg.train.data import center_of, data_logits
from softreg.train.intercept import (
    HeldIntercept,
    InterceptProblem,
    newton_intercept,
    row_logsumexp,
)

CHUNK_ROWS = 8192
MAX_LOGITS = 2**25  # n_samples x n_classes the certificate keeps in memory (256 MiB of float64 logits)


@dataclass
class Certificate:
    """What `certify` finds for one W.

    intercept : ndarray of shape (n_classes,), b*(W) (the given b where it is not better)
    objective : J(W, intercept)
    data_loss : the weighted mean cross-entropy at (W, intercept)
    grad_coef : ndarray of shape (n_classes, n_features), dJ/dW at (W, intercept) without the decay
        term, or None when it was not computed at ``intercept`` (classes absent from the rows)
    grad_intercept : ndarray of shape (n_classes,), dJ/db there (or None likewise)
    gap : upper bound on J(W, intercept) - J*, or None at weight_decay = 0
    relative_gap : gap / (J - gap), an upper bound on (J - J*) / J* (inf when J <= gap), or None
    """

    intercept: np.ndarray
    objective: float
    data_loss: float
    grad_coef: np.ndarray | None
    grad_intercept: np.ndarray | None
    gap: float | None
    relative_gap: float | None


class HeldLogits(Protocol):
    """The logits Z = X W^T of every training row, held where the rows are, and what the certificate
    asks of them (`certify_held`): this process's (`_LocalLogits`) or the shards' (`softreg.engine`)."""

    @property
    def n_samples(self) -> int: ...

    @property
    def counts(self) -> np.ndarray:
        """(n_classes,): sum_i s_i per class."""
        ...

    @property
    def mean_norm(self) -> float:
        """mean_i s_i ||x_i - c||."""
        ...

    def intercept_problem(self, present: np.ndarray, shares: np.ndarray) -> InterceptProblem:
        """f over the classes ``present`` (a boolean mask), ``shares`` theirs."""
        ...

    def data_loss(self, b: np.ndarray) -> float:
        """(1/n) sum_i s_i [logsumexp(z_i + b) - z_{i,y_i} - b_{y_i}] (b_k = -inf drops class k)."""
        ...

    def gradient(self, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A (n_classes, n_features) and r (n_classes,) at b (`_gradient_at`)."""
        ...


@dataclass
class _LocalLogits:
    """`HeldLogits` of rows read here (`Chunked`), in chunks of ``rows``."""

    logits: np.ndarray
    labels: np.ndarray
    weight: np.ndarray | None
    mean_norm: float
    data: Chunked
    rows: int

    @property
    def n_samples(self) -> int:
        return len(self.labels)

    @property
    def counts(self) -> np.ndarray:
        return np.bincount(self.labels, weights=self.weight, minlength=self.logits.shape[1]).astype(np.float64)

    def intercept_problem(self, present: np.ndarray, shares: np.ndarray) -> InterceptProblem:
        return HeldIntercept(self.logits[:, present], self.weight, shares)

    def data_loss(self, b: np.ndarray) -> float:
        return _data_loss(self.logits, self.labels, self.weight, b)

    def gradient(self, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _gradient_at(self.logits, self.labels, self.weight, b, self.data, self.rows)


def _logits_and_rows(
    coef: np.ndarray, data: Chunked, rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, float]:
    """Z = X W^T (n, K) in float64, y (n,), the weights (n,) or None, and mean_i s_i ||x_i||."""
    coef64 = np.asarray(coef, dtype=np.float64)
    zeros = np.zeros(coef.shape[0])
    center = center_of(data)
    center64 = None if center is None else np.asarray(center, dtype=np.float64)
    logits, labels, weights, norm_sum = [], [], [], 0.0
    for X, y, weight in data.chunks(rows):
        logits.append(data_logits(coef64, zeros, X, center64))
        labels.append(np.asarray(y))
        weights.append(weight)
        norms = np.sqrt(_row_squares(X, center64))
        norm_sum += float(norms.sum() if weight is None else np.dot(weight, norms))
    present = [weight for weight in weights if weight is not None]
    weight_all = np.concatenate(present).astype(np.float64) if len(present) == len(weights) and present else None
    n_samples = max(1, data.n_samples)
    return np.concatenate(logits), np.concatenate(labels), weight_all, norm_sum / n_samples


def _row_squares(X: object, center: np.ndarray | None) -> np.ndarray:
    """||x_i - center||^2 per row, float64."""
    if isinstance(X, np.ndarray):
        X64 = X.astype(np.float64, copy=False)
        squares = np.einsum("ij,ij->i", X64, X64)
    else:
        squares = np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel()  # type: ignore[attr-defined]
    if center is not None:  # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2
        squares = squares - 2 * np.asarray(X @ center, dtype=np.float64).ravel() + float(center @ center)
    return np.maximum(squares, 0.0)


def _data_loss(logits: np.ndarray, labels: np.ndarray, weight: np.ndarray | None, b: np.ndarray) -> float:
    """(1/n) sum_i s_i [logsumexp(z_i + b) - z_{i,y_i} - b_{y_i}] (b_k = -inf drops class k)."""
    shifted = logits + b
    losses = row_logsumexp(shifted) - shifted[np.arange(len(labels)), labels]
    return float(losses.mean() if weight is None else np.dot(weight, losses) / len(losses))


def certify(
    coef: np.ndarray,
    intercept: np.ndarray,
    data: Chunked,
    weight_decay: float,
    fit_intercept: bool = True,
    solve: bool = True,
    adopt: bool = True,
    rows: int = CHUNK_ROWS,
) -> Certificate:
    """b*(W) and the bound on J - J* of the module docstring, over all rows of ``data``.

    Parameters
    ----------
    coef : ndarray of shape (n_classes, n_features)
    intercept : ndarray of shape (n_classes,), the start of the Newton steps (kept when
        ``fit_intercept`` is false)
    data : the training rows (dense or CSR chunks, optional weights of mean 1, optional centre)
    weight_decay : lambda >= 0 (0: no bound)
    fit_intercept : bool
    solve : bool
        False: no b*(W): the bound's dual point is p(W, intercept), valid but loose unless
        ``intercept`` is nearly optimal.
    adopt : bool
        False: the certificate is for the given (W, intercept), with b*(W) in its dual point
        only; the term J(W, intercept) - J(W, b*) is added to the bound, exactly.
    rows : int, the rows of each chunk read

    Returns
    -------
    Certificate
        The intercept is b*(W) when it does not raise J (it never does but for rounding).
    Two passes over the rows: one for the logits, one for dJ/dW at b*.
    """
    logits, labels, weight, mean_norm = _logits_and_rows(coef, data, rows)
    held = _LocalLogits(logits, labels, weight, mean_norm, data, rows)
    return certify_held(coef, intercept, held, weight_decay, fit_intercept, solve, adopt)


def certify_held(
    coef: np.ndarray,
    intercept: np.ndarray,
    held: HeldLogits,
    weight_decay: float,
    fit_intercept: bool = True,
    solve: bool = True,
    adopt: bool = True,
) -> Certificate:
    """`certify` from logits held wherever the rows are (``held``): the same steps, each a sum over them."""
    n_classes = coef.shape[0]
    n_samples = held.n_samples
    shares = held.counts / max(1, n_samples)
    present = shares > 0
    given = np.asarray(intercept, dtype=np.float64)
    model = given
    if fit_intercept and solve:
        solved = np.zeros(n_classes)
        problem = held.intercept_problem(present, shares[present])
        solved[present] = newton_intercept(problem, shares[present], given[present])
        solved[present] += given[present].mean()  # b* is centred; an absent class keeps its place relative to b
        # the model's intercept in its own dtype, so that the gradient below is the model's
        solved = np.where(present, solved, given).astype(coef.dtype).astype(np.float64)
        if adopt and held.data_loss(solved) <= held.data_loss(given):
            model = solved
    data_loss = held.data_loss(model)
    # the dual point is p(W, best): an absent class must get q_ik = 0, that is b_k = -inf
    best = model if model is not given or not fit_intercept or not solve else solved
    if fit_intercept and not present.all():
        best = np.where(present, best, -np.inf)
    extra = 0.0 if best is model else max(0.0, data_loss - held.data_loss(best))
    grad_coef, residual = held.gradient(best)
    objective = data_loss + penalty(coef, weight_decay)
    exact = best is model  # the gradient was taken at the model's own intercept
    certificate = Certificate(
        intercept=model.astype(coef.dtype),
        objective=objective,
        data_loss=data_loss,
        grad_coef=grad_coef.astype(coef.dtype) if exact else None,
        grad_intercept=residual.astype(coef.dtype) if exact else None,
        gap=None,
        relative_gap=None,
    )
    if weight_decay <= 0:
        return certificate
    full = grad_coef + penalty_gradient(np.asarray(coef, dtype=np.float64), weight_decay)
    gap = float(np.vdot(full, full)) / (2 * weight_decay)
    if fit_intercept:
        gap += extra + _rounding_terms(residual, shares, best, grad_coef, held.mean_norm, weight_decay)
    certificate.gap = gap
    certificate.relative_gap = gap / (objective - gap) if objective > gap else math.inf
    return certificate


def _gradient_at(
    logits: np.ndarray, labels: np.ndarray, weight: np.ndarray | None, b: np.ndarray, data: Chunked, rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """A = (1/n) sum_i s_i (p_i - e_{y_i}) (x_i - c)^T (K, d) and r = (1/n) sum_i s_i (p_i - e_{y_i}) (K,)."""
    n_samples, n_classes = logits.shape
    grad = np.zeros((n_classes, data.n_features))
    residual = np.zeros(n_classes)
    center = center_of(data)
    start = 0
    for X, _, _ in data.chunks(rows):
        stop = start + X.shape[0]
        shifted = logits[start:stop] + b
        proba = np.exp(shifted - row_logsumexp(shifted)[:, None])  # (rows, K)
        proba[np.arange(stop - start), labels[start:stop]] -= 1.0
        if weight is not None:
            proba *= weight[start:stop, None]
        grad += np.asarray(X.T @ proba, dtype=np.float64).T
        residual += proba.sum(axis=0)
        start = stop
    if center is not None:
        grad -= np.outer(residual, np.asarray(center, dtype=np.float64))
    return grad / max(1, n_samples), residual / max(1, n_samples)


def _rounding_terms(
    residual: np.ndarray, shares: np.ndarray, b: np.ndarray, grad_coef: np.ndarray, mean_norm: float,
    weight_decay: float,
) -> float:
    """r . b + theta log K + (2 theta ||A|| U + theta^2 U^2) / (2 lambda): the price of the dual
    point q' that meets the intercept's constraint exactly (module docstring)."""
    present = shares > 0
    residual = np.where(present, residual, 0.0)  # an absent class has q_ik = 0 exactly
    finite_b = np.where(present, b, 0.0)
    terms = float(np.dot(residual, finite_b))
    positive = residual > 0
    if not positive.any():
        return max(0.0, terms)
    margin = float(np.min(shares[positive] / residual[positive]))
    theta = 1.0 / (1.0 + margin)
    norm_a = float(np.linalg.norm(grad_coef))
    spread = math.sqrt(2.0) * mean_norm + norm_a
    terms += theta * math.log(max(2, int(present.sum())))
    terms += (2 * theta * norm_a * spread + theta**2 * spread**2) / (2 * weight_decay)
    return max(0.0, terms)
