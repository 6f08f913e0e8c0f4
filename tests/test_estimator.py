"""SoftmaxRegression: a scikit-learn classifier over the same training core as `softreg train`."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris, load_wine
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import softreg
from softreg import SoftmaxRegression, load_run
from softreg.config import load_config
from softreg.prepare.data import prepare, random_streams
from softreg.solve import exact_optimum

REPO = Path(__file__).resolve().parent.parent

@parametrize_with_checks([SoftmaxRegression(random_state=0)])
def test_scikit_learn_estimator_checks(estimator, check):
    """scikit-learn's own estimator checks pass, every one (the estimator standardizes like the CLI)."""
    name = getattr(check, "func", check).__name__
    if name == "check_array_api_input":  # needs SCIPY_ARRAY_API=1 before scipy loads: a fresh process
        code = (
            "from sklearn.utils.estimator_checks import check_array_api_input\n"
            "from softreg import SoftmaxRegression\n"
            f"check_array_api_input('SoftmaxRegression', SoftmaxRegression(random_state=0), **{check.keywords!r})\n"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**os.environ, "SCIPY_ARRAY_API": "1"})
        assert done.returncode == 0, done.stderr
        return
    check(estimator)


def standardized(loader):
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.slow
def test_fit_is_bit_identical_to_softreg_train(tmp_path):
    """Same data (the run's standardized training and validation parts), seed and settings: fit's
    coefficients equal the CLI's model.npz bit for bit."""
    config_path = REPO / "configs" / "digits.yaml"
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "softreg", "train", "--config", str(config_path), "--out", str(run_dir), "--quiet"],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    config = load_config(config_path)
    prepared = prepare(config.data, np.dtype(config.model.dtype), random_streams(config.seed).split)
    parameters = {
        name: getattr(getattr(config, section), name) for name, section in softreg.estimator.PARAMETERS.items()
    }
    clf = SoftmaxRegression(**parameters, standardize=False, random_state=config.seed)  # the run's standardized parts
    clf.fit(prepared.train.X, prepared.train.y, X_val=prepared.val.X, y_val=prepared.val.y)
    with np.load(run_dir / "model.npz") as saved:
        assert clf.coef_.tobytes() == saved["coef"].tobytes()
        assert clf.intercept_.tobytes() == saved["intercept"].tobytes()


def test_grid_search_cross_validation_clone_and_pickle_on_digits():
    """GridSearchCV over weight_decay in a pipeline works, as do cross_val_score, clone and pickle."""
    X, y = load_digits(return_X_y=True)
    pipeline = make_pipeline(StandardScaler(), SoftmaxRegression(epochs=5, tol=None, random_state=0))
    search = GridSearchCV(pipeline, {"softmaxregression__weight_decay": [1e-4, 1e-2]}, cv=3).fit(X, y)
    assert search.best_params_["softmaxregression__weight_decay"] in (1e-4, 1e-2)
    assert search.best_score_ > 0.9
    scores = cross_val_score(pipeline, X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.85
    fitted = search.best_estimator_
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    twin = clone(SoftmaxRegression(lr=0.05, epochs=3))
    assert twin.get_params()["lr"] == 0.05 and not hasattr(twin, "coef_")


def test_predictions_are_consistent_and_log_proba_does_not_underflow():
    """predict is the argmax of predict_proba; log-probabilities come from a log-softmax (finite
    where log(predict_proba) is -inf); decision_function is the logits (K >= 3)."""
    X, y = standardized(load_iris)
    clf = SoftmaxRegression(random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert np.array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert clf.decision_function(X).shape == (150, 3)
    far = X[:1] * 1e4
    assert np.all(np.isfinite(clf.predict_log_proba(far)))
    with np.errstate(divide="ignore"):
        assert np.isneginf(np.log(clf.predict_proba(far))).any()


def test_two_classes_decision_function_is_the_logistic_logit():
    """With two classes decision_function is z2 - z1, the logit of logistic regression, and its sign
    gives the prediction."""
    X, y = standardized(load_wine)
    keep = y < 2
    clf = SoftmaxRegression(random_state=0).fit(X[keep], np.where(y[keep] == 0, "a", "b"))
    margin = clf.decision_function(X[keep])
    assert margin.shape == (int(keep.sum()),)
    np.testing.assert_allclose(1 / (1 + np.exp(-margin)), clf.predict_proba(X[keep])[:, 1], rtol=1e-12)
    assert np.array_equal(np.where(margin > 0, "b", "a"), clf.predict(X[keep]))


def test_class_weight_behind_a_scaler_favours_the_heavy_class():
    """scikit-learn's class-weight check, on standardized features: weights 1000 : 0.0001 make the model
    predict class 0 almost everywhere (> 87% of the test rows), for two and three classes."""
    from sklearn.datasets import make_blobs
    from sklearn.model_selection import train_test_split

    for n_centers in (2, 3):
        X, y = make_blobs(centers=n_centers, random_state=0, cluster_std=20)
        X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.5, random_state=0)
        weights = {0: 1000, 1: 0.0001, 2: 0.0001} if n_centers == 3 else {0: 1000, 1: 0.0001}
        pipeline = make_pipeline(StandardScaler(), SoftmaxRegression(class_weight=weights, random_state=0))
        assert np.mean(pipeline.fit(X_train, y_train).predict(X_test) == 0) > 0.87


def test_sparse_and_dense_input_give_the_same_model():
    """A CSR matrix trains to the same weights as the same values dense (to rounding)."""
    X, y = standardized(load_wine)
    X[np.abs(X) < 0.5] = 0.0
    dense = SoftmaxRegression(random_state=1, epochs=5, lr=0.1, tol=None, variance_reduction="none").fit(X, y)
    sparse = SoftmaxRegression(random_state=1, epochs=5, lr=0.1, tol=None, variance_reduction="none").fit(
        sp.csr_matrix(X), y
    )
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-10, atol=1e-12)


