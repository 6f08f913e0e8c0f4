"""Data: sources -> a `Dataset`; label encoding; splits; the standardizer; minibatches.

Sources are ``builtin:NAME`` (scikit-learn's bundled sets, no download), delimited
text (``.csv``, ``.tsv``, ...), ``.npz`` with ``X`` and ``y``, or svmlight/libsvm
text (kept as a scipy CSR matrix, never densified). Every error names the file and,
where it applies, the line and column.
"""

import csv
import itertools
import math
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from softreg.config import BUILTIN_PREFIX
from softreg.errors import DataError

DELIMITED_SUFFIXES = {".csv": None, ".tsv": "\t", ".tab": "\t", ".txt": None}
SVMLIGHT_SUFFIXES = {".svm", ".svmlight", ".libsvm", ".svmlite"}
_SVMLIGHT_LINE = re.compile(r"^\s*[-+\w.]+(\s+(qid:\S+|\d+:\S+))+\s*(#.*)?$")


@dataclass
class Dataset:
    """Features and raw labels as loaded from a source.

    X : {ndarray, csr_matrix} of shape (n_samples, n_features), float64, finite
    labels : ndarray of shape (n_samples,), int64 or str
    """

    X: object
    labels: np.ndarray
    feature_names: list
    label_name: str
    source: str
    named: bool = True  # whether feature_names came from the data (else x0, x1, ... or col0, ...)
    index_base: object = None  # svmlight only: whether its feature indices start at 0 or 1

    @property
    def n_samples(self):
        return self.X.shape[0]


# -- loading


def load_source(source, label=None, delimiter=None, header=None, index_base=None):
    """Load any supported source into a `Dataset`.

    ``label`` names the label column of delimited text; other sources carry their labels.
    """
    builtin = source.startswith(BUILTIN_PREFIX)
    suffix = Path(source).suffix.lower()
    if label is not None and (builtin or suffix == ".npz" or suffix in SVMLIGHT_SUFFIXES):
        raise DataError(f"{source}: data.label applies to delimited text only; this source carries its own labels")
    if builtin:
        return _load_builtin(source[len(BUILTIN_PREFIX):])
    path = Path(source)
    if not path.exists():
        raise DataError(f"{source}: data file not found")
    if path.is_dir():
        raise DataError(f"{source}: is a directory, expected a data file")
    if suffix == ".npz":
        return _load_npz(path)
    if suffix in SVMLIGHT_SUFFIXES or (suffix not in DELIMITED_SUFFIXES and _looks_like_svmlight(path)):
        return _load_svmlight(path, index_base)
    return load_delimited(path, label=label, delimiter=delimiter or DELIMITED_SUFFIXES.get(suffix), header=header)


def _load_builtin(name):
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


def _looks_like_svmlight(path):
    with open(path, "rb") as handle:
        head = handle.read(4096).decode("utf-8", errors="replace")
    lines = [line for line in head.splitlines()[:5] if line.strip() and not line.startswith("#")]
    return bool(lines) and all(_SVMLIGHT_LINE.match(line) for line in lines[:-1] or lines)


