"""``.npz`` archives of ``X`` (n_samples, n_features) and ``y`` (n_samples,), optionally
``feature_names``: read whole, never with pickle."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from softreg.errors import DataError
from softreg.io.dataset import Dataset, check_finite


def load_npz(path: Path) -> Dataset:
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise DataError(f"{path}: is a single .npy array, not an .npz archive of X and y (use np.savez)")
            missing = [key for key in ("X", "y") if key not in archive.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {', '.join(missing)}; an .npz source needs X and y")
            X, y = archive["X"], archive["y"]
            names_array = archive["feature_names"] if "feature_names" in archive.files else None
    except DataError:
        raise
    except (AttributeError, TypeError):  # np.load returned a plain array (an .npy file): no context manager
        raise DataError(f"{path}: is a single .npy array, not an .npz archive of X and y (use np.savez)") from None
    except ValueError as error:
        raise DataError(f"{path}: cannot load without pickle ({error}); store plain numeric arrays") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a readable .npz file ({error.__class__.__name__}: {error})") from None
    if X.ndim != 2 or y.ndim != 1 or len(y) != X.shape[0]:
        raise DataError(f"{path}: expected X of shape (n, d) and y of shape (n,), got {X.shape} and {y.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{path}: X has no {'rows' if X.shape[0] == 0 else 'columns'} (shape {X.shape})")
    if X.dtype.kind not in "biuf":
        raise DataError(f"{path}: X must be numeric, got dtype {X.dtype}")
    if y.dtype.kind not in "biufUS" or y.dtype.names is not None:
        raise DataError(f"{path}: y must hold plain labels (numbers or text), got dtype {y.dtype}")
    X = X.astype(np.float64)
    if names_array is not None and (names_array.ndim != 1 or len(names_array) != X.shape[1]):
        raise DataError(
            f"{path}: feature_names must list one name per column of X ({X.shape[1]}), got shape {names_array.shape}"
        )
    names = None if names_array is None else names_array.tolist()
    named = bool(names)
    names = [str(name) for name in names] if names else [f"x{index}" for index in range(X.shape[1])]
    if np.isinf(X).any():
        check_finite(path, np.where(np.isnan(X), 0.0, X), names)  # NaN marks a missing value; inf is refused
    labels = y.astype(np.int64) if y.dtype.kind in "biu" or (y.dtype.kind == "f" and np.all(y == np.round(y))) else y
    if labels.dtype.kind not in "iU":
        labels = labels.astype(str)
    return Dataset(X=X, labels=labels, feature_names=names, label_name="y", source=str(path), named=named)


def npz_shape(path: Path) -> tuple[int, int] | None:
    """``X``'s shape from its header alone (not the data); None when ``X`` is not 2-D."""
    with zipfile.ZipFile(path) as archive, archive.open("X.npy") as member:
        version = np.lib.format.read_magic(member)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, _ = read_header(member)
    if len(shape) != 2:
        return None
    return int(shape[0]), int(shape[1])
