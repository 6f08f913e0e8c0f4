"""``split.npz``: which rows of the source each part of a run holds, written and read back checked."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from softreg.errors import RunDirError
from softreg.rundir.files import write_npz
from softreg.rundir.names import SPLIT

SPLIT_PARTS = ("train", "val", "test")


def save_split(directory: Path, split: Mapping[str, np.ndarray]) -> None:
    """``split.npz``: per part (`SPLIT_PARTS`) the 0-based data-row indices (int64) of its rows in the
    source, in the order the run holds them (test: the rows of test.npz); an empty array for a
    part without rows. A separate ``data.test`` file's test indices are into that file."""
    write_npz(directory / SPLIT, **{part: np.asarray(split[part], dtype=np.int64) for part in SPLIT_PARTS})


def load_split(directory: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The arrays `save_split` wrote, each of shape (n_rows_of_part,) int64 >= 0; a RunDirError otherwise."""
    path = Path(directory) / SPLIT
    if not path.exists():
        raise RunDirError(f"{path}: missing; this run predates split.npz or was trained from a cache")
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            split = {part: archive[part] for part in SPLIT_PARTS}
    except (ValueError, TypeError, OSError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise RunDirError(f"{path}: corrupted or truncated ({error.__class__.__name__}: {error})") from None
    for part, rows in split.items():
        if rows.ndim != 1 or rows.dtype.kind not in "iu" or (rows.size and rows.min() < 0):
            raise RunDirError(f"{path}: {part} must be non-negative row indices, got {rows.dtype} {rows.shape}")
    return split
