"""``optim.lr: auto``: the curvature it reads is the data's largest eigenvalue, the rate is a
deterministic function of the data and the settings, and training with it is stable."""

import dataclasses
import math

import numpy as np
import pytest

from softreg.config import resolve
from softreg.prepare.data import prepare, random_streams
from softreg.train import ArrayData, Settings, auto_learning_rate, fit
from softreg.train.rate import CURVATURE_SHARE, sample_curvature


def gram_largest(X, weight=None, fit_intercept=True):
    """lambda_max(X~^T S X~ / n) by a dense eigen-decomposition (the reference)."""
    X = np.asarray(X, dtype=np.float64)
    columns = [X, np.ones((len(X), 1))] if fit_intercept else [X]
    augmented = np.hstack(columns)
    weight = np.ones(len(X)) if weight is None else weight
    return float(np.linalg.eigvalsh(augmented.T @ (weight[:, None] * augmented) / len(X))[-1])


def builtin(name, weight_decay=1e-2, dtype=np.float64):
    config = resolve({"data": {"source": f"builtin:{name}", "val": 0.0}, "model": {"weight_decay": weight_decay}})
    prepared = prepare(config.data, dtype, random_streams(0).split)
    return prepared.train, len(prepared.classes)


@pytest.mark.parametrize("name", ["iris", "wine", "digits", "breast_cancer"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_small_data_give_the_exact_largest_eigenvalue(name, fit_intercept):
    """All rows of small data are read: lambda_max to 1e-3 of eigvalsh's, mean ||x~||^2 exactly."""
    train, _ = builtin(name)
    largest, mean_square = sample_curvature(train, fit_intercept)
    assert largest == pytest.approx(gram_largest(train.X, fit_intercept=fit_intercept), rel=1e-3)
    expected = np.mean(np.sum(train.X**2, axis=1)) + fit_intercept
    assert mean_square == pytest.approx(expected, rel=1e-12)


def test_sample_weights_weigh_the_curvature():
    """With sample weights (relative to their mean) the matrix is X~^T S X~ / n."""
    train, _ = builtin("wine")
    weight = np.random.default_rng(0).uniform(0.1, 3.0, size=train.n_samples)
    weighted = ArrayData(train.X, train.y, weight)
    largest, mean_square = sample_curvature(weighted)
    relative = weighted.sample_weight
    assert largest == pytest.approx(gram_largest(train.X, relative), rel=1e-3)
    assert mean_square == pytest.approx(np.dot(relative, np.sum(train.X**2, axis=1) + 1) / train.n_samples)


@pytest.mark.slow
def test_a_sample_of_large_data_is_close_and_errs_towards_a_smaller_rate():
    """Large data are read through a random sample: lambda_max within [0.97, 1.5] x the whole data's
    (a sample's is larger in expectation) and the mean squared norm within 3%."""
    rng = np.random.default_rng(0)
    n_samples, n_features = 60000, 64
    mixing = rng.normal(size=(n_features, n_features)) / np.sqrt(n_features)
    X = rng.normal(size=(n_samples, n_features)) @ mixing + 0.3 * rng.normal(size=n_features)
    train = ArrayData(X, rng.integers(0, 3, size=n_samples))
    largest, mean_square = sample_curvature(train)
    exact = gram_largest(X)
    assert 0.97 * exact <= largest <= 1.5 * exact
    assert mean_square == pytest.approx(np.mean(np.sum(X**2, axis=1)) + 1, rel=0.03)


def test_the_rate_is_deterministic_and_draws_nothing_from_the_batch_generator():
    """auto twice gives the same number, and a fit with auto is bit-identical to a fit with that
    number: choosing it reads the data but not the training generator."""
    train, n_classes = builtin("wine")
    settings = Settings(weight_decay=1e-2, lr="auto", batch_size=16, epochs=5, variance_reduction="svrg")
    chosen = auto_learning_rate(train, settings)
    assert chosen == auto_learning_rate(train, settings) and math.isfinite(chosen) and chosen > 0
    automatic = fit(train, n_classes, settings, np.random.default_rng(3))
    numeric = fit(train, n_classes, dataclasses.replace(settings, lr=chosen), np.random.default_rng(3))
    assert automatic.lr == chosen == numeric.lr and automatic.summary()["lr"] == chosen
    assert automatic.coef.tobytes() == numeric.coef.tobytes()
    assert [r.train_loss for r in automatic.history] == [r.train_loss for r in numeric.history]


def test_the_rate_follows_the_bounds_it_is_made_of():
    """A full batch has no noise: the rate is the stability bound 2 (1 + beta) / L (Nesterov's is
    smaller); smaller batches and larger momentum lower the noise limit; SVRG allows more."""
    train, _ = builtin("iris")
    largest, _ = sample_curvature(train)
    smoothness = largest / 2 + 1e-2

    def rate(**changes):
        return auto_learning_rate(train, Settings(weight_decay=1e-2, **changes))

    full = train.n_samples
    assert rate(batch_size=full, momentum=0.9) == pytest.approx(CURVATURE_SHARE * 3.8 / smoothness)
    assert rate(batch_size=full, momentum=0.9, nesterov=True) == pytest.approx(CURVATURE_SHARE * 1.9 / 1.4 / smoothness)
    assert rate(batch_size=full, momentum=0.0) == pytest.approx(CURVATURE_SHARE * 2 / smoothness)
    assert rate(batch_size=1, momentum=0.9) < rate(batch_size=16, momentum=0.9) < rate(batch_size=64, momentum=0.9)
    assert rate(batch_size=8, momentum=0.99) < rate(batch_size=8, momentum=0.9)
    assert rate(batch_size=8, variance_reduction="svrg") > rate(batch_size=8)


def test_flat_data_get_a_finite_rate():
    """All-zero features without intercept or decay make J constant: the rate is finite, and fit runs."""
    train = ArrayData(np.zeros((50, 3)), np.arange(50) % 2)
    settings = Settings(weight_decay=0.0, fit_intercept=False, lr="auto", epochs=2, batch_size=8)
    assert auto_learning_rate(train, settings) == 1.0
    assert fit(train, 2, settings, np.random.default_rng(0)).coef.tolist() == [[0.0] * 3] * 2


VARIANTS = {
    "default": {},
    "no momentum": {"momentum": 0.0},
    "nesterov, batches of 8": {"nesterov": True, "batch_size": 8},
    "momentum 0.99, batches of 4": {"momentum": 0.99, "batch_size": 4},
    "full batch": {"batch_size": 10**6},
    "cosine": {"schedule": "cosine"},
    "svrg": {"variance_reduction": "svrg"},
    "svrg without momentum, batches of 16": {"variance_reduction": "svrg", "momentum": 0.0, "batch_size": 16},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize(("name", "weight_decay"), [("iris", 1e-2), ("wine", 1e-2), ("digits", 1e-3),
                                                    ("breast_cancer", 1e-4)])
def test_auto_never_diverges_on_the_builtin_sets(name, weight_decay, variant):
    """20 epochs at the rate auto chooses: no divergence, and an objective below half the zero
    model's (log K), whatever the batch size, momentum or variance reduction."""
    train, n_classes = builtin(name, weight_decay)
    settings = Settings(weight_decay=weight_decay, lr="auto", epochs=20, **VARIANTS[variant])
    result = fit(train, n_classes, settings, np.random.default_rng(0))
    assert math.isfinite(result.lr) and result.lr > 0
    assert result.objective < 0.5 * math.log(n_classes)
    assert max(record.train_loss for record in result.history) < math.log(n_classes) * 1.5
