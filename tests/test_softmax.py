"""Facts about the model's math: stability, invariances and the analytic gradient."""

import numpy as np
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import logsumexp

from softreg import softmax
from softreg.train import passes
from tests.strategies import logits, problems


@given(logits())
def test_log_softmax_equals_scipy_logsumexp_reference(z):
    """log_softmax(z) == z - logsumexp(z) row-wise (scipy as the independent reference)."""
    expected = z - logsumexp(z, axis=1, keepdims=True)
    np.testing.assert_allclose(softmax.log_softmax(z), expected, rtol=1e-12, atol=1e-9)


@given(logits())
def test_softmax_rows_are_probabilities_for_any_finite_logits(z):
    """Every row is finite, in [0, 1] and sums to one, whatever the scale of the logits."""
    p = softmax.softmax(z)
    assert np.all(np.isfinite(p))
    assert np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)


@given(logits(elements=st.floats(-100, 100)), st.floats(-1e3, 1e3))
def test_softmax_is_shift_invariant(z, shift):
    """Adding the same constant to every logit of a row changes nothing."""
    np.testing.assert_allclose(softmax.softmax(z + shift), softmax.softmax(z), rtol=1e-9, atol=1e-12)


def test_extreme_logits_give_finite_loss_and_gradient():
    """Logits of +-1e6 produce no NaN or inf in p, log p, the loss or the gradient."""
    z = np.array([[1e6, -1e6, 0.0], [-1e6, -1e6, -1e6], [1e6, 1e6, -1e6]])
    assert np.all(np.isfinite(softmax.softmax(z)))
    assert np.all(np.isfinite(softmax.log_softmax(z)))
    X = np.array([[1e6, -1e6], [3e5, 2e5], [-1e6, 1e6]])
    coef = np.array([[1.0, -1.0], [-2.0, 0.5], [0.0, 3.0]])
    loss, objective, grad_coef, grad_intercept = softmax.loss_gradient(coef, np.zeros(3), X, np.array([1, 0, 2]), 0.1)
    assert np.isfinite(loss) and np.isfinite(objective)
    assert np.all(np.isfinite(grad_coef)) and np.all(np.isfinite(grad_intercept))
    assert loss > 1e5  # the wrong classes are predicted with certainty: a huge but finite loss


