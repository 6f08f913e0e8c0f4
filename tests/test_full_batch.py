"""The default optimiser: SVRG handing over to full-batch Barzilai-Borwein steps, certified at tol."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import datasets
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from softreg import SoftmaxRegression
from softreg.config import resolve
from softreg.errors import DivergedError
from softreg.solve import exact_optimum
from softreg.train import Settings, fit
from softreg.train.full_batch import ARMIJO, MEMORY, FullBatchSteps, should_switch
from softreg.train.passes import full_loss_gradient
from softreg.train.settings import CERTIFIED_EPOCHS, UNCERTIFIED_EPOCHS


def test_svrg_hands_over_only_when_an_epoch_gains_more_than_0_8_of_the_previous_ones_decrease_or_j_rises():
    """Fewer than three objectives: never; a decrease above 0.8 of the one before, or a rise: switch."""
    assert not should_switch([1.0, 0.5])
    assert not should_switch([1.0, 0.5, 0.3])  # 0.2 after 0.5: still fast
    assert should_switch([1.0, 0.5, 0.09])  # 0.41 after 0.5
    assert should_switch([1.0, 0.5, 0.6])  # J rose
    assert not should_switch([1.0, 0.5, 0.1, 0.05])  # only the last two decreases count


def _problem(seed, n_samples=60, n_features=5, n_classes=3, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)) * scale
    y = rng.integers(0, n_classes, n_samples)
    return X, y


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.sampled_from([0.1, 1.0, 30.0]), rate=st.floats(1e-3, 1e3))
def test_a_full_batch_step_never_rises_above_the_recent_objectives_less_the_armijo_decrease(seed, scale, rate):
    """Whatever the first rate and the data's scale, each accepted step's J is at most
    max(the last MEMORY values) - ARMIJO eta ||g||^2, and the gradient returned is the true one."""
    X, y = _problem(seed, scale=scale)
    n_classes, n_features, decay = 3, X.shape[1], 1e-3

    def evaluate(flat):
        coef, intercept = flat[: n_classes * n_features].reshape(n_classes, n_features), flat[n_classes * n_features:]
        loss, objective, grad_coef, grad_intercept = full_loss_gradient(coef, intercept, X, y, decay)
        return loss, objective, np.concatenate([grad_coef.ravel(), grad_intercept])

    weights = np.zeros(n_classes * n_features + n_classes)
    _, objective, gradient = evaluate(weights)
    steps = FullBatchSteps(rate, objective)
    for _ in range(30):
        before, reference, squared = weights.copy(), max(steps.recent), float(gradient @ gradient)
        found = steps.step(weights, gradient, evaluate)
        if found is None:
            assert np.array_equal(weights, before)
            break
        _, objective, gradient = found
        assert objective <= reference - ARMIJO * steps.last_rate * squared
        assert np.array_equal(gradient, evaluate(weights)[2])
        assert len(steps.recent) <= MEMORY


def _standardized(name):
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    return StandardScaler().fit_transform(X_train), y_train


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "digits"])
def test_the_defaults_certify_every_bundled_table_and_the_true_gap_is_within_the_bound(name):
    """SoftmaxRegression() with no argument stops certified at tol 1e-4 on each bundled table; the
    exact optimum's gap is at most the certified bound, so at most 1e-4."""
    X, y = _standardized(name)
    model = SoftmaxRegression(random_state=0, standardize=False).fit(X, y)
    assert model.converged_ and model.gap_bound_ <= 1e-4 and model.n_iter_ < CERTIFIED_EPOCHS
    classes, labels = np.unique(y, return_inverse=True)
    optimum = exact_optimum(X, labels, len(classes), 1e-4)
    objective = full_loss_gradient(model.coef_, model.intercept_, X, labels, 1e-4)[1]
    relative_gap = (objective - optimum.objective) / optimum.objective
    assert relative_gap <= model.gap_bound_


