"""``softreg evaluate --calibrate``: temperature scaling fitted on the run's validation split."""

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from softreg import rundir, softmax
from softreg.cli import main
from softreg.commands.run_parts import fit_temperature, validation_part
from softreg.evaluate import classification_metrics
from softreg.model import Model
from softreg.train import ArrayData


def train(tmp_path, name, **model):
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"source": "builtin:digits", "val": 0.25},
        "model": {"weight_decay": 1e-3, **model},
        "optim": {"epochs": 8, "batch_size": 32, "lr": 0.2}, "output": {"plots": False},
    }))
    run = tmp_path / name
    code, _, stderr = softreg("train", "--config", config, "--out", run, "--quiet")
    assert code == 0, stderr
    return run


def softreg(*args):
    """The command line in this process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def evaluate(*arguments):
    return softreg("evaluate", *arguments)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("calibrate"), "digits")


def test_calibrate_reports_a_temperature_and_is_not_worse_on_validation(run):
    """--calibrate --json: a temperature > 0, ECE and log loss before and after on the validation split,
    neither worse after; the evaluated test split's metrics are those of softmax(z / T)."""
    code, stdout, stderr = evaluate("--run", run, "--calibrate", "--json")
    assert code == 0, stderr
    metrics = json.loads(stdout)
    calibration = metrics["calibration"]
    assert calibration["temperature"] > 0 and calibration["split"] == "validation"
    assert calibration["ece_after"] <= calibration["ece_before"]
    assert calibration["log_loss_after"] <= calibration["log_loss_before"]
    model = rundir.load_model(run)
    X_raw, y = rundir.load_test_split(run)
    logits = softmax.decision_function(model.coef, model.intercept, model.standardize(X_raw))
    expected = classification_metrics(y, softmax.softmax(logits / calibration["temperature"]), model.classes)
    assert metrics["log_loss"] == pytest.approx(expected["log_loss"], rel=1e-9)
    assert metrics["ece"] == pytest.approx(expected["ece"], rel=1e-9)
    assert calibration["evaluated"]["log_loss_after"] == metrics["log_loss"]


def test_calibrate_prints_the_temperature_and_both_ece_in_the_table(run):
    """The human table names the temperature and ECE before -> after."""
    code, stdout, stderr = evaluate("--run", run, "--calibrate")
    assert code == 0, stderr
    assert "calibrated         temperature " in stdout
    assert "  validation       ECE " in stdout and " -> " in stdout


def test_fitted_temperature_undoes_a_known_rescaling(run):
    """Logits made 4x overconfident get T near 4 back from the validation log loss; 4x underconfident, T < 1."""
    model = rundir.load_model(run)
    val = validation_part(run, model)
    sharp = fit_temperature(Model(**{**vars(model), "coef": model.coef * 4, "intercept": model.intercept * 4}), val)
    plain = fit_temperature(model, val)
    flat = fit_temperature(Model(**{**vars(model), "coef": model.coef / 4, "intercept": model.intercept / 4}), val)
    assert sharp["temperature"] > 1 and flat["temperature"] < 1
    if plain["improved"]:
        assert sharp["temperature"] == pytest.approx(4 * plain["temperature"], rel=1e-3)
    assert sharp["log_loss_after"] < sharp["log_loss_before"] and flat["log_loss_after"] < flat["log_loss_before"]


def test_a_temperature_that_would_worsen_the_validation_ece_is_not_kept():
    """When the log-loss minimizer worsens the ECE, T = 1 is kept and ``improved`` is false.

    Fifty rows in one confidence bin (enough to fit T), 45 right at 0.8978 and 5 wrong at 0.92:
    their mean confidence is the accuracy (ECE 2e-5), but the log loss is lowest at another T,
    which moves every confidence away from 0.9.
    """
    def logit(p):
        return np.log(p / (1 - p))

    X = np.array(([[logit(0.8978)]] * 9 + [[logit(0.92)]]) * 5)
    model = Model(coef=np.array([[-0.5], [0.5]]), intercept=np.zeros(2), classes=np.array([0, 1]),
                  feature_mean=np.zeros(1), feature_scale=np.ones(1), feature_names=["x"])
    calibration = fit_temperature(model, ArrayData(X, np.array(([1] * 9 + [0]) * 5)))
    assert not calibration["improved"] and calibration["temperature"] == 1.0
    assert calibration["reason"] == "no better than T = 1 on the validation split"
    assert calibration["ece_after"] == calibration["ece_before"] == pytest.approx(2e-5)


