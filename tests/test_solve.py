"""The exact optimum against scikit-learn's, and SGD against the exact optimum."""

import numpy as np
import pytest
from sklearn.datasets import load_wine, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from softreg import softmax
from softreg.config import resolve
from softreg.solve import exact_optimum
from softreg.train import fit


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("weight_decay", [1e-3, 1e-2, 1e-1])
def test_optimum_matches_scikit_learn_for_three_classes(wine, weight_decay):
    """For K >= 3, LogisticRegression(C=1/(n*lambda)) minimizes exactly J: objectives agree to 1e-6 relative."""
    X, y = wine
    ours = exact_optimum(X, y, 3, weight_decay)
    with threadpool_limits(limits=1, user_api="blas"):
        reference = LogisticRegression(C=1.0 / (len(y) * weight_decay), tol=1e-12, max_iter=10000).fit(X, y)
    reference_objective = softmax.loss_gradient(reference.coef_, reference.intercept_, X, y, weight_decay)[1]
    assert abs(ours.objective - reference_objective) / reference_objective < 1e-6
    assert ours.objective <= reference_objective + 1e-12
    np.testing.assert_allclose(ours.coef, reference.coef_, atol=1e-4)


def test_optimum_class_weights_sum_to_zero_and_gradient_vanishes():
    """With lambda > 0 the optimum is unique, its class weights sum to zero and grad J = 0."""
    X, y = make_classification(200, 6, n_informative=4, n_classes=4, random_state=0)
    optimum = exact_optimum(X, y, 4, 1e-2)
    assert np.abs(optimum.coef.sum(axis=0)).max() < 1e-7
    assert optimum.grad_norm < 1e-7


def test_minibatch_sgd_reaches_the_optimum(wine):
    """The training loop (momentum, cosine schedule) ends within 2e-3 relative objective of J*."""
    X, y = wine
    weight_decay = 1e-2
    optimum = exact_optimum(X, y, 3, weight_decay)
    config = resolve(
        {
            "data": {"source": "builtin:wine"},
            "model": {"weight_decay": weight_decay},
            "optim": {"lr": 0.1, "batch_size": 16, "epochs": 150, "schedule": "cosine", "momentum": 0.9},
        }
    )
    result = fit((X, y), 3, config.training_settings(), np.random.default_rng(0))
    assert (result.objective - optimum.objective) / optimum.objective < 2e-3
    assert result.objective >= optimum.objective - 1e-12