@pytest.mark.parametrize("name", ["wine", "breast_cancer", "digits"])
def test_the_defaults_never_diverge_on_raw_features(name):
    """Unscaled features (wine's span 0.1 to 1,680): no DivergedError; the fit keeps finite weights
    and says it did not converge when it did not."""
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = SoftmaxRegression(random_state=0, standardize=False, epochs=300).fit(X, y)
    assert np.isfinite(model.coef_).all() and np.isfinite(model.intercept_).all()
    assert model.converged_ or any("did not converge" in str(warning.message) for warning in caught)


def test_a_hand_set_rate_that_diverges_still_raises_with_the_defaults_optimiser():
    """lr: 1e4 is the user's: the first (plain) epoch diverges and fit raises DivergedError, no model."""
    X, y = _standardized("wine")
    settings_ = Settings(lr=1e4, variance_reduction="svrg", full_batch="auto", tol=1e-4, epochs=50, weight_decay=0.0)
    with pytest.raises(DivergedError):
        fit((X * 1e3, y), 3, settings_, np.random.default_rng(0))


def _optim(document):
    optim = resolve({"data": {"source": "builtin:iris"}, **document}).optim
    return optim.variance_reduction, optim.epochs


def test_auto_resolves_to_svrg_and_1000_epochs_where_a_certificate_can_stop_the_run_else_none_and_20():
    """The config's auto choices, with the reason for each fallback."""
    assert _optim({}) == ("svrg", CERTIFIED_EPOCHS)
    assert _optim({"optim": {"tol": None}}) == ("svrg", UNCERTIFIED_EPOCHS)
    assert _optim({"model": {"weight_decay": 0.0}}) == ("svrg", UNCERTIFIED_EPOCHS)
    assert _optim({"model": {"loss": "squared_error"}}) == ("svrg", UNCERTIFIED_EPOCHS)
    assert _optim({"model": {"temperature": 2.0}}) == ("svrg", UNCERTIFIED_EPOCHS)
    sharded = {"data": {"source": "builtin:iris", "cache": "c", "shards": 2}}
    optim = resolve(sharded).optim
    assert (optim.variance_reduction, optim.epochs) == ("none", UNCERTIFIED_EPOCHS)
    assert _optim({"optim": {"epochs": 7, "variance_reduction": "none"}}) == ("none", 7)


def test_a_bad_epochs_value_names_the_key_and_auto():
    """optim.epochs: lots is refused naming what it accepts."""
    from softreg.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        resolve({"data": {"source": "builtin:iris"}, "optim": {"epochs": "lots"}}, origin="c.yaml")
    assert str(caught.value) == "c.yaml: optim.epochs must be a whole number >= 1 or auto, got 'lots'"


def test_partial_fit_takes_plain_minibatch_steps_by_default():
    """variance_reduction auto is none for partial_fit: one constant-rate SGD epoch per call, no switch."""
    X, y = _standardized("iris")
    model = SoftmaxRegression(random_state=0)
    for _ in range(3):
        model.partial_fit(X, y, classes=np.unique(y))
    assert model.n_iter_ == 1 and model.history_[0]["lr"] == model.learning_rate_
    assert math.isfinite(model.objective_)


def test_lr_auto_on_features_whose_squares_overflow_is_exit_2_and_says_why(tmp_path):
    """Features near 1e200 left unstandardized: auto finds no stable rate and says so before training,
    exit 2 and no run directory (not a divergence blamed on a rate nobody chose)."""
    from tests.strategies import run

    rng = np.random.default_rng(0)
    rows = [f"{a:.6e},{b:.6e},{index % 2}" for index, (a, b) in enumerate(rng.normal(size=(60, 2)) * 1e200)]
    (tmp_path / "huge.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    (tmp_path / "c.yaml").write_text("data:\n  source: huge.csv\n  standardize: false\noutput:\n  plots: false\n")
    code, _, stderr = run("train", "--config", tmp_path / "c.yaml", "--out", tmp_path / "run", "--quiet")
    assert (code, stderr) == (2, "softreg: error: optim.lr: auto finds no stable rate: the squares of the features "
                                 "overflow; standardize them (data.standardize: true) or rescale them\n")
    assert not (tmp_path / "run").exists()
