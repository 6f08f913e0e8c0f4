"""What the commands do, as plain functions: train into a run directory, evaluate a
run, predict a file. No printing; progress goes through a callback."""

import csv
import io
import hashlib
import json
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from softreg import plots, report, rundir, softmax
from softreg.config import PLOT_NAMES, dump_config, load_config, read_yaml, resolve
from softreg.data import (
    CHUNK_ROWS,
    align_features,
    delimited_chunks,
    encode_with,
    generated_names,
    generators,
    load_source,
    parse_features,
    prepare,
    shown_names,
    standardize,
)
from softreg.errors import DataError, DivergedError, Interrupted, OutputExistsError, RunDirError, UsageError
from softreg.evaluate import classification_metrics, most_confused, reliability_bins
from softreg.solve import exact_optimum
from softreg.train import HISTORY_FIELDS, TrainingState, evaluate_objective, fit, history_rows


@dataclass
class TrainOutcome:
    run_dir: Path
    metrics: dict
    training: dict
    already_finished: bool = False


def output_dir_for(config, out=None):
    """``--out``, else ``output.dir``, else a fresh ``runs/<config name>-<time>``."""
    if out is not None:
        return Path(out)
    if config.output.dir is not None:
        return Path(config.output.dir)
    name = Path(config.path).stem if config.path else "run"
    return rundir.default_run_dir(name)


def train_run(config, target, force=False, on_epoch=None):
    """Load, split and standardize, then train into the run directory ``target``.

    The data are loaded before anything is written, so bad data leave no trace. The
    directory appears with its config.yaml only (made in a hidden staging directory and
    renamed); a checkpoint follows every ``output.checkpoint_every`` epochs, and
    model.npz comes last. A diverged run's directory is removed.
    """
    split_rng, batch_rng, _ = generators(config.seed)
    prepared = prepare(config.data, np.dtype(config.model.dtype), split_rng)
    with rundir.staging_dir(target, force=force) as staging:
        rundir.write_text(staging / "config.yaml", dump_config(config))
    try:
        result = _fit_with_checkpoints(config, prepared, batch_rng, target, on_epoch)
    except DivergedError:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return _finish(config, prepared, result, target)


RESUMABLE_OVERRIDES = ("optim.epochs", "output.plots", "output.eval_every", "output.checkpoint_every")


