"""What several commands share: drawing a run's plots and saving a finished run."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from softreg import plots, rundir
from softreg.config import PLOT_NAMES
from softreg.errors import OutputExistsError, UsageError
from softreg.evaluate import reliability_bins
from softreg.kernels import Matrix
from softreg.model import Model
from softreg.train import EpochRecord


def draw_plots(
    directory: Path,
    selection: bool | list[str],
    history: list[dict[str, Any]],
    model: Model,
    metrics: dict[str, Any],
    y: np.ndarray,
    proba: np.ndarray,
    X_raw: np.ndarray | None = None,
    optimum_objective: float | None = None,
    points: str = "test",
    bins: dict[str, np.ndarray] | None = None,
) -> list[Path]:
    """Draw the plots ``selection`` names (``output.plots``: true all, false none) into ``directory``.

    Parameters
    ----------
    history : list of dict, the ``history.csv`` rows
    model : Model
    metrics : dict, `classification_metrics` of the evaluated part
    y : ndarray of shape (n_samples,), class indices of the evaluated part
    proba : ndarray of shape (n_samples, n_classes), the model's probabilities for it
    X_raw : ndarray of shape (n_samples, n_features) or None
        Raw features of the evaluated part; the decision regions need them (two features only).
    optimum_objective : float or None
        J* when known: the learning curves then show the gap to it.
    bins : dict or None
        `reliability_bins` of all the evaluated rows when ``y`` and ``proba`` hold only some of
        them (streamed data); None: computed from ``y`` and ``proba``.

    Returns
    -------
    list of Path, the files drawn.
    """
    if selection is False:
        return []
    figures: dict[str, Callable[[Path], Path]] = {
        "learning_curves": lambda path: plots.learning_curves(history, path, optimum_objective),
        "confusion_matrix": lambda path: plots.confusion_matrix(metrics["confusion_matrix"], model.classes, path),
        "reliability": lambda path: plots.reliability(
            bins if bins is not None else reliability_bins(y, proba), metrics["ece"], path
        ),
        "weights": lambda path: plots.weights(model.coef, model.classes, model.feature_names, path),
        "class_probabilities": lambda path: plots.class_probabilities(proba, y, model.classes, path),
    }
    if not history:
        del figures["learning_curves"]
    if model.n_features == 2 and X_raw is not None:  # drawn only for two-feature data
        figures["decision_regions"] = lambda path: plots.decision_regions(
            model.coef, model.intercept, model.feature_mean, model.feature_scale, X_raw, y, model.classes,
            model.feature_names, path, points=points,
        )
    wanted = PLOT_NAMES if selection is True else selection
    directory.mkdir(exist_ok=True)
    return [figures[name](directory / f"{name}.png") for name in PLOT_NAMES if name in wanted and name in figures]


def raw_points(X: Matrix, model: Model) -> np.ndarray | None:
    """Raw features (n_samples, 2) of a standardized part, for the decision regions; None unless two features."""
    if model.n_features != 2:
        return None
    dense = X if isinstance(X, np.ndarray) else X.toarray()
    return dense.astype(np.float64) * model.feature_scale + model.feature_mean


# what softreg's hidden sibling adds to an output's name: "." + ".staging-" and mkdtemp's 8
# characters for a run directory (".<name>.<8>.tmp" for a file), with room to spare
HIDDEN_NAME_EXTRA = 24


def check_name_length(path: str | PathLike[str], flag: str) -> None:
    """Refuse an output whose name fits the file system but whose hidden staging sibling would not.

    softreg writes every output beside it under a longer hidden name first and renames it into
    place, so the name may use at most the file system's limit (NAME_MAX, 255 bytes on most)
    less `HIDDEN_NAME_EXTRA` bytes. A UsageError (exit 2) before anything is written.
    """
    target = Path(os.path.abspath(path))
    existing = next((folder for folder in target.parents if folder.is_dir()), Path("/"))
    try:
        name_max = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    size = len(os.fsencode(target.name))
    longest = name_max - HIDDEN_NAME_EXTRA
    if size > longest:
        raise UsageError(
            f"{flag} {target.name[:40]}...: a name of {size} bytes; at most {longest} fit (the file system allows "
            f"{name_max}, and softreg first writes it under a hidden name {HIDDEN_NAME_EXTRA} bytes longer)"
        )


def refuse_existing(path: str | PathLike[str] | None, force: bool) -> None:
    if path is not None and Path(path).exists() and not force:
        raise OutputExistsError(f"{path}: exists; use --force to overwrite it")


def save_run(
    run_dir: Path,
    model: Model,
    history: list[EpochRecord],
    metrics: dict[str, Any],
    training: dict[str, Any],
    evaluated: tuple[Matrix, np.ndarray, np.ndarray],
    *,
    plot_selection: bool | list[str] = True,
    test_split: tuple[Matrix, np.ndarray] | None = None,
    points: str = "test",
) -> None:
    """Write a finished run's files into ``run_dir`` (its config.yaml is already there):
    history.csv, metrics.json, test.npz, plots/ and, last, the model, so that a directory
    with model.npz is a finished one.

    ``evaluated`` is ``(X, y, proba)`` of the part the metrics describe: standardized X
    (n_samples, n_features), class indices (n_samples,), probabilities (n_samples, n_classes).
    """
    run_dir = Path(run_dir)
    # an older model (a run trained further) must not outlive the files about to change
    (run_dir / "model.npz").unlink(missing_ok=True)
    rundir.write_history(run_dir, history)
    rundir.write_json(run_dir / "metrics.json", metrics)
    if test_split is not None:
        rundir.save_test_split(run_dir, *test_split)
    X, y, proba = evaluated
    rows = [asdict(record) for record in history]
    draw_plots(
        run_dir / "plots", plot_selection, rows, model, metrics, y, proba, X_raw=raw_points(X, model), points=points
    )
    rundir.save_model(run_dir, model, training)
