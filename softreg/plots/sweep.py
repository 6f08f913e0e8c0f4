"""The figures of ``softreg sweep``: accuracy against each numeric grid key, and every run's
learning curves overlaid."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from softreg.plots import _figure


def is_numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(value, int | float) and not isinstance(value, bool) for value in values)


def spans_decades(values: Sequence[float]) -> bool:
    """Whether positive values cover a factor of 10 or more (then a log axis reads better)."""
    positive = [value for value in values if value > 0]
    return len(positive) >= 2 and max(positive) / min(positive) >= 10 and min(values) >= 0


def set_value_axis(axis: Any, values: Sequence[float]) -> None:
    """A log axis where the values span decades (symmetric-log when 0 is among them), else linear."""
    if not spans_decades(values):
        return
    positive = [value for value in values if value > 0]
    if min(values) == 0:
        axis.set_xscale("symlog", linthresh=min(positive))
    else:
        axis.set_xscale("log")


def varying(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[str]:
    """The grid keys that take more than one value among ``rows``."""
    return [key for key in keys if len({repr(row[key]) for row in rows}) > 1]


def sweep_accuracy(rows: Sequence[Mapping[str, Any]], keys: Sequence[str], path: str | PathLike[str]) -> Path:
    """Validation accuracy against each numeric grid key: one panel per key, one line per
    setting of the other keys. Test accuracy (said so) when the runs have no validation split;
    a bar per run when no grid key is numeric."""
    plt = _figure.pyplot()
    metric = "val_accuracy" if any(row["val_accuracy"] is not None for row in rows) else "test_accuracy"
    label = "validation accuracy" if metric == "val_accuracy" else "test accuracy (no validation split)"
    keys = varying(rows, keys)  # a key with one value is neither an axis nor a legend entry
    numeric = [key for key in keys if is_numeric([row[key] for row in rows])]
    if not numeric:
        figure, axis = plt.subplots(figsize=(7, 0.4 * len(rows) + 1.5), layout="constrained")
        accuracy = [np.nan if row[metric] is None else row[metric] for row in rows]
        axis.barh([_figure.shown(row["run_dir"]) for row in rows], accuracy, color="tab:blue")
        axis.set(xlabel=label, title=f"{label.capitalize()} of each run")
        axis.invert_yaxis()
        return _figure.save(figure, path)
    figure, axes = plt.subplots(1, len(numeric), figsize=(5.2 * len(numeric), 4.2), layout="constrained",
                                squeeze=False)
    for axis, key in zip(axes[0], numeric, strict=True):
        others = [other for other in keys if other != key]
        groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
        for row in rows:
            setting = tuple(_figure.shown(f"{other.rpartition('.')[2]}={row[other]}") for other in others)
            groups.setdefault(setting, []).append(row)
        for setting, members in groups.items():
            members = sorted(members, key=lambda row: row[key])
            x = [row[key] for row in members]
            y = [np.nan if row[metric] is None else row[metric] for row in members]
            axis.plot(x, y, marker="o", label=", ".join(setting) or None)
        set_value_axis(axis, [row[key] for row in rows])
        axis.set(xlabel=_figure.shown(key), ylabel=label, title=_figure.shown(f"{label} vs {key}"))
        axis.grid(alpha=0.3)
        if len(groups) > 1:
            axis.legend(fontsize=8)
    return _figure.save(figure, path)


def sweep_curves(histories: Mapping[str, Sequence[Mapping[str, Any]]], path: str | PathLike[str]) -> Path:
    """Every run's training loss and validation accuracy per epoch, overlaid (one colour per run)."""
    plt = _figure.pyplot()
    has_validation = any(row["val_accuracy"] is not None for rows in histories.values() for row in rows)
    panels = 2 if has_validation else 1
    figure, axes = plt.subplots(1, panels, figsize=(6.2 * panels, 4.4), layout="constrained", squeeze=False)
    colors = _figure.class_colors(len(histories))
    for color, (name, rows) in zip(colors, histories.items(), strict=True):
        epochs = [row["epoch"] for row in rows]
        axes[0][0].plot(epochs, [row["train_loss"] for row in rows], color=color, label=_figure.shown(name))
        if has_validation:
            accuracy = [math.nan if row["val_accuracy"] is None else row["val_accuracy"] for row in rows]
            axes[0][1].plot(epochs, accuracy, color=color, label=_figure.shown(name))
    axes[0][0].set(xlabel="epoch", ylabel="training loss (each run's own loss)", title="Training loss")
    if has_validation:
        axes[0][1].set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy")
    for axis in axes[0]:
        axis.grid(alpha=0.3)
    if len(histories) <= 16:
        axes[0][-1].legend(fontsize=7)
    return _figure.save(figure, path)