def test_softmax_jacobian_is_diag_p_minus_p_p_transpose():
    """d softmax / d z = diag(p) - p p^T, checked by central finite differences."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=5)
    p = softmax.softmax(z[None, :])[0]
    step = 1e-6
    numeric = np.empty((5, 5))
    for column in range(5):
        delta = np.zeros(5)
        delta[column] = step
        forward, backward = softmax.softmax((z + delta)[None, :])[0], softmax.softmax((z - delta)[None, :])[0]
        numeric[:, column] = (forward - backward) / (2 * step)
    np.testing.assert_allclose(numeric, np.diag(p) - np.outer(p, p), atol=1e-9)


STEP = 1e-6
EPS = np.finfo(np.float64).eps


def _numeric_gradient(function, theta, step=STEP):
    """Central differences, each divided by the distance between the two points as stored
    (theta + step and theta - step are rounded, so it is not exactly 2 * step)."""
    gradient = np.empty_like(theta)
    for index in range(theta.size):
        delta = np.zeros_like(theta)
        delta.flat[index] = step
        above, below = theta + delta, theta - delta
        gradient.flat[index] = (function(above) - function(below)) / (above.flat[index] - below.flat[index])
    return gradient


def _central_difference_error_bound(X, coef, intercept, objective, step=STEP):
    """An absolute bound on |central difference - derivative| of J along any one parameter.

    Truncation: step**2 / 6 * |J3|, J3 the third derivative. Along W_kj,
    J3 = (1/n) sum_i x_ij**3 p_ik (1 - p_ik) (1 - 2 p_ik) (the penalty is quadratic), and
    |p (1 - p) (1 - 2 p)| <= 1 / (6 sqrt 3) < 0.1; the intercept's x is 1.
    Rounding: J is computed with an absolute error of about eps times the magnitudes it is summed
    from (logits that are sums of n_features + 1 products, then n rows and K * d squares), and
    the difference of two such values is divided by 2 * step. A factor 10 covers the constants.
    """
    n_samples, n_features = X.shape
    largest_x = max(1.0, float(np.abs(X).max()))
    truncation = step**2 / 6 * 0.1 * largest_x**3
    logit_size = float((np.abs(X) @ np.abs(coef).T + np.abs(intercept)).max())
    magnitude = (n_features + 2) * logit_size + (n_samples + coef.size) * abs(objective)
    rounding = EPS * magnitude / step
    return 10 * (truncation + rounding)


@given(problems(), st.sampled_from([0.0, 1e-3, 0.5]))
def test_gradient_matches_central_finite_differences(problem, weight_decay):
    """Each component of the analytic gradient of J is within the central-difference error bound
    (step**2 truncation plus eps/step rounding, saturated logits included) plus 1e-6 relative."""
    X, y, coef, intercept = problem

    def objective(theta):
        return softmax.loss_gradient(theta[: coef.size].reshape(coef.shape), theta[coef.size:], X, y, weight_decay)[1]

    theta = np.concatenate([coef.ravel(), intercept])
    _, value, grad_coef, grad_intercept = softmax.loss_gradient(coef, intercept, X, y, weight_decay)
    analytic = np.concatenate([grad_coef.ravel(), grad_intercept])
    numeric = _numeric_gradient(objective, theta)
    bound = _central_difference_error_bound(X, coef, intercept, value)
    np.testing.assert_allclose(numeric, analytic, rtol=1e-6, atol=bound)


def test_finite_difference_check_sees_a_gradient_off_by_1e_4():
    """The tolerance is tight enough to notice a weight decay of 1e-4 left out of the gradient."""
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(10, 3)), rng.integers(0, 3, size=10)
    coef, intercept = rng.normal(size=(3, 3)), rng.normal(size=3)

    def objective(theta):
        return softmax.loss_gradient(theta[:9].reshape(3, 3), theta[9:], X, y, 1e-4)[1]

    _, value, grad_coef, _ = softmax.loss_gradient(coef, intercept, X, y, 0.0)
    numeric = _numeric_gradient(objective, np.concatenate([coef.ravel(), intercept]))
    bound = _central_difference_error_bound(X, coef, intercept, value)
    assert bound < 1e-6  # far below the 1e-4 * |coef| the missing decay makes
    assert not np.allclose(numeric[:9], grad_coef.ravel(), rtol=1e-6, atol=bound)


def test_intercept_is_not_decayed():
    """Weight decay adds lambda*W to the coef gradient and nothing to the intercept gradient."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 4, size=20)
    coef, intercept = rng.normal(size=(4, 3)), rng.normal(size=4) * 5
    plain = softmax.loss_gradient(coef, intercept, X, y, 0.0)
    decayed = softmax.loss_gradient(coef, intercept, X, y, 0.7)
    np.testing.assert_allclose(decayed[2] - plain[2], 0.7 * coef, rtol=1e-12)
    np.testing.assert_array_equal(decayed[3], plain[3])
    assert np.isclose(decayed[1] - plain[1], 0.35 * np.sum(coef**2), rtol=1e-12)


def test_sparse_input_gives_the_dense_result():
    """A CSR matrix gives the same loss and gradient as its dense copy."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 8)) * (rng.random((30, 8)) < 0.3)
    y = rng.integers(0, 3, size=30)
    coef, intercept = rng.normal(size=(3, 8)), rng.normal(size=3)
    dense = softmax.loss_gradient(coef, intercept, X, y, 0.1)
    sparse = softmax.loss_gradient(coef, intercept, sp.csr_matrix(X), y, 0.1)
    for a, b in zip(dense, sparse, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


@given(problems(max_rows=40), st.integers(1, 9))
def test_chunked_full_loss_equals_one_shot(problem, chunk_rows):
    """Summing the objective over row chunks gives the same J and gradient as one pass."""
    X, y, coef, intercept = problem
    one_shot = softmax.loss_gradient(coef, intercept, X, y, 0.3)
    chunked = passes.full_loss_gradient(coef, intercept, X, y, 0.3, chunk_rows=chunk_rows)
    for a, b in zip(one_shot, chunked, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_float32_input_computes_in_float32():
    """float32 features and weights give float32 gradients (float32 on request)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(10, 4)).astype(np.float32)
    coef = np.zeros((3, 4), dtype=np.float32)
    y = rng.integers(0, 3, 10)
    _, _, grad_coef, grad_intercept = softmax.loss_gradient(coef, np.zeros(3, np.float32), X, y, 0.1)
    assert grad_coef.dtype == np.float32 and grad_intercept.dtype == np.float32