def test_weight_two_is_duplicating_the_row_at_the_optimum():
    """sample_weight enters the objective as a weighted mean: weights (2 on some rows) and the same
    rows duplicated reach the same optimum (SVRG, to 1e-6 in the coefficients)."""
    X, y = standardized(load_wine)
    twice = np.arange(len(y)) % 3 == 0
    weight = np.where(twice, 2.0, 1.0)
    X_dup, y_dup = np.vstack([X, X[twice]]), np.concatenate([y, y[twice]])
    settings = dict(weight_decay=1e-2, lr=0.2, epochs=150, batch_size=16, variance_reduction="svrg", random_state=0,
                    standardize=False, tol=None)  # the optimum of X_dup as given
    weighted = SoftmaxRegression(**settings).fit(X, y, sample_weight=weight)
    duplicated = SoftmaxRegression(**settings).fit(X_dup, y_dup)
    optimum = exact_optimum(X_dup, y_dup, 3, 1e-2)
    np.testing.assert_allclose(weighted.coef_, optimum.coef, atol=1e-6)
    np.testing.assert_allclose(duplicated.coef_, optimum.coef, atol=1e-6)


def test_class_weight_balanced_is_scikit_learns():
    """class_weight="balanced" multiplies the sample weights by n / (K n_k), as in scikit-learn: the same
    model as passing those weights."""
    X, y = standardized(load_wine)
    keep = (y != 1) | (np.arange(len(y)) % 3 == 0)  # make class 1 rare
    X, y = X[keep], y[keep]
    balanced = SoftmaxRegression(class_weight="balanced", random_state=0, epochs=5, tol=None).fit(X, y)
    counts = np.bincount(y)
    explicit = SoftmaxRegression(random_state=0, epochs=5, tol=None).fit(X, y, sample_weight=len(y) / (3 * counts[y]))
    np.testing.assert_array_equal(balanced.coef_, explicit.coef_)


def test_early_stopping_with_validation_data_and_fraction():
    """X_val/y_val or validation_fraction give early stopping its validation data, like the config's
    (validation loss logged each epoch, the best epoch's weights restored); without early_stopping the
    validation figures are only logged."""
    X, y = standardized(load_digits)
    clf = SoftmaxRegression(
        lr=0.5, epochs=60, early_stopping={"patience": 3}, random_state=0, validation_fraction=0.2,
        variance_reduction="none", tol=None,
    )
    clf.fit(X, y)
    assert all(row["val_loss"] is not None for row in clf.history_)
    assert clf.stopped_early_ and clf.n_iter_ < 60
    logging_only = SoftmaxRegression(epochs=3, tol=None, random_state=0)
    logging_only.fit(X[:1000], y[:1000], X_val=X[1000:], y_val=y[1000:])
    assert logging_only.n_iter_ == 3 and logging_only.history_[-1]["val_accuracy"] > 0.8
    with pytest.raises(ValueError, match="early_stopping needs validation data"):
        SoftmaxRegression(early_stopping=True).fit(X, y)


