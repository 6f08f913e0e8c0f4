"""b*(W) = argmin_b J(W, b) for fixed weights: the intercept the certificate (`softreg.train.certificate`)
takes its dual point at, by damped Newton steps on the logits Z = X W^T, wherever they are held:
in this process (`optimal_intercept`), or shard by shard (`newton_intercept` of an `InterceptProblem`
whose terms are the shards' sums)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

NEWTON_ITERATIONS = 50
NEWTON_TOLERANCE = 1e-14  # max |dJ/db_k| that ends the Newton iterations (rounding ends them too)
ARMIJO = 1e-4  # sufficient decrease of the backtracking line search
LINE_SEARCH_STEPS = 30
ROUNDING = 1e-15  # a predicted decrease below this share of f is rounding: the iterations end


def row_logsumexp(shifted: np.ndarray) -> np.ndarray:
    """logsumexp of each row (n,), the row's max subtracted first (scipy's is slower on many short rows)."""
    top = shifted.max(axis=1)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.log(np.exp(shifted - top[:, None]).sum(axis=1)) + top


def _intercept_objective(logits: np.ndarray, weight: np.ndarray | None, shares: np.ndarray, b: np.ndarray) -> float:
    """f(b) = (1/n) sum_i s_i logsumexp(z_i + b) - pi . b: J(W, b) up to a constant in b."""
    lse = row_logsumexp(logits + b)
    mean = float(lse.mean() if weight is None else np.dot(weight, lse) / len(lse))
    return mean - float(np.dot(shares, b))


class InterceptProblem(Protocol):
    """f(b) = (1/n) sum_i s_i logsumexp(z_i + b) - pi . b over the classes present, as sums over
    rows held wherever they are."""

    def value(self, b: np.ndarray) -> float:
        """f(b)."""
        ...

    def terms(self, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(1/n) sum_i s_i p_i(b) (K,) and (1/n) sum_i s_i p_i p_i^T (K, K)."""
        ...


@dataclass
class HeldIntercept:
    """`InterceptProblem` over logits held in this process."""

    logits: np.ndarray
    weight: np.ndarray | None
    shares: np.ndarray

    def value(self, b: np.ndarray) -> float:
        return _intercept_objective(self.logits, self.weight, self.shares, b)

    def terms(self, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_samples = self.logits.shape[0]
        shifted = self.logits + b
        proba = np.exp(shifted - row_logsumexp(shifted)[:, None])  # (n, K)
        weighted = proba if self.weight is None else proba * self.weight[:, None]
        return weighted.sum(axis=0) / n_samples, (weighted.T @ proba) / n_samples


def optimal_intercept(
    logits: np.ndarray, weight: np.ndarray | None, shares: np.ndarray, start: np.ndarray
) -> np.ndarray:
    """b* = argmin_b (1/n) sum_i s_i [logsumexp(z_i + b) - z_{i,y_i} - b_{y_i}] by damped Newton.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes), Z = X W^T, float64
    weight : ndarray of shape (n_samples,) of mean 1, or None
    shares : ndarray of shape (n_classes,), pi_k = (1/n) sum_{i: y_i = k} s_i, all > 0
    start : ndarray of shape (n_classes,), the first iterate

    Returns
    -------
    ndarray of shape (n_classes,), centred (b* is unique up to a common shift). The gradient is
    (1/n) sum_i s_i p_i(b) - pi, the Hessian (1/n) sum_i s_i (diag p_i - p_i p_i^T), singular only
    along the common shift, which the step removes by adding 11^T / K.
    """
    return newton_intercept(HeldIntercept(logits, weight, shares), shares, start)


def newton_intercept(problem: InterceptProblem, shares: np.ndarray, start: np.ndarray) -> np.ndarray:
    """`optimal_intercept` of ``problem`` (its rows anywhere), from ``start`` (n_classes,)."""
    n_classes = len(shares)
    b = np.where(np.isfinite(start), start, 0.0).astype(np.float64)
    b -= b.mean()
    value = problem.value(b)
    shift = np.full((n_classes, n_classes), 1.0 / n_classes)
    for _ in range(NEWTON_ITERATIONS):
        mean_proba, outer = problem.terms(b)
        gradient = mean_proba - shares
        if np.abs(gradient).max() <= NEWTON_TOLERANCE:
            break
        ratio = np.log(shares) - np.log(np.maximum(mean_proba, np.finfo(np.float64).tiny))
        if np.abs(ratio).max() > 1.0:  # far from b*: the fixed-point step b += log(pi / mean p) is robust
            step = ratio
        else:  # near b*: Newton converges quadratically
            hessian = np.diag(mean_proba) - outer
            try:
                step = np.linalg.solve(hessian + shift, -gradient)
            except np.linalg.LinAlgError:
                step = ratio
        step -= step.mean()
        slope = float(np.dot(gradient, step))
        if not slope < -ROUNDING * max(1.0, abs(value)):  # what is left to gain is below f's rounding
            break
        rate = 1.0
        for _ in range(LINE_SEARCH_STEPS):
            candidate = b + rate * step
            candidate_value = problem.value(candidate)
            if candidate_value <= value + ARMIJO * rate * slope:
                break
            rate *= 0.5
        else:
            break  # no decrease left to find: rounding
        b, value = candidate, candidate_value
    return b - b.mean()
