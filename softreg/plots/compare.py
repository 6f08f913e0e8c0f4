"""compare-logistic's figures: two-class softmax SGD against logistic SGD."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from softreg.plots import _figure


def coefficient_paths(
    softmax_path: NDArray[np.float64],
    logistic_path: NDArray[np.float64],
    feature_names: Sequence[Any],
    path: str | PathLike[str],
) -> Path:
    """``w_2 - w_1`` of softmax SGD and ``w`` of logistic SGD over the steps, overlaid.

    Parameters
    ----------
    softmax_path, logistic_path : ndarray of shape (n_steps, n_tracked)
    feature_names : list of str, the tracked features (n_tracked,), shown in the legend

    One colour per feature: the softmax path is a solid line, the logistic path circles on
    it at a few dozen steps (log-spaced, like the step axis, so that the fast start shows).
    """
    plt = _figure.pyplot()
    n_steps = softmax_path.shape[0]
    steps = np.arange(1, n_steps + 1)
    marked = np.unique(np.geomspace(1, max(n_steps, 1), 40).round().astype(int)) - 1 if n_steps else np.arange(0)
    colors = _figure.class_colors(max(len(feature_names), 1))
    figure, axis = plt.subplots(figsize=(9.0, 5.0), layout="constrained")
    for index, name in enumerate(feature_names):
        axis.plot(steps, softmax_path[:, index], color=colors[index], linewidth=1.4, label=_figure.shown(name))
        axis.plot(steps[marked], logistic_path[marked, index], linestyle="none", marker="o", markersize=6,
                  markerfacecolor="none", markeredgecolor=colors[index], markeredgewidth=1.2)
    # style keys in black: they match no feature's colour, on purpose
    axis.plot([], [], color="black", linewidth=1.4, label="softmax SGD: w₂ − w₁ (line)")
    axis.plot([], [], color="black", linestyle="none", marker="o", markersize=6, markerfacecolor="none",
              label="logistic SGD (rate 2η, decay λ/2): w (circles)")
    axis.axhline(0.0, color="gray", linewidth=0.5)
    if n_steps > 1:
        axis.set_xscale("log")
    axis.set(xlabel="SGD step (log scale)" if n_steps > 1 else "SGD step", ylabel="coefficient (standardized features)",
             title="Coefficient paths: the logistic circles sit on the softmax lines")
    axis.legend(title="feature", fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axis.grid(alpha=0.3)
    axis.grid(alpha=0.1, which="minor")
    return _figure.save(figure, path)


def trajectory_gaps(
    prob_diff: NDArray[np.float64],
    coef_diff: NDArray[np.float64],
    threshold: float,
    path: str | PathLike[str],
    floor: float = 1e-20,
) -> Path:
    """Per-step gaps between the two SGD runs on a log axis, with the check's threshold.

    Parameters
    ----------
    prob_diff : ndarray of shape (n_steps,), max |p_softmax(B) - p_logistic| over the rows compared
    coef_diff : ndarray of shape (n_steps,), max |(w_2 - w_1) - w| (intercepts included)
    floor : exact zeros have no place on a log axis; they are drawn at ``floor``
    """
    plt = _figure.pyplot()
    steps = np.arange(1, len(prob_diff) + 1)
    figure, axis = plt.subplots(figsize=(9.0, 4.6), layout="constrained")
    axis.semilogy(steps, np.maximum(prob_diff, floor), linewidth=0.9, label="max |p_softmax(B) − p_logistic|")
    axis.semilogy(steps, np.maximum(coef_diff, floor), linewidth=0.9, label="max |(w₂ − w₁) − w|, |(b₂ − b₁) − b|")
    axis.axhline(threshold, color="tab:red", linestyle="--", linewidth=1.0, label=f"check threshold {threshold:g}")
    axis.axhline(np.finfo(np.float64).eps, color="gray", linestyle=":", linewidth=1.0, label="float64 machine epsilon")
    axis.set(xlabel="SGD step", ylabel=f"absolute difference (0 drawn at {floor:g})",
             ylim=(floor / 10, max(1.0, threshold * 100)),
             title="Softmax SGD against logistic SGD after every step: rounding error only")
    axis.legend(fontsize=8, loc="upper right")
    axis.grid(alpha=0.3, which="both")
    return _figure.save(figure, path)


def decision_boundaries(
    X: ArrayLike,
    y: np.ndarray,
    classes: Sequence[Any] | np.ndarray,
    feature_names: Sequence[Any] | np.ndarray,
    softmax_line: tuple[ArrayLike, float],
    logistic_line: tuple[ArrayLike, float],
    path: str | PathLike[str],
) -> Path:
    """Both models' boundaries ``a . x + c = 0`` over the points of two raw features.

    Parameters
    ----------
    X : ndarray of shape (n_samples, 2), raw features
    y : ndarray of shape (n_samples,), 0 or 1
    classes : the two class labels
    softmax_line, logistic_line : (a, c) with ``a`` of shape (2,) and ``c`` a float
    """
    plt = _figure.pyplot()
    X = np.asarray(X, dtype=float)
    low, high = X.min(axis=0), X.max(axis=0)
    pad = np.where(high > low, 0.08 * (high - low), 1.0)
    low, high = low - pad, high + pad
    colors = _figure.class_colors(2)
    figure, axis = plt.subplots(figsize=(7.5, 6.0), layout="constrained")
    for index, label in enumerate(classes):
        mine = y == index
        axis.scatter(X[mine, 0], X[mine, 1], s=20, color=colors[index], edgecolors="black", linewidths=0.4,
                     label=f"{_figure.shown(label)} ({np.count_nonzero(mine)})")
    for (slope, offset), style in (
        (softmax_line, {"color": "tab:purple", "linewidth": 5.0, "alpha": 0.5, "label": "softmax SGD: p₂ = p₁"}),
        (logistic_line, {"color": "black", "linewidth": 1.0, "linestyle": "--", "label": "logistic SGD: p = 1/2"}),
    ):
        axis.plot(*_line_points(np.asarray(slope, dtype=float), float(offset), low, high), **style)
    axis.set(xlim=(low[0], high[0]), ylim=(low[1], high[1]), xlabel=_figure.shown(feature_names[0]),
             ylabel=_figure.shown(feature_names[1]), title="Decision boundaries of the two SGD models")
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axis.grid(alpha=0.3)
    return _figure.save(figure, path)


def _line_points(
    slope: NDArray[np.float64], offset: float, low: NDArray[np.float64], high: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two points of ``slope . x + offset = 0`` spanning the box [low, high] (nothing if slope is 0)."""
    if np.abs(slope).max() == 0:
        return np.empty(0), np.empty(0)
    if abs(slope[1]) >= abs(slope[0]):  # solve for the second coordinate: no division by a tiny slope
        xs = np.array([low[0], high[0]])
        return xs, -(slope[0] * xs + offset) / slope[1]
    ys = np.array([low[1], high[1]])
    return -(slope[1] * ys + offset) / slope[0], ys
