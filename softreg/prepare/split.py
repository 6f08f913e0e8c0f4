"""The held-out parts: which rows a split keeps and which it holds out (ordered, or drawn at
random, stratified by class)."""

from __future__ import annotations

import math

import numpy as np

from softreg.errors import DataError
from softreg.io.dataset import shown_names


def split_counts(n_samples: int, fraction: float) -> int:
    return math.ceil(round(n_samples * fraction, 9))


def split_indices(
    n_samples: int,
    fraction: float,
    y: np.ndarray,
    mode: str,
    stratify: bool,
    rng: np.random.Generator,
    classes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the kept part and the held-out part (``fraction`` of the rows).

    ``ordered`` holds out the last rows; ``random`` draws them with ``rng``
    (stratified by ``y`` when ``stratify``; ``classes`` names the class indices in errors).
    """
    everything = np.arange(n_samples)
    if fraction == 0:
        return everything, everything[:0]
    n_held = split_counts(n_samples, fraction)
    if n_held >= n_samples:
        raise DataError(f"a split fraction of {fraction} leaves no training rows out of {n_samples}")
    if mode == "ordered":
        return everything[: n_samples - n_held], everything[n_samples - n_held:]
    if stratify:
        _check_stratifiable(y, n_samples, n_held, classes)
    from sklearn.model_selection import train_test_split

    try:
        kept, held = train_test_split(
            everything,
            test_size=n_held,
            random_state=int(rng.integers(2**31 - 1)),
            stratify=y if stratify else None,
        )
    except ValueError as error:
        raise DataError(f"cannot split {n_samples} rows stratified ({error}); set data.stratify: false") from None
    return np.sort(kept), np.sort(held)


def _check_stratifiable(y: np.ndarray, n_samples: int, n_held: int, classes: np.ndarray | None) -> None:
    """Refuse, naming the classes, a stratified split that scikit-learn cannot make."""
    present, counts = np.unique(y, return_counts=True)
    names = present if classes is None else np.asarray(classes)[present]
    single = [str(name) for name, count in zip(names, counts, strict=True) if count < 2]
    if single:
        raise DataError(
            f"each class needs at least 2 rows for a stratified split; classes with 1 row: {shown_names(single)}; "
            "set data.stratify: false"
        )
    if n_held < len(present) or n_samples - n_held < len(present):
        raise DataError(
            f"a stratified split of {n_samples} rows holds out {n_held}, but each part needs a row of each of the "
            f"{len(present)} classes; set data.stratify: false or change the fraction"
        )
