"""Sources read whole because they carry their own labels: a builtin set, ``.npz`` and svmlight.

`softreg.io.sources.load_source` and `softreg.io.stream.open_rows` both read them here, so that
the rule for their columns (``data.features``/``data.exclude`` by name or index; no ``data.label``
or ``data.id``) is written once.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from softreg.errors import DataError
from softreg.io.builtin import load_builtin
from softreg.io.cells import missing_label_error
from softreg.io.cells import missing_labels as missing_labels_of
from softreg.io.dataset import Dataset
from softreg.io.delimited import typed_labels
from softreg.io.kinds import BUILTIN_PREFIX, check_file
from softreg.io.npz import load_npz
from softreg.io.selection import Selection
from softreg.io.svmlight import load_svmlight

WHOLE_KINDS = ("builtin", "npz", "svmlight")


def load_whole(
    source: str, kind: str, selection: Selection, index_base: int | None = None, missing_labels: str = "error"
) -> Dataset:
    """The `Dataset` of a builtin set, ``.npz`` or svmlight ``source`` (``kind`` one of `WHOLE_KINDS`),
    with ``selection``'s features; a label or id column is refused (these carry their own labels).
    Rows without a label are refused or left out by ``missing_labels`` (`_labelled`)."""
    if selection.label is not None or selection.id is not None:
        key = "data.label" if selection.label is not None else "data.id"
        raise DataError(f"{source}: {key} applies to delimited text only; this source carries its own labels")
    if kind == "builtin":
        return _labelled(_select(load_builtin(source[len(BUILTIN_PREFIX):]), selection), missing_labels)
    path = Path(source)
    check_file(source, path)
    if kind == "npz":
        return _labelled(_select(load_npz(path), selection), missing_labels)
    return _labelled(_select(load_svmlight(path, index_base), selection), missing_labels)


def _select(dataset: Dataset, selection: Selection) -> Dataset:
    """``data.features``/``data.exclude`` on a numeric source, by name or index."""
    if selection.features is None and not selection.exclude:
        return dataset
    names = dataset.feature_names
    chosen = Selection(label=None, features=selection.features, exclude=selection.exclude, row_names=False)
    _, _, keep = chosen.resolve(dataset.source, [*names, "\x00label"])
    X = dataset.X
    return replace(dataset, X=X[:, keep] if X is not None else None, feature_names=[names[i] for i in keep])


def _labelled(dataset: Dataset, missing_labels: str) -> Dataset:
    """A whole numeric source less its rows without a label (NaN, or a missing token in text
    labels), counted; the first refused, naming its row, under ``missing_labels="error"``."""
    blank = missing_labels_of(dataset.labels)
    if not blank.any():
        return dataset
    if missing_labels == "error":
        row = int(np.flatnonzero(blank)[0])
        raise missing_label_error(dataset.source, f"row {row + 1}", dataset.labels[row], dataset.label_name)
    kept = dataset.take(~blank)
    if kept.labels.dtype.kind in "US":
        kept = replace(kept, labels=typed_labels(np.char.strip(kept.labels.astype(str))))
    return replace(kept, unlabelled=int(blank.sum()))
