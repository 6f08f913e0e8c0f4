"""One-hot indicators keep their 0/1 step (centred, not scaled); numeric columns are
standardized: the optimum is scikit-learn's ColumnTransformer + LogisticRegression(C = 1/(nλ))."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from softreg import rundir
from softreg.cli import main
from softreg.config import resolve
from softreg.prepare.data import prepare, random_streams
from softreg.solve import exact_optimum

WEIGHT_DECAY = 1e-2


def softreg(*args):
    """The command line in this process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A pandas-written CSV (no index) of 300 rows: two numbers, two text columns (one with a
    category of 3 rows) and a 3-class label that depends on all four."""
    rng = np.random.default_rng(7)
    n = 300
    country = rng.choice(["fr", "de", "it"], size=n)
    country[:3] = "lu"
    color = rng.choice(["red", "blue"], size=n)
    income = rng.normal(50_000, 12_000, size=n)
    age = rng.integers(18, 80, size=n).astype(float)
    score = (income - 50_000) / 12_000 + (country == "fr") - (country == "lu") * 2 + (color == "red") \
        + rng.normal(0, 0.8, size=n)
    label = np.where(score < -0.3, "low", np.where(score < 1.0, "mid", "high"))
    frame = pd.DataFrame({"income": income, "country": country, "age": age, "color": color, "band": label})
    path = tmp_path_factory.mktemp("indicators") / "people.csv"
    frame.to_csv(path, index=False)
    return path, frame


def config_of(path, **data):
    return {"data": {"source": str(path), "label": "band", "test": 0.0, "val": 0.0, **data},
            "model": {"weight_decay": WEIGHT_DECAY}, "optim": {"epochs": 3}, "output": {"plots": False}}


def test_indicators_keep_their_step_and_numbers_are_standardized(table):
    """The training part's indicator columns hold p and p - 1 (centred 0/1), numeric ones have mean 0, std 1."""
    path, _ = table
    prepared = prepare(resolve(config_of(path)).data, np.float64, random_streams(0).split)
    X, names = prepared.train.X, prepared.feature_names
    for index, name in enumerate(names):
        column = X[:, index]
        if "=" in name:
            assert np.ptp(column) == pytest.approx(1.0) and len(np.unique(column)) == 2
            assert prepared.feature_scale[index] == 1.0
        else:
            assert column.mean() == pytest.approx(0.0, abs=1e-12) and column.std() == pytest.approx(1.0)
    assert prepared.scaling == ["standardized" if "=" not in name else "centred" for name in names]


def test_optimum_equals_column_transformer_logistic_regression(table):
    """softreg's exact optimum equals LogisticRegression(C = 1/(nλ)) on StandardScaler numbers and
    OneHotEncoder text, to 1e-6 in the objective (1/n) Σ −log p + (λ/2)‖W‖²."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    path, frame = table
    prepared = prepare(resolve(config_of(path)).data, np.float64, random_streams(0).split)
    optimum = exact_optimum(prepared.train.X, prepared.train.y, len(prepared.classes), WEIGHT_DECAY)
    features = ColumnTransformer([("numbers", StandardScaler(), ["income", "age"]),
                                  ("text", OneHotEncoder(sparse_output=False), ["country", "color"])])
    X = features.fit_transform(frame)
    n = len(frame)
    fitted = LogisticRegression(C=1 / (n * WEIGHT_DECAY), tol=1e-12, max_iter=100_000).fit(X, frame["band"])
    objective = log_loss(frame["band"], fitted.predict_proba(X), labels=fitted.classes_) \
        + WEIGHT_DECAY / 2 * float(np.sum(fitted.coef_ ** 2))
    assert optimum.objective == pytest.approx(objective, abs=1e-6)


def test_model_json_records_how_each_feature_was_scaled(table, tmp_path):
    """model.json's feature_scaling names each feature's scaling; standardize: false gives 'as is'."""
    path, _ = table
    for standardize, numeric, indicator in ((True, "standardized", "centred"), (False, "as is", "as is")):
        config = tmp_path / f"{standardize}.yaml"
        config.write_text(yaml.safe_dump(config_of(path, standardize=standardize, test=0.2)))
        run = tmp_path / f"run-{standardize}"
        assert softreg("train", "--config", config, "--out", run, "--quiet")[0] == 0
        document = json.loads((run / rundir.MODEL_JSON).read_text())
        expected = [indicator if "=" in name else numeric for name in document["feature_names"]]
        assert document["feature_scaling"] == expected


def old_run(tmp_path, path, same_logits, **split):
    """A run trained on ``path`` and then made to look written before indicators were left unscaled:
    no feature_scaling in model.json, each indicator's saved scale 0.4 (as standardizing would give);
    with ``same_logits`` its coefficients scaled to match, so that it predicts as it was trained.
    Returns the run directory and its model.npz arrays."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(config_of(path, **split)))
    run = tmp_path / "old"
    assert softreg("train", "--config", config, "--out", run, "--quiet")[0] == 0
    document = json.loads((run / rundir.MODEL_JSON).read_text())
    del document["feature_scaling"]
    (run / rundir.MODEL_JSON).write_text(json.dumps(document))
    with np.load(run / rundir.MODEL) as saved:
        arrays = dict(saved)
    indicators = np.array(["=" in name for name in document["feature_names"]])
    arrays["feature_scale"] = np.where(indicators, 0.4, arrays["feature_scale"])
    if same_logits:
        arrays["coef"] = np.where(indicators, arrays["coef"] * 0.4, arrays["coef"])
    np.savez(run / rundir.MODEL, **arrays)
    return run, arrays


