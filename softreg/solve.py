"""The exact optimum of J(W, b) by scipy's L-BFGS with the analytic gradient.

This is the reference every SGD run is measured against (``evaluate --optimum``,
``compare-logistic``, the tests). scipy's BLAS pool is limited to one thread while
it runs: numpy's and scipy's separate OpenBLAS pools otherwise fight over the cores
and slow small solves by an order of magnitude.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from softreg import kernels, losses, softmax
from softreg.kernels import Batch, Chunked
from softreg.train import passes

if TYPE_CHECKING:
    from scipy.optimize import OptimizeResult
    from scipy.sparse import spmatrix

# theta (size,) -> (objective, gradient of shape (size,))
ObjectiveAndGradient = Callable[[NDArray[np.float64]], tuple[float, NDArray[np.float64]]]


@dataclass
class Optimum:
    """coef (n_classes, n_features), intercept (n_classes,), objective J*, grad_norm, iterations."""

    coef: NDArray[np.float64]
    intercept: NDArray[np.float64]
    objective: float
    grad_norm: float
    iterations: int


def exact_optimum(
    X: np.ndarray | spmatrix,
    y: np.ndarray,
    n_classes: int,
    weight_decay: float,
    fit_intercept: bool = True,
    gtol: float = 1e-10,
    max_iter: int = 20000,
    temperature: float = 1.0,
    center: np.ndarray | None = None,
) -> Optimum:
    """Minimize J to tight tolerance (cross-entropy of softmax(z / temperature): convex for any T > 0;
    over the rows ``X - center`` when ``center`` is given: sparse rows stored scaled, not centred).

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), class indices
    n_classes : int
    weight_decay : float
    fit_intercept : bool

    Returns
    -------
    Optimum
    """

    def loss_gradient(coef: np.ndarray, intercept: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
        if temperature == 1.0:
            return passes.full_loss_gradient(coef, intercept, X, y, weight_decay, center=center)
        shifted = softmax.centred_intercept(coef, intercept, center)
        loss = losses.loss_gradient(coef, shifted, X, y, weight_decay, temperature=temperature)
        if center is not None:  # the gradient of the rows X - center: a rank-one correction
            loss = (loss[0], loss[1], loss[2] - np.outer(loss[3], center), loss[3])
        return loss

    return _solve(loss_gradient, n_classes, X.shape[1], fit_intercept, gtol, max_iter)


STREAMED_ROWS = 16384  # rows per chunk of the streamed oracle: `softreg.train.passes.full_loss_gradient`'s


def streamed_optimum(
    data: Chunked,
    n_classes: int,
    weight_decay: float,
    fit_intercept: bool = True,
    gtol: float = 1e-10,
    max_iter: int = 20000,
    temperature: float = 1.0,
) -> Optimum:
    """`exact_optimum` with a chunked oracle: each objective and gradient reads ``data.chunks``
    (dense rows, converted to float64 a chunk at a time), so the rows are never all in memory.

    With chunks of `STREAMED_ROWS` rows it does the arithmetic of `exact_optimum` on the same
    rows in one float64 array, and finds the same optimum, bit for bit (at temperature 1).
    """
    n_samples, n_features = data.n_samples, data.n_features
    rows = max(1, min(STREAMED_ROWS, n_samples))
    work = kernels.Workspace(n_classes, n_features, rows, np.dtype(np.float64))

    def float64_chunks() -> Iterator[Batch]:
        for X, y, weight in data.chunks(rows):
            yield np.asarray(X, dtype=np.float64), y, weight

    def loss_gradient(coef: np.ndarray, intercept: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
        if temperature == 1.0:
            return passes.chunked_softmax_loss_gradient(
                coef, intercept, float64_chunks(), n_samples, weight_decay, work
            )
        return losses.chunked_loss_gradient(
            coef, intercept, float64_chunks(), n_samples, weight_decay, temperature=temperature
        )

    return _solve(loss_gradient, n_classes, n_features, fit_intercept, gtol, max_iter)


LossGradient = Callable[[np.ndarray, np.ndarray], tuple[float, float, np.ndarray, np.ndarray]]


def optimum_of(
    loss_gradient: LossGradient, n_classes: int, n_features: int, fit_intercept: bool = True, gtol: float = 1e-10,
    max_iter: int = 20000,
) -> Optimum:
    """`exact_optimum` with any oracle ``loss_gradient(coef, intercept) -> (data loss, J, dJ/dcoef,
    dJ/dintercept)``, such as sums over the shards of a cluster's workers (`softreg.engine`)."""
    return _solve(loss_gradient, n_classes, n_features, fit_intercept, gtol, max_iter)


def _solve(
    loss_gradient: LossGradient, n_classes: int, n_features: int, fit_intercept: bool, gtol: float, max_iter: int
) -> Optimum:
    """L-BFGS over theta = (coef.ravel(), intercept) for ``loss_gradient(coef, intercept) ->
    (data loss, J, dJ/dcoef, dJ/dintercept)``; the intercepts are centred at the end."""
    size = n_classes * n_features

    def unpack(theta: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        coef = theta[:size].reshape(n_classes, n_features)
        intercept = theta[size:] if fit_intercept else np.zeros(n_classes)
        return coef, intercept

    def objective_and_gradient(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        _, objective, grad_coef, grad_intercept = loss_gradient(*unpack(theta))
        gradient = np.concatenate([grad_coef.ravel(), grad_intercept]) if fit_intercept else grad_coef.ravel()
        return objective, gradient

    solution = minimize_lbfgs(objective_and_gradient, size + (n_classes if fit_intercept else 0), gtol, max_iter)
    coef, intercept = unpack(solution.x)
    objective, gradient = objective_and_gradient(solution.x)
    if fit_intercept:
        intercept = intercept - intercept.mean()  # the intercepts are unique only up to a common shift
        objective, gradient = objective_and_gradient(np.concatenate([coef.ravel(), intercept]))
    return Optimum(
        coef=coef.copy(),
        intercept=np.array(intercept, dtype=float),
        objective=float(objective),
        grad_norm=float(np.linalg.norm(gradient)),
        iterations=int(solution.nit),
    )


def minimize_lbfgs(
    objective_and_gradient: ObjectiveAndGradient, size: int, gtol: float = 1e-10, max_iter: int = 20000
) -> OptimizeResult:
    """scipy's L-BFGS-B from zero to tight tolerance, with scipy's BLAS pool at one thread.

    ``objective_and_gradient(theta) -> (float, ndarray of shape (size,))``. Returns
    scipy's OptimizeResult.
    """
    from scipy.optimize import minimize
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return minimize(
            objective_and_gradient,
            np.zeros(size),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": max_iter, "maxfun": 2 * max_iter, "gtol": gtol, "ftol": 1e-16, "maxcor": 30},
        )
