"""Facts about the optimizer options and the training loop's in-place gradients: they compute
the same quantities as the plain functions, the variance-reduced estimator is unbiased,
every option reaches the exact optimum, and a fixed seed gives the same model bit for bit."""

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from softreg import kernels, softmax
from softreg.config import ConfigError, load_config, resolve
from softreg.data import prepare, random_streams
from softreg.optim import SCHEDULES, SGD, learning_rate
from softreg.solve import exact_optimum
from softreg.train import ArrayData, evaluate_objective, fit

REPO_CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def problem(n_samples=240, n_features=6, n_classes=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)).astype(dtype)
    true_coef = rng.normal(size=(n_classes, n_features))
    y = (X @ true_coef.T + rng.gumbel(size=(n_samples, n_classes))).argmax(axis=1)
    coef = (0.3 * rng.normal(size=(n_classes, n_features))).astype(dtype)
    intercept = (0.3 * rng.normal(size=n_classes)).astype(dtype)
    return X, y, coef, intercept


def config(**optim):
    return resolve({"data": {"source": "builtin:iris"}, "model": {"weight_decay": 1e-2}, "optim": optim})


# -- the in-place gradients agree with the plain functions


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("n_samples", [1, 7, 64])
def test_batch_loss_gradient_equals_loss_gradient(sparse, n_samples):
    """The workspace version returns the batch loss and leaves the gradient of `loss_gradient`, to 1e-12."""
    X, y, coef, intercept = problem()
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
    X, y, coef, intercept = problem(n_samples=96, n_features=n_features, dtype=dtype)
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
    X, y, coef, intercept = problem()
    work = kernels.Workspace(*coef.shape, 50, X.dtype)
    chunked = kernels.chunked_loss_gradient(coef, intercept, kernels.array_chunks(X, y, 50), len(y), 0.3, work)
    for got, expected in zip(chunked, softmax.loss_gradient(coef, intercept, X, y, 0.3), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def snapshot_at(coef, intercept, X, y):
    _, _, grad_coef, grad_intercept = softmax.loss_gradient(coef, intercept, X, y, 0.0)
    return kernels.Snapshot(coef.copy(), intercept.copy(), grad_coef, grad_intercept)


def test_variance_reduced_gradient_is_the_svrg_formula():
    """g = grad L_B(w) - grad L_B(w~) + grad L(w~) + lambda w, each term from `loss_gradient`, to 1e-12."""
    X, y, coef, intercept = problem()
    anchor_coef, anchor_intercept = coef + 0.2, intercept - 0.1
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
    X, y, coef, intercept = problem(n_samples=250)
    snapshot = snapshot_at(coef - 0.5, intercept + 0.2, X, y)
    work = kernels.Workspace(*coef.shape, 64, X.dtype, n_models=2)
    total = np.zeros_like(work.gradient)
    for X_batch, y_batch in ArrayData(X, y).minibatches(64, np.random.default_rng(3)):
        kernels.variance_reduced_gradient(coef, intercept, snapshot, X_batch, y_batch, 0.3, work)
        total += work.gradient * len(y_batch) / len(y)
    _, _, grad_coef, grad_intercept = softmax.loss_gradient(coef, intercept, X, y, 0.3)
    np.testing.assert_allclose(total, np.concatenate([grad_coef.ravel(), grad_intercept]), rtol=1e-12, atol=1e-14)


def test_variance_reduced_gradient_at_the_snapshot_is_the_full_gradient():
    """At w = w~ the batch terms cancel: every batch's estimate is grad J itself (no noise left)."""
    X, y, coef, intercept = problem()
    snapshot = snapshot_at(coef, intercept, X, y)
    work = kernels.Workspace(*coef.shape, 16, X.dtype, n_models=2)
    kernels.variance_reduced_gradient(coef, intercept, snapshot, X[5:21], y[5:21], 0.3, work)
    _, _, grad_coef, grad_intercept = softmax.loss_gradient(coef, intercept, X, y, 0.3)
    np.testing.assert_allclose(work.grad_coef, grad_coef, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(work.grad_intercept, grad_intercept, rtol=1e-12, atol=1e-15)


# -- the options reach the exact optimum


@pytest.fixture(scope="module")
def small_problem():
    X, y, _, _ = problem(n_samples=400, n_features=5, n_classes=3, seed=1)
    return ArrayData(X, y), exact_optimum(X, y, 3, 1e-2)


@pytest.mark.parametrize(
    ("optim", "tolerance"),
    [
        ({"lr": 0.1, "momentum": 0.9, "schedule": "cosine", "epochs": 150}, 1e-4),
        ({"lr": 0.5, "momentum": 0.9, "schedule": "constant", "epochs": 40, "variance_reduction": "svrg"}, 1e-8),
        ({"lr": 0.2, "momentum": 0.0, "schedule": "constant", "epochs": 80, "variance_reduction": "svrg"}, 1e-8),
        ({"lr": 0.5, "momentum": 0.9, "nesterov": True, "epochs": 40, "variance_reduction": "svrg"}, 1e-8),
    ],
    ids=["sgd-momentum-cosine", "svrg-momentum", "svrg-plain", "svrg-nesterov"],
)
def test_every_option_reaches_the_exact_optimum(small_problem, optim, tolerance):
    """Plain SGD and SVRG end within a relative gap `tolerance` of the L-BFGS optimum J*, at its weights."""
    train, optimum = small_problem
    settings = config(batch_size=32, **optim)
    result = fit(train, 3, settings.training_settings(), np.random.default_rng(0))
    assert (result.objective - optimum.objective) / optimum.objective <= tolerance
    # the intercepts are unique up to a common shift; the optimum's are centred
    np.testing.assert_allclose(result.coef, optimum.coef, atol=30 * math.sqrt(tolerance))
    centred = result.intercept - result.intercept.mean()
    np.testing.assert_allclose(centred, optimum.intercept, atol=30 * math.sqrt(tolerance))


def test_svrg_without_intercept_keeps_it_zero(small_problem):
    """fit_intercept: false with SVRG: the intercept stays exactly 0 and the gradient norm ignores it."""
    train, _ = small_problem
    settings = resolve({
        "data": {"source": "builtin:iris"}, "model": {"weight_decay": 1e-2, "fit_intercept": False},
        "optim": {"lr": 0.5, "epochs": 5, "batch_size": 32, "variance_reduction": "svrg"},
    })
    result = fit(train, 3, settings.training_settings(), np.random.default_rng(0))
    assert np.all(result.intercept == 0.0)
    assert result.grad_norm == pytest.approx(
        evaluate_objective(result.coef, result.intercept, train, settings.training_settings())[1], rel=1e-9
    )


def test_svrg_logs_the_objective_every_epoch(small_problem):
    """With SVRG each epoch's snapshot is its evaluation: every history row has J and ||grad J||, and they
    are J at the weights of that epoch's end."""
    train, _ = small_problem
    settings = config(lr=0.5, epochs=6, batch_size=32, variance_reduction="svrg")
    result = fit(train, 3, settings.training_settings(), np.random.default_rng(0))
    assert all(record.objective is not None and record.grad_norm is not None for record in result.history)
    objective, grad_norm = evaluate_objective(result.coef, result.intercept, train, settings.training_settings())
    assert result.history[-1].objective == pytest.approx(objective, rel=1e-12)
    assert result.history[-1].grad_norm == pytest.approx(grad_norm, rel=1e-9)


@pytest.mark.parametrize("variance_reduction", ["none", "svrg"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_fixed_seed_gives_the_same_model_bit_for_bit(small_problem, variance_reduction, dtype):
    """Two runs from the same seed: identical weights and identical logged objectives."""
    train, _ = small_problem
    train = ArrayData(train.X.astype(dtype), train.y)
    settings = config(lr=0.3, epochs=5, batch_size=48, nesterov=True, variance_reduction=variance_reduction)
    runs = [fit(train, 3, settings.training_settings(), np.random.default_rng(7)) for _ in range(2)]
    assert runs[0].coef.dtype == dtype
    assert np.array_equal(runs[0].coef, runs[1].coef) and np.array_equal(runs[0].intercept, runs[1].intercept)
    assert [r.objective for r in runs[0].history] == [r.objective for r in runs[1].history]


def test_letters_fast_config_ends_within_1e_4_of_the_exact_optimum():
    """configs/letters-fast.yaml (lambda = 1e-4, the classic split) ends within relative gap 1e-4 of J*."""
    settings = load_config(REPO_CONFIGS / "letters-fast.yaml")
    assert settings.model.weight_decay == 1e-4 and settings.optim.batch_size == 256
    streams = random_streams(settings.seed)
    prepared = prepare(settings.data, np.dtype(settings.model.dtype), streams.split)
    assert prepared.train.n_samples == 16000 and prepared.test.n_samples == 4000
    result = fit(prepared.train, len(prepared.classes), settings.training_settings(), streams.batches, val=prepared.val)
    optimum = exact_optimum(prepared.train.X, prepared.train.y, len(prepared.classes), 1e-4)
    assert (result.objective - optimum.objective) / optimum.objective <= 1e-4


# -- the config key and the schedules


def test_variance_reduction_key_is_checked_with_a_suggestion(tmp_path):
    """optim.variance_reduction accepts none|svrg; a typo names the key, the choices and the fix."""
    path = tmp_path / "c.yaml"
    path.write_text("data: {source: 'builtin:iris'}\noptim: {variance_reduction: svgr}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == (
        f"{path}: optim.variance_reduction must be one of none, svrg, got 'svgr' (did you mean 'svrg'?)"
    )
    assert resolve({"data": {"source": "builtin:iris"}}).optim.variance_reduction == "none"


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedules_are_pure_functions_of_progress(schedule):
    """The rate depends on the progress alone: the same arguments give the same value, in any order."""
    progress = np.linspace(0.0, 10.0, 41)
    forward = [learning_rate(schedule, 0.3, p, 10, step_size=3, gamma=0.5, decay=0.7) for p in progress]
    backward = [learning_rate(schedule, 0.3, p, 10, step_size=3, gamma=0.5, decay=0.7) for p in progress[::-1]]
    assert forward == backward[::-1]
    assert forward[0] == pytest.approx(0.3)
    assert all(rate >= 0.0 for rate in forward)


def test_schedule_values():
    """Known values: cosine ends at 0 and is half-way at half time; step halves every 3 epochs;
    inverse_time is lr / (1 + decay * progress)."""
    assert learning_rate("cosine", 0.3, 5.0, 10) == pytest.approx(0.15)
    assert learning_rate("cosine", 0.3, 10.0, 10) == pytest.approx(0.0, abs=1e-15)
    assert learning_rate("step", 0.3, 6.5, 10, step_size=3, gamma=0.5) == pytest.approx(0.075)
    assert learning_rate("inverse_time", 0.3, 2.0, 10, decay=0.5) == pytest.approx(0.15)
    assert learning_rate("constant", 0.3, 7.0, 10) == 0.3


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_step_refuses_grads_that_do_not_pair_with_the_params(momentum):
    """One gradient per parameter: an extra or a missing one is an error, not silently dropped."""
    params = [np.zeros(3)]
    with pytest.raises(ValueError):
        SGD(momentum=momentum).step(params, [np.ones(3), np.ones(1)], 0.1)
    with pytest.raises(ValueError):
        SGD(momentum=momentum).step([np.zeros(3), np.zeros(1)], [np.ones(3)], 0.1)
