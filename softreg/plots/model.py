"""Figures of the model itself: its weights, and its decision regions over two features."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from softreg import softmax
from softreg.plots import _figure

# feature names of pixels: pixel_0_0, pixel12, px3, 1x1, x17, col5, 42 ...
_PIXEL_NAME = re.compile(r"(?i)^(pixel|pix|px|x|col|f|feature|v)?[_\s-]?\d+([_x\s-]\d+)?$")


def image_side(feature_names: Sequence[Any] | np.ndarray) -> int | None:
    """The side s when the features are the s*s pixels of a square image (s >= 8), else None."""
    side = math.isqrt(len(feature_names))
    if side < 8 or side * side != len(feature_names):
        return None
    return side if all(_PIXEL_NAME.match(str(name)) for name in feature_names) else None


def weights(
    coef: ArrayLike,
    classes: Sequence[Any] | np.ndarray,
    feature_names: Sequence[Any] | np.ndarray,
    path: str | PathLike[str],
) -> Path:
    """The weights: one image per class for square-image pixels, else a class x feature heatmap.

    ``coef`` is (n_classes, n_features) in standardized feature space; red raises a class's
    logit, blue lowers it, on one symmetric colour scale for all classes.
    """
    plt = _figure.pyplot()
    coef = np.asarray(coef, dtype=float)
    n_classes, n_features = coef.shape
    limit = max(float(np.abs(coef).max()), 1e-12)
    style = {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}
    side = image_side(feature_names)
    if side is not None:
        columns = min(n_classes, max(5, math.ceil(math.sqrt(2 * n_classes))))
        rows = math.ceil(n_classes / columns)
        figure, axes = plt.subplots(rows, columns, figsize=(1.9 * columns + 1.2, 2.0 * rows + 0.6),
                                    layout="constrained", squeeze=False)
        for index, axis in enumerate(axes.flat):
            axis.set_axis_off()
            if index < n_classes:
                image = axis.imshow(coef[index].reshape(side, side), interpolation="nearest", **style)
                axis.set_title(f"class {_figure.shown(classes[index])}", fontsize=10)
        figure.colorbar(image, ax=axes, shrink=0.8, label="weight per standardized pixel")
        figure.suptitle(f"Weights as {side}x{side} images (red raises the class's logit, blue lowers it)")
        return _figure.save(figure, path)
    named = n_features <= 100
    height = min(max(3.5, 0.3 * n_classes + 2.2), 24.0)  # at most 24 in (2640 px): many classes share a row of ink
    figure, axis = plt.subplots(
        figsize=(min(max(6.0, 0.32 * n_features + 3.0), 16.0), height), layout="constrained"
    )
    image = axis.imshow(coef, aspect="auto", interpolation="nearest", **style)
    figure.colorbar(image, ax=axis, label="weight per standardized unit")
    font = 9 if n_features <= 30 else 7
    if named:
        axis.set_xticks(range(n_features), [_figure.shown(name) for name in feature_names], fontsize=font,
                        rotation=90 if n_features > 8 else 30, ha="center" if n_features > 8 else "right")
    step = math.ceil(n_classes / 60)  # at most 60 class names, every step-th
    axis.set_yticks(
        range(0, n_classes, step), [_figure.shown(classes[index]) for index in range(0, n_classes, step)],
        fontsize=9 if n_classes <= 30 else 6,
    )
    if n_classes * n_features <= 120:
        for (row, column), value in np.ndenumerate(coef):
            axis.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=7,
                      color="white" if abs(value) > 0.6 * limit else "black")
    axis.set(xlabel="feature" if named else f"feature index (of {n_features})", ylabel="class",
             title="Weights per class and feature (standardized features; red raises the class's logit)")
    return _figure.save(figure, path)


def decision_regions(
    coef: ArrayLike,
    intercept: ArrayLike,
    feature_mean: ArrayLike,
    feature_scale: ArrayLike,
    X: ArrayLike,
    y: np.ndarray,
    classes: Sequence[Any] | np.ndarray,
    feature_names: Sequence[Any] | np.ndarray,
    path: str | PathLike[str],
    points: str = "test",
    resolution: int = 300,
    proba_of_logits: Callable[[np.ndarray], np.ndarray] = softmax.softmax,
) -> Path:
    """The predicted class over the plane of two raw features, with labelled points on top.

    Parameters
    ----------
    coef : ndarray of shape (n_classes, 2), in standardized feature space
    intercept : ndarray of shape (n_classes,)
    feature_mean, feature_scale : ndarray of shape (2,), the model's standardizer
    X : ndarray of shape (n_samples, 2), raw features of the points to show
    y : ndarray of shape (n_samples,), their class indices
    points : str, what the points are (shown in the title)
    proba_of_logits : the model's map from logits (n, n_classes) to probabilities (its
        normalizer and temperature, `softreg.model.Model.proba_of_logits`); the softmax by default

    The shade of a region deepens with the predicted class's probability; misclassified
    points are crossed.
    """
    plt = _figure.pyplot()
    X = np.asarray(X, dtype=float)
    n_classes = len(classes)
    low, high = X.min(axis=0), X.max(axis=0)
    pad = np.where(high > low, 0.08 * (high - low), 1.0)
    axes_values = [np.linspace(low[i] - pad[i], high[i] + pad[i], resolution) for i in range(2)]
    grid_x, grid_y = np.meshgrid(*axes_values)
    model = (np.asarray(coef, dtype=float), np.asarray(intercept, dtype=float), feature_mean, feature_scale,
             proba_of_logits)
    proba = _raw_proba(*model, np.column_stack([grid_x.ravel(), grid_y.ravel()]))  # (resolution^2, K)
    predicted = proba.argmax(axis=1).reshape(grid_x.shape)
    strength = (proba.max(axis=1).reshape(grid_x.shape) - 1 / n_classes) / (1 - 1 / n_classes)
    colors = _figure.class_colors(n_classes)[:, :3]
    shade = 1 - (1 - colors[predicted]) * (0.15 + 0.4 * strength[..., None])  # blend towards white
    figure, axis = plt.subplots(figsize=(7.5 if n_classes <= 6 else 9.0, 6.0), layout="constrained")
    extent = (axes_values[0][0], axes_values[0][-1], axes_values[1][0], axes_values[1][-1])
    axis.imshow(shade, origin="lower", extent=extent, aspect="auto", interpolation="nearest")
    if n_classes > 1:
        axis.contour(grid_x, grid_y, predicted, levels=np.arange(n_classes - 1) + 0.5, colors="black", linewidths=0.8)
    shown = np.linspace(0, len(y) - 1, min(len(y), 4000)).astype(int) if len(y) else np.arange(0)
    for index, label in enumerate(classes):
        mine = shown[y[shown] == index]
        axis.scatter(X[mine, 0], X[mine, 1], s=22, color=colors[index], edgecolors="black", linewidths=0.5,
                     label=f"{_figure.shown(label)} ({np.count_nonzero(y == index)})")
    wrong = shown[_raw_proba(*model, X[shown]).argmax(axis=1) != y[shown]]
    if wrong.size:
        axis.scatter(X[wrong, 0], X[wrong, 1], s=40, marker="x", color="black", linewidths=1.0,
                     label=f"misclassified ({wrong.size})")
    axis.set(xlim=extent[:2], ylim=extent[2:], xlabel=_figure.shown(feature_names[0]),
             ylabel=_figure.shown(feature_names[1]),
             title=f"Decision regions and the {points} points (shade: probability of the predicted class)")
    axis.legend(title="true class (rows)", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _figure.save(figure, path)


def _raw_proba(
    coef: NDArray[np.float64],
    intercept: NDArray[np.float64],
    feature_mean: ArrayLike,
    feature_scale: ArrayLike,
    proba_of_logits: Callable[[np.ndarray], np.ndarray],
    X: ArrayLike,
) -> NDArray[np.float64]:
    """Class probabilities (n_samples, n_classes) of raw (unstandardized) points (n_samples, n_features)."""
    mean, scale = np.asarray(feature_mean, dtype=float), np.asarray(feature_scale, dtype=float)
    standardized = (np.asarray(X, dtype=float) - mean) / scale
    return proba_of_logits(softmax.decision_function(coef, intercept, standardized))
