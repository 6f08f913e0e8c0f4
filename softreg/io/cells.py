"""What a cell of a table is, as every reader and the column encoding see it: a number, or missing."""

from __future__ import annotations

import numpy as np

from softreg.errors import DataError

MISSING_TOKENS = ("", "na", "nan", "n/a", "null", "none", "?")
LABEL_POLICIES = ("error", "drop")  # what a reader does with a row without a label

def is_number(cell: str) -> bool:
    """Whether ``float`` reads the text (``nan`` and ``inf`` included)."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


def missing_mask(cells: np.ndarray) -> np.ndarray:
    """Boolean mask of the missing cells of a string array (any shape)."""
    return np.isin(np.char.lower(np.char.strip(cells.astype(str))), MISSING_TOKENS)


def numeric_or_none(cells: np.ndarray) -> np.ndarray | None:
    """float64 of a string array whose non-missing cells are all numbers (missing: NaN), else None."""
    filled = np.where(missing_mask(cells), "nan", cells)
    try:
        return filled.astype(np.float64)
    except ValueError:
        return None


def missing_labels(labels: np.ndarray) -> np.ndarray:
    """Boolean mask of shape (n_samples,): the labels that are missing (an empty cell, a missing
    token, NaN), which are never a class."""
    if labels.dtype.kind == "f":
        return np.isnan(labels)
    if labels.dtype.kind in "USO":
        return missing_mask(labels)
    return np.zeros(labels.shape, dtype=bool)


def missing_label_error(where: str, place: str, cell: object, column: str) -> DataError:
    """The error for a missing label under ``data.missing: error``, naming ``place`` (a line or row)."""
    text = str(cell).strip()
    what = "empty label" if not text else f"missing label {text!r}"
    return DataError(f"{where}: {place}: {what} in column {column!r}")


def label_policy(missing: str) -> str:
    """What the readers do with a row without a label under ``data.missing``: ``error`` refuses
    it; ``drop`` and the imputations leave it out (a label cannot be imputed)."""
    return "error" if missing == "error" else "drop"


def unlabelled_note(source: str, count: int) -> str:
    """The one line that counts the rows left out for a missing label."""
    rows = "1 row without a label was" if count == 1 else f"{count} rows without a label were"
    return f"{source}: {rows} left out"
