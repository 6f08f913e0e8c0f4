"""Runs saved from Python read files as the fit saw its features: by position after a fit on
an array (said once), by name after a fit on a DataFrame or through `fit_config` on a source
with a header."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from softreg import SoftmaxRegression, fit_config, load_run, rundir
from softreg.cli import main

POSITION_NOTE = "the model was fitted without feature names (an array): its 4 feature columns are read by position"
LABEL_LAST = " (the last column, a label, is not read)"


def softreg(*args):
    """The command line in this process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    """iris as pandas writes it (no index): four named numbers and a text label 'species'."""
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=lambda name: name.replace(" (cm)", "").replace(" ", "_"))
    frame["species"] = np.asarray(data.target_names)[frame.pop("target")]
    path = tmp_path_factory.mktemp("names") / "iris.csv"
    frame.to_csv(path, index=False)
    return path, frame


def fitted(X, y):
    """An estimator fitted on X with string labels (a run keeps its classes as a str array)."""
    return SoftmaxRegression(epochs=300, random_state=0).fit(X, np.asarray(y, dtype=str))


def test_a_model_fitted_on_an_array_reads_files_by_position(iris, tmp_path):
    """fit(ndarray) + save_run: predict and evaluate --data read a CSV with any header by
    position, each saying so in one stderr line; the predictions are the estimator's."""
    path, frame = iris
    features = frame.drop(columns="species")
    estimator = fitted(features.to_numpy(), frame["species"].to_numpy())
    run = estimator.save_run(tmp_path / "array")
    assert json.loads((run / rundir.MODEL_JSON).read_text())["input"]["by_position"] is True
    code, _, stderr = softreg("predict", "--run", run, "--input", path, "--output", tmp_path / "p.csv")
    assert code == 0, stderr
    assert stderr.splitlines()[0] == f"softreg: warning: {path}: {POSITION_NOTE}{LABEL_LAST}"
    assert stderr.count(POSITION_NOTE) == 1
    printed = pd.read_csv(tmp_path / "p.csv")
    assert printed["label"].tolist() == estimator.predict(features.to_numpy()).tolist()
    code, stdout, stderr = softreg("evaluate", "--run", run, "--data", path, "--label", "species", "--json")
    assert code == 0, stderr
    assert stderr.count(POSITION_NOTE) == 1
    accuracy = estimator.score(features.to_numpy(), frame["species"].to_numpy(dtype=str))
    assert json.loads(stdout)["accuracy"] == pytest.approx(accuracy)


def test_a_model_fitted_on_an_array_refuses_a_file_of_another_width(iris, tmp_path):
    """By position, a file of 2 columns for a 4-feature model is refused in one line, exit 2."""
    path, frame = iris
    run = fitted(frame.drop(columns="species").to_numpy(), frame["species"]).save_run(tmp_path / "array")
    narrow = tmp_path / "narrow.csv"
    frame.drop(columns=["species", "petal_width", "sepal_width"]).to_csv(narrow, index=False)
    code, stdout, stderr = softreg("predict", "--run", run, "--input", narrow)
    assert code == 2 and stdout == ""
    assert stderr == (f"softreg: error: {narrow}: has 2 feature columns; the model, fitted without feature names, "
                      "reads 4 by position\n")


def test_a_model_fitted_on_a_dataframe_keeps_its_names(iris, tmp_path):
    """fit(DataFrame) + save_run: the run names the frame's columns and reads a file by name
    (its columns shuffled), without the by-position line."""
    path, frame = iris
    estimator = fitted(frame.drop(columns="species"), frame["species"])
    run = estimator.save_run(tmp_path / "frame")
    assert rundir.load_model(run).feature_names == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    shuffled = tmp_path / "shuffled.csv"
    frame[["petal_width", "species", "sepal_length", "petal_length", "sepal_width"]].to_csv(shuffled, index=False)
    code, _, stderr = softreg("predict", "--run", run, "--input", shuffled, "--output", tmp_path / "p.csv")
    assert code == 0, stderr
    assert "by position" not in stderr
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expected = estimator.predict(frame.drop(columns="species"))
    assert pd.read_csv(tmp_path / "p.csv")["label"].tolist() == expected.tolist()


def test_fit_config_then_save_run_keeps_the_sources_names(iris, tmp_path):
    """fit_config on a CSV with a header, then save_run: the new run has the source's feature names
    and label, and `softreg predict` and `evaluate --data` read that same source; a sweep over it runs."""
    path, frame = iris
    config = {"data": {"source": str(path), "test": 0.2}, "optim": {"epochs": 20}, "output": {"plots": False}}
    estimator, run = fit_config(config, out=tmp_path / "trained")
    saved = estimator.save_run(tmp_path / "saved")
    model = rundir.load_model(saved)
    assert model.feature_names == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert model.label_name == "species" and model.header is True and not model.by_position
    code, _, stderr = softreg("predict", "--run", saved, "--input", path, "--output", tmp_path / "p.csv")
    assert code == 0, stderr
    assert pd.read_csv(tmp_path / "p.csv")["label"].tolist() == load_run(run).predict(
        frame.drop(columns="species").to_numpy()).tolist()
    code, stdout, stderr = softreg("evaluate", "--run", saved, "--data", path, "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["n_samples"] == len(frame)
    assert softreg("report", "--run", saved, "--output", tmp_path / "r.html")[0] == 0
    sweep_config = tmp_path / "sweep.yaml"
    sweep_config.write_text(yaml.safe_dump(config))
    assert softreg("sweep", "--config", sweep_config, "--grid", "seed=0,1", "--out", tmp_path / "sweep")[0] == 0


def test_a_loaded_run_refitted_on_an_array_reads_by_position(iris, tmp_path):
    """fit_config, then fit on an array: the weights are no longer the run's, so save_run names x0...
    and reads by position."""
    path, frame = iris
    config = {"data": {"source": str(path), "test": 0.2}, "optim": {"epochs": 20}, "output": {"plots": False}}
    estimator, _ = fit_config(config, out=tmp_path / "trained")
    estimator.set_params(epochs=300).fit(frame.drop(columns="species").to_numpy(), frame["species"].to_numpy(dtype=str))
    model = rundir.load_model(estimator.save_run(tmp_path / "refitted"))
    assert model.feature_names == ["x0", "x1", "x2", "x3"] and model.by_position and model.label_name == "label"
