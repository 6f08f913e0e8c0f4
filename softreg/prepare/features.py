"""The feature columns of a data set: which are categorical, rows with missing cells
dropped, and raw cells (or numbers) turned into the numeric features the model reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from softreg.errors import DataError, warn
from softreg.io.cells import is_number, numeric_or_none
from softreg.io.dataset import Dataset, shown_names
from softreg.kernels import Matrix
from softreg.prepare.columns import Columns, fit_columns

if TYPE_CHECKING:

    from softreg.config import DataConfig


def categorical_columns(dataset: Dataset, categorical: str | Sequence[str | int]) -> list[str]:
    """Names of the columns to one-hot encode: ``auto`` takes the text columns (none of whose
    cells is a number), ``none`` none, a list those named (or 0-based feature indices)."""
    if dataset.cells is None or categorical == "none":
        if isinstance(categorical, list) and categorical and dataset.cells is None:
            raise DataError(f"{dataset.source}: data.categorical applies to delimited text; this source is numeric")
        return []
    return categorical_names(dataset.feature_names, dataset.cells, categorical, dataset.source)

def categorical_names(names: Sequence[str], cells: np.ndarray, categorical: str | Sequence[str | int],
                      source: str) -> list[str]:
    """`categorical_columns` of feature columns ``names`` whose cells (n, len(names)) are text."""
    if categorical == "none":
        return []
    if categorical == "auto":
        return [name for index, name in enumerate(names) if is_text_column(cells[:, index])]
    chosen = []
    for entry in categorical:
        if isinstance(entry, int) and not isinstance(entry, bool):
            if not 0 <= entry < len(names):
                raise DataError(f"{source}: data.categorical index {entry} is not a feature column index")
            chosen.append(names[entry])
        elif entry in names:
            chosen.append(str(entry))
        else:
            raise DataError(
                f"{source}: data.categorical names {entry!r}, not a feature column; "
                f"they are: {shown_names(list(names), 20)}"
            )
    return chosen

def is_text_column(column: np.ndarray) -> bool:
    """Whether no non-missing cell of a column of text cells is a number (and some cell is present)."""
    from softreg.io.cells import missing_mask

    present = column[~missing_mask(column)]
    if present.size == 0:
        return False
    sample = present[: 1000]
    return numeric_or_none(sample) is None and not any(is_number(cell) for cell in sample.tolist())

MIN_IDENTIFIER_ROWS = 20  # a text column distinct in every row is an identifier from this many rows on


def identifier_columns(dataset: Dataset) -> list[int]:
    """Indices of the feature columns of text cells whose values are present and distinct in
    every row (at least `MIN_IDENTIFIER_ROWS` of them): identifiers, which ``categorical: auto``
    never one-hot encodes."""
    from softreg.io.cells import missing_mask

    if dataset.cells is None or dataset.n_samples < MIN_IDENTIFIER_ROWS:
        return []
    found = []
    for index in range(dataset.cells.shape[1]):
        column = np.char.strip(dataset.cells[:, index])
        if missing_mask(column).any() or len(np.unique(column)) < len(column):
            continue
        if is_text_column(column):
            found.append(index)
    return found


def identifiers_out(dataset: Dataset, given_id: bool) -> Dataset:
    """``dataset`` with an identifier column (`identifier_columns`) made its id when it has none
    (one line says so); refused, with a hint, when it already has one."""
    found = identifier_columns(dataset)
    if not found:
        return dataset
    assert dataset.cells is not None, "identifiers are text cells"
    if given_id or dataset.ids is not None or len(found) > 1:
        name = dataset.feature_names[found[-1]]
        raise DataError(
            f"{dataset.source}: column {name!r} holds a different text in every row, an identifier that one-hot "
            "encoding cannot learn from; leave it out with data.exclude (or name it in data.categorical to "
            "encode it all the same)"
        )
    index = found[0]
    name = dataset.feature_names[index]
    warn(f"{dataset.source}: column {name!r} holds a different text in every row: it is the id (copied into "
         "predict's output), not a feature; set data.id to choose another")
    keep = [column for column in range(dataset.cells.shape[1]) if column != index]
    return replace(dataset, cells=dataset.cells[:, keep], feature_names=[dataset.feature_names[k] for k in keep],
                   ids=dataset.cells[:, index], id_name=name)


def drop_missing(dataset: Dataset) -> Dataset:
    """The rows of ``dataset`` without a missing feature cell (``data.missing: drop``)."""
    from softreg.io.cells import missing_mask

    if dataset.cells is not None:
        missing = missing_mask(dataset.cells).any(axis=1)
    elif dataset.X is not None and isinstance(dataset.X, np.ndarray):
        missing = np.isnan(dataset.X).any(axis=1)
    else:
        return dataset
    if missing.all():
        raise DataError(f"{dataset.source}: every row has a missing value; data.missing: drop leaves nothing")
    return dataset.take(np.asarray(~missing)) if missing.any() else dataset

def refuse_missing(dataset: Dataset) -> None:
    """Refuse a missing value (NaN) in numeric features (``data.missing: error``), naming its row
    of the source: checked before any split, whose parts count their own rows."""
    if dataset.cells is None and isinstance(dataset.X, np.ndarray) and np.isnan(dataset.X).any():
        Columns.numeric(dataset.feature_names).encode(dataset.X, dataset.source)  # raises, naming the cell

def features_of(dataset: Dataset, columns: Columns | None) -> tuple[Matrix, dict[str, int]]:
    """The numeric features of ``dataset`` under ``columns`` (None: numeric data as they are),
    and the unseen categories met per column."""
    if columns is None or dataset.X is not None and (sp.issparse(dataset.X) or columns.plain):
        if dataset.X is None:
            raise ValueError("text cells need their columns")
        if isinstance(dataset.X, np.ndarray) and not np.isfinite(dataset.X).all():
            Columns.numeric(dataset.feature_names).encode(dataset.X, dataset.source)  # raises, naming the cell
        return dataset.X, {}
    lines = None if dataset.line_numbers is None else dataset.line_numbers.tolist()
    encoded = columns.encode(np.asarray(dataset.table), dataset.source, lines)
    return encoded.X, encoded.unknown

def as_numeric(dataset: Dataset, missing: str = "error", categorical: str | Sequence[str | int] = "auto") -> Dataset:
    """``dataset`` with numeric ``X``: text cells encoded by columns learnt on all of its rows
    (as training learns them on its training part); numeric data as they are."""
    if dataset.cells is None:
        return dataset
    columns = fit_columns(dataset.cells, dataset.feature_names, categorical_columns(dataset, categorical), missing)
    X, _ = features_of(dataset, columns)
    return replace(dataset, X=X, cells=None, feature_names=columns.feature_names)

def fit_columns_for(data_config: DataConfig, train_set: Dataset) -> Columns | None:
    """The feature columns learnt on the training rows; None for numeric data used as they are
    (delimited text read as numbers gets its columns all the same, as if read as cells)."""
    categorical = categorical_columns(train_set, data_config.categorical)
    if train_set.cells is None:
        delimited = train_set.file_columns is not None
        if not delimited and (data_config.missing in ("error", "drop") or sp.issparse(train_set.X)):
            return None
        return fit_columns(np.asarray(train_set.X), train_set.feature_names, [], data_config.missing)
    return fit_columns(train_set.cells, train_set.feature_names, categorical, data_config.missing)
