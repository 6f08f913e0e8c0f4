"""What the commands do, as plain functions: train into a run directory, evaluate a
run, predict a file. No printing; progress goes through a callback."""

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from softreg import plots, rundir
from softreg.config import dump_config
from softreg.data import (
    align_features,
    encode_with,
    generators,
    load_source,
    parse_features,
    prepare,
    read_delimited_rows,
)
from softreg.errors import DataError, OutputExistsError
from softreg.evaluate import classification_metrics
from softreg.train import HISTORY_FIELDS, fit, history_rows

DEFAULT_PLOTS = ("learning_curves", "confusion_matrix")


@dataclass
class TrainOutcome:
    run_dir: Path
    metrics: dict
    training: dict


def output_dir_for(config, out=None):
    """``--out``, else ``output.dir``, else a fresh ``runs/<config name>-<time>``."""
    if out is not None:
        return Path(out)
    if config.output.dir is not None:
        return Path(config.output.dir)
    name = Path(config.path).stem if config.path else "run"
    return rundir.default_run_dir(name)


def train_run(config, target, force=False, on_epoch=None):
    """Load, split, standardize, fit, evaluate and save a run into ``target`` atomically."""
    split_rng, batch_rng, _ = generators(config.seed)
    with rundir.staging_dir(target, force=force) as staging:
        prepared = prepare(config.data, np.dtype(config.model.dtype), split_rng)
        result = fit(
            prepared.train,
            prepared.val,
            len(prepared.classes),
            config.model,
            config.optim,
            batch_rng,
            eval_every=config.output.eval_every,
            on_epoch=on_epoch,
        )
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
        split_name, part = next((name, p) for name, p in (("test", prepared.test), ("validation", prepared.val), ("train", prepared.train)) if p is not None)
        metrics = classification_metrics(part.y, model.predict_proba_standardized(part.X), prepared.classes)
        training = {
            **result.summary(),
            "n_train": prepared.train.n_samples,
            "n_val": prepared.val.n_samples if prepared.val is not None else 0,
            "n_test": prepared.test.n_samples if prepared.test is not None else 0,
            "n_features": len(prepared.feature_names),
            "source": prepared.source,
        }
        metrics.update(split=split_name, objective=result.objective, grad_norm=result.grad_norm)
        rundir.write_text(staging / "config.yaml", dump_config(config))
        rundir.write_text(staging / "history.csv", history_csv(history_rows(result.history)))
        rundir.write_json(staging / "metrics.json", metrics)
        if prepared.test is not None:
            rundir.save_test_split(staging, prepared.test_raw, prepared.test.y)
        draw_plots(staging / "plots", config.output.plots, history_rows(result.history), metrics, prepared.classes)
        # the model last: a directory with model.npz is a finished one
        rundir.save_model(staging, model, training)
    return TrainOutcome(run_dir=Path(target), metrics=metrics, training=training)


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
    with open(path, encoding="utf-8", newline="") as handle:
        return [
            {key: (None if value == "" else float(value)) for key, value in row.items()}
            for row in csv.DictReader(handle)
        ]


def draw_plots(directory, selection, history, metrics, classes):
    """The plots ``output.plots`` selects (true: all available, false: none)."""
    if selection is False:
        return []
    wanted = DEFAULT_PLOTS if selection is True else [name for name in selection if name in DEFAULT_PLOTS]
    directory.mkdir(exist_ok=True)
    drawn = []
    if "learning_curves" in wanted:
        drawn.append(plots.learning_curves(history, directory / "learning_curves.png"))
    if "confusion_matrix" in wanted:
        drawn.append(plots.confusion_matrix(metrics["confusion_matrix"], classes, directory / "confusion_matrix.png"))
    return drawn


def evaluate_run(run_dir, data=None, label=None):
    """Metrics of a saved run on its test split, or on another labelled ``data`` source."""
    model = rundir.load_model(run_dir)
    if data is None:
        X_raw, y = rundir.load_test_split(run_dir)
        if X_raw.shape[1] != model.n_features:
            raise DataError(f"{run_dir}/test.npz: has {X_raw.shape[1]} features, the model has {model.n_features}")
        source = f"{run_dir} (saved test split)"
    else:
        dataset = load_source(data, label if label is not None else _label_for(data, model))
        X_raw = align_features(dataset, model.feature_names, data)
        y = encode_with(model.classes, dataset.labels, data)
        source = data
    metrics = classification_metrics(y, model.predict_proba(X_raw), model.classes)
    training = rundir.read_model_json(Path(run_dir) / "model.json").get("training", {})
    metrics.update(source=source, objective=training.get("objective"), grad_norm=training.get("grad_norm"))
    return metrics


def _label_for(source, model):
    """Use the model's label column name when a delimited source has it, else the default."""
    if source.startswith("builtin:") or Path(source).suffix.lower() in {".npz", ".svm", ".svmlight", ".libsvm"}:
        return None
    try:
        header, _, _ = read_delimited_rows(Path(source))
    except DataError:
        return None
    return model.label_name if model.label_name in header else None


def predict_file(run_dir, input_path):
    """Predicted labels and probabilities for a delimited file of raw features.

    Returns
    -------
    labels : ndarray of shape (n_samples,)
    proba : ndarray of shape (n_samples, n_classes)
    classes : ndarray of shape (n_classes,)
    """
    model = rundir.load_model(run_dir)
    path = Path(input_path)
    if not path.exists():
        raise DataError(f"{path}: input file not found")
    header, rows, line_numbers = read_delimited_rows(path)
    position = {name: index for index, name in enumerate(header)}
    missing = [name for name in model.feature_names if name not in position]
    if missing:
        shown = ", ".join(map(repr, missing[:10])) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise DataError(f"{path}: missing feature column(s) {shown} that the model needs")
    cells = np.array(rows, dtype=str)[:, [position[name] for name in model.feature_names]]
    X_raw = parse_features(path, cells, model.feature_names, line_numbers)
    proba = model.predict_proba(X_raw)
    return model.classes[proba.argmax(axis=1)], proba, model.classes


def predictions_csv(labels, proba, classes):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["label"] + [f"prob_{label}" for label in classes])
    for label, row in zip(labels, proba):
        writer.writerow([label] + [f"{value:.10g}" for value in row])
    return buffer.getvalue()


def refuse_existing(path, force):
    if path is not None and Path(path).exists() and not force:
        raise OutputExistsError(f"{path}: exists; use --force to overwrite it")
