"""The one writer of a finished run: ``softreg train``, the estimator's ``save_run`` and the
softmax side of ``compare-logistic --out`` all save through `save_finished_run`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from softreg.kernels import Matrix
from softreg.model import Model
from softreg.rundir.artifacts import save_model, save_test_split
from softreg.rundir.checkpoint import write_history
from softreg.rundir.files import write_json, write_text
from softreg.rundir.names import CONFIG, METRICS, MODEL, PLOTS
from softreg.rundir.split import save_split
from softreg.train import EpochRecord


@dataclass
class FinishedRun:
    """What a finished run directory holds besides its marker.

    Attributes
    ----------
    model : Model
    history : list of EpochRecord, one per epoch (``history.csv``)
    metrics : dict, ``metrics.json``: the measures of the evaluated part (`softreg.evaluate.model_metrics`)
    training : dict, the training summary kept in ``model.json``
    evaluated : tuple ``(X, y, proba)`` or None
        The part the metrics describe, for the plots: standardized X (n_samples, n_features),
        class indices (n_samples,), probabilities (n_samples, n_classes); None draws no plots.
        X is None where the rows are elsewhere (on Dask workers): y and proba are then some of them.
    bins : `reliability_bins` of every evaluated row when ``evaluated`` holds only some (None: from it)
    test_split : tuple ``(X_raw, y)`` or None, the rows ``test.npz`` keeps for ``softreg evaluate``
    split : dict or None, ``split.npz``: train, val and test, each part's data-row indices in the source
    plot_selection : ``output.plots``: true all, false none, or a list of plot names
    points : the name of the evaluated part in the decision-regions plot
    config_text : the ``config.yaml`` to write, or None when the directory has it already
    """

    model: Model
    history: list[EpochRecord]
    metrics: dict[str, Any]
    training: dict[str, Any]
    evaluated: tuple[Matrix | None, np.ndarray, np.ndarray] | None = None
    test_split: tuple[Matrix, np.ndarray] | None = None
    split: dict[str, np.ndarray] | None = None
    plot_selection: bool | list[str] = True
    points: str = "test"
    config_text: str | None = None
    bins: dict[str, np.ndarray] | None = None


def save_finished_run(run_dir: str | Path, run: FinishedRun) -> None:
    """Write ``run`` into ``run_dir``: config.yaml (when given), history.csv, metrics.json,
    test.npz, split.npz, plots/ and, last, the model, so that a directory with model.npz is a finished one."""
    from softreg.rundir.figures import draw_plots, raw_points  # matplotlib only for a run that draws

    run_dir = Path(run_dir)
    if run.config_text is not None:
        write_text(run_dir / CONFIG, run.config_text)
    # an older model (a run trained further) must not outlive the files about to change
    (run_dir / MODEL).unlink(missing_ok=True)
    write_history(run_dir, run.history)
    write_json(run_dir / METRICS, run.metrics)
    if run.test_split is not None:
        save_test_split(run_dir, *run.test_split)
    if run.split is not None:
        save_split(run_dir, run.split)
    if run.evaluated is not None:
        X, y, proba = run.evaluated
        rows = [asdict(record) for record in run.history]
        draw_plots(
            run_dir / PLOTS, run.plot_selection, rows, run.model, run.metrics, y, proba,
            X_raw=None if X is None else raw_points(X, run.model), points=run.points, bins=run.bins,
        )
    save_model(run_dir, run.model, run.training)
