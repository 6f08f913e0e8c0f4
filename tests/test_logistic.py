"""Binary logistic regression, checked against finite differences, scikit-learn and the softmax model."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from threadpoolctl import threadpool_limits

from softreg import softmax
from softreg.compare import logistic


def random_problem(seed, n_samples=40, n_features=4, scale=1.0):
    """X (n, d), targets in {0, 1} (both present), coef (1, d), intercept (1,)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)) * scale
    target = np.arange(n_samples) % 2
    rng.shuffle(target)
    return X, target, rng.normal(size=(1, n_features)), rng.normal(size=1)


def test_sigmoid_and_softplus_are_finite_and_exact_at_extreme_margins():
    """sigmoid and softplus stay finite without warnings for margins of +-1e6, and match the reference formulas."""
    margin = np.array([-1e6, -800.0, -30.0, -1.0, 0.0, 1.0, 30.0, 800.0, 1e6])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        proba, softplus = logistic.sigmoid(margin), logistic.log1p_exp(margin)
    assert np.all(np.isfinite(proba)) and np.all(np.isfinite(softplus))
    np.testing.assert_array_equal(proba[[0, -1]], [0.0, 1.0])
    np.testing.assert_allclose(softplus[[0, -1]], [0.0, 1e6])
    moderate = margin[2:-2]
    np.testing.assert_allclose(proba[2:-2], 1.0 / (1.0 + np.exp(-moderate)), rtol=1e-15)
    np.testing.assert_allclose(softplus[2:-2], np.logaddexp(0.0, moderate), rtol=1e-15)


@given(seed=st.integers(0, 2**32 - 1), weight_decay=st.sampled_from([0.0, 1e-2, 1.0]), sparse=st.booleans())
def test_gradient_matches_central_finite_differences(seed, weight_decay, sparse):
    """The analytic gradient of L (coef and intercept) equals central differences to 1e-7."""
    X, target, coef, intercept = random_problem(seed, n_samples=15, n_features=3)
    X = sp.csr_matrix(X) if sparse else X
    _, _, grad_coef, grad_intercept = logistic.loss_gradient(coef, intercept, X, target, weight_decay)
    theta = np.concatenate([coef[0], intercept])
    step = 1e-6

    def objective(values):
        return logistic.loss_gradient(values[:-1].reshape(1, -1), values[-1:], X, target, weight_decay)[1]

    numeric = np.array(
        [(objective(theta + step * unit) - objective(theta - step * unit)) / (2 * step) for unit in np.eye(len(theta))]
    )
    np.testing.assert_allclose(np.concatenate([grad_coef[0], grad_intercept]), numeric, atol=1e-7)


def test_loss_is_scikit_learns_log_loss_and_the_intercept_is_not_decayed():
    """data_loss is sklearn's log_loss; the penalty is weight_decay/2 ||coef||^2 and leaves the intercept alone."""
    X, target, coef, intercept = random_problem(1)
    data_loss, objective, _, grad_intercept = logistic.loss_gradient(coef, intercept, X, target, 0.3)
    proba = logistic.predict_proba(coef, intercept, X)
    assert data_loss == pytest.approx(log_loss(target, proba), rel=1e-12)
    assert objective == pytest.approx(data_loss + 0.15 * float(np.sum(coef**2)), rel=1e-12)
    _, _, _, undecayed = logistic.loss_gradient(coef, intercept, X, target, 0.0)
    np.testing.assert_array_equal(grad_intercept, undecayed)


def test_probabilities_equal_the_two_class_softmax_of_the_mapped_weights():
    """p_logistic(w, b) = softmax([-w/2, w/2], [-b/2, b/2])[:, 1], and from_softmax undoes to_softmax."""
    X, _, coef, intercept = random_problem(2, scale=5.0)
    softmax_coef, softmax_intercept = logistic.to_softmax(coef, intercept)
    assert softmax_coef.shape == (2, X.shape[1]) and softmax_intercept.shape == (2,)
    np.testing.assert_array_equal(softmax_coef.sum(axis=0), 0.0)
    np.testing.assert_allclose(
        softmax.predict_proba(softmax_coef, softmax_intercept, X)[:, 1],
        logistic.predict_proba(coef, intercept, X),
        atol=1e-15,
    )
    back_coef, back_intercept = logistic.from_softmax(softmax_coef, softmax_intercept)
    np.testing.assert_allclose(back_coef, coef, rtol=1e-15)
    np.testing.assert_allclose(back_intercept, intercept, rtol=1e-15)


def test_the_mapping_constants():
    """lambda -> lambda/2, eta -> 2 eta, and scikit-learn's C = 2/(n lambda)."""
    assert logistic.logistic_weight_decay(0.02) == 0.01
    assert logistic.logistic_learning_rate(0.05) == 0.1
    assert logistic.sklearn_C(200, 0.01) == pytest.approx(1.0)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_exact_optimum_is_scikit_learns(fit_intercept):
    """L-BFGS on L with decay alpha agrees with LogisticRegression(C = 1/(n alpha)) to 1e-6 in coefficients."""
    X, target, _, _ = random_problem(3, n_samples=120, n_features=5)
    target = (X @ np.arange(1.0, 6.0) + np.random.default_rng(0).normal(size=120) > 0).astype(int)
    alpha = 0.01
    optimum = logistic.exact_optimum(X, target, alpha, fit_intercept)
    with threadpool_limits(limits=1, user_api="blas"):
        reference = LogisticRegression(
            C=1.0 / (len(target) * alpha), tol=1e-12, max_iter=10000, fit_intercept=fit_intercept
        )
        reference.fit(X, target)
    assert optimum.coef.shape == (1, 5) and optimum.intercept.shape == (1,)
    assert optimum.grad_norm < 1e-8
    np.testing.assert_allclose(optimum.coef, reference.coef_, atol=1e-6)
    np.testing.assert_allclose(optimum.intercept, reference.intercept_, atol=1e-6)


def test_sgd_path_takes_plain_gradient_steps():
    """Without momentum each step is w <- w - lr * grad L(w) on that step's batch, from a zero start."""
    X, target, _, _ = random_problem(4, n_samples=12)
    batches = [(X[:6], target[:6], 0.5), (X[6:], target[6:], 0.25)]
    coef, intercept = np.zeros((1, X.shape[1])), np.zeros(1)
    expected = []
    for X_batch, target_batch, lr in batches:
        _, _, grad_coef, grad_intercept = logistic.loss_gradient(coef, intercept, X_batch, target_batch, 0.1)
        coef, intercept = coef - lr * grad_coef, intercept - lr * grad_intercept
        expected.append((coef, intercept))
    path = [(c.copy(), b.copy()) for c, b in logistic.sgd_path(iter(batches), X.shape[1], 0.1)]
    for (got_coef, got_intercept), (want_coef, want_intercept) in zip(path, expected, strict=True):
        np.testing.assert_allclose(got_coef, want_coef, rtol=1e-15)
        np.testing.assert_allclose(got_intercept, want_intercept, rtol=1e-15)


def test_sgd_path_without_intercept_keeps_it_zero():
    """fit_intercept=False: the intercept is never updated."""
    X, target, _, _ = random_problem(5)
    for _, intercept in logistic.sgd_path([(X, target, 1.0)] * 3, X.shape[1], 0.0, momentum=0.9, fit_intercept=False):
        assert intercept[0] == 0.0
