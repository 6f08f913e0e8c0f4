"""svmlight/libsvm text, kept as a scipy CSR matrix, never densified."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from softreg.errors import DataError
from softreg.io.dataset import Dataset


def load_svmlight(path: Path, index_base: int | None = None) -> Dataset:
    """svmlight/libsvm text as CSR. Feature indices are 1-based by libsvm's convention and
    0-based as scikit-learn writes them; ``index_base`` None detects it (0 when index 0
    occurs), and a test or evaluation file reuses the training file's base so that
    columns never shift between them."""
    from sklearn.datasets import load_svmlight_file

    try:
        X, y = load_svmlight_file(str(path), dtype=np.float64, zero_based=True)  # indices as written
    except (ValueError, OSError, OverflowError) as error:
        raise DataError(f"{path}: not valid svmlight/libsvm text ({error.__class__.__name__}: {error})") from None
    if X.shape[1] > 2**31 - 1:
        raise DataError(f"{path}: a feature index of {X.shape[1] - 1} is too large (at most {2**31 - 2})")
    if not np.all(np.isfinite(y)):
        raise DataError(f"{path}: line {int(np.flatnonzero(~np.isfinite(y))[0]) + 1}: the label is not a finite number")
    if X.shape[0] == 0:
        raise DataError(f"{path}: file has no rows")
    if not np.all(np.isfinite(X.data)):
        raise DataError(f"{path}: contains NaN or inf feature values")
    X = X.tocsr()
    uses_zero = X.nnz > 0 and X.indices.min() == 0
    if index_base is None:
        index_base = 0 if uses_zero else 1
    if index_base == 1:
        if uses_zero:
            raise DataError(f"{path}: uses feature index 0, but the training data's indices start at 1")
        X = X[:, 1:] if X.shape[1] > 1 else sp.csr_matrix((X.shape[0], 0))
    exact = np.all(y == np.round(y)) and np.all(np.abs(y) < 2**53)  # integers a float holds exactly
    labels = y.astype(np.int64) if exact else y.astype(str)
    names = [f"x{index}" for index in range(X.shape[1])]
    return Dataset(
        X=X,
        labels=labels,
        feature_names=names,
        label_name="label",
        source=str(path),
        named=False,
        index_base=index_base,
    )