def test_calibrate_uses_the_models_normalizer(tmp_path):
    """A Taylor-softmax run calibrates through its own normalizer: the rescaled metrics use taylor at T."""
    from softreg import losses

    run = train(tmp_path, "taylor", normalizer="taylor")
    metrics = json.loads(evaluate("--run", run, "--calibrate", "--json")[1])
    model = rundir.load_model(run)
    X_raw, y = rundir.load_test_split(run)
    logits = softmax.decision_function(model.coef, model.intercept, model.standardize(X_raw))
    proba = losses.proba(logits, "taylor", metrics["calibration"]["effective_temperature"])
    assert metrics["log_loss"] == pytest.approx(classification_metrics(y, proba, model.classes)["log_loss"], rel=1e-9)
    assert metrics["calibration"]["log_loss_after"] <= metrics["calibration"]["log_loss_before"]


def test_calibrate_without_a_validation_split_exits_2(tmp_path):
    """A run with data.val: 0 has nothing to fit T on: exit 2, one line naming data.val, nothing on stdout."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"source": "builtin:iris", "val": 0.0}, "optim": {"epochs": 2},
                                      "output": {"plots": False}}))
    assert softreg("train", "--config", config, "--out", tmp_path / "r", "--quiet")[0] == 0
    code, stdout, stderr = evaluate("--run", tmp_path / "r", "--calibrate")
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and "has no validation split (data.val is 0)" in stderr


def test_a_small_validation_split_keeps_t_1_and_says_why():
    """28 validation rows (fewer than 50), all right and confident: T stays 1 and the reason names the count."""
    X = np.array([[4.0], [-4.0]] * 14)
    model = Model(coef=np.array([[-1.0], [1.0]]), intercept=np.zeros(2), classes=np.array([0, 1]),
                  feature_mean=np.zeros(1), feature_scale=np.ones(1), feature_names=["x"])
    calibration = fit_temperature(model, ArrayData(X, np.array([1, 0] * 14)))
    assert calibration["temperature"] == 1.0 and not calibration["improved"]
    assert calibration["reason"] == "the validation split has 28 rows, fewer than the 50 needed to fit T"


def test_a_validation_split_without_errors_keeps_t_1():
    """60 rows, each right at probability 0.9997 (none misclassified or below 0.9): T stays 1."""
    X = np.array([[4.0], [-4.0]] * 30)
    model = Model(coef=np.array([[-1.0], [1.0]]), intercept=np.zeros(2), classes=np.array([0, 1]),
                  feature_mean=np.zeros(1), feature_scale=np.ones(1), feature_names=["x"])
    calibration = fit_temperature(model, ArrayData(X, np.array([1, 0] * 30)))
    assert calibration["temperature"] == 1.0 and calibration["reason"] == (
        "no validation row is misclassified or has its class's probability below 0.9, "
        "so T would only shrink toward its bound")


def test_a_temperature_at_its_search_bound_is_not_kept():
    """Confident logits with labels independent of them: the log loss falls toward T = 100, the bound; T stays 1."""
    X = np.array([[5.0], [5.0], [-5.0], [-5.0]] * 50)
    model = Model(coef=np.array([[-1.0], [1.0]]), intercept=np.zeros(2), classes=np.array([0, 1]),
                  feature_mean=np.zeros(1), feature_scale=np.ones(1), feature_names=["x"])
    calibration = fit_temperature(model, ArrayData(X, np.array([0, 1, 0, 1] * 50)))
    assert calibration["temperature"] == 1.0 and calibration["log_loss_after"] == calibration["log_loss_before"]
    assert calibration["reason"].startswith("the fitted T = ")
    assert calibration["reason"].endswith(" lies at the bound of its search interval [0.01, 100]")


def test_calibrate_on_a_small_validation_split_says_why_in_the_table(tmp_path):
    """iris with data.val 0.2 (24 validation rows): evaluate --calibrate prints T = 1 and the rule it missed."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"source": "builtin:iris", "val": 0.2}, "optim": {"epochs": 5},
                                      "output": {"plots": False}}))
    assert softreg("train", "--config", config, "--out", tmp_path / "r", "--quiet")[0] == 0
    code, stdout, stderr = evaluate("--run", tmp_path / "r", "--calibrate")
    assert code == 0, stderr
    n_val = json.loads(evaluate("--run", tmp_path / "r", "--calibrate", "--json")[1])["calibration"]["n_samples"]
    assert n_val < 50
    assert (f"calibrated         temperature 1.0000   (kept T = 1: the validation split has {n_val} rows, "
            "fewer than the 50 needed to fit T)") in stdout
