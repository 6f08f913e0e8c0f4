"""After training: the model measured on its evaluation part (`softreg.evaluate.model_metrics`)
and the finished run written by `softreg.rundir.save_finished_run`."""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from softreg import rundir
from softreg.config import Config
from softreg.engine.placed import PlacedPart, class_counts
from softreg.evaluate import model_metrics
from softreg.kernels import Matrix
from softreg.model import Model
from softreg.prepare.data import Prepared
from softreg.train import FitResult, TrainingData


@dataclass
class TrainOutcome:
    run_dir: Path
    metrics: dict[str, Any]
    training: dict[str, Any]
    already_finished: bool = False


def score_part(
    model: Model, X: Matrix, y: np.ndarray, *, standardized: bool = False, center: np.ndarray | None = None
) -> tuple[dict[str, Any], np.ndarray]:
    """The metrics of ``model`` on one part, by the one metrics path, and its probabilities.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features), raw unless ``standardized``
    y : ndarray of shape (n_samples,), class indices
    center : ndarray of shape (n_features,) or None, the implicit centring of standardized sparse rows

    Returns
    -------
    metrics : dict, `MetricSums.metrics` of the part (``metrics.json``'s measures)
    proba : ndarray of shape (n_samples, n_classes)
    """
    kept: list[np.ndarray] = []
    sums = model_metrics(
        model, [(X, y)], standardized=standardized, center=center, on_chunk=lambda X, y, proba: kept.append(proba)
    )
    return sums.metrics(model.classes), kept[0]


def finish_run(
    config: Config, prepared: Prepared, result: FitResult, run_dir: str | PathLike[str],
    scored: tuple[str, TrainingData] | None = None,
) -> TrainOutcome:
    """Evaluate the model on the test part (else validation, else training), then save the
    run's files (`softreg.rundir.save_finished_run`; model.npz last). ``scored``: that part on the
    engine and its name, for a cache whose rows are on the Dask workers (they compute the metrics' sums)."""
    model = Model(
        coef=result.coef,
        intercept=result.intercept,
        classes=prepared.classes,
        feature_mean=prepared.feature_mean,
        feature_scale=prepared.feature_scale,
        feature_names=prepared.feature_names,
        label_name=prepared.label_name,
        dtype=config.model.dtype,
        columns=prepared.columns,
        header=prepared.header,
        id_name=prepared.id_name,
        file_columns=prepared.file_columns,
        scaling=prepared.scaling,
        loss=config.model.loss,
        normalizer=config.model.normalizer,
        temperature=config.model.temperature,
    )
    bins = None
    if isinstance(prepared.train, PlacedPart):
        split_name, (metrics, y, proba, bins) = _placed_metrics(model, scored)
        evaluated: tuple[Matrix | None, np.ndarray, np.ndarray] = (None, y, proba)
    else:
        if prepared.test is not None:
            split_name, part = "test", prepared.test
        elif prepared.val is not None:
            split_name, part = "validation", prepared.val
        else:
            split_name, part = "train", prepared.train
        if prepared.test is not None:  # the saved test split's raw rows, as `softreg evaluate` reads them
            metrics, proba = score_part(model, prepared.test_raw, part.y)
        else:
            metrics, proba = score_part(model, part.X, part.y, standardized=True, center=part.center)
        evaluated = (part.X, part.y, proba)
    metrics.update(split=split_name, objective=result.objective, grad_norm=result.grad_norm)
    metrics.update(converged=result.converged, gap_bound=result.gap_bound)
    training = {
        **result.summary(),
        "n_train": prepared.train.n_samples,
        "n_val": prepared.val.n_samples if prepared.val is not None else 0,
        "n_test": prepared.test.n_samples if prepared.test is not None else 0,
        "n_features": len(prepared.feature_names),
        "n_unlabelled": prepared.unlabelled,
        "source": prepared.source,
        "class_counts": _class_counts(prepared),
        "svmlight_index_base": prepared.index_base,
    }
    kept_test = prepared.test is not None and not isinstance(prepared.test, PlacedPart)
    rundir.save_finished_run(Path(run_dir), rundir.FinishedRun(
        model, result.history, metrics, training, evaluated=evaluated,
        test_split=(prepared.test_raw, prepared.test.y) if kept_test and prepared.test is not None else None,
        split=prepared.split, plot_selection=config.output.plots, points=split_name, bins=bins,
    ))
    return TrainOutcome(run_dir=Path(run_dir), metrics=metrics, training=training)


PLOTTED_ROWS = 5000  # rows of a part on the workers whose probabilities the class-probabilities plot shows


def _placed_metrics(
    model: Model, scored: tuple[str, TrainingData] | None
) -> tuple[str, tuple[dict[str, Any], np.ndarray, np.ndarray, dict[str, np.ndarray]]]:
    """The metrics of a run whose rows are on the Dask workers: its evaluated part's (test, else
    validation, else training), summed there shard by shard (`softreg.engine.ShardedData.metric_sums`)
    and merged exactly, with the classes and probabilities of a few of its rows and the reliability
    bins of all, for the plots."""
    from softreg.engine import ShardedData

    name, part = scored if scored is not None else ("test", None)
    if not isinstance(part, ShardedData):
        raise ValueError("a run on the workers' shards is scored on the engine (run.train.training_parts)")
    sums, y, proba = part.metric_sums(model, PLOTTED_ROWS)
    return name, (sums.metrics(model.classes), y, proba, sums.reliability())


def _class_counts(prepared: Prepared) -> dict[str, dict[str, int]]:
    """Rows per class in each part, ``{"train": {class: count}, ...}`` (the report's class balance)."""
    names = [str(label) for label in prepared.classes]
    parts = {"train": prepared.train, "val": prepared.val, "test": prepared.test}
    return {
        name: dict(zip(names, class_counts(part, len(names)).tolist(), strict=True))
        for name, part in parts.items()
        if part is not None
    }