def sniff_delimiter(first_line):
    """The most frequent of ``, ; TAB |`` in the header line (comma when none occurs)."""
    counts = {candidate: first_line.count(candidate) for candidate in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else ","


def _is_number(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True


CHUNK_ROWS = 65536


def _data_rows(path, handle, delimiter):
    """(cells, line number) of every non-blank row; decoding and quoting errors name the line."""
    reader = csv.reader(handle, delimiter=delimiter)
    try:
        for row in reader:
            if row and any(cell.strip() for cell in row):
                yield row, reader.line_num
    except csv.Error as error:
        raise DataError(f"{path}: line {reader.line_num}: malformed delimited text ({error})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text (after line {reader.line_num}); is it a binary file?") from None


def generated_names(count):
    """Column names of a file without a header: col0, col1, ..."""
    return [f"col{index}" for index in range(count)]


@contextmanager
def delimited_chunks(path, delimiter=None, chunk_rows=CHUNK_ROWS, header=None):
    """Open a delimited file; yield its header and an iterator of row chunks.

    Streams the file (memory bounded by ``chunk_rows``). Handles a UTF-8 BOM, CRLF
    line ends, quoted fields and blank lines. ``header`` None assumes a header row
    unless every cell of the first row is a number; False reads the first row as data.
    Without a header the columns are named ``col0, col1, ...``.

    Yields
    ------
    header : list of str
    chunks : iterator of (rows, line_numbers)
        ``rows`` a list of lists of str, each as long as the header; ``line_numbers``
        the file line of each row.
    """
    try:
        handle = open(path, encoding="utf-8-sig", newline="")
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
    with handle:
        rows = _data_rows(path, handle, delimiter or _sniff_file(path, handle))
        first = next(rows, None)
        if first is None:
            raise DataError(f"{path}: file is empty")
        names = [cell.strip() for cell in first[0]]
        pending = []
        if header is False or (header is None and all(_is_number(cell) for cell in names)):
            names, pending = generated_names(len(names)), [first]
        header = names
        duplicates = sorted({name for name in header if header.count(name) > 1})
        if duplicates:
            raise DataError(f"{path}: duplicate column name(s) {', '.join(map(repr, duplicates))} in the header")
        yield header, _chunks(path, header, itertools.chain(pending, rows), chunk_rows)


def _sniff_file(path, handle):
    try:
        first_line = next((line for line in handle if line.strip()), "")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; is it a binary file?") from None
    handle.seek(0)
    return sniff_delimiter(first_line)


def _chunks(path, header, rows, chunk_rows):
    chunk, lines, total = [], [], 0
    for row, line in rows:
        if len(row) != len(header):
            raise DataError(f"{path}: line {line} has {len(row)} fields, expected {len(header)} (as in the header)")
        chunk.append(row)
        lines.append(line)
        if len(chunk) == chunk_rows:
            total += len(chunk)
            yield chunk, lines
            chunk, lines = [], []
    if chunk:
        yield chunk, lines
    elif total == 0:
        raise DataError(f"{path}: has a header but no data rows")


def read_delimited_rows(path, delimiter=None, header=None):
    """Header, all data rows and their line numbers (see `delimited_chunks`)."""
    rows, line_numbers = [], []
    with delimited_chunks(path, delimiter, header=header) as (header, chunks):
        for chunk, lines in chunks:
            rows.extend(chunk)
            line_numbers.extend(lines)
    return header, rows, line_numbers


def label_index(path, header, label):
    """Column index of the label given by name or 0-based index (default: last column)."""
    if label is None:
        return len(header) - 1
    if isinstance(label, int):
        if -len(header) <= label < len(header):
            return label % len(header)
        raise DataError(f"{path}: label column index {label} is out of range; the file has {len(header)} columns")
    if label in header:
        return header.index(label)
    raise DataError(f"{path}: label column {label!r} not found; columns are: {', '.join(header)}")


def parse_features(path, cells, names, line_numbers):
    """Convert a (n, d) array of strings to finite float64; errors name line and column."""
    try:
        X = cells.astype(np.float64)
    except ValueError:
        for row_index, row in enumerate(cells):
            for column, cell in enumerate(row):
                if not _is_number(cell):
                    what = "an empty cell" if not cell.strip() else f"{str(cell)!r}"
                    raise DataError(
                        f"{path}: line {line_numbers[row_index]}, column {names[column]!r}: "
                        f"{what} is not a number"
                    ) from None
        raise
    check_finite(path, X, names, line_numbers)
    return X


def check_finite(path, X, names, line_numbers=None):
    """Raise a DataError naming the first NaN/inf cell of dense ``X``."""
    bad = ~np.isfinite(X)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        where = f"line {line_numbers[row]}" if line_numbers is not None else f"row {row}"
        raise DataError(
            f"{path}: {where}, column {names[column]!r}: {X[row, column]} is not a finite number "
            "(NaN and inf are not allowed in features)"
        )


def load_delimited(path, label=None, delimiter=None, header=None):
    header, rows, line_numbers = read_delimited_rows(path, delimiter, header)
    target = label_index(path, header, label)
    if len(header) < 2:
        raise DataError(f"{path}: needs at least one feature column besides the label; columns are: {', '.join(header)}")
    cells = np.array(rows, dtype=str)
    label_cells = np.char.strip(cells[:, target])
    blank = np.flatnonzero(label_cells == "")
    if blank.size:
        raise DataError(f"{path}: line {line_numbers[blank[0]]}: empty label in column {header[target]!r}")
    names = header[:target] + header[target + 1:]
    X = parse_features(path, np.delete(cells, target, axis=1), names, line_numbers)
    return Dataset(
        X=X,
        labels=_typed_labels(label_cells),
        feature_names=names,
        label_name=header[target],
        source=str(path),
        named=header != generated_names(len(header)),
    )


def _typed_labels(label_cells):
    """Integer labels when every label is an integer, otherwise strings."""
    try:
        as_int = label_cells.astype(np.int64)
    except (ValueError, OverflowError):  # text, or integers too large for int64: keep them as text
        return label_cells.astype(str)
    return as_int


def _load_npz(path):
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            missing = [key for key in ("X", "y") if key not in archive.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {', '.join(missing)}; an .npz source needs X and y")
            X, y = archive["X"], archive["y"]
            names = archive["feature_names"].tolist() if "feature_names" in archive.files else None
    except DataError:
        raise
    except ValueError as error:
        raise DataError(f"{path}: cannot load without pickle ({error}); store plain numeric arrays") from None
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: not a readable .npz file ({error})") from None
    if X.ndim != 2 or y.ndim != 1 or len(y) != X.shape[0]:
        raise DataError(f"{path}: expected X of shape (n, d) and y of shape (n,), got {X.shape} and {y.shape}")
    if X.shape[0] == 0:
        raise DataError(f"{path}: X has no rows")
    if X.dtype.kind not in "biuf":
        raise DataError(f"{path}: X must be numeric, got dtype {X.dtype}")
    X = X.astype(np.float64)
    named = bool(names)
    names = [str(name) for name in names] if names else [f"x{index}" for index in range(X.shape[1])]
    check_finite(path, X, names)
    labels = y.astype(np.int64) if y.dtype.kind in "biu" or (y.dtype.kind == "f" and np.all(y == np.round(y))) else y
    if labels.dtype.kind not in "iU":
        labels = labels.astype(str)
    return Dataset(X=X, labels=labels, feature_names=names, label_name="y", source=str(path), named=named)


def _load_svmlight(path, index_base=None):
    """svmlight/libsvm text as CSR. Feature indices are 1-based by libsvm's convention and
    0-based as scikit-learn writes them; ``index_base`` None detects it (0 when index 0
    occurs), and a test or evaluation file reuses the training file's base so that
    columns never shift between them."""
    from sklearn.datasets import load_svmlight_file

    try:
        X, y = load_svmlight_file(str(path), dtype=np.float64, zero_based=True)  # indices as written
    except (ValueError, OSError) as error:
        raise DataError(f"{path}: not valid svmlight/libsvm text ({error})") from None
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
    labels = y.astype(np.int64) if np.all(y == np.round(y)) else y.astype(str)
    names = [f"x{index}" for index in range(X.shape[1])]
    return Dataset(
        X=X, labels=labels, feature_names=names, label_name="label", source=str(path), named=False, index_base=index_base
    )


def align_features(dataset, feature_names, what):
    """``dataset``'s columns in the order of ``feature_names``.

    Named columns (a delimited header) are matched by name, in any order; unnamed ones
    (an .npz without feature_names, svmlight, a headerless file) by position, which
    needs the same count.
    """
    n_features = len(feature_names)
    if dataset.feature_names == list(feature_names):
        return dataset.X
    if sp.issparse(dataset.X):
        if dataset.X.shape[1] > n_features:
            raise DataError(f"{what}: has {dataset.X.shape[1]} features, the model expects {n_features}")
        return sp.csr_matrix((dataset.X.data, dataset.X.indices, dataset.X.indptr), shape=(dataset.X.shape[0], n_features))
    if not dataset.named:
        if dataset.X.shape[1] != n_features:
            raise DataError(f"{what}: has {dataset.X.shape[1]} unnamed feature columns, the model expects {n_features}")
        return dataset.X
    position = {name: index for index, name in enumerate(dataset.feature_names)}
    missing = [name for name in feature_names if name not in position]
    if missing:
        raise DataError(f"{what}: missing feature column(s) {shown_names(missing)} that the model needs")
    return dataset.X[:, [position[name] for name in feature_names]]


def shown_names(names, limit=10):
    """``'a', 'b' and 3 more``: a list of names short enough for a one-line message."""
    shown = ", ".join(repr(str(name)) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# -- labels


def select_classes(dataset, classes, require_all=True):
    """Keep only rows whose label is in ``classes`` (compared as text); with
    ``require_all``, refuse a class the data do not have."""
    if classes is None:
        return dataset
    present = {str(label) for label in np.unique(dataset.labels)}
    unknown = [str(label) for label in classes if str(label) not in present]
    if unknown and require_all:
        raise DataError(
            f"{dataset.source}: class(es) {', '.join(map(repr, unknown))} not in the data; "
            f"its classes are: {', '.join(sorted(present))}"
        )
    keep = np.isin(dataset.labels.astype(str), [str(label) for label in classes])
    return Dataset(
        X=dataset.X[keep],
        labels=dataset.labels[keep],
        feature_names=dataset.feature_names,
        label_name=dataset.label_name,
        source=dataset.source,
        named=dataset.named,
        index_base=dataset.index_base,
    )


def encode_labels(dataset):
    """Sorted classes and the class index of each row; refuse a single class.

    Returns
    -------
    classes : ndarray of shape (n_classes,)
    y : ndarray of shape (n_samples,), int64 indices into ``classes``
    """
    classes, y = np.unique(dataset.labels, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"{dataset.source}: only one class ({str(classes[0])!r}) in the labels; need at least two")
    return classes, y.astype(np.int64)


def encode_with(classes, labels, source):
    """Class indices of ``labels`` under a model's ``classes``; refuse labels it does not know."""
    known = {str(label): index for index, label in enumerate(classes)}
    text_labels = labels.astype(str)
    unknown = sorted(set(text_labels) - set(known))
    if unknown:
        raise DataError(
            f"{source}: label(s) {', '.join(repr(str(label)) for label in unknown[:10])} are not classes of the model "
            f"({', '.join(map(str, classes))})"
        )
    return np.array([known[label] for label in text_labels], dtype=np.int64)


# -- splits


def split_counts(n_samples, fraction):
    return math.ceil(round(n_samples * fraction, 9))


def split_indices(n_samples, fraction, y, mode, stratify, rng):
    """Indices of the kept part and the held-out part (``fraction`` of the rows).

    ``ordered`` holds out the last rows; ``random`` draws them with ``rng``
    (stratified by ``y`` when ``stratify``).
    """
    everything = np.arange(n_samples)
    if fraction == 0:
        return everything, everything[:0]
    n_held = split_counts(n_samples, fraction)
    if n_held >= n_samples:
        raise DataError(f"a split fraction of {fraction} leaves no training rows out of {n_samples}")
    if mode == "ordered":
        return everything[: n_samples - n_held], everything[n_samples - n_held:]
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


# -- standardization


def fit_standardizer(X, standardize):
    """Feature mean and scale of the training part (constant columns get scale 1).

    Sparse ``X`` is only scaled (mean 0), so that it stays sparse.

    Returns
    -------
    mean : ndarray of shape (n_features,)
    scale : ndarray of shape (n_features,)
    """
    n_features = X.shape[1]
    if not standardize:
        return np.zeros(n_features), np.ones(n_features)
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler(with_mean=not sp.issparse(X)).fit(X)
    mean = np.zeros(n_features) if scaler.mean_ is None or sp.issparse(X) else scaler.mean_
    return np.asarray(mean, dtype=np.float64), np.asarray(scaler.scale_, dtype=np.float64)


def standardize(X, mean, scale, dtype=np.float64):
    """``(X - mean) / scale`` in ``dtype`` (sparse X: ``X / scale``, staying CSR)."""
    if sp.issparse(X):
        return (sp.csr_matrix(X) @ sp.diags(1.0 / scale)).astype(dtype).tocsr()
    out = np.subtract(X, mean, dtype=dtype)
    out /= scale.astype(dtype)
    return out


# -- minibatches


def iter_minibatches(X, y, batch_size, rng):
    """One epoch of minibatches in a random order drawn from ``rng``.

    Dense batches are gathered by index into one reused buffer, so a consumer must
    finish with a batch before asking for the next.

    Yields
    ------
    X_batch : {ndarray, csr_matrix} of shape (batch, n_features)
    y_batch : ndarray of shape (batch,)
    """
    n_samples = X.shape[0]
    order = rng.permutation(n_samples)
    dense = isinstance(X, np.ndarray)
    buffer = np.empty((min(batch_size, n_samples), X.shape[1]), dtype=X.dtype) if dense else None
    for start in range(0, n_samples, batch_size):
        index = order[start:start + batch_size]
        if dense:
            X_batch = buffer[: len(index)]
            # the indices come from a permutation, so no bounds check is needed; with the
            # default mode="raise" numpy gathers into a temporary first and copies it over
            np.take(X, index, axis=0, out=X_batch, mode="clip")
        else:
            X_batch = X[index]
        yield X_batch, y[index]


# -- from a config to standardized parts


@dataclass
class Part:
    """One split: standardized ``X`` (n, d) in the training dtype and class indices ``y`` (n,)."""

    X: object
    y: np.ndarray

    @property
    def n_samples(self):
        return self.X.shape[0]


@dataclass
class Prepared:
    """Everything training needs: the three parts and what travels with the model."""

    train: Part
    val: object  # Part or None
    test: object  # Part or None
    test_raw: object  # the test rows' unstandardized X, saved with the run
    classes: np.ndarray
    feature_names: list
    label_name: str
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    source: str
    index_base: object = None  # svmlight sources: the training file's feature index base


def available_memory():
    """Bytes of memory available without swapping (Linux MemAvailable, which counts
    reclaimable cache), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(shape, dtype, source):
    """Refuse before allocating when the standardized copy of the data cannot fit."""
    needed = shape[0] * shape[1] * dtype.itemsize
    available = available_memory()
    if available is not None and needed > available:
        hint = " Set model.dtype: float32 to halve it." if dtype == np.float64 else ""
        raise DataError(
            f"{source}: the standardized data need {needed / 2**30:.1f} GiB as {dtype.name} "
            f"({shape[0]} x {shape[1]}), but only {available / 2**30:.1f} GiB of memory are free.{hint}"
        )


def generators(seed, count=3):
    """Independent generators (split, batch order, spare) spawned from one seed."""
    return [np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(count)]


def prepare(data_config, dtype, split_rng):
    """Load, select classes, encode labels, split and standardize, as ``data_config`` says."""
    dataset = select_classes(
        load_source(data_config.source, data_config.label, data_config.delimiter, data_config.header), data_config.classes
    )
    classes, y = encode_labels(dataset)
    X = dataset.X
    if isinstance(data_config.test, str):
        test_set = select_classes(
            load_source(data_config.test, data_config.label, data_config.delimiter, data_config.header, dataset.index_base),
            data_config.classes,
            require_all=False,  # a test file may lack a class; its labels outside the model are refused below
        )
        X_test = align_features(test_set, dataset.feature_names, data_config.test)
        y_test = encode_with(classes, test_set.labels, data_config.test)
        rest = np.arange(dataset.n_samples)
    else:
        rest, test_index = split_indices(
            dataset.n_samples, data_config.test, y, data_config.split, data_config.stratify, split_rng
        )
        X_test, y_test = X[test_index], y[test_index]
    if not sp.issparse(X):
        check_memory(X.shape, np.dtype(dtype), dataset.source)
    kept, val_index = split_indices(len(rest), data_config.val, y[rest], data_config.split, data_config.stratify, split_rng)
    train_index, val_index = rest[kept], rest[val_index]
    X_train = X[train_index]  # gathered once: it can be most of the data
    mean, scale = fit_standardizer(X_train, data_config.standardize)

    def part(rows_X, rows_y):
        return Part(standardize(rows_X, mean, scale, dtype), rows_y) if rows_X.shape[0] else None

    return Prepared(
        train=part(X_train, y[train_index]),
        val=part(X[val_index], y[val_index]),
        test=part(X_test, y_test),
        test_raw=X_test,
        classes=classes,
        feature_names=dataset.feature_names,
        label_name=dataset.label_name,
        feature_mean=mean,
        feature_scale=scale,
        source=dataset.source,
        index_base=dataset.index_base,
    )
