"""The registry of data sources: which names and suffixes mean which reader.

Config validation, training, ``evaluate --data`` and ``predict`` all go through it:

- ``builtin:NAME``: scikit-learn's bundled sets (no download), NAME in `BUILTINS`;
- ``.npz`` with ``X`` and ``y`` (and optionally ``feature_names``);
- svmlight/libsvm text (a `SVMLIGHT_SUFFIXES` suffix, or content that looks like it),
  kept as a scipy CSR matrix, never densified;
- Parquet: a ``.parquet`` (or ``.pq``) file, or a folder of ``*.parquet`` files
  (`softreg.io.parquet`, needs pyarrow: the ``softreg[parquet]`` extra);
- anything else: delimited text (`softreg.io.delimited`; ``.tsv``/``.tab`` default to tabs).
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import cast

import numpy as np
import scipy.sparse as sp

from softreg.errors import DataError
from softreg.io.dataset import Dataset, check_finite, shown_names
from softreg.io.delimited import Selection, load_delimited
from softreg.io.delimited_numbers import NotNumeric, load_numbers
from softreg.io.parquet import is_parquet, load_parquet
from softreg.kernels import Matrix

BUILTIN_PREFIX = "builtin:"
BUILTINS = ("iris", "digits", "wine", "breast_cancer")
DELIMITED_SUFFIXES = {".csv": None, ".tsv": "\t", ".tab": "\t", ".txt": None}

SVMLIGHT_SUFFIXES = {".svm", ".svmlight", ".libsvm", ".svmlite"}

_SVMLIGHT_LINE = re.compile(r"^\s*[-+\w.]+(\s+(qid:\S+|\d+:\S+))+\s*(#.*)?$")


def source_kind(source: str) -> str:
    """``builtin``, ``npz``, ``svmlight``, ``parquet`` or ``delimited``: which reader a source goes
    to (svmlight by suffix here; `load_source` also sniffs the content of other suffixes; a
    folder is Parquet)."""
    if source.startswith(BUILTIN_PREFIX):
        return "builtin"
    if source != "-" and is_parquet(source):
        return "parquet"
    suffix = Path(source).suffix.lower()
    if suffix == ".npz":
        return "npz"
    return "svmlight" if suffix in SVMLIGHT_SUFFIXES else "delimited"


def load_source(
    source: str,
    selection: Selection | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
    index_base: int | None = None,
    encoding: str = "utf-8",
    as_numbers: bool = False,
) -> Dataset:
    """Load any supported source into a `Dataset` (``-``: delimited text on standard input).

    ``selection`` picks the label, id and feature columns: all of it for delimited text;
    numeric sources carry their labels, and take ``features``/``exclude`` by name.

    ``as_numbers``: delimited text whose feature cells are all finite numbers loads as float64
    ``X`` (`softreg.io.delimited_numbers`, many times faster, no text cells kept); other text
    still loads as ``cells``. Leave it False where the raw cells matter (categories named by
    hand may be numbers).
    """
    selection = selection or Selection()
    kind = source_kind(source)
    if kind not in ("delimited", "parquet") and (selection.label is not None or selection.id is not None):
        key = "data.label" if selection.label is not None else "data.id"
        raise DataError(f"{source}: {key} applies to delimited text only; this source carries its own labels")
    if kind == "builtin":
        return _select(_load_builtin(source[len(BUILTIN_PREFIX):]), selection)
    path = Path(source)
    if kind == "parquet":
        if not os.path.isdir(path):
            check_file(source, path)
        return load_parquet(source, selection)
    if source != "-":
        check_file(source, path)
    if kind == "npz":
        return _select(_load_npz(path), selection)
    suffix = path.suffix.lower()
    if kind == "svmlight" or (source != "-" and suffix not in DELIMITED_SUFFIXES and looks_like_svmlight(path)):
        return _select(_load_svmlight(path, index_base), selection)
    delimiter = delimiter or DELIMITED_SUFFIXES.get(suffix)
    if as_numbers and source != "-":
        try:
            return load_numbers(path, selection, delimiter, header, encoding)
        except NotNumeric:
            pass  # read as text cells, whose errors name the line and column
    return load_delimited(path if source != "-" else "-", selection, delimiter, header, encoding)


def check_file(source: str, path: Path) -> None:
    """A readable regular file, or a DataError saying what it is instead."""
    try:
        path.stat()
    except FileNotFoundError:
        pass
    except OSError as error:
        raise DataError(f"{source}: cannot be read ({error.strerror or error})") from None
    if not path.exists():
        raise DataError(f"{source}: data file not found")
    if path.is_dir():
        raise DataError(f"{source}: is a directory, expected a data file")
    if not path.is_file():
        raise DataError(f"{source}: is not a regular file (a pipe or device?); give a file, or - for standard input")


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


def _load_builtin(name: str) -> Dataset:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    target_names = np.asarray(bunch.target_names)
    labels = target_names[bunch.target] if target_names.dtype.kind == "U" else bunch.target.astype(np.int64)
    return Dataset(
        X=np.asarray(bunch.data, dtype=np.float64),
        labels=labels,
        feature_names=[str(name) for name in bunch.feature_names],
        label_name="target",
        source=f"{BUILTIN_PREFIX}{name}",
    )


def looks_like_svmlight(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(4096).decode("utf-8", errors="replace")
    lines = [line for line in head.splitlines()[:5] if line.strip() and not line.startswith("#")]
    return bool(lines) and all(_SVMLIGHT_LINE.match(line) for line in lines[:-1] or lines)


def _load_npz(path: Path) -> Dataset:
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


def _load_svmlight(path: Path, index_base: int | None = None) -> Dataset:
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
