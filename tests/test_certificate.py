"""The certificate (softreg.train.certificate) against softreg.solve's exact optimum."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from softreg import kernels
from softreg.solve import optimum_of
from softreg.train import passes
from softreg.train.certificate import certify
from softreg.train.data import ArrayData
from softreg.train.intercept import optimal_intercept


def problem(seed, n_classes, sparse, weighted, n_samples=240, n_features=6, absent=0):
    """Rows with unequal feature scales, labels from a random linear model, optional weights."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features)) * rng.uniform(0.3, 3.0, n_features)
    logits = X @ rng.standard_normal((n_features, n_classes)) + rng.gumbel(size=(n_samples, n_classes))
    logits[:, n_classes - absent:] = -np.inf  # classes that no row has
    y = logits.argmax(axis=1)
    if sparse:
        X = sp.csr_matrix(X * (rng.random(X.shape) < 0.4))
    weight = rng.uniform(0.1, 3.0, n_samples) if weighted else None
    return ArrayData(X, y, weight)


def optimum(data, n_classes, weight_decay, fit_intercept):
    """J* of the weighted problem by L-BFGS on the same oracle as training's full passes."""
    work = kernels.Workspace(n_classes, data.n_features, data.n_samples, np.dtype(np.float64))

    def loss_gradient(coef, intercept):
        return passes.chunked_softmax_loss_gradient(
            coef, intercept, data.chunks(data.n_samples), data.n_samples, weight_decay, work
        )

    return optimum_of(loss_gradient, n_classes, data.n_features, fit_intercept, gtol=1e-12), loss_gradient


GRID = [
    # seed, n_classes, sparse, weighted, weight_decay, fit_intercept
    (0, 2, False, False, 1e-6, True),
    (1, 2, True, True, 1e-4, True),
    (2, 2, False, True, 1.0, False),
    (3, 2, True, False, 1e-2, False),
    (4, 200, False, False, 1e-3, True),
    (5, 200, True, True, 1e-2, True),
    (6, 200, False, True, 1e-6, False),
    (7, 5, False, True, 1.0, True),
    (8, 5, True, False, 1e-6, True),
]


@pytest.mark.parametrize(("seed", "n_classes", "sparse", "weighted", "weight_decay", "fit_intercept"), GRID)
def test_bound_is_never_below_the_true_gap(seed, n_classes, sparse, weighted, weight_decay, fit_intercept):
    """At the optimum and at points around it (near, far, zero, arbitrary intercept), the certified
    gap >= J(W, b_model) - J*, its relative form >= (J - J*) / J*, and b*(W) never raises J; with
    adopt=False the model keeps its intercept and the bound holds for it."""
    n_samples = 600 if n_classes == 200 else 240
    data = problem(seed, n_classes, sparse, weighted, n_samples=n_samples)
    best, loss_gradient = optimum(data, n_classes, weight_decay, fit_intercept)
    rng = np.random.default_rng(seed + 100)
    for scale in (0.0, 1e-6, 1e-3, 0.1, 1.0):
        coef = best.coef + scale * rng.standard_normal(best.coef.shape) * (np.abs(best.coef).max() + 1.0)
        given = best.intercept + scale * rng.standard_normal(n_classes) if fit_intercept else np.zeros(n_classes)
        kept = certify(coef, given, data, weight_decay, fit_intercept, adopt=False)
        assert kept.gap >= loss_gradient(coef, given)[1] - best.objective - 1e-13
        np.testing.assert_array_equal(kept.intercept, given)
        certificate = certify(coef, given, data, weight_decay, fit_intercept)
        objective = loss_gradient(coef, certificate.intercept)[1]
        assert objective <= loss_gradient(coef, given)[1] + 1e-12
        assert certificate.objective == pytest.approx(objective, rel=1e-12, abs=1e-14)
        true_gap = objective - best.objective
        assert certificate.gap >= true_gap - 1e-13 * objective
        if certificate.relative_gap != math.inf:
            assert certificate.relative_gap >= true_gap / best.objective - 1e-13


def test_bound_holds_when_a_class_has_no_rows():
    """A class absent from the rows has no finite optimal intercept: the bound still holds for the
    model's own finite intercept, which the certificate keeps for that class."""
    data = problem(11, 4, False, True, absent=1)
    best, loss_gradient = optimum(data, 4, 1e-3, True)
    for scale in (1e-4, 0.1):
        coef = best.coef * (1 + scale)
        given = np.array([0.3, -0.2, 0.1, -5.0])
        certificate = certify(coef, given, data, 1e-3, True)
        assert certificate.intercept[3] == -5.0
        objective = loss_gradient(coef, certificate.intercept)[1]
        assert certificate.gap >= objective - best.objective


def test_bound_without_intercept_is_the_strong_convexity_bound():
    """Without an intercept no constraint binds: gap = ||dJ/dW||^2 / (2 lambda), exactly as computed
    by the training kernels' full pass."""
    data = problem(12, 3, False, False)
    coef = np.random.default_rng(0).standard_normal((3, data.n_features))
    _, _, grad_coef, _ = passes.full_loss_gradient(coef, np.zeros(3), data.X, data.y, 0.05)
    certificate = certify(coef, np.zeros(3), data, 0.05, fit_intercept=False)
    assert certificate.gap == pytest.approx(float(np.vdot(grad_coef, grad_coef)) / 0.1, rel=1e-12)


def test_no_bound_without_weight_decay():
    """At lambda = 0, J is not strongly convex: gap and relative gap are None (b* is still solved)."""
    data = problem(13, 3, False, False)
    certificate = certify(np.zeros((3, data.n_features)), np.zeros(3), data, 0.0, True)
    assert certificate.gap is None and certificate.relative_gap is None
    shares = np.bincount(data.y, minlength=3) / data.n_samples
    expected = np.log(shares) - np.log(shares).mean()
    np.testing.assert_allclose(certificate.intercept - certificate.intercept.mean(), expected)


def test_optimal_intercept_zeroes_the_intercept_gradient():
    """At b*, (1/n) sum_i s_i p_i(b*) = pi (dJ/db = 0) to rounding, from a far start."""
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((500, 6)) * 4
    weight = rng.uniform(0.2, 2.0, 500)
    weight /= weight.mean()
    y = rng.integers(0, 6, 500)
    shares = np.bincount(y, weights=weight, minlength=6) / 500
    b = optimal_intercept(logits, weight, shares, np.array([30.0, -30, 0, 5, 9, -1]))
    shifted = logits + b
    proba = np.exp(shifted - shifted.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(weight @ proba / 500, shares, atol=1e-13)
    assert abs(b.mean()) < 1e-12
