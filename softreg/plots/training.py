"""The training figure: losses, validation accuracy, learning rate and the gap to the optimum per epoch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from softreg.plots import _figure


def _column(history: Sequence[Mapping[str, Any]], name: str) -> NDArray[np.float64]:
    return np.array([np.nan if row[name] is None else row[name] for row in history], dtype=float)


def learning_curves(
    history: Sequence[Mapping[str, Any]], path: str | PathLike[str], optimum_objective: float | None = None
) -> Path:
    """Train/validation loss, validation accuracy and the lr per epoch.

    ``history`` is a list of dicts with the ``history.csv`` fields. The validation-accuracy
    panel is drawn only when there is a validation split, the certified bound's (log axis) only
    when a certificate was computed. With a known optimum J*, one more
    panel shows the relative objective gap (J - J*) / |J*| on a log axis. Every panel spans
    the same epochs. J is often evaluated at a few epochs only (``output.eval_every``): its
    points are drawn large and joined, and a note says how to get every epoch.
    """
    plt = _figure.pyplot()
    epochs = _column(history, "epoch")
    val_accuracy = _column(history, "val_accuracy")
    has_validation = not np.all(np.isnan(val_accuracy))
    bound = _column(history, "gap_bound") if history and "gap_bound" in history[0] else np.full(len(epochs), np.nan)
    certified = np.isfinite(bound) & (bound > 0)
    panels = 2 + has_validation + bool(certified.any()) + (optimum_objective is not None)
    figure, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 4.0), layout="constrained", squeeze=False)
    axes = list(axes[0])
    loss_axis, lr_axis = axes[0], axes[1 + has_validation]
    marker = "." if len(epochs) <= 60 else None
    objective = _column(history, "objective")
    shown = ~np.isnan(objective)
    n_shown = int(np.count_nonzero(shown))
    # J's few points drawn large and joined, so that two of them still read as a curve
    j_style = {"marker": "o" if n_shown <= 60 else None, "markersize": 6, "markeredgecolor": "black",
               "markeredgewidth": 0.6, "linestyle": "--", "linewidth": 1.0, "zorder": 3}
    loss_axis.plot(epochs, _column(history, "train_loss"), marker=marker, label="train loss (epoch's minibatches)")
    j_label = "train objective J (loss + decay)"
    if n_shown < len(epochs):
        j_label += f", at {n_shown} of {len(epochs)} epochs"
    loss_axis.plot(epochs[shown], objective[shown], color="tab:orange", label=j_label, **j_style)
    val_loss = _column(history, "val_loss")
    if not np.all(np.isnan(val_loss)):
        loss_axis.plot(epochs, val_loss, marker=marker, color="tab:green", label="validation loss")
    loss_axis.set(title="Loss", xlabel="epoch", ylabel="cross-entropy")
    loss_axis.legend(fontsize=8)
    if has_validation:
        accuracy_axis = axes[1]
        accuracy_axis.plot(epochs, val_accuracy, marker=marker, color="tab:green")
        best = int(np.nanargmax(val_accuracy))
        accuracy_axis.set(title=f"Validation accuracy (best {val_accuracy[best]:.4f}, epoch {epochs[best]:.0f})",
                          xlabel="epoch", ylabel="accuracy")
    rates = _column(history, "lr")
    lr_axis.plot(epochs, rates, marker=marker, color="tab:purple")
    lr_axis.set(title="Learning rate (of the epoch's steps)", xlabel="epoch", ylabel="lr")
    positive = rates[np.isfinite(rates) & (rates > 0)]
    if positive.size and positive.max() > 20 * positive.min():  # full-batch steps' Barzilai-Borwein rates span decades
        lr_axis.set_yscale("log")
    if certified.any():
        bound_axis = axes[2 + has_validation]
        bound_axis.semilogy(epochs[certified], bound[certified], color="tab:brown",
                            **{**j_style, "marker": "o" if certified.sum() <= 60 else None})
        bound_axis.set(title=f"Certified bound on (J - J*) / J* (last {bound[certified][-1]:.2e})",
                       xlabel="epoch", ylabel="gap_bound")
    if optimum_objective is not None:
        gap = (objective[shown] - optimum_objective) / max(abs(optimum_objective), 1e-300)
        axes[-1].semilogy(epochs[shown], np.maximum(gap, 1e-16), color="tab:red", **j_style)
        final = f"{gap[-1]:.2e}" if gap.size else "-"
        axes[-1].set(title=f"Relative gap to the exact optimum (last {final})", xlabel="epoch",
                     ylabel="(J - J*) / |J*|")
    if n_shown < min(5, len(epochs)):
        figure.supxlabel(
            f"J was evaluated at {n_shown} of {len(epochs)} epochs (output.eval_every adapts to keep evaluation "
            "cheap); set output.eval_every: 1 to evaluate it every epoch",
            fontsize=9, color="0.3",
        )
    first, last = (epochs[0], epochs[-1]) if len(epochs) else (1.0, 1.0)
    margin = max(0.5, 0.03 * (last - first))
    for axis in axes:
        axis.set_xlim(first - margin, last + margin)
        axis.grid(alpha=0.3)
    return _figure.save(figure, path)
