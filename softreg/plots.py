"""Figures: one function per figure, arrays in, PNG path out (matplotlib, Agg backend)."""

import io
import math
import re
from pathlib import Path

import numpy as np

from softreg import softmax


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

    ``history`` is a list of dicts with the ``history.csv`` fields. The validation-accuracy
    panel is drawn only when there is a validation split. With a known optimum J*, one more
    panel shows the relative objective gap (J - J*) / |J*| on a log axis. Every panel spans
    the same epochs. J is often evaluated at a few epochs only (``output.eval_every``): its
    points are drawn large and joined, and a note says how to get every epoch.
    """
    plt = _pyplot()
    epochs = _column(history, "epoch")
    val_accuracy = _column(history, "val_accuracy")
    has_validation = not np.all(np.isnan(val_accuracy))
    panels = 2 + has_validation + (optimum_objective is not None)
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
    lr_axis.plot(epochs, _column(history, "lr"), marker=marker, color="tab:purple")
    lr_axis.set(title="Learning rate (start of epoch)", xlabel="epoch", ylabel="lr")
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
    return _save(figure, path)


def confusion_matrix(confusion, classes, path):
    """Counts and row-normalized confusion matrices side by side, class names on the axes.

    ``confusion`` is (n_classes, n_classes), rows true, columns predicted. Both panels use
    a square-root colour scale so that the off-diagonal confusions stay visible beside a
    dark diagonal; cells are annotated up to 30 classes (zeros off the diagonal left blank).
    """
    plt = _pyplot()
    from matplotlib.colors import PowerNorm

    matrix = np.asarray(confusion, dtype=float)
    n_classes = len(classes)
    support = matrix.sum(axis=1, keepdims=True)
    percent = 100 * np.divide(matrix, support, out=np.zeros_like(matrix), where=support > 0)
    names = [str(label) for label in classes]
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
    return _save(figure, path)


def reliability(bins, ece, path):
    """Reliability diagram: accuracy against confidence per bin, bin counts below, ECE in the title.

    ``bins`` is `softreg.evaluate.reliability_bins`'s dict: ``edges`` (n_bins + 1,) and
    ``count``, ``accuracy``, ``confidence`` (n_bins,), NaN in empty bins.
    """
    plt = _pyplot()
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
    for x, n in zip(left + width / 2, count):
        if n:
            bottom.text(x, n * 1.3, str(int(n)), ha="center", va="bottom", fontsize=7)
    bottom.set(xlabel="confidence (probability of the predicted class)", ylabel="rows (log scale)")
    for axis in (top, bottom):
        axis.grid(alpha=0.3)
    return _save(figure, path)


# feature names of pixels: pixel_0_0, pixel12, px3, 1x1, x17, col5, 42 ...
_PIXEL_NAME = re.compile(r"(?i)^(pixel|pix|px|x|col|f|feature|v)?[_\s-]?\d+([_x\s-]\d+)?$")


def image_side(feature_names):
    """The side s when the features are the s*s pixels of a square image (s >= 8), else None."""
    side = math.isqrt(len(feature_names))
    if side < 8 or side * side != len(feature_names):
        return None
    return side if all(_PIXEL_NAME.match(str(name)) for name in feature_names) else None


def weights(coef, classes, feature_names, path):
    """The weights: one image per class for square-image pixels, else a class x feature heatmap.

    ``coef`` is (n_classes, n_features) in standardized feature space; red raises a class's
    logit, blue lowers it, on one symmetric colour scale for all classes.
    """
    plt = _pyplot()
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
                axis.set_title(f"class {classes[index]}", fontsize=10)
        figure.colorbar(image, ax=axes, shrink=0.8, label="weight per standardized pixel")
        figure.suptitle(f"Weights as {side}x{side} images (red raises the class's logit, blue lowers it)")
        return _save(figure, path)
    named = n_features <= 100
    figure, axis = plt.subplots(
        figsize=(min(max(6.0, 0.32 * n_features + 3.0), 16.0), max(3.5, 0.3 * n_classes + 2.2)), layout="constrained"
    )
    image = axis.imshow(coef, aspect="auto", interpolation="nearest", **style)
    figure.colorbar(image, ax=axis, label="weight per standardized unit")
    font = 9 if n_features <= 30 else 7
    if named:
        axis.set_xticks(range(n_features), [str(name) for name in feature_names], fontsize=font,
                        rotation=90 if n_features > 8 else 30, ha="center" if n_features > 8 else "right")
    axis.set_yticks(range(n_classes), [str(label) for label in classes], fontsize=9 if n_classes <= 30 else 6)
    if n_classes * n_features <= 120:
        for (row, column), value in np.ndenumerate(coef):
            axis.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=7,
                      color="white" if abs(value) > 0.6 * limit else "black")
    axis.set(xlabel="feature" if named else f"feature index (of {n_features})", ylabel="class",
             title="Weights per class and feature (standardized features; red raises the class's logit)")
    return _save(figure, path)


def _class_colors(n_classes):
    import matplotlib

    if n_classes <= 10:
        return matplotlib.colormaps["tab10"](np.arange(n_classes))
    if n_classes <= 20:
        return matplotlib.colormaps["tab20"](np.arange(n_classes))
    return matplotlib.colormaps["hsv"](np.linspace(0, 1, n_classes, endpoint=False))


def decision_regions(coef, intercept, feature_mean, feature_scale, X, y, classes, feature_names, path,
                     points="test", resolution=300):
    """The predicted class over the plane of two raw features, with labelled points on top.

    Parameters
    ----------
    coef : ndarray of shape (n_classes, 2), in standardized feature space
    intercept : ndarray of shape (n_classes,)
    feature_mean, feature_scale : ndarray of shape (2,), the model's standardizer
    X : ndarray of shape (n_samples, 2), raw features of the points to show
    y : ndarray of shape (n_samples,), their class indices
    points : str, what the points are (shown in the title)

    The shade of a region deepens with the predicted class's probability; misclassified
    points are crossed.
    """
    plt = _pyplot()
    X = np.asarray(X, dtype=float)
    n_classes = len(classes)
    low, high = X.min(axis=0), X.max(axis=0)
    pad = np.where(high > low, 0.08 * (high - low), 1.0)
    axes_values = [np.linspace(low[i] - pad[i], high[i] + pad[i], resolution) for i in range(2)]
    grid_x, grid_y = np.meshgrid(*axes_values)
    model = (np.asarray(coef, dtype=float), np.asarray(intercept, dtype=float), feature_mean, feature_scale)
    proba = _raw_proba(*model, np.column_stack([grid_x.ravel(), grid_y.ravel()]))  # (resolution^2, K)
    predicted = proba.argmax(axis=1).reshape(grid_x.shape)
    strength = (proba.max(axis=1).reshape(grid_x.shape) - 1 / n_classes) / (1 - 1 / n_classes)
    colors = _class_colors(n_classes)[:, :3]
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
                     label=f"{label} ({np.count_nonzero(y == index)})")
    wrong = shown[_raw_proba(*model, X[shown]).argmax(axis=1) != y[shown]]
    if wrong.size:
        axis.scatter(X[wrong, 0], X[wrong, 1], s=40, marker="x", color="black", linewidths=1.0,
                     label=f"misclassified ({wrong.size})")
    axis.set(xlim=extent[:2], ylim=extent[2:], xlabel=str(feature_names[0]), ylabel=str(feature_names[1]),
             title=f"Decision regions and the {points} points (shade: probability of the predicted class)")
    axis.legend(title="true class (rows)", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(figure, path)


def _raw_proba(coef, intercept, feature_mean, feature_scale, X):
    """Class probabilities (n_samples, n_classes) of raw (unstandardized) points (n_samples, n_features)."""
    mean, scale = np.asarray(feature_mean, dtype=float), np.asarray(feature_scale, dtype=float)
    standardized = (np.asarray(X, dtype=float) - mean) / scale
    return softmax.predict_proba(coef, intercept, standardized)


def class_probabilities(proba, y, classes, path):
    """Histogram of the probability given to the true class, and its mean per class.

    ``proba`` is (n_samples, n_classes), ``y`` (n_samples,) class indices. The histogram
    is stacked by whether the prediction was right; its count axis is logarithmic so that
    the few confident mistakes stay visible beside the many confident hits.
    """
    plt = _pyplot()
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
    per_class.set_xticks(range(n_classes), [str(label) for label in classes],
                         rotation=90 if n_classes > 12 else 0, fontsize=9 if n_classes <= 30 else 6)
    per_class.set(ylim=(0, 1), xlabel="true class", ylabel="mean probability of the true class",
                  title="Mean probability of the true class, per class")
    for axis in (histogram, per_class):
        axis.grid(alpha=0.3, axis="y")
    return _save(figure, path)


# -- compare-logistic: two-class softmax SGD against logistic SGD


def coefficient_paths(softmax_path, logistic_path, feature_names, path):
    """``w_2 - w_1`` of softmax SGD and ``w`` of logistic SGD over the steps, overlaid.

    Parameters
    ----------
    softmax_path, logistic_path : ndarray of shape (n_steps, n_tracked)
    feature_names : list of str, the tracked features (n_tracked,), shown in the legend

    One colour per feature: the softmax path is a solid line, the logistic path circles on
    it at a few dozen steps (log-spaced, like the step axis, so that the fast start shows).
    """
    plt = _pyplot()
    n_steps = softmax_path.shape[0]
    steps = np.arange(1, n_steps + 1)
    marked = np.unique(np.geomspace(1, max(n_steps, 1), 40).round().astype(int)) - 1 if n_steps else np.arange(0)
    colors = _class_colors(max(len(feature_names), 1))
    figure, axis = plt.subplots(figsize=(9.0, 5.0), layout="constrained")
    for index, name in enumerate(feature_names):
        axis.plot(steps, softmax_path[:, index], color=colors[index], linewidth=1.4, label=str(name))
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
    return _save(figure, path)


def trajectory_gaps(prob_diff, coef_diff, threshold, path, floor=1e-20):
    """Per-step gaps between the two SGD runs on a log axis, with the check's threshold.

    Parameters
    ----------
    prob_diff : ndarray of shape (n_steps,), max |p_softmax(B) - p_logistic| over the rows compared
    coef_diff : ndarray of shape (n_steps,), max |(w_2 - w_1) - w| (intercepts included)
    floor : exact zeros have no place on a log axis; they are drawn at ``floor``
    """
    plt = _pyplot()
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
    return _save(figure, path)


def decision_boundaries(X, y, classes, feature_names, softmax_line, logistic_line, path):
    """Both models' boundaries ``a . x + c = 0`` over the points of two raw features.

    Parameters
    ----------
    X : ndarray of shape (n_samples, 2), raw features
    y : ndarray of shape (n_samples,), 0 or 1
    classes : the two class labels
    softmax_line, logistic_line : (a, c) with ``a`` of shape (2,) and ``c`` a float
    """
    plt = _pyplot()
    X = np.asarray(X, dtype=float)
    low, high = X.min(axis=0), X.max(axis=0)
    pad = np.where(high > low, 0.08 * (high - low), 1.0)
    low, high = low - pad, high + pad
    colors = _class_colors(2)
    figure, axis = plt.subplots(figsize=(7.5, 6.0), layout="constrained")
    for index, label in enumerate(classes):
        mine = y == index
        axis.scatter(X[mine, 0], X[mine, 1], s=20, color=colors[index], edgecolors="black", linewidths=0.4,
                     label=f"{label} ({np.count_nonzero(mine)})")
    for (slope, offset), style in (
        (softmax_line, {"color": "tab:purple", "linewidth": 5.0, "alpha": 0.5, "label": "softmax SGD: p₂ = p₁"}),
        (logistic_line, {"color": "black", "linewidth": 1.0, "linestyle": "--", "label": "logistic SGD: p = 1/2"}),
    ):
        axis.plot(*_line_points(np.asarray(slope, dtype=float), float(offset), low, high), **style)
    axis.set(xlim=(low[0], high[0]), ylim=(low[1], high[1]), xlabel=str(feature_names[0]),
             ylabel=str(feature_names[1]), title="Decision boundaries of the two SGD models")
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axis.grid(alpha=0.3)
    return _save(figure, path)


def _line_points(slope, offset, low, high):
    """Two points of ``slope . x + offset = 0`` spanning the box [low, high] (nothing if slope is 0)."""
    if np.abs(slope).max() == 0:
        return [], []
    if abs(slope[1]) >= abs(slope[0]):  # solve for the second coordinate: no division by a tiny slope
        xs = np.array([low[0], high[0]])
        return xs, -(slope[0] * xs + offset) / slope[1]
    ys = np.array([low[1], high[1]])
    return -(slope[1] * ys + offset) / slope[0], ys
