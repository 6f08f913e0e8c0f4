"""``softreg evaluate``: a saved model's metrics on its test split or other data, and the
gap to the exact optimum."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from softreg import rundir
from softreg.columns import Columns
from softreg.commands.common import draw_plots
from softreg.config import read_yaml, resolve
from softreg.data import encode_with, prepare, random_streams
from softreg.delimited import Selection, delimited_chunks
from softreg.errors import DataError, RunDirError, UsageError, warn
from softreg.evaluate import classification_metrics
from softreg.kernels import Matrix
from softreg.model import Model, raw_logits
from softreg.solve import Optimum, exact_optimum
from softreg.sources import align_features, load_source, source_kind
from softreg.train import evaluate_objective


def evaluate_run(
    run_dir: str | PathLike[str],
    data: str | None = None,
    label: str | int | None = None,
    optimum: bool = False,
    out: str | PathLike[str] | None = None,
    force: bool = False,
    header: bool | None = None,
) -> dict[str, Any]:
    """Metrics of a saved run on its test split, or on another labelled ``data`` source.

    With ``optimum``, ``metrics["optimum"]`` holds the exact optimum's objective J*, the
    saved model's relative gap to it and the optimum's accuracy on the same data. With
    ``out``, the metrics and the plots of the evaluated data are written into that
    directory (refused when it exists and is not empty, unless ``force``).
    """
    if out is not None:
        _check_evaluation_out(run_dir, out, force)
    model = rundir.load_model(run_dir)
    X_raw, y, source = _evaluated_data(run_dir, model, data, label, header)
    proba = model.predict_proba(X_raw)
    metrics = classification_metrics(y, proba, model.classes)
    training = rundir.read_model_json(Path(run_dir) / "model.json").get("training", {})
    metrics.update(source=source, objective=training.get("objective"), grad_norm=training.get("grad_norm"))
    solved = None
    if optimum:
        solved, model_objective = solve_optimum(run_dir, model)
        mean, scale = model.feature_mean, model.feature_scale
        optimum_predicted = raw_logits(solved.coef, solved.intercept, mean, scale, X_raw).argmax(axis=1)
        metrics["optimum"] = {
            "objective": solved.objective,
            "gap": (model_objective - solved.objective) / abs(solved.objective),
            "accuracy": float(np.mean(optimum_predicted == y)),
            "model_objective": model_objective,
            "grad_norm": solved.grad_norm,
            "iterations": solved.iterations,
        }
    if out is not None:
        with rundir.staging_dir(out, force=force) as staging:
            rundir.write_json(staging / "metrics.json", metrics)
            draw_plots(
                staging / "plots", True, _read_history_if_any(run_dir), model, metrics, y, proba,
                X_raw=_raw_features(X_raw, model), optimum_objective=solved.objective if solved else None,
                points="evaluated",
            )
    return metrics


def _check_evaluation_out(run_dir: str | PathLike[str], out: str | PathLike[str], force: bool) -> None:
    target, run = Path(out).resolve(), Path(run_dir).resolve()
    if target == run or target in run.parents:
        raise UsageError(f"--out {target}: would replace the run directory {run_dir}; choose another directory")
    rundir.check_output_dir(target, force)  # before the work, not only when the results are saved


def _evaluated_data(
    run_dir: str | PathLike[str], model: Model, data: str | None, label: str | int | None, header: bool | None
) -> tuple[Matrix, np.ndarray, str]:
    """Raw features (n, d), class indices (n,) and a description of what is evaluated."""
    if data is None:
        X_raw, y = rundir.load_test_split(run_dir)
        if X_raw.shape[1] != model.n_features:
            raise DataError(f"{run_dir}/test.npz: has {X_raw.shape[1]} features, the model has {model.n_features}")
        return X_raw, y, f"{run_dir} (saved test split)"
    training = rundir.read_model_json(Path(run_dir) / "model.json").get("training", {})
    flag = header if header is not None else model.header
    selection = Selection(label=label if label is not None else _label_for(data, model, flag))
    dataset = load_source(data, selection, header=flag, index_base=training.get("svmlight_index_base"))
    if dataset.cells is None:
        X_raw = align_features(dataset, model.input_names, data)
    else:
        positions = model.input_positions(dataset.feature_names, data)
        columns = model.columns or Columns.numeric(model.feature_names)
        lines = None if dataset.line_numbers is None else dataset.line_numbers.tolist()
        encoded = columns.encode(dataset.cells[:, positions], data, lines)
        if encoded.unknown:
            counts = ", ".join(f"{name}: {count}" for name, count in encoded.unknown.items())
            warn(f"{data}: categories unseen in training got all-zero indicators ({counts} cells)")
        X_raw = encoded.X
    lines = None if dataset.line_numbers is None else dataset.line_numbers.tolist()
    model.check_finite_standardized(X_raw, data, lines)
    return X_raw, encode_with(model.classes, dataset.labels, data), data


def _raw_features(X_raw: Matrix, model: Model) -> np.ndarray | None:
    """Dense float64 raw features for the decision regions; None unless the model has two features."""
    if model.n_features != 2:
        return None
    return (X_raw if isinstance(X_raw, np.ndarray) else X_raw.toarray()).astype(np.float64)


def _read_history_if_any(run_dir: str | PathLike[str]) -> list[dict[str, float | None]]:
    return rundir.read_history(run_dir) if (Path(run_dir) / "history.csv").exists() else []


def solve_optimum(run_dir: str | PathLike[str], model: Model) -> tuple[Optimum, float]:
    """The exact optimum of the run's objective on its training part, and the model's objective there.

    The training part is rebuilt from the saved config: the split depends only on the
    data and the seed. Both objectives are computed in float64.

    Returns
    -------
    optimum : softreg.solve.Optimum
    model_objective : float, J of the saved model on the same training part
    """
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise RunDirError(f"{path}: missing; --optimum needs the run's config to rebuild its training part")
    config = resolve(read_yaml(path), origin=str(path))
    prepared = prepare(config.data, np.dtype(np.float64), random_streams(config.seed).split)
    same = [str(label) for label in prepared.classes] == [str(label) for label in model.classes] and np.allclose(
        prepared.feature_mean, model.feature_mean
    ) and np.allclose(prepared.feature_scale, model.feature_scale)
    if not same:
        raise DataError(
            f"{config.data.source}: no longer gives the training part this run was trained on "
            "(its classes or feature statistics changed); cannot compute the optimum"
        )
    train, settings = prepared.train, config.training_settings()
    optimum = exact_optimum(
        train.X, train.y, len(model.classes), settings.weight_decay, settings.fit_intercept, center=train.center
    )
    coef, intercept = model.coef.astype(np.float64), model.intercept.astype(np.float64)
    model_objective, _ = evaluate_objective(coef, intercept, train, settings)
    return optimum, model_objective


def _label_for(source: str, model: Model, header_flag: bool | None) -> str | None:
    """Use the model's label column name when a delimited source has it, else the default."""
    if source_kind(source) != "delimited" or source == "-":
        return None
    try:
        with delimited_chunks(Path(source), header=header_flag) as (header, _):  # the header (and a few rows)
            pass
    except DataError:
        return None
    return model.label_name if model.label_name in header else None