def test_warm_start_and_partial_fit_continue_from_the_current_weights():
    """warm_start: a second fit starts from the first's weights, not from zero; partial_fit makes one
    pass per call (n_iter_ 1) and needs the classes on its first call."""
    X, y = standardized(load_iris)
    plain = {"epochs": 2, "momentum": 0.0, "variance_reduction": "none", "tol": None, "random_state": 0}
    clf = SoftmaxRegression(**plain, warm_start=True).fit(X, y)
    first = clf.coef_.copy()
    clf.fit(X, y)
    cold = SoftmaxRegression(**plain).fit(X, y)
    assert np.array_equal(cold.coef_, first)  # the same first fit
    assert np.linalg.norm(clf.coef_) > np.linalg.norm(first) and not np.array_equal(clf.coef_, first)
    assert clf.score(X, y) > 0.8
    stream = SoftmaxRegression(random_state=0)
    with pytest.raises(ValueError, match="classes must be given on the first call"):
        stream.partial_fit(X, y)
    for start in range(0, 150, 50):
        stream.partial_fit(X[start:start + 50], y[start:start + 50], classes=[0, 1, 2])
    assert stream.n_iter_ == 1 and stream.score(X, y) > 0.7


def test_defaults_are_the_configs():
    """Every parameter that mirrors a config key has that key's default."""
    from softreg.config import key_spec
    from softreg.estimator import PARAMETERS

    parameters = SoftmaxRegression().get_params()
    expected = {name: key_spec(section, name)[0] for name, section in PARAMETERS.items()}
    assert {name: parameters[name] for name in PARAMETERS} == expected
    assert parameters["standardize"] is key_spec("data", "standardize")[0] is True


def test_parameters_are_checked_with_the_config_rules():
    """A bad parameter gets the config's message, naming the parameter and its config key."""
    X, y = standardized(load_iris)
    with pytest.raises(ValueError) as error:
        SoftmaxRegression(lr=-0.1).fit(X, y)
    assert str(error.value) == "SoftmaxRegression: lr must be > 0, got -0.1 (optim.lr in a config)"
    with pytest.raises(ValueError, match="schedule must be one of constant, step, cosine, inverse_time"):
        SoftmaxRegression(schedule="cosin").fit(X, y)


def test_verbose_prints_epoch_lines_on_stderr(capsys):
    """verbose=1: one `epoch N/E` line per epoch on stderr, nothing on stdout."""
    X, y = standardized(load_iris)
    SoftmaxRegression(epochs=3, verbose=1, tol=None, random_state=0).fit(X, y)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert [line.split()[1] for line in captured.err.splitlines()] == ["1/3", "2/3", "3/3"]


