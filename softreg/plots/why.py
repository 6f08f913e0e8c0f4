"""The figures of ``softreg demo why-softmax``: why softmax and cross-entropy, on real data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from softreg.plots import _figure
from softreg.plots.sweep import set_value_axis

LOSS_NAMES = {"cross_entropy": "cross-entropy", "squared_error": "squared error"}


def true_class_gradient(
    p_true: np.ndarray, gradients: Mapping[str, np.ndarray], n_classes: int, path: str | PathLike[str]
) -> Path:
    """dL/dz_y against p_y (log axis) for each loss: cross-entropy's tends to -1 as p_y -> 0, the
    squared error's to 0, so a confidently wrong example teaches the squared error nothing."""
    plt = _figure.pyplot()
    figure, axis = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    for loss, gradient in gradients.items():
        axis.plot(p_true, gradient, linewidth=2, label=LOSS_NAMES.get(loss, loss))
    axis.axhline(-1.0, color="0.5", linestyle=":", linewidth=1)
    axis.axhline(0.0, color="0.5", linewidth=0.8)
    axis.axvline(1 / n_classes, color="0.5", linestyle="--", linewidth=1)
    axis.annotate("zero start: p_y = 1/K", (1 / n_classes, -0.55), xytext=(6, 0), textcoords="offset points",
                  fontsize=8, color="0.3")
    axis.set_xscale("log")
    axis.set(xlabel="p_y, the probability of the true class", ylabel="dL/dz_y",
             title=f"Gradient of the true-class logit ({n_classes} classes, other logits equal)")
    axis.grid(alpha=0.3)
    axis.legend()
    return _figure.save(figure, path)


def learning_by_loss(curves: Mapping[tuple[str, float], Sequence[float]], path: str | PathLike[str]) -> Path:
    """Validation accuracy per epoch, one colour per learning rate, solid cross-entropy and dashed
    squared error; ``curves`` maps (loss, lr) to the accuracies of epochs 1, 2, ..."""
    plt = _figure.pyplot()
    figure, axis = plt.subplots(figsize=(6.8, 4.4), layout="constrained")
    rates = sorted({rate for _, rate in curves})
    colors = dict(zip(rates, _figure.class_colors(len(rates)), strict=True))
    for (loss, rate), accuracy in sorted(curves.items()):
        epochs = np.arange(1, len(accuracy) + 1)
        axis.plot(epochs, accuracy, color=colors[rate], linestyle="-" if loss == "cross_entropy" else "--",
                  marker="o", markersize=3, label=f"{LOSS_NAMES.get(loss, loss)}, lr {rate:g}")
    axis.set(xlabel="epoch", ylabel="validation accuracy",
             title="letters: learning from the zero start, by loss and rate")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return _figure.save(figure, path)


def normalizer_comparison(table: Mapping[str, Mapping[str, Mapping[str, float]]], path: str | PathLike[str]) -> Path:
    """Test accuracy, log loss and ECE per dataset (groups) and normalizer (bars)."""
    plt = _figure.pyplot()
    metrics = (("test_accuracy", "accuracy"), ("test_log_loss", "log loss"), ("test_ece", "ECE"))
    datasets = list(table)
    normalizers = list(next(iter(table.values())))
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.8), layout="constrained")
    width = 0.8 / len(normalizers)
    for axis, (key, title) in zip(axes, metrics, strict=True):
        for index, normalizer in enumerate(normalizers):
            values = [table[data][normalizer][key] for data in datasets]
            x = np.arange(len(datasets)) + (index - (len(normalizers) - 1) / 2) * width
            bars = axis.bar(x, values, width, label=normalizer)
            axis.bar_label(bars, fmt="%.3f", fontsize=7)
        axis.set_xticks(np.arange(len(datasets)), datasets)
        axis.set(title=f"test {title}")
        axis.grid(alpha=0.3, axis="y")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside right upper", fontsize=9)
    figure.suptitle("softmax vs Taylor vs spherical normalizers (same config: rate, epochs, λ)")
    return _figure.save(figure, path)


def weight_decay_effect(rows: Sequence[Mapping[str, Any]], path: str | PathLike[str]) -> Path:
    """Test accuracy and ||W||_F against the weight decay (log axis; symmetric-log when 0 is in the grid)."""
    plt = _figure.pyplot()
    decays = [row["weight_decay"] for row in rows]
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.9), layout="constrained")
    for axis, key, label, color in ((axes[0], "test_accuracy", "test accuracy", "tab:blue"),
                                    (axes[1], "coef_norm", "‖W‖_F", "tab:red")):
        axis.plot(decays, [row[key] for row in rows], marker="o", color=color)
        set_value_axis(axis, decays)
        axis.set(xlabel="weight decay λ", ylabel=label, title=f"digits: {label} vs λ")
        axis.grid(alpha=0.3)
    return _figure.save(figure, path)


def norm_by_epoch(
    norms: Mapping[float, Sequence[float]], optimum_norms: Mapping[float, float], path: str | PathLike[str]
) -> Path:
    """||W||_F after each epoch for each weight decay: growing without end at λ = 0 (separable
    data have no finite minimizer), levelling off at λ > 0 at the exact optimum's ||W*|| (dotted)."""
    plt = _figure.pyplot()
    figure, axis = plt.subplots(figsize=(6.8, 4.4), layout="constrained")
    colors = _figure.class_colors(len(norms))
    for color, (decay, values) in zip(colors, sorted(norms.items()), strict=True):
        axis.plot(np.arange(1, len(values) + 1), values, color=color, linewidth=2, label=f"λ = {decay:g}")
        if decay in optimum_norms:
            axis.axhline(optimum_norms[decay], color=color, linestyle=":", linewidth=1.2)
    axis.set_xscale("log")
    axis.set(xlabel="epoch (log axis)", ylabel="‖W‖_F",
             title="digits (separable training part): ‖W‖ by epoch\n(dotted: ‖W*‖ of the exact optimum)")
    axis.grid(alpha=0.3)
    axis.legend()
    return _figure.save(figure, path)