def test_a_run_with_scaled_indicators_predicts_as_trained(table, tmp_path):
    """A run written before indicators were left unscaled (no feature_scaling, indicator scales not 1)
    predicts, evaluates and reports with its own saved scales."""
    path, frame = table
    run, arrays = old_run(tmp_path, path, same_logits=False, test=0.2)
    model = rundir.load_model(run)
    assert model.scaling is None
    code, _, stderr = softreg("predict", "--run", run, "--input", path, "--output", tmp_path / "p.csv")
    assert code == 0, stderr
    printed = pd.read_csv(tmp_path / "p.csv")
    X_raw = model.columns.encode(frame[model.input_names].to_numpy(dtype=object), "people.csv").X
    expected = model.predict_proba(X_raw)
    shown = printed[[column for column in printed.columns if column.startswith("prob_")]].to_numpy()
    np.testing.assert_allclose(shown, expected, atol=1e-6)
    logits = ((X_raw - arrays["feature_mean"]) / arrays["feature_scale"]) @ arrays["coef"].T + arrays["intercept"]
    np.testing.assert_allclose(expected, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), atol=1e-12)
    assert softreg("evaluate", "--run", run, "--data", path)[0] == 0
    assert softreg("report", "--run", run, "--output", tmp_path / "report.html")[0] == 0


def test_sweep_records_the_scaling_in_each_run(table, tmp_path):
    """softreg sweep over λ on a table with text: each run's model.json records centred indicators."""
    path, _ = table
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(config_of(path, test=0.2, val=0.2)))
    code, _, stderr = softreg("sweep", "--config", config, "--grid", "model.weight_decay=0.01,0.1",
                              "--out", tmp_path / "sweep")
    assert code == 0, stderr
    documents = [json.loads(path.read_text()) for path in (tmp_path / "sweep").rglob(rundir.MODEL_JSON)]
    assert len(documents) == 2
    for document in documents:
        assert document["feature_scaling"].count("centred") == sum("=" in n for n in document["feature_names"]) > 0


def test_calibrate_and_optimum_rebuild_the_parts_of_a_run_with_scaled_indicators(table, tmp_path):
    """A run that predates unscaled indicators still calibrates and solves its optimum: the rebuilt
    parts take its saved scales, so the model's own objective matches the one it trained on."""
    path, _ = table
    run, _ = old_run(tmp_path, path, same_logits=True, test=0.2, val=0.25)
    code, stdout, stderr = softreg("evaluate", "--run", run, "--calibrate", "--optimum", "--json")
    assert code == 0, stderr
    metrics = json.loads(stdout)
    assert metrics["calibration"]["n_samples"] == 60 and metrics["optimum"]["gap"] >= -1e-9
