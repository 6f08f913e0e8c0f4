"""The training loop's kernels: the quantities of `softreg.softmax`, computed in
preallocated buffers. An optimisation of that page, nothing more: every function here
agrees with `softmax.loss_gradient` to rounding (float64, 1e-12; the tests check it).

With few features an SGD step is a dozen tiny array operations: their number and their
allocations, not the arithmetic, set the speed. The logits are held with the classes along
the first axis, shape (n_models, n_classes, n_samples), so that the per-sample max and sum
reduce over whole contiguous rows (several times faster than over rows of n_classes numbers),
and the true class of each sample is addressed by one flat index.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, TypeAlias

import numpy as np
from numpy.typing import DTypeLike

from softreg.softmax import Matrix as Matrix  # defined with the math page; re-exported for the package
from softreg.softmax import centred_intercept, penalty_gradient

# rows of the data: X (n, d), class indices y (n,), relative sample weights (n,) or None (all 1)
Batch: TypeAlias = tuple[Matrix, np.ndarray, np.ndarray | None]


class Chunked(Protocol):
    """Rows read a chunk at a time, what a full pass needs (any `softreg.train.TrainingData`, a
    `softreg.cache.CacheData`): ``chunks(rows)`` yields `Batch` es of at most ``rows`` rows."""

    @property
    def n_samples(self) -> int: ...

    @property
    def n_features(self) -> int: ...

    def chunks(self, rows: int) -> Iterator[Batch]: ...


class Workspace:
    """Reusable buffers for `batch_loss_gradient`, `variance_reduced_gradient` and
    `softreg.train.passes.chunked_softmax_loss_gradient`, for at most ``max_rows`` samples at a time and ``n_models``
    weight sets evaluated side by side.

    The gradient is one flat vector of length ``n_classes * n_features + n_classes``, so an
    optimizer whose parameters share that layout updates coef and intercept in one operation;
    ``grad_coef`` (n_classes, n_features) and ``grad_intercept`` (n_classes,) are views of it.
    """

    def __init__(
        self, n_classes: int, n_features: int, max_rows: int, dtype: DTypeLike, n_models: int = 1
    ) -> None:
        dtype = np.dtype(dtype)
        self.n_classes, self.n_models, self.max_rows = n_classes, n_models, max_rows
        self._logits = np.empty(n_models * n_classes * max_rows, dtype)
        self._per_sample = np.empty((2, n_models * max_rows), dtype)
        self._rows = np.empty(max_rows * n_models * n_classes, dtype)
        self._log_norm = np.empty(max_rows, dtype)
        self._target = np.empty(max_rows, np.intp)
        self._columns = np.arange(max_rows)
        self._ones = np.ones(max_rows, dtype)
        self.gradient = np.empty(n_classes * n_features + n_classes, dtype)
        self.grad_coef = self.gradient[: n_classes * n_features].reshape(n_classes, n_features)
        self.grad_intercept = self.gradient[n_classes * n_features:]
        self.decay = np.empty_like(self.grad_coef)
        self.stacked_coef = np.empty((n_models * n_classes, n_features), dtype)
        self.stacked_intercept = np.empty(n_models * n_classes, dtype)
        self._batches: dict[int, _BatchViews] = {}

    def batch(self, n_samples: int) -> _BatchViews:
        """Views sized for ``n_samples`` rows; cached, since a run sees two batch sizes at most."""
        views = self._batches.get(n_samples)
        if views is None:
            views = self._batches[n_samples] = _BatchViews(self, n_samples)
        return views


class _BatchViews:
    def __init__(self, work: Workspace, n_samples: int) -> None:
        n_models, size = work.n_models, work.n_models * work.n_classes * n_samples
        self.flat_logits = work._logits[:size]
        self.logits = self.flat_logits.reshape(n_models, work.n_classes, n_samples)
        # wide data: the logits of one weight set, or of all side by side, one row per sample
        self.logits_by_rows = work._rows[: work.n_classes * n_samples].reshape(n_samples, work.n_classes)
        self.stacked_logits_by_rows = work._rows[:size].reshape(n_samples, n_models * work.n_classes)
        self.shift = work._per_sample[0, : n_models * n_samples].reshape(n_models, n_samples)
        self.norm = work._per_sample[1, : n_models * n_samples].reshape(n_models, n_samples)
        self.log_norm = work._log_norm[:n_samples]
        self.target = work._target[:n_samples]  # flat index of each sample's true-class logit
        self.columns = work._columns[:n_samples]
        self.ones = work._ones[:n_samples]


class Snapshot:
    """An SVRG snapshot: weights W~ (n_classes, n_features), b~ (n_classes,) and the full-data
    gradient of the mean cross-entropy there, without weight decay."""

    def __init__(
        self, coef: np.ndarray, intercept: np.ndarray, grad_coef: np.ndarray, grad_intercept: np.ndarray
    ) -> None:
        self.coef, self.intercept = coef, intercept
        self.grad_coef, self.grad_intercept = grad_coef, grad_intercept


def batch_loss_gradient(
    coef: np.ndarray,
    intercept: np.ndarray,
    X: Matrix,
    y: np.ndarray,
    weight_decay: float,
    work: Workspace,
    sample_weight: np.ndarray | None = None,
    center: np.ndarray | None = None,
) -> float:
    """`loss_gradient` of one minibatch, computed in ``work``'s buffers.

    Parameters
    ----------
    coef : ndarray of shape (n_classes, n_features)
    intercept : ndarray of shape (n_classes,)
    X : {ndarray, sparse matrix} of shape (n_samples, n_features), n_samples <= work.max_rows
    y : ndarray of shape (n_samples,)
    weight_decay : float
    work : Workspace
    sample_weight : ndarray of shape (n_samples,) or None
        Relative weights, 1 on average over the whole data (not over the batch), so that the
        batch's weighted mean is an unbiased estimate of the data's (see `softmax.loss_gradient`).
    center : ndarray of shape (n_features,) or None
        For sparse X stored scaled but not centred: the rows are ``X - center`` (the centring
        folds exactly into the intercept and a rank-one correction of the gradient).

    Returns
    -------
    data_loss : float
        Mean (weighted) cross-entropy of the batch. dJ/dW and dJ/db on the batch are left in
        ``work.grad_coef`` and ``work.grad_intercept``; they agree with `loss_gradient` to rounding.
    """
    n_samples = X.shape[0]
    views = work.batch(n_samples)
    logits = views.logits[:1]  # (1, K, n)
    _logits_into(logits[0], coef, centred_intercept(coef, intercept, center), X, views.logits_by_rows)
    data_loss = _normalize_in_place(logits, y, views, sample_weight)
    # (P - Y) / n: the targets are distinct flat indices (one per sample), so a fancy-indexed
    # subtraction is exact and faster than ufunc.at
    views.flat_logits[views.target] -= logits.dtype.type(1.0 / n_samples)
    if sample_weight is not None:
        logits[0] *= sample_weight  # each sample's column of (P - Y) / n times its weight
    _gradient_into(work, logits[0], X, coef, weight_decay, views.ones, center)
    return data_loss


def variance_reduced_gradient(
    coef: np.ndarray,
    intercept: np.ndarray,
    snapshot: Snapshot,
    X: Matrix,
    y: np.ndarray,
    weight_decay: float,
    work: Workspace,
    sample_weight: np.ndarray | None = None,
    center: np.ndarray | None = None,
) -> float:
    """The SVRG estimate of grad J on one minibatch (Johnson & Zhang, 2013)::

        g = grad L_B(W, b) - grad L_B(W~, b~) + grad L(W~, b~) + weight_decay * (W, 0)

    where L_B is the batch's mean cross-entropy and L the whole training part's, at the
    snapshot (W~, b~). Its mean over batches is grad J, and its variance vanishes as (W, b)
    and the snapshot approach the optimum, so a constant rate converges. For a linear model
    the two batch gradients share one product, (P - P~)^T X / n: the one-hot targets cancel.

    Parameters
    ----------
    coef, intercept, X, y, weight_decay : as in `batch_loss_gradient`
    snapshot : Snapshot
    work : Workspace with n_models >= 2

    Returns
    -------
    data_loss : float
        Mean cross-entropy of the batch at (coef, intercept); g is left in ``work.gradient``.
    """
    views = work.batch(X.shape[0])
    logits = views.logits[:2]  # (2, K, n): the current weights, the snapshot
    n_classes = len(coef)
    # one product for both weight sets: X is read once
    stacked_coef, stacked_intercept = work.stacked_coef[: 2 * n_classes], work.stacked_intercept[: 2 * n_classes]
    stacked_coef[:n_classes], stacked_coef[n_classes:] = coef, snapshot.coef
    stacked_intercept[:n_classes] = centred_intercept(coef, intercept, center)
    stacked_intercept[n_classes:] = centred_intercept(snapshot.coef, snapshot.intercept, center)
    _logits_into(logits.reshape(2 * n_classes, -1), stacked_coef, stacked_intercept, X, views.stacked_logits_by_rows)
    data_loss = _normalize_in_place(logits, y, views, sample_weight)
    np.subtract(logits[0], logits[1], out=logits[0])  # (P - P~) / n
    if sample_weight is not None:
        logits[0] *= sample_weight
    _gradient_into(work, logits[0], X, coef, weight_decay, views.ones, center)
    work.grad_coef += snapshot.grad_coef
    work.grad_intercept += snapshot.grad_intercept
    return data_loss


def _logits_into(out: np.ndarray, coef: np.ndarray, intercept: np.ndarray, X: Matrix, by_rows: np.ndarray) -> None:
    """``out[...] = coef @ X.T + intercept[:, None]``, shape (n_classes, n_samples).

    For wide dense X the product is faster the other way round, into ``by_rows`` (n_samples,
    n_classes), and transposed after (measured with OpenBLAS: from 64 float32 or 256 float64
    features on).
    """
    if not isinstance(X, np.ndarray):
        out[...] = (X @ coef.T).T
    elif X.shape[1] >= (64 if X.dtype == np.float32 else 256):
        np.matmul(X, coef.T, out=by_rows)
        np.add(by_rows.T, intercept[:, None], out=out)  # the transpose and the intercept in one pass
        return
    else:
        np.matmul(coef, X.T, out=out)
    out += intercept[:, None]


def _normalize_in_place(
    logits: np.ndarray, y: np.ndarray, views: _BatchViews, sample_weight: np.ndarray | None = None
) -> float:
    """Turn logits (n_models, K, n) into probabilities / n in place; return the first model's
    mean (weighted) cross-entropy, taken from the shifted logits before exponentiation (a log-softmax)."""
    n_models, _, n_samples = logits.shape
    shift, norm = views.shift[:n_models], views.norm[:n_models]
    # ufunc reductions called directly: np.max and np.sum add a Python layer (2-3 us a call)
    np.maximum.reduce(logits, axis=1, out=shift)
    logits -= shift[:, None, :]
    np.multiply(y, n_samples, out=views.target)
    views.target += views.columns
    picked = views.flat_logits.take(views.target)  # (n,): each sample's shifted true-class logit
    np.exp(logits, out=logits)
    np.add.reduce(logits, axis=1, out=norm)
    log_norm = np.log(norm[0], out=views.log_norm)
    if sample_weight is None:
        data_loss = (float(np.add.reduce(log_norm)) - float(np.add.reduce(picked))) / n_samples
    else:
        data_loss = float(np.dot(sample_weight, log_norm - picked)) / n_samples
    np.multiply(norm, n_samples, out=norm)
    np.divide(1.0, norm, out=norm)
    logits *= norm[:, None, :]
    return data_loss


def _gradient_into(
    work: Workspace,
    residual: np.ndarray,
    X: Matrix,
    coef: np.ndarray,
    weight_decay: float,
    ones: np.ndarray,
    center: np.ndarray | None = None,
) -> None:
    """``work.grad_coef = residual @ (X - center) + weight_decay * coef``, ``work.grad_intercept = residual @ 1``."""
    if isinstance(X, np.ndarray):
        np.matmul(residual, X, out=work.grad_coef)
    else:
        work.grad_coef[...] = (X.T @ residual.T).T
    work.grad_coef += penalty_gradient(coef, weight_decay, out=work.decay)
    np.matmul(residual, ones, out=work.grad_intercept)
    if center is not None:  # residual @ (X - 1 center^T) = residual @ X - (residual @ 1) center^T
        work.grad_coef -= np.outer(work.grad_intercept, center)
