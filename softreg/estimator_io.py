"""Run directories and the Python API: `load_run` (a fitted `SoftmaxRegression` from a run of
``softreg train``), `fit_config` (what ``softreg train --config`` does) and the estimator's
`save_run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from softreg import rundir
from softreg.config import Config, dump_config, resolve
from softreg.estimator import PARAMETERS, SoftmaxRegression
from softreg.model import Model
from softreg.train import AUTO, EpochRecord


def save_run(estimator: SoftmaxRegression, path: str | Path, force: bool = False) -> Path:
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


def estimator_model(estimator: SoftmaxRegression) -> Model:
    """The fitted estimator as the `Model` a run directory holds (`save_run`, `score`, `to_onnx`)."""
    check_is_fitted(estimator)
    n_features = estimator.coef_.shape[1]
    names = getattr(estimator, "feature_names_in_", None)
    mean = estimator.feature_mean_ if estimator.feature_mean_ is not None else np.zeros(n_features)
    scale = estimator.feature_scale_ if estimator.feature_scale_ is not None else np.ones(n_features)
    return Model(
        coef=np.asarray(estimator.coef_), intercept=np.asarray(estimator.intercept_),
        classes=np.asarray(estimator.classes_), feature_mean=mean, feature_scale=scale,
        feature_names=[str(name) for name in names] if names is not None else [f"x{i}" for i in range(n_features)],
        label_name="label", dtype=estimator.dtype, loss=estimator.loss, normalizer=estimator.normalizer,
        temperature=float(estimator.temperature),
    )


def run_config(estimator: SoftmaxRegression) -> Config:
    """The estimator's parameters as the config ``softreg train`` would have resolved."""
    sections: dict[str, dict] = {"model": {}, "optim": {}}
    for name, section in PARAMETERS.items():
        sections[section][name] = getattr(estimator, name)
    if sections["optim"]["lr"] == AUTO:  # the number it chose, as `softreg train` saves it
        sections["optim"]["lr"] = estimator.learning_rate_
    seed = estimator.random_state if isinstance(estimator.random_state, int) else 0
    data = {"source": "SoftmaxRegression.fit", "standardize": estimator.standardize is not False}
    return resolve({"data": data, **sections, "seed": seed})


def load_run(path: str | Path) -> SoftmaxRegression:
    """A fitted `SoftmaxRegression` from a run directory of ``softreg train``.

    Its parameters are the run's config; it applies the run's saved standardizer to raw
    features, so ``load_run(d).predict(X_raw)`` equals ``softreg predict --run d``.
    """
    path = Path(path)
    model = rundir.load_model(path)
    config_path = path / rundir.CONFIG
    parameters: dict[str, Any] = {}
    if config_path.is_file():
        from softreg.config import load_config

        try:
            config = load_config(config_path)
        except Exception:  # a config that no longer resolves (a moved data file) leaves the defaults
            config = None
        if config is not None:
            for name, section in PARAMETERS.items():
                parameters[name] = getattr(getattr(config, section), name)
            parameters["random_state"] = config.seed
    # the output travels with the model itself: predictions need it even without a readable config
    parameters.update(loss=model.loss, normalizer=model.normalizer, temperature=model.temperature)
    estimator = SoftmaxRegression(**parameters)
    estimator.classes_ = model.classes
    estimator.coef_, estimator.intercept_ = model.coef, model.intercept
    estimator.feature_mean_, estimator.feature_scale_ = model.feature_mean, model.feature_scale
    estimator.n_features_in_ = model.n_features
    estimator.history_ = rundir.read_history(path) if (path / rundir.HISTORY).is_file() else []
    estimator.objective_ = rundir.read_model_json(path / rundir.MODEL_JSON).get("training", {}).get("objective")
    return estimator


def fit_config(
    config: str | Path | dict,
    overrides: tuple[str, ...] | list[str] = (),
    out: str | Path | None = None,
    force: bool = False,
) -> tuple[SoftmaxRegression, Path]:
    """Run exactly what ``softreg train --config`` runs; return the fitted estimator and the run directory.

    Parameters
    ----------
    config : path of a YAML config, or the same document as a dict (relative paths
        resolve against the current directory)
    overrides : ``KEY=VALUE`` strings, as ``--set`` takes them
    out : the run directory (default ``output.dir``, else ``runs/NAME-TIME``), refused when
        it exists and is not empty unless ``force``
    """
    from softreg.cache.budget import auto_cache
    from softreg.config import apply_overrides, load_config
    from softreg.errors import warn
    from softreg.run import output_dir_for, train_run

    if isinstance(config, dict):
        document, from_command_line = apply_overrides(config, overrides)
        resolved = resolve(document, origin="fit_config", base_dir=".", from_command_line=from_command_line)
    else:
        resolved = load_config(config, overrides)
    target = output_dir_for(resolved, out)
    rundir.check_output_dir(target, force)
    resolved, switched = auto_cache(resolved, target)
    if switched is not None:
        warn(switched)
    outcome = train_run(resolved, target, force=force)
    return load_run(outcome.run_dir), outcome.run_dir


def config_text(estimator: SoftmaxRegression) -> str:
    """The config.yaml that `save_run` writes for the estimator."""
    return "# written by SoftmaxRegression.save_run\n" + dump_config(run_config(estimator))