def resume_run(run_dir, overrides=(), on_epoch=None):
    """Continue an interrupted run from its last checkpoint, or finish one killed while saving.

    The result is bit-identical to an uninterrupted run. ``optim.epochs`` may grow to
    train a finished run further; any other override that changes the model is refused.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: run directory not found")
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise RunDirError(f"{run_dir}: no config.yaml; not a softreg run directory")
    rundir.remove_stale_temporaries(run_dir)
    saved = load_config(config_path)
    config = load_config(config_path, overrides)
    state = TrainingState.from_checkpoint(*checkpoint) if (checkpoint := rundir.load_checkpoint(run_dir)) else None
    _check_resume(saved, config, overrides, state)
    if state is not None and state.finished and (run_dir / "model.npz").is_file() and not _extends(state, config):
        return TrainOutcome(run_dir=run_dir, metrics={}, training={"epochs_run": state.epoch}, already_finished=True)
    split_rng, batch_rng, _ = generators(config.seed)
    prepared = prepare(config.data, np.dtype(config.model.dtype), split_rng)
    if checkpoint is not None and checkpoint[1].get("data_fingerprint") not in (None, data_fingerprint(prepared)):
        raise RunDirError(
            f"{run_dir}: the training data changed since this run started ({config.data.source}); "
            "resuming would mix two datasets. Start a new run with --config"
        )
    if config.to_dict() != saved.to_dict():
        rundir.write_text(config_path, dump_config(config))
    if state is not None and state.finished and not _extends(state, config):
        result = state.result()  # killed while saving the final artifacts: write them, unchanged
    else:
        # a finished run trained further: its old model must not outlive the new epochs
        (run_dir / "model.npz").unlink(missing_ok=True)
        result = _fit_with_checkpoints(config, prepared, batch_rng, run_dir, on_epoch, start=state)
    return _finish(config, prepared, result, run_dir)


def data_fingerprint(prepared):
    """SHA-256 of the standardized training part and its classes: resume refuses other data."""
    digest = hashlib.sha256()
    X = prepared.train.X
    for array in ((X.data, X.indices, X.indptr) if sp.issparse(X) else (X,)):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(prepared.train.y.tobytes())
    digest.update("\x00".join(map(str, prepared.classes)).encode())
    return digest.hexdigest()


def _extends(state, config):
    """Whether ``config`` asks a finished run for more epochs (an early-stopped run is done)."""
    return not state.stopped_early and config.optim.epochs > state.epoch


def _check_resume(saved, config, overrides, state):
    for assignment in overrides:
        key = assignment.partition("=")[0].strip()
        if ".".join(key.split(".")[:2]) not in RESUMABLE_OVERRIDES:
            raise UsageError(f"--set {key}: cannot change on --resume (it changes the model); start a new run with --config")
    if state is not None and config.optim.epochs < state.epoch:
        raise UsageError(f"--set optim.epochs: optim.epochs must be at least the {state.epoch} epochs already run")


def _fit_with_checkpoints(config, prepared, batch_rng, run_dir, on_epoch, start=None):
    """`fit` with a checkpoint every ``output.checkpoint_every`` epochs; on Ctrl-C or
    SIGTERM the last completed epoch is checkpointed before `Interrupted` propagates."""

    fingerprint = data_fingerprint(prepared)

    def save(state):
        arrays, meta = state.to_checkpoint()
        rundir.save_checkpoint(run_dir, arrays, {**meta, "data_fingerprint": fingerprint})

    try:
        return fit(
            prepared.train,
            prepared.val,
            len(prepared.classes),
            config.model,
            config.optim,
            batch_rng,
            eval_every=config.output.eval_every,
            on_epoch=on_epoch,
            start=start,
            on_checkpoint=save,
            checkpoint_every=config.output.checkpoint_every,
        )
    except Interrupted as interrupted:
        if interrupted.state is not None and not interrupted.saved:
            save(interrupted.state)
        interrupted.run_dir = run_dir
        raise


def _finish(config, prepared, result, run_dir):
    """`finish_run`, where an interruption leaves the finished checkpoint for --resume."""
    try:
        return finish_run(config, prepared, result, run_dir)
    except KeyboardInterrupt:
        stop = Interrupted(result.state, saved=True)
        stop.run_dir = Path(run_dir)
        raise stop from None


def finish_run(config, prepared, result, run_dir):
    """Evaluate, plot and save the final artifacts into ``run_dir``; model.npz last."""
    run_dir = Path(run_dir)
    # an older model (a run trained further) must not outlive the files about to change
    (run_dir / "model.npz").unlink(missing_ok=True)
    model = rundir.Model(
        coef=result.coef,
        intercept=result.intercept,
        classes=prepared.classes,
        feature_mean=prepared.feature_mean,
        feature_scale=prepared.feature_scale,
        feature_names=prepared.feature_names,
        label_name=prepared.label_name,
        dtype=config.model.dtype,
    )
    split_name, part = next(
        (name, p) for name, p in (("test", prepared.test), ("validation", prepared.val), ("train", prepared.train)) if p is not None
    )
    proba = model.predict_proba_standardized(part.X)
    metrics = classification_metrics(part.y, proba, prepared.classes)
    training = {
        **result.summary(),
        "n_train": prepared.train.n_samples,
        "n_val": prepared.val.n_samples if prepared.val is not None else 0,
        "n_test": prepared.test.n_samples if prepared.test is not None else 0,
        "n_features": len(prepared.feature_names),
        "source": prepared.source,
        "class_counts": _class_counts(prepared),
        "svmlight_index_base": prepared.index_base,
    }
    metrics.update(split=split_name, objective=result.objective, grad_norm=result.grad_norm)
    history = history_rows(result.history)
    rundir.write_text(run_dir / "history.csv", history_csv(history))
    rundir.write_json(run_dir / "metrics.json", metrics)
    if prepared.test is not None:
        rundir.save_test_split(run_dir, prepared.test_raw, prepared.test.y)
    draw_plots(
        run_dir / "plots", config.output.plots, history, model, metrics, part.y, proba,
        X_raw=_raw_points(part.X, model), points=split_name,
    )
    # the model last: a directory with model.npz is a finished one
    rundir.save_model(run_dir, model, training)
    return TrainOutcome(run_dir=run_dir, metrics=metrics, training=training)


def history_csv(rows):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return buffer.getvalue()


def read_history(run_dir):
    """history.csv as a list of dicts with floats (None for empty cells)."""
    path = Path(run_dir) / "history.csv"
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return [
                {key: (None if value == "" else float(value)) for key, value in row.items()}
                for row in csv.DictReader(handle)
            ]
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing; the run directory is incomplete") from None
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as error:
        raise RunDirError(f"{path}: unreadable ({error})") from None


def draw_plots(
    directory, selection, history, model, metrics, y, proba, X_raw=None, optimum_objective=None, points="test"
):
    """Draw the plots ``selection`` names (``output.plots``: true all, false none) into ``directory``.

    Parameters
    ----------
    history : list of dict, the ``history.csv`` rows
    model : rundir.Model
    metrics : dict, `classification_metrics` of the evaluated part
    y : ndarray of shape (n_samples,), class indices of the evaluated part
    proba : ndarray of shape (n_samples, n_classes), the model's probabilities for it
    X_raw : ndarray of shape (n_samples, n_features) or None
        Raw features of the evaluated part; the decision regions need them (two features only).
    optimum_objective : float or None
        J* when known: the learning curves then show the gap to it.

    Returns
    -------
    list of Path, the files drawn.
    """
    if selection is False:
        return []
    figures = {
        "learning_curves": lambda path: plots.learning_curves(history, path, optimum_objective),
        "confusion_matrix": lambda path: plots.confusion_matrix(metrics["confusion_matrix"], model.classes, path),
        "reliability": lambda path: plots.reliability(reliability_bins(y, proba), metrics["ece"], path),
        "weights": lambda path: plots.weights(model.coef, model.classes, model.feature_names, path),
        "decision_regions": lambda path: plots.decision_regions(
            model.coef, model.intercept, model.feature_mean, model.feature_scale, X_raw, y, model.classes,
            model.feature_names, path, points=points,
        ),
        "class_probabilities": lambda path: plots.class_probabilities(proba, y, model.classes, path),
    }
    if not history:
        del figures["learning_curves"]
    if model.n_features != 2 or X_raw is None:
        del figures["decision_regions"]  # drawn only for two-feature data
    wanted = PLOT_NAMES if selection is True else selection
    directory.mkdir(exist_ok=True)
    return [figures[name](directory / f"{name}.png") for name in PLOT_NAMES if name in wanted and name in figures]


def _raw_points(X, model):
    """Raw features (n_samples, 2) of a standardized part, for the decision regions; None unless two features."""
    if model.n_features != 2:
        return None
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    return X.astype(np.float64) * model.feature_scale + model.feature_mean


def _class_counts(prepared):
    """Rows per class in each part, ``{"train": {class: count}, ...}`` (the report's class balance)."""
    names = [str(label) for label in prepared.classes]
    parts = {"train": prepared.train, "val": prepared.val, "test": prepared.test}
    return {
        name: dict(zip(names, np.bincount(part.y, minlength=len(names)).tolist()))
        for name, part in parts.items()
        if part is not None
    }


def evaluate_run(run_dir, data=None, label=None, optimum=False, out=None, force=False):
    """Metrics of a saved run on its test split, or on another labelled ``data`` source.

    With ``optimum``, ``metrics["optimum"]`` holds the exact optimum's objective J*, the
    saved model's relative gap to it and the optimum's accuracy on the same data. With
    ``out``, the metrics and the plots of the evaluated data are written into that
    directory (refused when it exists and is not empty, unless ``force``).
    """
    if out is not None:
        _check_evaluation_out(run_dir, out, force)
    model = rundir.load_model(run_dir)
    X_raw, y, source = _evaluated_data(run_dir, model, data, label)
    proba = model.predict_proba(X_raw)
    metrics = classification_metrics(y, proba, model.classes)
    training = rundir.read_model_json(Path(run_dir) / "model.json").get("training", {})
    metrics.update(source=source, objective=training.get("objective"), grad_norm=training.get("grad_norm"))
    solved = None
    if optimum:
        solved, model_objective = solve_optimum(run_dir, model)
        X = standardize(X_raw, model.feature_mean, model.feature_scale)
        optimum_predicted = softmax.decision_function(solved.coef, solved.intercept, X).argmax(axis=1)
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


def _check_evaluation_out(run_dir, out, force):
    out, run = Path(out).resolve(), Path(run_dir).resolve()
    if out == run or out in run.parents:
        raise UsageError(f"--out {out}: would replace the run directory {run_dir}; choose another directory")
    rundir.check_output_dir(out, force)  # before the work, not only when the results are saved


def _evaluated_data(run_dir, model, data, label):
    """Raw features (n, d), class indices (n,) and a description of what is evaluated."""
    if data is None:
        X_raw, y = rundir.load_test_split(run_dir)
        if X_raw.shape[1] != model.n_features:
            raise DataError(f"{run_dir}/test.npz: has {X_raw.shape[1]} features, the model has {model.n_features}")
        return X_raw, y, f"{run_dir} (saved test split)"
    training = rundir.read_model_json(Path(run_dir) / "model.json").get("training", {})
    dataset = load_source(
        data, label if label is not None else _label_for(data, model), index_base=training.get("svmlight_index_base")
    )
    X_raw = align_features(dataset, model.feature_names, data)
    return X_raw, encode_with(model.classes, dataset.labels, data), data


def _raw_features(X_raw, model):
    """Dense float64 raw features for the decision regions; None unless the model has two features."""
    if model.n_features != 2:
        return None
    return (X_raw.toarray() if sp.issparse(X_raw) else np.asarray(X_raw)).astype(np.float64)


def _read_history_if_any(run_dir):
    return read_history(run_dir) if (Path(run_dir) / "history.csv").exists() else []


def solve_optimum(run_dir, model):
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
    prepared = prepare(config.data, np.dtype(np.float64), generators(config.seed)[0])
    same = [str(label) for label in prepared.classes] == [str(label) for label in model.classes] and np.allclose(
        prepared.feature_mean, model.feature_mean
    ) and np.allclose(prepared.feature_scale, model.feature_scale)
    if not same:
        raise DataError(
            f"{config.data.source}: no longer gives the training part this run was trained on "
            "(its classes or feature statistics changed); cannot compute the optimum"
        )
    train = prepared.train
    decay, fit_intercept = config.model.weight_decay, config.model.fit_intercept
    optimum = exact_optimum(train.X, train.y, len(model.classes), decay, fit_intercept)
    coef, intercept = model.coef.astype(np.float64), model.intercept.astype(np.float64)
    model_objective, _ = evaluate_objective(coef, intercept, train, decay, fit_intercept)
    return optimum, model_objective


def report_run(run_dir, output=None, force=False):
    """Write the run's one-file HTML report (default ``run_dir/report.html``).

    Another ``output`` that exists is refused unless ``force``; the default is rewritten.

    Returns
    -------
    path : Path, the report written
    n_plots : int, the plots embedded
    """
    run_dir = Path(run_dir)
    default = run_dir / "report.html"
    target = default if output is None else Path(output)
    if target.resolve() != default.resolve():
        refuse_existing(target, force)
    rundir.load_model(run_dir)  # a finished, loadable run, or a RunDirError naming what is wrong
    meta = rundir.read_model_json(run_dir / "model.json")
    metrics = rundir.read_json_object(run_dir / "metrics.json")
    config_path = run_dir / "config.yaml"
    try:
        config_text = config_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RunDirError(
            f"{config_path}: cannot read ({error.__class__.__name__}); the run directory is incomplete"
        ) from None
    plot_dir = run_dir / "plots"
    files = sorted(plot_dir.glob("*.png")) if plot_dir.is_dir() else []
    order = {name: index for index, name in enumerate(PLOT_NAMES)}
    files.sort(key=lambda path: (order.get(path.stem, len(order)), path.stem))
    images = [(path.stem, path.read_bytes()) for path in files]
    confused = most_confused(metrics["confusion_matrix"], metrics["classes"]) if "confusion_matrix" in metrics else []
    history = read_history(run_dir)
    page = report.render_html(run_dir.resolve().name, config_text, meta, metrics, history, images, confused)
    rundir.write_text(target, page)
    return target, len(images)


def _label_for(source, model):
    """Use the model's label column name when a delimited source has it, else the default."""
    if source.startswith("builtin:") or Path(source).suffix.lower() in {".npz", ".svm", ".svmlight", ".libsvm"}:
        return None
    try:
        with delimited_chunks(Path(source)) as (header, _):  # the header only; no row is read
            pass
    except DataError:
        return None
    return model.label_name if model.label_name in header else None


@contextmanager
def prediction_stream(run_dir, input_path, chunk_rows=CHUNK_ROWS):
    """Predictions for a delimited file of raw features, streamed chunk by chunk.

    Columns are matched by the model's feature names (any other column, such as the
    label, is ignored). Everything that can be refused up front (the model, a missing
    file, missing columns) is refused before the first chunk.

    Yields
    ------
    classes : ndarray of shape (n_classes,)
    predictions : iterator of (labels, proba)
        ``labels`` (chunk,) predicted classes, ``proba`` (chunk, n_classes).
    """
    model = rundir.load_model(run_dir)
    path = Path(input_path)
    if not path.is_file():
        raise DataError(f"{path}: input file not found")
    with delimited_chunks(path, chunk_rows=chunk_rows) as (header, chunks):
        columns = _feature_columns(path, header, model)

        def predictions():
            for rows, line_numbers in chunks:
                cells = np.array(rows, dtype=str)[:, columns]
                proba = model.predict_proba(parse_features(path, cells, model.feature_names, line_numbers))
                yield model.classes[proba.argmax(axis=1)], proba

        yield model.classes, predictions()


def _feature_columns(path, header, model):
    """Indices of the model's features among the file's columns: by name, or by position
    in a file without a header that has exactly the model's feature count."""
    if header == generated_names(len(header)) and len(header) == model.n_features:
        return list(range(model.n_features))
    position = {name: index for index, name in enumerate(header)}
    missing = [name for name in model.feature_names if name not in position]
    if missing:
        raise DataError(f"{path}: missing feature column(s) {shown_names(missing)} that the model needs")
    return [position[name] for name in model.feature_names]


def write_predictions(handle, classes, predictions):
    """CSV with ``label`` and one ``prob_<class>`` column per class; returns the row count."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["label"] + [f"prob_{label}" for label in classes])
    count = 0
    for labels, proba in predictions:
        writer.writerows([label, *(f"{value:.10g}" for value in row)] for label, row in zip(labels.tolist(), proba))
        count += len(labels)
    return count


def refuse_existing(path, force):
    if path is not None and Path(path).exists() and not force:
        raise OutputExistsError(f"{path}: exists; use --force to overwrite it")
