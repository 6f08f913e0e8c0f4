"""Figures of predicted probabilities against the labels: confusion, calibration, the true class's probability."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from softreg.plots import _figure


def confusion_matrix(
    confusion: ArrayLike, classes: Sequence[Any] | np.ndarray, path: str | PathLike[str]
) -> Path:
    """Counts and row-normalized confusion matrices side by side, class names on the axes.

    ``confusion`` is (n_classes, n_classes), rows true, columns predicted. Both panels use
    a square-root colour scale so that the off-diagonal confusions stay visible beside a
    dark diagonal; cells are annotated up to 30 classes (zeros off the diagonal left blank).
    """
    plt = _figure.pyplot()
    from matplotlib.colors import PowerNorm

    matrix = np.asarray(confusion, dtype=float)
    n_classes = len(classes)
    support = matrix.sum(axis=1, keepdims=True)
    percent = 100 * np.divide(matrix, support, out=np.zeros_like(matrix), where=support > 0)
    names = [_figure.shown(label) for label in classes]
    if n_classes > MANY_CLASSES:
        return _many_classes(plt, percent, names, int(matrix.sum()), path)
    size = max(5.5, (0.62 if n_classes <= 12 else 0.42) * n_classes + 1.8)
    if n_classes <= 15:
        figure, axes = plt.subplots(1, 2, figsize=(2 * size + 2.2, size + 0.5), layout="constrained")
        figure.get_layout_engine().set(wspace=0.1)
    else:  # one above the other, so that the figure shrunk to a page's width stays legible
        figure, axes = plt.subplots(2, 1, figsize=(size + 1.2, 2 * size + 0.8), layout="constrained")
    font = 10 if n_classes <= 10 else 8 if n_classes <= 20 else 7.5
    panels = (
        (axes[0], matrix, "Counts", "rows"),
        (axes[1], percent, "% of each true class (recall on the diagonal)", "% of the true class"),
    )
    for axis, values, title, unit in panels:
        norm = PowerNorm(0.5, vmin=0, vmax=max(values.max(), 1e-12))
        image = axis.imshow(values, cmap="Blues", norm=norm)
        figure.colorbar(image, ax=axis, fraction=0.046, pad=0.02, label=f"{unit} (square-root scale)")
        axis.set_xticks(range(n_classes), names, rotation=90 if n_classes > 10 else 0, fontsize=font + 1)
        axis.set_yticks(range(n_classes), names, fontsize=font + 1)
        axis.set(title=title, xlabel="predicted class", ylabel="true class")
        if n_classes <= 30:
            for (row, column), value in np.ndenumerate(values):
                if value == 0 and row != column:
                    continue
                label = "no rows" if support[row, 0] == 0 and values is percent else f"{value:.0f}"
                axis.text(column, row, label, ha="center", va="center", fontsize=font,
                          color="white" if norm(value) > 0.6 else "black")
    figure.suptitle(f"Confusion matrix ({int(matrix.sum())} rows, {n_classes} classes)")
    return _figure.save(figure, path)


MANY_CLASSES = 40  # above this, one panel without per-cell numbers and with every k-th class named
MAX_TICKS = 40


def _many_classes(plt: Any, percent: np.ndarray, names: list[str], n_rows: int, path: str | PathLike[str]) -> Path:
    """The row-normalized matrix alone, on a fixed-size figure (well under 4000 px a side)."""
    from matplotlib.colors import PowerNorm

    n_classes = len(names)
    step = math.ceil(n_classes / MAX_TICKS)
    figure, axis = plt.subplots(figsize=(12.5, 11.5), layout="constrained")
    image = axis.imshow(percent, cmap="Blues", norm=PowerNorm(0.5, vmin=0, vmax=max(percent.max(), 1e-12)),
                        interpolation="nearest")
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.02, label="% of the true class (square-root scale)")
    ticks = list(range(0, n_classes, step))
    axis.set_xticks(ticks, [names[index] for index in ticks], rotation=90, fontsize=7)
    axis.set_yticks(ticks, [names[index] for index in ticks], fontsize=7)
    axis.set(xlabel="predicted class", ylabel="true class",
             title=f"Confusion matrix ({n_rows} rows, {n_classes} classes): % of each true class, no per-cell "
                   f"numbers above {MANY_CLASSES} classes,\nevery {step}th class named; the counts are in "
                   "metrics.json and the most-confused pairs in `softreg evaluate`")
    axis.title.set_fontsize(9)
    return _figure.save(figure, path)


def reliability(bins: Mapping[str, ArrayLike], ece: float, path: str | PathLike[str]) -> Path:
    """Reliability diagram: accuracy against confidence per bin, bin counts below, ECE in the title.

    ``bins`` is `softreg.evaluate.reliability_bins`'s dict: ``edges`` (n_bins + 1,) and
    ``count``, ``accuracy``, ``confidence`` (n_bins,), NaN in empty bins.
    """
    plt = _figure.pyplot()
    edges, count = np.asarray(bins["edges"]), np.asarray(bins["count"])
    accuracy, confidence = np.asarray(bins["accuracy"]), np.asarray(bins["confidence"])
    left, width, filled = edges[:-1], np.diff(edges), count > 0
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(6.4, 7.0), sharex=True, height_ratios=(3, 1.2), layout="constrained"
    )
    top.bar(left[filled], accuracy[filled], width=width[filled], align="edge", color="tab:blue",
            edgecolor="black", linewidth=0.6, label="accuracy in the bin")
    top.bar(left[filled], confidence[filled] - accuracy[filled], bottom=accuracy[filled], width=width[filled],
            align="edge", fill=False, edgecolor="tab:red", hatch="///", linewidth=0.8,
            label="gap: mean confidence - accuracy")
    top.plot(confidence[filled], accuracy[filled], "o-", color="black", markersize=4, linewidth=1,
             label="calibration curve (mean confidence, accuracy)")
    top.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    top.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1.02),
            title=f"Reliability diagram: ECE {ece:.4f} ({len(count)} bins, {int(count.sum())} rows)")
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(left, count, width=width, align="edge", color="gray", edgecolor="black", linewidth=0.6)
    bottom.set_yscale("symlog", linthresh=1)
    bottom.set_ylim(0, max(count.max(), 1) * 8)
    for x, n in zip(left + width / 2, count, strict=True):
        if n:
            bottom.text(x, n * 1.3, str(int(n)), ha="center", va="bottom", fontsize=7)
    bottom.set(xlabel="confidence (probability of the predicted class)", ylabel="rows (log scale)")
    for axis in (top, bottom):
        axis.grid(alpha=0.3)
    return _figure.save(figure, path)


def class_probabilities(
    proba: NDArray[np.float64], y: np.ndarray, classes: Sequence[Any] | np.ndarray, path: str | PathLike[str]
) -> Path:
    """Histogram of the probability given to the true class, and its mean per class.

    ``proba`` is (n_samples, n_classes), ``y`` (n_samples,) class indices. The histogram
    is stacked by whether the prediction was right; its count axis is logarithmic so that
    the few confident mistakes stay visible beside the many confident hits.
    """
    plt = _figure.pyplot()
    proba = np.asarray(proba, dtype=float)
    n_classes = len(classes)
    true_proba = proba[np.arange(len(y)), y]
    correct = proba.argmax(axis=1) == y
    figure, (histogram, per_class) = plt.subplots(
        1, 2, figsize=(12.5 if n_classes <= 12 else 15.0, 4.6), width_ratios=(1, 1.2), layout="constrained"
    )
    histogram.hist([true_proba[correct], true_proba[~correct]], bins=np.linspace(0, 1, 21), stacked=True,
                   color=["tab:green", "tab:red"], edgecolor="black", linewidth=0.5,
                   label=[f"predicted right ({np.count_nonzero(correct)})",
                          f"predicted wrong ({np.count_nonzero(~correct)})"])
    histogram.set_yscale("symlog", linthresh=1)
    histogram.set_ylim(bottom=0)
    mean = float(true_proba.mean()) if len(y) else float("nan")
    histogram.set(xlim=(0, 1), xlabel="probability of the true class", ylabel="rows (log scale)",
                  title=f"Probability of the true class (mean {mean:.3f}, {len(y)} rows)")
    histogram.legend(loc="upper left", fontsize=8)
    support = np.bincount(y, minlength=n_classes)
    sums = np.bincount(y, weights=true_proba, minlength=n_classes)
    means = np.divide(sums, support, out=np.full(n_classes, np.nan), where=support > 0)
    per_class.bar(np.arange(n_classes), np.nan_to_num(means), color="tab:blue", edgecolor="black", linewidth=0.5)
    for index in np.flatnonzero(support == 0):
        per_class.text(index, 0.02, "no rows", rotation=90, ha="center", va="bottom", fontsize=7)
    per_class.set_xticks(range(n_classes), [_figure.shown(label) for label in classes],
                         rotation=90 if n_classes > 12 else 0, fontsize=9 if n_classes <= 30 else 6)
    per_class.set(ylim=(0, 1), xlabel="true class", ylabel="mean probability of the true class",
                  title="Mean probability of the true class, per class")
    for axis in (histogram, per_class):
        axis.grid(alpha=0.3, axis="y")
    return _figure.save(figure, path)
