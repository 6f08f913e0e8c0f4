"""Binary logistic regression, written independently of `softreg.softmax`, and the k=2 mapping.

For features ``x`` in R^d, a target ``t`` in {0, 1}, ``coef`` w of shape (1, d) and
``intercept`` b of shape (1,) (scikit-learn's binary layout)::

    m = w . x + b                     the margin (logit of class 1)
    p = sigmoid(m) = 1 / (1 + exp(-m))
    L(w, b) = (1/n) sum_i log(1 + exp(-s_i m_i)) + (weight_decay / 2) ||w||^2,   s_i = 2 t_i - 1
    dL/dw = (p - t)^T X / n + weight_decay * w,   dL/db = sum_i (p_i - t_i) / n

The sigmoid and ``log(1 + exp(-m))`` are evaluated through ``exp(-|m|)``, which never
overflows, so any finite margin gives a finite loss and gradient. Nothing here calls
the softmax code: `softreg.compare` checks one against the other, which proves
something only if they share no arithmetic.

The k=2 mapping. Softmax regression with two classes only sees the logit difference,
``p_2 = sigmoid((w_2 - w_1) . x + b_2 - b_1)``. Its gradient in ``w_2 - w_1`` is
``2 (p_2 - t)^T X / n + weight_decay * (w_2 - w_1)``: twice the logistic gradient with
decay ``weight_decay / 2``. Minibatch SGD with rate eta on the softmax model is therefore
logistic SGD with rate ``2 eta`` and decay ``weight_decay / 2``; the sum ``w_1 + w_2``
only decays and stays 0 from a zero start, so ``w_1 = -w / 2`` and ``w_2 = w / 2``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from softreg.softmax import penalty, penalty_gradient
from softreg.solve import Optimum, minimize_lbfgs
from softreg.train.optim import SGD

if TYPE_CHECKING:
    from scipy.sparse import spmatrix

FloatArray = NDArray[np.float64]


def sigmoid(margin: FloatArray) -> FloatArray:
    """``1 / (1 + exp(-m))`` without overflow for any finite ``m``.

    Parameters
    ----------
    margin : ndarray of shape (n_samples,)

    Returns
    -------
    proba : ndarray of shape (n_samples,)
        Probability of class 1, in [0, 1].
    """
    small = np.exp(-np.abs(margin))  # in (0, 1]: never overflows
    return np.where(margin >= 0, 1.0 / (1.0 + small), small / (1.0 + small))


def log1p_exp(value: FloatArray) -> FloatArray:
    """``log(1 + exp(v))`` (softplus) without overflow: ``max(v, 0) + log1p(exp(-|v|))``."""
    return np.maximum(value, 0.0) + np.log1p(np.exp(-np.abs(value)))


def decision_function(coef: FloatArray, intercept: FloatArray, X: np.ndarray | spmatrix) -> FloatArray:
    """Margins ``X @ coef.T + intercept``.

    Parameters
    ----------
    coef : ndarray of shape (1, n_features)
    intercept : ndarray of shape (1,)
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)

    Returns
    -------
    margin : ndarray of shape (n_samples,)
    """
    return np.asarray(X @ coef[0]).ravel() + intercept[0]


def predict_proba(coef: FloatArray, intercept: FloatArray, X: np.ndarray | spmatrix) -> FloatArray:
    """Probability of class 1 (the second class), shape (n_samples,)."""
    return sigmoid(decision_function(coef, intercept, X))


def loss_gradient(
    coef: FloatArray, intercept: FloatArray, X: np.ndarray | spmatrix, target: np.ndarray, weight_decay: float
) -> tuple[float, float, FloatArray, FloatArray]:
    """Objective L and its gradient, computing the margins once.

    Parameters
    ----------
    coef : ndarray of shape (1, n_features)
    intercept : ndarray of shape (1,)
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    target : ndarray of shape (n_samples,)
        0 or 1 (1 is the positive class, scikit-learn's ``classes_[1]``).
    weight_decay : float
        The penalty is ``weight_decay / 2 * ||coef||^2``; the intercept is not decayed.

    Returns
    -------
    data_loss : float
        Mean ``log(1 + exp(-s m))`` with ``s = 2 t - 1``.
    objective : float
        ``data_loss + weight_decay / 2 * ||coef||^2``.
    grad_coef : ndarray of shape (1, n_features)
    grad_intercept : ndarray of shape (1,)
    """
    n_samples = X.shape[0]
    margin = decision_function(coef, intercept, X)  # (n,)
    sign = 2.0 * target - 1.0
    data_loss = float(log1p_exp(-sign * margin).sum()) / n_samples
    residual = (sigmoid(margin) - target) / n_samples  # dL/dm, (n,)
    grad_coef = np.asarray(X.T @ residual).reshape(1, -1) + penalty_gradient(coef, weight_decay)
    grad_intercept = np.array([residual.sum()], dtype=residual.dtype)
    objective = data_loss + penalty(coef, weight_decay)
    return data_loss, objective, grad_coef, grad_intercept


def sgd_path(
    batches: Iterable[tuple[np.ndarray | spmatrix, np.ndarray, float]],
    n_features: int,
    weight_decay: float,
    momentum: float = 0.0,
    nesterov: bool = False,
    fit_intercept: bool = True,
) -> Iterator[tuple[FloatArray, FloatArray]]:
    """Minibatch SGD on L from a zero start, one step per batch.

    Parameters
    ----------
    batches : iterable of (X_batch, target_batch, lr)
        ``X_batch`` {ndarray, sparse matrix} of shape (batch, n_features), ``target_batch``
        of shape (batch,) in {0, 1}, and the learning rate of that step.
    n_features : int
    weight_decay : float
    momentum, nesterov : as in `softreg.train.optim.SGD`
    fit_intercept : bool
        When False the intercept stays 0.

    Yields
    ------
    coef : ndarray of shape (1, n_features)
    intercept : ndarray of shape (1,)
        The live weights after each step (updated in place by the next one).
    """
    coef = np.zeros((1, n_features))
    intercept = np.zeros(1)
    params = [coef, intercept] if fit_intercept else [coef]
    sgd = SGD(momentum=momentum, nesterov=nesterov)
    for X_batch, target_batch, lr in batches:
        _, _, grad_coef, grad_intercept = loss_gradient(coef, intercept, X_batch, target_batch, weight_decay)
        sgd.step(params, [grad_coef, grad_intercept] if fit_intercept else [grad_coef], lr)
        yield coef, intercept


def exact_optimum(
    X: np.ndarray | spmatrix,
    target: np.ndarray,
    weight_decay: float,
    fit_intercept: bool = True,
    gtol: float = 1e-10,
    max_iter: int = 20000,
) -> Optimum:
    """Minimize L to tight tolerance with scipy's L-BFGS and the analytic gradient.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features), float64
    target : ndarray of shape (n_samples,), 0 or 1
    weight_decay : float
        > 0 for a unique optimum.
    fit_intercept : bool

    Returns
    -------
    Optimum
        coef (1, n_features), intercept (1,), objective, grad_norm, iterations.
    """
    n_features = X.shape[1]

    def unpack(theta: FloatArray) -> tuple[FloatArray, FloatArray]:
        return theta[:n_features].reshape(1, n_features), theta[n_features:] if fit_intercept else np.zeros(1)

    def objective_and_gradient(theta: FloatArray) -> tuple[float, FloatArray]:
        coef, intercept = unpack(theta)
        _, objective, grad_coef, grad_intercept = loss_gradient(coef, intercept, X, target, weight_decay)
        return objective, np.concatenate([grad_coef[0], grad_intercept if fit_intercept else grad_intercept[:0]])

    # the same minimizer as the softmax side; the objective and its gradient are this module's own
    solution = minimize_lbfgs(objective_and_gradient, n_features + (1 if fit_intercept else 0), gtol, max_iter)
    objective, gradient = objective_and_gradient(solution.x)
    coef, intercept = unpack(solution.x)
    return Optimum(
        coef=coef.copy(),
        intercept=np.array(intercept, dtype=float),
        objective=float(objective),
        grad_norm=float(np.linalg.norm(gradient)),
        iterations=int(solution.nit),
    )


# -- the k=2 mapping


def logistic_weight_decay(softmax_weight_decay: float) -> float:
    """Softmax decay lambda -> the logistic decay lambda / 2 with the same optimum."""
    return softmax_weight_decay / 2.0


def logistic_learning_rate(softmax_lr: float) -> float:
    """Softmax rate eta -> the logistic rate 2 eta with the same SGD trajectory."""
    return 2.0 * softmax_lr


def sklearn_C(n_samples: int, softmax_weight_decay: float) -> float:
    """scikit-learn's ``C`` for the same optimum: ``1 / (n * lambda / 2) = 2 / (n * lambda)``.

    scikit-learn minimizes ``C sum_i loss_i + ||w||^2 / 2``, i.e. L with decay ``1 / (n C)``.
    """
    return 2.0 / (n_samples * softmax_weight_decay)


def from_softmax(coef: FloatArray, intercept: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Two-class softmax weights -> logistic ones: ``w = w_2 - w_1``, ``b = b_2 - b_1``.

    Parameters
    ----------
    coef : ndarray of shape (2, n_features)
    intercept : ndarray of shape (2,)

    Returns
    -------
    coef : ndarray of shape (1, n_features)
    intercept : ndarray of shape (1,)
    """
    return coef[1:] - coef[:1], intercept[1:] - intercept[:1]


def to_softmax(coef: FloatArray, intercept: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Logistic weights -> the two-class softmax weights with ``w_1 + w_2 = 0``.

    Parameters
    ----------
    coef : ndarray of shape (1, n_features)
    intercept : ndarray of shape (1,)

    Returns
    -------
    coef : ndarray of shape (2, n_features)
        ``[-w / 2, w / 2]``.
    intercept : ndarray of shape (2,)
        ``[-b / 2, b / 2]``.
    """
    return np.concatenate([-coef, coef]) / 2.0, np.concatenate([-intercept, intercept]) / 2.0
