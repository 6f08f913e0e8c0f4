"""Facts about the optimizer options and the training loop's in-place gradients: they compute
the same quantities as the plain functions, the variance-reduced estimator is unbiased,
every option reaches the exact optimum, and a fixed seed gives the same model bit for bit."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from softreg.config import ConfigError, load_config, resolve
from softreg.prepare.data import prepare, random_streams
from softreg.solve import exact_optimum
from softreg.train import ArrayData, evaluate_objective, fit
from softreg.train.optim import SCHEDULES, SGD, learning_rate
from tests.strategies import linear_problem

REPO_CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def config(**optim):
    """Fixed-epoch runs (optim.tol null unless given): these tests follow the optimiser, not the stopping rule."""
    optim = {"tol": None, **optim}
    return resolve({"data": {"source": "builtin:iris"}, "model": {"weight_decay": 1e-2}, "optim": optim})


# -- the options reach the exact optimum


@pytest.fixture(scope="module")
def small_problem():
    X, y, _, _ = linear_problem(n_samples=400, n_features=5, n_classes=3, seed=1)
    return ArrayData(X, y), exact_optimum(X, y, 3, 1e-2)


@pytest.mark.parametrize(
    ("optim", "tolerance"),
    [
        ({"lr": 0.1, "momentum": 0.9, "schedule": "cosine", "epochs": 150}, 1e-4),
        ({"lr": 0.5, "momentum": 0.9, "schedule": "constant", "epochs": 40, "variance_reduction": "svrg"}, 1e-8),
        ({"lr": "auto", "momentum": 0.0, "schedule": "constant", "epochs": 80, "variance_reduction": "svrg"}, 1e-8),
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


def test_svrg_ends_each_epoch_at_the_mean_of_its_second_half(small_problem):
    """The SVRG estimator moves the weights to the mean of the iterates after the steps of the epoch's
    second half and takes its snapshot there; after a restore (no steps seen) the weights stay."""
    from softreg.train.gradients import VarianceReducedGradient

    train, _ = small_problem
    n_classes, n_features = 3, train.n_features
    estimator = VarianceReducedGradient(n_classes, n_features, train.n_samples, np.float64, 100, 1e-2, True)
    steps = math.ceil(train.n_samples / 100)  # 4: steps 2 and 3 are averaged
    weights = np.zeros(n_classes * n_features + n_classes)
    coef, intercept = weights[: n_classes * n_features].reshape(n_classes, n_features), weights[n_classes * n_features:]
    iterates = np.random.default_rng(0).normal(size=(steps, weights.size))
    for step, iterate in enumerate(iterates):
        weights[...] = iterate
        estimator.after_step(weights, step)
    estimator.end_epoch(coef, intercept, train)
    np.testing.assert_allclose(weights, iterates[steps // 2:].mean(axis=0), rtol=1e-15)
    assert estimator.snapshot.coef.tobytes() == coef.tobytes()
    before = weights.copy()
    estimator.end_epoch(coef, intercept, train)
    assert weights.tobytes() == before.tobytes()


@pytest.mark.parametrize("variance_reduction", ["none", "svrg"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_fixed_seed_gives_the_same_model_bit_for_bit(small_problem, variance_reduction, dtype):
    """Two runs from the same seed: identical weights and an identical history but for the seconds."""
    train, _ = small_problem
    train = ArrayData(train.X.astype(dtype), train.y)
    settings = config(lr=0.3, epochs=5, batch_size=48, nesterov=True, variance_reduction=variance_reduction)
    runs = [fit(train, 3, settings.training_settings(), np.random.default_rng(7)) for _ in range(2)]
    assert runs[0].coef.dtype == dtype
    assert np.array_equal(runs[0].coef, runs[1].coef) and np.array_equal(runs[0].intercept, runs[1].intercept)
    untimed = [[dataclasses.replace(record, seconds=0.0) for record in run.history] for run in runs]
    assert untimed[0] == untimed[1]


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
    """optim.variance_reduction accepts auto|none|svrg; a typo names the key, the choices and the fix."""
    path = tmp_path / "c.yaml"
    path.write_text("data: {source: 'builtin:iris'}\noptim: {variance_reduction: svgr}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == (
        f"{path}: optim.variance_reduction must be one of auto, none, svrg, got 'svgr' (did you mean 'svrg'?)"
    )
    assert resolve({"data": {"source": "builtin:iris"}}).optim.variance_reduction == "svrg"  # auto, in memory


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
