"""Any source read whole into a `Dataset` (`load_source`), and a dataset's columns aligned to a
model's (`align_features`). Which reader a source needs is `softreg.io.kinds`' decision."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import scipy.sparse as sp

from softreg.errors import DataError
from softreg.io import remote
from softreg.io.arrays import load_numbers, load_parquet
from softreg.io.dataset import Dataset, shown_names
from softreg.io.delimited import load_delimited
from softreg.io.delimited_numbers import NotNumeric
from softreg.io.kinds import check_file, default_delimiter, source_kind
from softreg.io.selection import Selection
from softreg.io.whole import WHOLE_KINDS, load_whole
from softreg.kernels import Matrix


def load_source(
    source: str,
    selection: Selection | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
    index_base: int | None = None,
    encoding: str = "utf-8",
    as_numbers: bool = False,
    missing_labels: str = "error",
) -> Dataset:
    """Load any supported source into a `Dataset` (``-``: delimited text on standard input).

    ``selection`` picks the label, id and feature columns: all of it for delimited text;
    numeric sources carry their labels, and take ``features``/``exclude`` by name.

    ``as_numbers``: delimited text whose feature cells are all finite numbers loads as float64
    ``X`` (`softreg.io.delimited_numbers`, many times faster, no text cells kept); other text
    still loads as ``cells``. Leave it False where the raw cells matter (categories named by
    hand may be numbers).

    ``missing_labels``: a row without a label (`softreg.io.cells.missing_labels`) is refused
    naming its line or row (``"error"``), or left out and counted in ``Dataset.unlabelled`` (``"drop"``).
    """
    selection = selection or Selection()
    kind = source_kind(source)
    if kind in WHOLE_KINDS:
        return load_whole(source, kind, selection, index_base, missing_labels)
    path = Path(source)
    if kind == "parquet":
        if not os.path.isdir(path) and not remote.is_url(source):  # a URL's files are checked as they are listed
            check_file(source, path)
        return load_parquet(source, selection, missing_labels)
    if source != "-":
        check_file(source, path)
    if remote.is_url(source):
        return _load_url(source, selection, delimiter or default_delimiter(source), header, encoding, as_numbers,
                         missing_labels)
    delimiter = delimiter or default_delimiter(source)
    if as_numbers and source != "-":
        try:
            return load_numbers(path, selection, delimiter, header, encoding, missing_labels)
        except NotNumeric:
            pass  # read as text cells, whose errors name the line and column
    return load_delimited(path if source != "-" else "-", selection, delimiter, header, encoding, missing_labels)


def _load_url(
    source: str, selection: Selection, delimiter: str | None, header: bool | None, encoding: str, as_numbers: bool,
    missing_labels: str,
) -> Dataset:
    """Delimited text named by URL, read as `load_source` reads a local file."""
    if as_numbers:
        try:
            return load_numbers(source, selection, delimiter, header, encoding, missing_labels)
        except NotNumeric:
            pass
    return load_delimited(source, selection, delimiter, header, encoding, missing_labels)


def align_features(dataset: Dataset, feature_names: Sequence[str], what: str) -> Matrix:
    """``dataset``'s columns in the order of ``feature_names``.

    Named columns (a delimited header) are matched by name, in any order; unnamed ones
    (an .npz without feature_names, svmlight, a headerless file) by position, which
    needs the same count.
    """
    n_features = len(feature_names)
    if dataset.X is None:
        raise DataError(f"{what}: text columns need the model's column encoding, not positional alignment")
    if dataset.feature_names == list(feature_names):
        return dataset.X
    if sp.issparse(dataset.X):
        sparse = cast("sp.csr_matrix", dataset.X)  # issparse does not narrow the type
        if sparse.shape[1] > n_features:
            raise DataError(f"{what}: has {sparse.shape[1]} features, the model expects {n_features}")
        return sp.csr_matrix((sparse.data, sparse.indices, sparse.indptr), shape=(sparse.shape[0], n_features))
    if not dataset.named:
        if dataset.X.shape[1] != n_features:
            raise DataError(
                f"{what}: has {dataset.X.shape[1]} unnamed feature columns, the model expects {n_features}"
            )
        return dataset.X
    position = {name: index for index, name in enumerate(dataset.feature_names)}
    missing = [name for name in feature_names if name not in position]
    if missing:
        raise DataError(f"{what}: missing feature column(s) {shown_names(missing)} that the model needs")
    return dataset.X[:, [position[name] for name in feature_names]]