@pytest.mark.slow
def test_load_run_predicts_like_the_cli_and_save_run_is_a_run_directory(tmp_path):
    """load_run applies the run's standardizer to raw features (predictions equal `softreg predict`'s);
    save_run writes a directory that `softreg predict` and `evaluate --data` accept."""
    run_dir = tmp_path / "iris"
    cli = [sys.executable, "-m", "softreg"]
    config = REPO / "configs" / "iris-csv.yaml"
    done = subprocess.run(
        [*cli, "train", "--config", str(config), "--out", str(run_dir), "--quiet"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    clf = load_run(run_dir)
    data = np.genfromtxt(REPO / "data" / "iris.csv", delimiter=",", skip_header=1, usecols=range(4))
    predicted = subprocess.run([*cli, "predict", "--run", str(run_dir), "--input", str(REPO / "data" / "iris.csv")],
                               capture_output=True, text=True, check=True).stdout.splitlines()[1:]
    assert [line.split(",")[0] for line in predicted] == clf.predict(data).tolist()
    saved = clf.save_run(tmp_path / "saved")
    again = load_run(saved)
    np.testing.assert_array_equal(again.predict_proba(data), clf.predict_proba(data))
    with pytest.raises(Exception, match="exists"):
        clf.save_run(tmp_path / "saved")


@pytest.mark.slow
def test_fit_config_runs_what_softreg_train_runs(tmp_path):
    """fit_config(path) trains exactly what `softreg train --config` trains and returns the estimator
    and the run directory."""
    clf, run_dir = softreg.fit_config(REPO / "configs" / "iris.yaml", out=tmp_path / "run")
    with np.load(run_dir / "model.npz") as saved:
        assert clf.coef_.tobytes() == saved["coef"].tobytes()
    assert (run_dir / "metrics.json").is_file() and clf.classes_.tolist() == saved_classes(run_dir)


def saved_classes(run_dir):
    with np.load(run_dir / "model.npz") as saved:
        return saved["classes"].tolist()


def test_lr_auto_chooses_the_cores_rate_and_keeps_it(tmp_path):
    """lr="auto" takes `auto_learning_rate` of the training data (``learning_rate_``); partial_fit keeps
    the first call's rate, and save_run writes the number."""
    from softreg.train import ArrayData, auto_learning_rate

    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = SoftmaxRegression(lr="auto", batch_size=16, epochs=5, tol=None, random_state=0).fit(X, y)
    expected = auto_learning_rate(ArrayData(X, np.searchsorted(clf.classes_, y)), clf._settings())
    assert clf.learning_rate_ == expected and clf.score(X, y) > 0.9
    stream = SoftmaxRegression(lr="auto", batch_size=16, random_state=0).partial_fit(X[:60], y[:60], classes=[0, 1, 2])
    first = stream.learning_rate_
    assert stream.partial_fit(X[60:], y[60:]).learning_rate_ == first
    clf.save_run(tmp_path / "run")
    assert load_config(tmp_path / "run" / "config.yaml").optim.lr == expected


def test_importing_the_training_core_does_not_import_the_estimator():
    """`import softreg.train` loads only the math (softmax, losses), kernels, optimiser and train modules
    (and errors, and the package's version): no config, data, run-directory or estimator code."""
    code = "import softreg.train, sys; print(sorted(m for m in sys.modules if m.startswith('softreg')))"
    loaded = eval(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    allowed = {"softreg", "softreg._version", "softreg.errors", "softreg.kernels", "softreg.losses", "softreg.softmax"}
    assert {"softreg.train", "softreg.train.loop"} <= set(loaded)
    assert all(name in allowed or name == "softreg.train" or name.startswith("softreg.train.") for name in loaded)


def test_raw_features_are_standardized_like_the_cli():
    """On scikit-learn's raw wine (columns up to ~1700), the defaults train without diverging (they
    diverged at epoch 1 unstandardized), and a converged fit equals LogisticRegression on StandardScaler's
    features (C = 1/(n lambda)): the same probabilities on the raw rows; the standardizer is kept."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X, y = load_wine(return_X_y=True)
    default = SoftmaxRegression(random_state=0).fit(X, y)
    assert np.all(np.isfinite(default.coef_)) and default.score(X, y) > 0.9
    scaler = StandardScaler().fit(X)
    np.testing.assert_allclose(default.feature_mean_, scaler.mean_, rtol=1e-12)
    np.testing.assert_allclose(default.feature_scale_, scaler.scale_, rtol=1e-12)
    decay = 1e-2
    ours = SoftmaxRegression(weight_decay=decay, variance_reduction="svrg", lr="auto", epochs=500, tol=1e-6,
                             random_state=0).fit(X, y)
    assert ours.converged_
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=1 / (len(y) * decay), tol=1e-10, max_iter=10000))
    reference.fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), atol=1e-4)


def test_load_run_of_a_config_that_no_longer_resolves_keeps_the_defaults(tmp_path):
    """A run whose config.yaml no longer resolves (a ConfigError) loads with the default parameters
    and the model's own weights and output."""
    X, y = load_iris(return_X_y=True)
    fitted = SoftmaxRegression(weight_decay=1e-2, epochs=5, tol=None, random_state=0).fit(X, y)
    run_dir = fitted.save_run(tmp_path / "run")
    with open(run_dir / "config.yaml", "a", encoding="utf-8") as handle:
        handle.write("unknown_section: 1\n")
    loaded = load_run(run_dir)
    assert loaded.weight_decay == SoftmaxRegression().weight_decay
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))


def test_load_run_lets_a_bug_in_reading_the_config_through(tmp_path, monkeypatch):
    """Only a config error falls back to the defaults: any other exception while reading the config propagates."""
    import softreg.config

    X, y = load_iris(return_X_y=True)
    run_dir = SoftmaxRegression(epochs=2, tol=None, random_state=0).fit(X, y).save_run(tmp_path / "run")

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(softreg.config, "load_config", broken)
    with pytest.raises(ZeroDivisionError, match="a bug"):
        load_run(run_dir)
