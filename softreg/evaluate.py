"""Metrics of predicted probabilities: scikit-learn's where it has them, plus the
expected calibration error and its reliability bins."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

N_BINS = 15


def reliability_bins(y: np.ndarray, proba: NDArray[np.float64], n_bins: int = N_BINS) -> dict[str, np.ndarray]:
    """Equal-width bins of the top-class probability.

    Parameters
    ----------
    y : ndarray of shape (n_samples,), class indices
    proba : ndarray of shape (n_samples, n_classes)

    Returns
    -------
    dict with ``edges`` (n_bins + 1,), ``count``, ``accuracy``, ``confidence`` (n_bins,);
    accuracy and confidence are NaN in empty bins.
    """
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bins are (lo, hi]; a confidence of exactly 0 cannot occur for a probability vector's max
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(index, weights=correct, minlength=n_bins) / count
        mean_confidence = np.bincount(index, weights=confidence, minlength=n_bins) / count
    return {"edges": edges, "count": count, "accuracy": accuracy, "confidence": mean_confidence}


def expected_calibration_error(y: np.ndarray, proba: NDArray[np.float64], n_bins: int = N_BINS) -> float:
    """ECE = sum_b (n_b / n) |accuracy_b - confidence_b| over equal-width bins of the top-class probability."""
    bins = reliability_bins(y, proba, n_bins)
    filled = bins["count"] > 0
    gaps = np.abs(bins["accuracy"][filled] - bins["confidence"][filled])
    return float(np.sum(bins["count"][filled] * gaps) / len(y))


def classification_metrics(
    y: np.ndarray, proba: NDArray[np.float64], classes: Sequence[Any] | np.ndarray
) -> dict[str, Any]:
    """All metrics of ``metrics.json`` for class indices ``y`` (n,) and ``proba`` (n, K).

    Classes the data lack get zero support in ``per_class``; the macro averages and
    balanced accuracy are scikit-learn's (over the labels present in ``y`` or predicted).
    """
    from sklearn import metrics

    n_classes = len(classes)
    labels = np.arange(n_classes)
    predicted = proba.argmax(axis=1)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0
    )
    with warnings.catch_warnings():  # predictions of a class absent from y are legitimate here
        warnings.simplefilter("ignore", UserWarning)
        balanced_accuracy = metrics.balanced_accuracy_score(y, predicted)
    macro_precision, macro_recall, macro_f1, _ = metrics.precision_recall_fscore_support(
        y, predicted, average="macro", zero_division=0
    )
    return {
        "n_samples": int(len(y)),
        "classes": [str(label) for label in classes],
        "accuracy": float(metrics.accuracy_score(y, predicted)),
        "balanced_accuracy": float(balanced_accuracy),
        "log_loss": float(metrics.log_loss(y, proba, labels=labels)),
        "brier_score": float(metrics.brier_score_loss(y, proba, labels=labels)),
        "top_k_accuracy": {
            str(k): float(metrics.top_k_accuracy_score(y, proba, k=k, labels=labels))
            for k in range(2, min(n_classes - 1, 5) + 1)
        },
        "ece": expected_calibration_error(y, proba),
        "macro_precision": float(macro_precision),
        "macro_recall": float(macro_recall),
        "macro_f1": float(macro_f1),
        "per_class": {
            str(label): {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": metrics.confusion_matrix(y, predicted, labels=labels).tolist(),
    }


def most_confused(
    confusion: ArrayLike, classes: Sequence[Any] | np.ndarray, top: int = 10
) -> list[tuple[str, str, int]]:
    """The ``top`` off-diagonal cells (true, predicted, count), largest first.

    ``confusion`` is (n_classes, n_classes), rows true, columns predicted; ``classes`` (n_classes,).
    """
    matrix = np.array(confusion)
    np.fill_diagonal(matrix, 0)
    order = np.argsort(matrix, axis=None, kind="stable")[::-1][:top]
    pairs: list[tuple[str, str, int]] = []
    for flat in order:
        true_index, predicted_index = np.unravel_index(flat, matrix.shape)
        count = int(matrix[true_index, predicted_index])
        if count == 0:
            break
        pairs.append((str(classes[true_index]), str(classes[predicted_index]), count))
    return pairs
