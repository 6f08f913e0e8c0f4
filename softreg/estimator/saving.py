"""A fitted `SoftmaxRegression` as what a run directory holds: its `Model`, its config and,
through `softreg.rundir.save_finished_run`, the run directory itself (`save_run`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sklearn.utils.validation import check_is_fitted

from softreg import rundir
from softreg.config import Config, dump_config, resolve
from softreg.estimator.fitting import PARAMETERS
from softreg.model import Model
from softreg.train import AUTO, EpochRecord


class Fitted(Protocol):
    """What these functions read of a fitted `SoftmaxRegression` (named here, not imported: the
    estimator calls them)."""

    coef_: np.ndarray  # (n_classes, n_features)
    intercept_: np.ndarray  # (n_classes,)
    classes_: np.ndarray  # (n_classes,)
    feature_mean_: np.ndarray | None  # (n_features,)
    feature_scale_: np.ndarray | None  # (n_features,)
    history_: list[dict[str, Any]]
    objective_: float | None
    learning_rate_: float
    dtype: str
    loss: str
    normalizer: str
    temperature: float
    standardize: bool
    random_state: Any


def save_run(estimator: Fitted, path: str | Path, force: bool = False) -> Path:
    """`SoftmaxRegression.save_run`: the fitted estimator as a run directory."""
    model = estimator_model(estimator)
    rundir.check_output_dir(path, force)
    history = [EpochRecord(**row) for row in estimator.history_]
    training = {"epochs_run": len(history), "objective": estimator.objective_, "source": "SoftmaxRegression.fit"}
    metrics = {"classes": [str(label) for label in model.classes]}  # no data at hand: nothing measured
    with rundir.staging_dir(path, force=force) as staging:
        rundir.save_finished_run(
            staging, rundir.FinishedRun(model, history, metrics, training, config_text=config_text(estimator))
        )
    return Path(path)


def estimator_model(estimator: Fitted) -> Model:
    """The fitted estimator as the `Model` a run directory holds (`save_run`, `score`, `to_onnx`)."""
    check_is_fitted(estimator)
    n_features = estimator.coef_.shape[1]
    names = getattr(estimator, "feature_names_in_", None)
    mean = estimator.feature_mean_ if estimator.feature_mean_ is not None else np.zeros(n_features)
    scale = estimator.feature_scale_ if estimator.feature_scale_ is not None else np.ones(n_features)
    model = Model(
        coef=np.asarray(estimator.coef_), intercept=np.asarray(estimator.intercept_),
        classes=np.asarray(estimator.classes_), feature_mean=mean, feature_scale=scale,
        feature_names=[str(name) for name in names] if names is not None else [f"x{i}" for i in range(n_features)],
        label_name="label", dtype=estimator.dtype, loss=estimator.loss, normalizer=estimator.normalizer,
        temperature=float(estimator.temperature), by_position=names is None,
    )
    return _with_run_input(model, getattr(estimator, "run_input_", None))


def _with_run_input(model: Model, run_input: Model | None) -> Model:
    """``model`` named and reading files as the run `load_run` (or `fit_config`) read it from:
    its feature and label names, input columns, header, id and scaling, as long as its weights
    are still that run's (a refit or partial_fit since then is a model of other data)."""
    if run_input is None or not (np.array_equal(run_input.coef, model.coef)
                                 and np.array_equal(run_input.intercept, model.intercept)):
        return model
    return replace(model, feature_names=list(run_input.feature_names), label_name=run_input.label_name,
                   columns=run_input.columns, header=run_input.header, id_name=run_input.id_name,
                   file_columns=run_input.file_columns, scaling=run_input.scaling, by_position=run_input.by_position)


def run_config(estimator: Fitted) -> Config:
    """The estimator's parameters as the config ``softreg train`` would have resolved."""
    sections: dict[str, dict] = {"model": {}, "optim": {}}
    for name, section in PARAMETERS.items():
        sections[section][name] = getattr(estimator, name)
    if sections["optim"]["lr"] == AUTO:  # the number it chose, as `softreg train` saves it
        sections["optim"]["lr"] = estimator.learning_rate_
    seed = estimator.random_state if isinstance(estimator.random_state, int) else 0
    data = {"source": "SoftmaxRegression.fit", "standardize": estimator.standardize is not False}
    return resolve({"data": data, **sections, "seed": seed})


def config_text(estimator: Fitted) -> str:
    """The config.yaml that `save_run` writes for the estimator."""
    return "# written by SoftmaxRegression.save_run\n" + dump_config(run_config(estimator))
