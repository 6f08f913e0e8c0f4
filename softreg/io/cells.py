"""What a cell of a table is, as every reader and the column encoding see it: a number, or missing."""

from __future__ import annotations

import numpy as np

MISSING_TOKENS = ("", "na", "nan", "n/a", "null", "none", "?")

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
