"""Labels: the classes kept, and each row's class index."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from softreg.errors import DataError, warn
from softreg.io.cells import numeric_or_none
from softreg.io.dataset import Dataset

MAX_INTEGER_CLASSES = 50  # whole-number labels with more distinct values than this look continuous


def select_classes(dataset: Dataset, classes: Sequence[object] | None, require_all: bool = True) -> Dataset:
    """Keep only rows whose label is in ``classes`` (compared as text); with
    ``require_all``, refuse a class the data do not have."""
    if classes is None:
        return dataset
    present = {str(label) for label in np.unique(dataset.labels)}
    unknown = [str(label) for label in classes if str(label) not in present]
    if unknown and require_all:
        raise DataError(
            f"{dataset.source}: class(es) {', '.join(map(repr, unknown))} not in the data; "
            f"its classes are: {', '.join(sorted(present))}"
        )
    keep = np.isin(dataset.labels.astype(str), [str(label) for label in classes])
    return dataset.take(keep)


def encode_labels(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Sorted classes and the class index of each row; refuse a single class.

    Returns
    -------
    classes : ndarray of shape (n_classes,)
    y : ndarray of shape (n_samples,), int64 indices into ``classes``
    """
    classes, y = np.unique(dataset.labels, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"{dataset.source}: only one class ({str(classes[0])!r}) in the labels; need at least two")
    return classes, y.astype(np.int64)


def encode_with(classes: np.ndarray, labels: np.ndarray, source: str) -> np.ndarray:
    """Class indices of ``labels`` under a model's ``classes``; refuse labels it does not know."""
    known = {str(label): index for index, label in enumerate(classes)}
    text_labels = labels.astype(str)
    unknown = sorted(set(text_labels) - set(known))
    if unknown:
        raise DataError(
            f"{source}: label(s) {', '.join(repr(str(label)) for label in unknown[:10])} are not classes of the model "
            f"({', '.join(map(str, classes))})"
        )
    return np.array([known[label] for label in text_labels], dtype=np.int64)


def continuous_labels(labels: np.ndarray) -> str | None:
    """What makes ``labels`` (n_samples,) look like a continuous target rather than classes, or
    None when they look like classes: text, booleans, or whole numbers with at most
    `MAX_INTEGER_CLASSES` distinct values."""
    distinct = np.unique(labels)
    values = distinct.astype(np.float64) if distinct.dtype.kind in "iuf" else numeric_or_none(distinct.astype(str))
    if values is None or distinct.dtype.kind == "b":
        return None
    whole = bool(np.all(values == np.round(values)))
    if whole and len(distinct) <= MAX_INTEGER_CLASSES:
        return None
    kind = "whole numbers" if whole else "numbers"
    shown = ", ".join(f"{value:g}" for value in np.sort(values)[:3])
    return f"{len(distinct)} distinct {kind}, such as {shown}"


def check_label_kind(labels: np.ndarray, source: str, label_name: str | None, label_set: bool) -> None:
    """Refuse a default label (the last column) whose ``labels`` (its distinct values suffice) are
    continuous, naming it; an explicit one (``label_set``) trains, with one warning. Called on the
    rows in memory (`softreg.prepare.data`) and on the labels a cache met (`softreg.cache.build`)."""
    continuous = continuous_labels(labels)
    if continuous is None:
        return
    if not label_set:
        raise DataError(
            f"{source}: the last column {label_name!r} holds continuous values ({continuous}); "
            "softreg classifies: set data.label"
        )
    warn(f"{source}: the label {label_name!r} holds continuous values ({continuous}); each distinct value is a class")
