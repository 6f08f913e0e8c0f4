"""A fitted `SoftmaxRegression` from a run directory (`load_run`), and from a config trained
exactly as ``softreg train --config`` trains it (`fit_config`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from softreg import rundir
from softreg.config import resolve
from softreg.estimator.classifier import SoftmaxRegression
from softreg.estimator.fitting import PARAMETERS


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
        from softreg.errors import ConfigError

        try:
            config = load_config(config_path)
        except ConfigError:  # a config this version no longer resolves (an unknown key) leaves the defaults
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
    estimator.run_input_ = model  # its names and how it reads files, kept by `save_run` while its weights are these
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
