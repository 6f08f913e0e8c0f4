"""The training loop's kernels equal the math page (`softreg.softmax`): the batch loss and
gradient, the chunked full pass, the SVRG estimator, with and without sample weights."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from softreg import kernels, softmax
from softreg.train import ArrayData, passes
from tests.strategies import linear_problem

# -- the in-place gradients agree with the plain functions


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("n_samples", [1, 7, 64])
def test_batch_loss_gradient_equals_loss_gradient(sparse, n_samples):
    """The workspace version returns the batch loss and leaves the gradient of `loss_gradient`, to 1e-12."""
    X, y, coef, intercept = linear_problem()
    X_batch, y_batch = X[:n_samples], y[:n_samples]
    if sparse:
        X_batch = sp.csr_matrix(X_batch)
    work = kernels.Workspace(*coef.shape, 64, X.dtype)
    loss, _, grad_coef, grad_intercept = softmax.loss_gradient(coef, intercept, X_batch, y_batch, 0.3)
    assert kernels.batch_loss_gradient(coef, intercept, X_batch, y_batch, 0.3, work) == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(work.grad_coef, grad_coef, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(work.grad_intercept, grad_intercept, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("n_features", "dtype", "rtol"), [(70, np.float32, 1e-4), (300, np.float64, 1e-12)])
def test_wide_data_takes_the_row_major_product_and_agrees(n_features, dtype, rtol):
    """Wide dense X computes the logits the other way round; loss and gradients are unchanged (SVRG too)."""
    X, y, coef, intercept = linear_problem(n_samples=96, n_features=n_features, dtype=dtype)
    work = kernels.Workspace(*coef.shape, 96, dtype, n_models=2)
    loss, _, grad_coef, grad_intercept = softmax.loss_gradient(coef, intercept, X, y, 0.3)
    assert kernels.batch_loss_gradient(coef, intercept, X, y, 0.3, work) == pytest.approx(loss, rel=rtol)
    np.testing.assert_allclose(work.grad_coef, grad_coef, rtol=rtol, atol=rtol * 1e-2)
    snapshot = snapshot_at(coef, intercept, X, y)
    kernels.variance_reduced_gradient(coef, intercept, snapshot, X, y, 0.3, work)
    np.testing.assert_allclose(work.grad_coef, grad_coef, rtol=rtol, atol=rtol * 1e-2)
    np.testing.assert_allclose(work.grad_intercept, grad_intercept, rtol=rtol, atol=rtol * 1e-2)


def test_batch_loss_gradient_is_finite_for_extreme_logits():
    """Logits of +-1e6 give a finite loss and gradient in the workspace version too."""
    X = np.array([[1e6, -1e6], [3e5, 2e5], [-1e6, 1e6]])
    coef = np.array([[1.0, -1.0], [-2.0, 0.5], [0.0, 3.0]])
    work = kernels.Workspace(3, 2, 3, np.float64)
    loss = kernels.batch_loss_gradient(coef, np.zeros(3), X, np.array([1, 0, 2]), 0.1, work)
    assert math.isfinite(loss) and loss > 1e5
    assert np.all(np.isfinite(work.gradient))


def test_chunked_loss_gradient_equals_the_one_shot_loss_gradient():
    """Chunks of 50 rows (the last one short) give the one-shot objective and gradient, to 1e-12."""
    X, y, coef, intercept = linear_problem()
    work = kernels.Workspace(*coef.shape, 50, X.dtype)
    chunked = passes.chunked_softmax_loss_gradient(coef, intercept, passes.array_chunks(X, y, 50), len(y), 0.3, work)
    for got, expected in zip(chunked, softmax.loss_gradient(coef, intercept, X, y, 0.3), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def snapshot_at(coef, intercept, X, y):
    _, _, grad_coef, grad_intercept = softmax.loss_gradient(coef, intercept, X, y, 0.0)
    return kernels.Snapshot(coef.copy(), intercept.copy(), grad_coef, grad_intercept)


def test_variance_reduced_gradient_is_the_svrg_formula():
    """g = grad L_B(w) - grad L_B(w~) + grad L(w~) + lambda w, each term from `loss_gradient`, to 1e-12."""
    X, y, coef, intercept = linear_problem()
    # another model: adding one vector to every class's weights leaves P as it is, and the test empty
    anchor_coef, anchor_intercept = 0.5 * coef, intercept[::-1].copy()
    snapshot = snapshot_at(anchor_coef, anchor_intercept, X, y)
    X_batch, y_batch = X[:32], y[:32]
    work = kernels.Workspace(*coef.shape, 32, X.dtype, n_models=2)
    loss = kernels.variance_reduced_gradient(coef, intercept, snapshot, X_batch, y_batch, 0.3, work)
    here = softmax.loss_gradient(coef, intercept, X_batch, y_batch, 0.3)
    there = softmax.loss_gradient(anchor_coef, anchor_intercept, X_batch, y_batch, 0.0)
    assert loss == pytest.approx(here[0], rel=1e-12)
    np.testing.assert_allclose(work.grad_coef, here[2] - there[2] + snapshot.grad_coef, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        work.grad_intercept, here[3] - there[3] + snapshot.grad_intercept, rtol=1e-12, atol=1e-14
    )


def test_variance_reduced_gradient_averages_to_the_full_gradient():
    """Over the batches of one epoch, weighted by size, the SVRG estimates sum to grad J exactly (unbiased)."""
    X, y, coef, intercept = linear_problem(n_samples=250)
    snapshot = snapshot_at(0.5 * coef, intercept[::-1].copy(), X, y)
    work = kernels.Workspace(*coef.shape, 64, X.dtype, n_models=2)
    total = np.zeros_like(work.gradient)
    for X_batch, y_batch, _ in ArrayData(X, y).minibatches(64, np.random.default_rng(3)):
        kernels.variance_reduced_gradient(coef, intercept, snapshot, X_batch, y_batch, 0.3, work)
        total += work.gradient * len(y_batch) / len(y)
    _, _, grad_coef, grad_intercept = softmax.loss_gradient(coef, intercept, X, y, 0.3)
    np.testing.assert_allclose(total, np.concatenate([grad_coef.ravel(), grad_intercept]), rtol=1e-12, atol=1e-14)


def test_variance_reduced_gradient_at_the_snapshot_is_the_full_gradient():
    """At w = w~ the batch terms cancel: every batch's estimate is grad J itself (no noise left)."""
    X, y, coef, intercept = linear_problem()
    snapshot = snapshot_at(coef, intercept, X, y)
    work = kernels.Workspace(*coef.shape, 16, X.dtype, n_models=2)
    kernels.variance_reduced_gradient(coef, intercept, snapshot, X[5:21], y[5:21], 0.3, work)
    _, _, grad_coef, grad_intercept = softmax.loss_gradient(coef, intercept, X, y, 0.3)
    np.testing.assert_allclose(work.grad_coef, grad_coef, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(work.grad_intercept, grad_intercept, rtol=1e-12, atol=1e-15)


# -- sample weights: a weighted mean of the losses


@given(seed=st.integers(0, 2**32 - 1), n_samples=st.integers(1, 40), sparse=st.booleans())
def test_weighted_batch_kernel_equals_the_weighted_page(seed, n_samples, sparse):
    """With relative weights w (mean 1 over the data), the kernel's batch loss is sum w_i l_i / n and its
    gradient that of the page's weighted mean on the same batch, scaled by the batch's mean weight."""
    rng = np.random.default_rng(seed)
    X, y, coef, intercept = linear_problem(n_samples=n_samples, seed=seed % 1000)
    weight = rng.uniform(0.0, 3.0, size=n_samples)
    X_batch = sp.csr_matrix(X) if sparse else X
    work = kernels.Workspace(*coef.shape, n_samples, X.dtype)
    loss = kernels.batch_loss_gradient(coef, intercept, X_batch, y, 0.0, work, weight)
    scale = weight.mean()
    if scale == 0:
        return
    page_loss, _, grad_coef, grad_intercept = softmax.loss_gradient(coef, intercept, X_batch, y, 0.0, weight)
    assert loss == pytest.approx(scale * page_loss, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(work.grad_coef, scale * grad_coef, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(work.grad_intercept, scale * grad_intercept, rtol=1e-10, atol=1e-13)


def test_weight_two_equals_a_duplicated_row_in_the_objective_and_gradient():
    """The weighted mean with weight 2 on some rows is the plain mean over the data with those rows
    twice: objective and gradient equal to 1e-12, on the page and through ArrayData's chunked pass."""
    X, y, coef, intercept = linear_problem(n_samples=90)
    twice = np.arange(90) % 4 == 0
    weight = np.where(twice, 2.0, 1.0)
    X_dup, y_dup = np.vstack([X, X[twice]]), np.concatenate([y, y[twice]])
    expected = softmax.loss_gradient(coef, intercept, X_dup, y_dup, 0.1)
    for got in (
        softmax.loss_gradient(coef, intercept, X, y, 0.1, weight),
        passes.chunked_softmax_loss_gradient(
            coef, intercept, ArrayData(X, y, weight).chunks(25), 90, 0.1, kernels.Workspace(*coef.shape, 25, X.dtype)
        ),
    ):
        for value, reference in zip(got, expected, strict=True):
            np.testing.assert_allclose(value, reference, rtol=1e-12, atol=1e-15)


def test_equal_weights_are_dropped_and_change_nothing():
    """Weights that are all equal (any value) are no weights: ArrayData keeps None, so the model is
    bit-identical to the unweighted one."""
    X, y, _, _ = linear_problem()
    assert ArrayData(X, y, np.full(len(y), 3.0)).sample_weight is None
    assert ArrayData(X, y, np.linspace(1, 2, len(y))).sample_weight.mean() == pytest.approx(1.0)


def test_weighted_svrg_averages_to_the_weighted_full_gradient():
    """SVRG with sample weights stays unbiased: over one epoch its estimates sum to the weighted grad J."""
    X, y, coef, intercept = linear_problem(n_samples=250)
    weight = np.random.default_rng(1).uniform(0.2, 2.0, size=250)
    data = ArrayData(X, y, weight)
    anchor = softmax.loss_gradient(0.5 * coef, intercept[::-1].copy(), X, y, 0.0, weight)
    anchor_coef_grad, anchor_intercept_grad = anchor[2], anchor[3]
    snapshot = kernels.Snapshot(0.5 * coef, intercept[::-1].copy(), anchor_coef_grad, anchor_intercept_grad)
    work = kernels.Workspace(*coef.shape, 64, X.dtype, n_models=2)
    total = np.zeros_like(work.gradient)
    for X_batch, y_batch, w_batch in data.minibatches(64, np.random.default_rng(3)):
        kernels.variance_reduced_gradient(coef, intercept, snapshot, X_batch, y_batch, 0.3, work, w_batch)
        total += work.gradient * len(y_batch) / len(y)
    _, _, grad_coef, grad_intercept = softmax.loss_gradient(coef, intercept, X, y, 0.3, weight)
    np.testing.assert_allclose(total, np.concatenate([grad_coef.ravel(), grad_intercept]), rtol=1e-10, atol=1e-13)


# -- sparse rows stored scaled, centred implicitly


@given(seed=st.integers(0, 2**32 - 1), n_samples=st.integers(1, 30))
def test_implicit_centring_equals_the_dense_centred_rows(seed, n_samples):
    """Sparse X with a centre c: the kernels' loss and gradient (plain and SVRG, and the chunked pass)
    equal the page's on the dense rows X - c, to 1e-12."""
    rng = np.random.default_rng(seed)
    X, y, coef, intercept = linear_problem(n_samples=n_samples, seed=seed % 997)
    X[rng.random(X.shape) < 0.6] = 0.0
    center = rng.normal(size=X.shape[1])
    sparse = sp.csr_matrix(X)
    expected = softmax.loss_gradient(coef, intercept, X - center, y, 0.2)
    work = kernels.Workspace(*coef.shape, n_samples, X.dtype, n_models=2)
    loss = kernels.batch_loss_gradient(coef, intercept, sparse, y, 0.2, work, center=center)
    assert loss == pytest.approx(expected[0], rel=1e-12)
    np.testing.assert_allclose(work.grad_coef, expected[2], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(work.grad_intercept, expected[3], rtol=1e-10, atol=1e-12)
    chunked = passes.full_loss_gradient(coef, intercept, sparse, y, 0.2, chunk_rows=7, center=center)
    for value, reference in zip(chunked, expected, strict=True):
        np.testing.assert_allclose(value, reference, rtol=1e-10, atol=1e-12)
    anchor = softmax.loss_gradient(0.5 * coef, intercept, X - center, y, 0.0)
    snapshot = kernels.Snapshot(0.5 * coef, intercept, anchor[2], anchor[3])
    kernels.variance_reduced_gradient(coef, intercept, snapshot, sparse, y, 0.2, work, center=center)
    there = softmax.loss_gradient(0.5 * coef, intercept, X - center, y, 0.0)
    np.testing.assert_allclose(work.grad_coef, expected[2] - there[2] + anchor[2], rtol=1e-10, atol=1e-12)
