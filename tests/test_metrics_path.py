"""One metrics path: every command that writes or reads a run's metrics (train's JSON and
metrics.json, the report's cards, sweep.csv, the estimator's score) agrees with ``softreg
evaluate`` to 1e-12, for every model option (loss, normalizer, temperature, dtype, SVRG,
early stopping, sparse data, the cache and the Dask engine)."""

import csv
import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import accuracy_score, log_loss

from softreg import losses, rundir
from softreg.cli import main
from softreg.commands.evaluate import evaluate_run
from softreg.commands.report import report_run
from softreg.commands.run_parts import validation_part
from softreg.commands.sweep import sweep
from softreg.console.page import _number
from softreg.errors import SoftregWarning
from softreg.estimator import load_run
from softreg.train import data_logits

TOLERANCE = 1e-12
SCALARS = ("accuracy", "balanced_accuracy", "log_loss", "brier_score", "ece", "macro_precision", "macro_recall",
           "macro_f1")
# (name, extra config text, --set overrides): one option changed from the plain softmax at a time,
# and the three that change predictions together
VARIANTS = [
    ("softmax", "", []),
    ("squared_error", "", ["model.loss=squared_error"]),
    ("taylor", "", ["model.normalizer=taylor"]),
    ("spherical", "", ["model.normalizer=spherical"]),
    ("temperature", "", ["model.temperature=2"]),
    ("float32", "", ["model.dtype=float32"]),
    ("taylor_float32_t3", "", ["model.normalizer=taylor", "model.dtype=float32", "model.temperature=3"]),
    ("svrg", "", ["optim.variance_reduction=svrg"]),
    ("early_stopping", "", ["optim.early_stopping={patience: 1}"]),
    ("sparse", "sparse", ["model.normalizer=spherical"]),
    ("cache", "cache", ["model.temperature=0.5"]),
    ("cache_sparse", "sparse cache", ["model.normalizer=taylor"]),
    pytest.param(("dask", "cache", ["data.shards=2", "engine.kind=dask", "engine.scheduler=local", "engine.workers=1"]),
                 marks=pytest.mark.slow, id="dask"),
]


def _ids(variant):
    return variant[0] if isinstance(variant, tuple) else None


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """A 240-row CSV of three overlapping classes (so that calibration is not trivial) and the
    same rows as svmlight (column 3 mostly zero: sparse with a nonzero mean)."""
    folder = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(7)
    y = rng.integers(0, 3, size=240)
    X = rng.normal(size=(240, 4)) + 0.8 * np.eye(3, 4)[y] * np.array([1.0, 1.5, 2.0, 0.0])
    X[:, 3] = np.where(rng.random(240) < 0.8, 0.0, X[:, 3] + 1.0)
    rows = list(zip(X, y, strict=True))
    lines = ["f0,f1,f2,f3,label"] + [",".join([*(f"{v:.6f}" for v in row), f"c{label}"]) for row, label in rows]
    (folder / "d.csv").write_text("\n".join(lines) + "\n")
    svm = [" ".join([str(label), *(f"{j + 1}:{v:.6f}" for j, v in enumerate(row) if v != 0)]) for row, label in rows]
    (folder / "d.svm").write_text("\n".join(svm) + "\n")
    return folder


def write_config(folder, source, extra):
    cache = f"  cache: {folder / 'cache'}\n" if "cache" in extra else ""
    path = folder / "c.yaml"
    path.write_text(
        f"data:\n  source: {source}\n  test: 0.25\n  val: 0.2\n{cache}"
        "model:\n  weight_decay: 1.0e-3\n"
        "optim:\n  lr: 0.2\n  batch_size: 16\n  epochs: 6\n  momentum: 0.5\n"
        "output:\n  plots: false\nseed: 3\n"
    )
    return path


def close(found, expected):
    return abs(float(found) - float(expected)) <= TOLERANCE


def assert_same_metrics(found, expected, where):
    for key in SCALARS:
        assert close(found[key], expected[key]), (where, key, found[key], expected[key])
    assert found["confusion_matrix"] == expected["confusion_matrix"], where
    assert found["top_k_accuracy"] == expected["top_k_accuracy"], where
    for name, row in expected["per_class"].items():
        for key, value in row.items():
            assert close(found["per_class"][name][key], value), (where, name, key)


@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
def test_every_command_reports_the_metrics_evaluate_computes(variant, sources, tmp_path):
    """train (stdout JSON and metrics.json), report's cards, sweep.csv's test and validation
    columns and load_run(...).score agree with evaluate (itself checked against scikit-learn on
    load_run's probabilities) to 1e-12."""
    name, extra, overrides = variant
    source = sources / ("d.svm" if "sparse" in extra else "d.csv")
    config = write_config(tmp_path, source, extra)
    sets = [part for override in overrides for part in ("--set", override)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SoftregWarning)  # Dask's "communication takes" on tiny steps
        result = CliRunner().invoke(
            main, ["train", "--config", str(config), "--out", str(tmp_path / "run"), "--json", "--quiet", *sets],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.stderr
        printed = json.loads(result.stdout)["metrics"]
        run = tmp_path / "run"
        expected = evaluate_run(run)

        # evaluate itself: scikit-learn on the probabilities of the Python API's model
        X_test, y_test = rundir.load_test_split(run)
        estimator = load_run(run)
        proba = estimator.predict_proba(X_test)
        # scikit-learn sums float32 losses in float32; evaluate adds them exactly
        reference = 1e-6 if proba.dtype == np.float32 else TOLERANCE
        assert abs(expected["log_loss"] - log_loss(y_test, proba, labels=range(3))) <= reference
        assert expected["accuracy"] == accuracy_score(y_test, proba.argmax(axis=1))

        assert_same_metrics(printed, expected, "train --json")
        assert_same_metrics(rundir.read_metrics(run / "metrics.json"), expected, "metrics.json")
        assert estimator.score(X_test, estimator.classes_[y_test]) == expected["accuracy"]

        page, _ = report_run(run)
        cards = page.read_text()
        for key in ("accuracy", "log_loss", "ece"):
            assert f">{_number(expected[key])}<" in cards, key

        swept = sweep(config, ["seed=3"], sets=overrides, out=tmp_path / "sweep", plots=False)
        assert not swept.failed, swept.failed
    with open(tmp_path / "sweep" / "sweep.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    run_dir = tmp_path / "sweep" / row["run_dir"]
    swept_expected = evaluate_run(run_dir)
    for key in ("accuracy", "log_loss", "ece"):
        assert close(row[f"test_{key}"], swept_expected[key]), key
    model = rundir.load_model(run_dir)
    val = validation_part(run_dir, model)
    logits = data_logits(model.coef, model.intercept, val.X, val.center)
    val_proba = losses.proba(logits, model.normalizer, model.temperature)  # the model's own map, written out
    reference = 1e-6 if val_proba.dtype == np.float32 else TOLERANCE
    assert abs(float(row["val_log_loss"]) - log_loss(val.y, val_proba, labels=range(3))) <= reference
    assert close(row["val_accuracy"], accuracy_score(val.y, val_proba.argmax(axis=1)))
