"""Figures: one function per figure, arrays in, PNG path out (matplotlib, Agg backend)."""

import io
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path):
    from softreg.rundir import atomic_open

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(figure)
    with atomic_open(path, "wb") as handle:
        handle.write(buffer.getvalue())
    return Path(path)


def _column(history, name):
    return np.array([np.nan if row[name] is None else row[name] for row in history], dtype=float)


def learning_curves(history, path, optimum_objective=None):
    """Train/validation loss, validation accuracy and the lr per epoch.

    ``history`` is a list of dicts with the ``history.csv`` fields. With a known optimum,
    a fourth panel shows the relative objective gap on a log axis.
    """
    plt = _pyplot()
    epochs = _column(history, "epoch")
    panels = 4 if optimum_objective is not None else 3
    figure, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 4.0))
    loss_axis, accuracy_axis, lr_axis = axes[:3]
    loss_axis.plot(epochs, _column(history, "train_loss"), marker=".", label="train loss (minibatch mean)")
    objective = _column(history, "objective")
    shown = ~np.isnan(objective)
    loss_axis.plot(epochs[shown], objective[shown], marker="o", linestyle="--", label="train objective J")
    val_loss = _column(history, "val_loss")
    if not np.all(np.isnan(val_loss)):
        loss_axis.plot(epochs, val_loss, marker=".", label="validation loss")
    loss_axis.set(title="Loss", xlabel="epoch", ylabel="cross-entropy")
    loss_axis.legend()
    val_accuracy = _column(history, "val_accuracy")
    if np.all(np.isnan(val_accuracy)):
        accuracy_axis.text(0.5, 0.5, "no validation split\n(data.val = 0)", ha="center", va="center", transform=accuracy_axis.transAxes)
    else:
        accuracy_axis.plot(epochs, val_accuracy, marker=".", color="tab:green")
    accuracy_axis.set(title="Validation accuracy", xlabel="epoch", ylabel="accuracy")
    lr_axis.plot(epochs, _column(history, "lr"), marker=".", color="tab:purple")
    lr_axis.set(title="Learning rate (start of epoch)", xlabel="epoch", ylabel="lr")
    if optimum_objective is not None:
        gap = (objective[shown] - optimum_objective) / max(abs(optimum_objective), 1e-300)
        axes[3].semilogy(epochs[shown], np.maximum(gap, 1e-16), marker="o", color="tab:red")
        axes[3].set(title="Relative gap to the exact optimum", xlabel="epoch", ylabel="(J - J*) / J*")
    for axis in axes:
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)


def confusion_matrix(confusion, classes, path):
    """Counts and row-normalized confusion matrices side by side, class names on the axes."""
    plt = _pyplot()
    matrix = np.asarray(confusion, dtype=float)
    n_classes = len(classes)
    with np.errstate(invalid="ignore"):
        normalized = matrix / matrix.sum(axis=1, keepdims=True)
    size = max(5.0, 0.32 * n_classes + 2.5)
    figure, axes = plt.subplots(1, 2, figsize=(2 * size + 1.5, size))
    names = [str(label) for label in classes]
    annotate = n_classes <= 15
    for axis, values, title, fmt in (
        (axes[0], matrix, "Counts", "{:.0f}"),
        (axes[1], np.nan_to_num(normalized), "Row-normalized (recall on the diagonal)", "{:.2f}"),
    ):
        image = axis.imshow(values, cmap="Blues")
        figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
        axis.set_xticks(range(n_classes), names, rotation=90 if n_classes > 10 else 0, fontsize=8 if n_classes > 15 else 10)
        axis.set_yticks(range(n_classes), names, fontsize=8 if n_classes > 15 else 10)
        axis.set(title=title, xlabel="predicted class", ylabel="true class")
        if annotate:
            threshold = values.max() / 2 if values.max() > 0 else 1
            for (row, column), value in np.ndenumerate(values):
                axis.text(column, row, fmt.format(value), ha="center", va="center", fontsize=8,
                          color="white" if value > threshold else "black")
    figure.tight_layout()
    return _save(figure, path)
