"""The figures of a run directory's ``plots/`` folder: which ones a run draws (``output.plots``),
from the model and the part its metrics describe."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from softreg import plots
from softreg.config import PLOT_NAMES
from softreg.evaluate import reliability_bins
from softreg.kernels import Matrix
from softreg.model import Model


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
            model.feature_names, path, points=points, proba_of_logits=model.proba_of_logits,
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
