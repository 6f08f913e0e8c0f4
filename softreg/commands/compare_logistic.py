"""``softreg compare-logistic --out``: the comparison's files, its softmax side saved as a
run directory exactly as ``softreg train`` saves one."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from os import PathLike
from pathlib import Path

import numpy as np

from softreg import plots, rundir
from softreg.compare import THRESHOLDS, Comparison, Problem, check_supported, logistic
from softreg.config import Config, DataConfig, apply_overrides, dump_config, read_yaml, resolve
from softreg.errors import UsageError
from softreg.kernels import Matrix
from softreg.model import Model, standardize
from softreg.prepare.data import fit_standardizer, load_data
from softreg.prepare.features import drop_missing, features_of, fit_columns_for
from softreg.prepare.labels import encode_labels, select_classes
from softreg.run import score_part
from softreg.train.settings import UNCERTIFIED_EPOCHS

# --data runs get these instead of train's defaults: enough decay for a well-conditioned
# optimum and a cosine-annealed SGD that ends within 0.02 in probability of it
COMPARE_DEFAULTS = {
    "model": {"weight_decay": 1e-2},
    "optim": {"lr": 0.05, "batch_size": 8, "epochs": 200, "schedule": "cosine"},
}


def compare_config(
    config_path: str | PathLike[str] | None = None,
    data: str | None = None,
    label: str | int | None = None,
    classes: str | None = None,
    overrides: Iterable[str] = (),
) -> Config:
    """The resolved `Config` of a comparison: a train config file, or ``--data`` with compare defaults.

    ``classes`` is the ``--classes A,B`` text; it and ``label`` override the config.
    """
    if (config_path is None) == (data is None):
        raise UsageError("give exactly one of --config FILE or --data SOURCE")
    base_dir: str | Path
    if config_path is not None:
        document, origin, base_dir = read_yaml(config_path), str(config_path), Path(config_path).resolve().parent
    else:
        document = {"data": {"source": data}, **copy.deepcopy(COMPARE_DEFAULTS)}
        origin, base_dir = "compare-logistic", "."
    document, from_command_line = apply_overrides(document, overrides)
    section = document.setdefault("data", {})
    if not isinstance(section, dict):
        raise UsageError(f"{origin}: data must be a mapping of keys")
    if label is not None:
        section["label"] = label
    if classes is not None:
        section["classes"] = _parse_classes(classes)
    if data is not None:
        from_command_line.add("data.source")  # relative to the current directory
    optim = document.setdefault("optim", {})
    if isinstance(optim, dict):  # the comparison follows plain minibatch SGD for a fixed number of epochs
        optim.setdefault("variance_reduction", "none")
        optim.setdefault("epochs", UNCERTIFIED_EPOCHS)
    config = resolve(document, origin=origin, base_dir=base_dir, from_command_line=from_command_line)
    check_supported(config)
    return config


def _parse_classes(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if len(names) != 2 or not all(names):
        raise UsageError(f"--classes takes two class labels separated by a comma, e.g. --classes 3,8; got {text!r}")
    if names[0] == names[1]:
        raise UsageError(f"--classes must name two different classes, got {text!r}")
    return names


def load_problem(data_config: DataConfig) -> Problem:
    """Load ``data.source``, keep two classes and standardize every row as ``train`` does."""
    dataset = load_data(data_config, data_config.source)
    if data_config.missing == "drop":
        dataset = drop_missing(dataset)
    if data_config.classes is None:
        _require_two(dataset.source, [str(label) for label in np.unique(dataset.labels)])
    elif len(data_config.classes) != 2:
        raise UsageError(
            f"compare-logistic needs exactly two classes, got {len(data_config.classes)} in data.classes "
            f"({', '.join(map(str, data_config.classes))})"
        )
    dataset = select_classes(dataset, data_config.classes)
    classes, y = encode_labels(dataset)
    columns = fit_columns_for(data_config, dataset)  # every row is training data here
    X_raw, _ = features_of(dataset, columns)
    mean, scale = fit_standardizer(X_raw, data_config.standardize, center_sparse=False)  # X is used as stored
    return Problem(
        X=standardize(X_raw, mean, scale, np.float64),
        y=y,
        X_raw=X_raw,
        classes=classes,
        feature_names=columns.feature_names if columns is not None else dataset.feature_names,
        label_name=dataset.label_name,
        feature_mean=mean,
        feature_scale=scale,
        source=dataset.source,
    )


def _require_two(source: str, present: list[str]) -> None:
    if len(present) > 2:
        shown = ", ".join(present[:20]) + (f" and {len(present) - 20} more" if len(present) > 20 else "")
        raise UsageError(
            f"{source}: has {len(present)} classes ({shown}); compare-logistic needs two: "
            f"pick them with --classes A,B, e.g. --classes {present[0]},{present[1]}"
        )


def save_comparison(comparison: Comparison, target: str | PathLike[str], force: bool = False) -> Path:
    """Write both SGD models, the JSON report, the config and the plots into ``target`` atomically.

    ``softmax/`` is a run directory ``evaluate``, ``predict`` and ``report`` accept: model,
    config, history, metrics and plots, where the "test" part (``test.npz``, the metrics)
    is every row the models were trained on (there is no held-out split: the claim is
    about the training problem). ``logistic/model.npz`` holds coef (1, d) and intercept (1,)
    with the same classes and standardizer.
    """
    problem, trajectory = comparison.problem, comparison.trajectory
    shared = {
        "classes": np.asarray(problem.classes),
        "feature_mean": problem.feature_mean,
        "feature_scale": problem.feature_scale,
    }
    with rundir.staging_dir(target, force=force) as staging:
        for name in (rundir.SOFTMAX_RUN, rundir.LOGISTIC_MODEL, rundir.PLOTS):
            (staging / name).mkdir()
        rundir.write_npz(
            staging / rundir.LOGISTIC_MODEL / rundir.MODEL,
            coef=trajectory.logistic_coef,
            intercept=trajectory.logistic_intercept,
            **shared,
        )
        rundir.write_json(staging / rundir.COMPARISON_REPORT, comparison.report)
        rundir.write_text(staging / rundir.CONFIG, _config_text(comparison.config))
        draw_comparison_plots(comparison, staging / rundir.PLOTS)
        model = Model(
            coef=trajectory.softmax_coef,
            intercept=trajectory.softmax_intercept,
            classes=shared["classes"],
            feature_mean=problem.feature_mean,
            feature_scale=problem.feature_scale,
            feature_names=problem.feature_names,
            label_name=problem.label_name,
        )
        _save_softmax_run(staging / rundir.SOFTMAX_RUN, comparison, model)
    return Path(target)


def _config_text(config: Config) -> str:
    return (
        "# compare-logistic: trained on every row of data.source (data.test and data.val are not used), "
        "in float64\n" + dump_config(config)
    )


def _save_softmax_run(directory: Path, comparison: Comparison, model: Model) -> None:
    """The softmax SGD model as a run directory, its metrics and plots on every row."""
    problem, trajectory = comparison.problem, comparison.trajectory
    metrics, proba = score_part(model, problem.X, problem.y, standardized=True)  # proba (n_samples, 2)
    summary = trajectory.fit_summary
    metrics.update(split="train", objective=summary.get("objective"), grad_norm=summary.get("grad_norm"))
    training = {
        **summary,
        "n_train": int(problem.X.shape[0]),
        "n_val": 0,
        "n_test": int(problem.X.shape[0]),
        "n_features": int(problem.X.shape[1]),
        "source": problem.source,
    }
    rundir.save_finished_run(directory, rundir.FinishedRun(
        model, trajectory.history, metrics, training, evaluated=(problem.X, problem.y, proba),
        test_split=(problem.X_raw, problem.y), points="training", config_text=_config_text(comparison.config),
    ))


def draw_comparison_plots(comparison: Comparison, directory: Path) -> list[Path]:
    """Coefficient paths, per-step probability gaps and, for two features, the decision boundaries."""
    problem, trajectory = comparison.problem, comparison.trajectory
    optimum = comparison.optima.logistic.coef[0]
    names = [f"{problem.feature_names[index]} (w* = {optimum[index]:.3g})" for index in trajectory.tracked]
    drawn = [
        plots.coefficient_paths(
            trajectory.softmax_path, trajectory.logistic_path, names, directory / "coefficient_paths.png"
        ),
        plots.trajectory_gaps(
            trajectory.prob_diff,
            np.maximum(trajectory.coef_diff, trajectory.intercept_diff),
            THRESHOLDS["trajectory.max_abs_prob_diff"],
            directory / "trajectory_gaps.png",
        ),
    ]
    if problem.X.shape[1] == 2:
        softmax_weights = logistic.from_softmax(trajectory.softmax_coef, trajectory.softmax_intercept)
        softmax_line = _raw_space_line(*softmax_weights, problem)
        logistic_line = _raw_space_line(trajectory.logistic_coef, trajectory.logistic_intercept, problem)
        drawn.append(
            plots.decision_boundaries(
                _dense(problem.X_raw),
                problem.y,
                problem.classes,
                problem.feature_names,
                softmax_line,
                logistic_line,
                directory / "decision_boundaries.png",
            )
        )
    return drawn


def _dense(X: Matrix) -> np.ndarray:
    return X.toarray() if hasattr(X, "toarray") else np.asarray(X)


def _raw_space_line(coef: np.ndarray, intercept: np.ndarray, problem: Problem) -> tuple[np.ndarray, float]:
    """``w . (x - mean) / scale + b = 0`` as ``(a, c)`` with ``a . x + c = 0`` in raw feature units."""
    slope = coef[0] / problem.feature_scale  # (2,)
    return slope, float(intercept[0] - slope @ problem.feature_mean)
