"""Full-data passes of the fast path: J and its gradient over every row, read a chunk at a
time through one `softreg.kernels.Workspace`, so that no (n_samples, n_classes) array is
allocated and the rows may come from memory or from disk alike. The training loop's
objective, SVRG's snapshots and the streamed exact optimum (`softreg.solve`) use them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from softreg.kernels import Batch, Matrix, Workspace, batch_loss_gradient
from softreg.softmax import penalty, penalty_gradient


def chunked_softmax_loss_gradient(
    coef: np.ndarray,
    intercept: np.ndarray,
    chunks: Iterable[Batch],
    n_samples: int,
    weight_decay: float,
    work: Workspace,
    center: np.ndarray | None = None,
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """`softmax.loss_gradient` over all rows, given as ``chunks`` of at most ``work.max_rows``
    rows each (``n_samples`` in all), in ``work``'s buffers: no (n_samples, n_classes) array
    is allocated, and the rows may come from memory or from disk alike.

    Returns the same tuple as `softmax.loss_gradient` (the gradient in new arrays).
    """
    data_loss = 0.0
    grad_coef = np.zeros_like(coef)
    grad_intercept = np.zeros_like(intercept)
    for X, y, sample_weight in chunks:
        weight = X.shape[0] / n_samples
        data_loss += weight * batch_loss_gradient(coef, intercept, X, y, 0.0, work, sample_weight, center)
        grad_coef += weight * work.grad_coef
        grad_intercept += weight * work.grad_intercept
    grad_coef += penalty_gradient(coef, weight_decay)
    objective = data_loss + penalty(coef, weight_decay)
    return data_loss, objective, grad_coef, grad_intercept


def array_chunks(
    X: Matrix, y: np.ndarray, rows: int, sample_weight: np.ndarray | None = None
) -> Iterator[Batch]:
    """``(X, y, sample_weight)`` in consecutive slices of at most ``rows`` rows."""
    for start in range(0, X.shape[0], rows):
        weight = None if sample_weight is None else sample_weight[start:start + rows]
        yield X[start:start + rows], y[start:start + rows], weight


def full_loss_gradient(
    coef: np.ndarray,
    intercept: np.ndarray,
    X: Matrix,
    y: np.ndarray,
    weight_decay: float,
    chunk_rows: int = 16384,
    center: np.ndarray | None = None,
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """`softmax.loss_gradient` of in-memory ``X`` (n_samples, n_features), ``chunk_rows`` at a time."""
    rows = max(1, min(chunk_rows, X.shape[0]))
    n_classes, n_features = coef.shape
    work = Workspace(n_classes, n_features, rows, coef.dtype)
    chunks = array_chunks(X, y, rows)
    return chunked_softmax_loss_gradient(coef, intercept, chunks, X.shape[0], weight_decay, work, center)


def full_pass_rows(n_samples: int, n_features: int, n_classes: int, at_least: int = 256, at_most: int = 8192) -> int:
    """Rows per chunk of a full-data pass: its (n_classes, rows) logits stay within an eighth
    of the size of ``X`` (letters has more classes than features), and no fewer than a batch."""
    return int(min(n_samples, max(at_least, min(at_most, n_samples * n_features // (8 * n_classes)))))
