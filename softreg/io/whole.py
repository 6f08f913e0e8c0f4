"""Sources read whole because they carry their own labels: a builtin set, ``.npz`` and svmlight.

`softreg.io.sources.load_source` and `softreg.io.stream.open_rows` both read them here, so that
the rule for their columns (``data.features``/``data.exclude`` by name or index; no ``data.label``
or ``data.id``) is written once.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from softreg.errors import DataError
from softreg.io.builtin import load_builtin
from softreg.io.dataset import Dataset
from softreg.io.kinds import BUILTIN_PREFIX, check_file
from softreg.io.npz import load_npz
from softreg.io.selection import Selection
from softreg.io.svmlight import load_svmlight

WHOLE_KINDS = ("builtin", "npz", "svmlight")


def load_whole(source: str, kind: str, selection: Selection, index_base: int | None = None) -> Dataset:
    """The `Dataset` of a builtin set, ``.npz`` or svmlight ``source`` (``kind`` one of `WHOLE_KINDS`),
    with ``selection``'s features; a label or id column is refused (these carry their own labels)."""
    if selection.label is not None or selection.id is not None:
        key = "data.label" if selection.label is not None else "data.id"
        raise DataError(f"{source}: {key} applies to delimited text only; this source carries its own labels")
    if kind == "builtin":
        return _select(load_builtin(source[len(BUILTIN_PREFIX):]), selection)
    path = Path(source)
    check_file(source, path)
    if kind == "npz":
        return _select(load_npz(path), selection)
    return _select(load_svmlight(path, index_base), selection)


def _select(dataset: Dataset, selection: Selection) -> Dataset:
    """``data.features``/``data.exclude`` on a numeric source, by name or index."""
    if selection.features is None and not selection.exclude:
        return dataset
    names = dataset.feature_names
    _, _, keep = Selection(label=None, features=selection.features, exclude=selection.exclude).resolve(
        dataset.source, [*names, "\x00label"]
    )
    X = dataset.X
    return replace(dataset, X=X[:, keep] if X is not None else None, feature_names=[names[i] for i in keep])
