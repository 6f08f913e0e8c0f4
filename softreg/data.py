"""From a config's ``data`` section to standardized parts: load (through the registry of
`softreg.sources`), select classes, encode labels, split, standardize.

Every error names the file and, where it applies, the line and column.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from softreg.dataset import Dataset
from softreg.errors import DataError
from softreg.kernels import Matrix
from softreg.model import standardize
from softreg.sources import align_features, load_source
from softreg.train import ArrayData

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

    from softreg.config import DataConfig

# -- labels


def select_classes(dataset: Dataset, classes: Sequence[object] | None, require_all: bool = True) -> Dataset:
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


def encode_labels(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
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


def encode_with(classes: np.ndarray, labels: np.ndarray, source: str) -> np.ndarray:
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


def split_counts(n_samples: int, fraction: float) -> int:
    return math.ceil(round(n_samples * fraction, 9))


def split_indices(
    n_samples: int, fraction: float, y: np.ndarray, mode: str, stratify: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
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


def fit_standardizer(X: Matrix, standardize: bool) -> tuple[np.ndarray, np.ndarray]:
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

# -- from a config to standardized parts


@dataclass
class Prepared:
    """Everything training needs: the three parts and what travels with the model."""

    train: ArrayData
    val: ArrayData | None
    test: ArrayData | None
    test_raw: Matrix  # the test rows' unstandardized X, saved with the run
    classes: np.ndarray
    feature_names: list[str]
    label_name: str
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    source: str
    index_base: int | None = None  # svmlight sources: the training file's feature index base


def available_memory() -> int | None:
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


def check_memory(shape: tuple[int, ...], dtype: np.dtype, source: str) -> None:
    """Refuse before allocating when the standardized copy of the data cannot fit."""
    needed = shape[0] * shape[1] * dtype.itemsize
    available = available_memory()
    if available is not None and needed > available:
        hint = " Set model.dtype: float32 to halve it." if dtype == np.float64 else ""
        raise DataError(
            f"{source}: the standardized data need {needed / 2**30:.1f} GiB as {dtype.name} "
            f"({shape[0]} x {shape[1]}), but only {available / 2**30:.1f} GiB of memory are free.{hint}"
        )


STREAMS = ("split", "batches", "sampling")  # their order fixes which child seed each gets


@dataclass(frozen=True)
class RandomStreams:
    """One generator per purpose, all spawned from one seed: the split of the rows, the
    order of the minibatches, and the rows sampled for comparisons. Drawing more from one
    never changes another."""

    split: np.random.Generator
    batches: np.random.Generator
    sampling: np.random.Generator


def random_streams(seed: int) -> RandomStreams:
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return RandomStreams(**{name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)})


def prepare(data_config: DataConfig, dtype: DTypeLike, split_rng: np.random.Generator) -> Prepared:
    """Load, select classes, encode labels, split and standardize, as ``data_config`` says."""
    source, label, delimiter, header = data_config.source, data_config.label, data_config.delimiter, data_config.header
    dataset = select_classes(load_source(source, label, delimiter, header), data_config.classes)
    classes, y = encode_labels(dataset)
    X = dataset.X
    if isinstance(data_config.test, str):
        test_set = select_classes(
            load_source(data_config.test, label, delimiter, header, dataset.index_base),
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
    kept, val_index = split_indices(
        len(rest), data_config.val, y[rest], data_config.split, data_config.stratify, split_rng
    )
    train_index, val_index = rest[kept], rest[val_index]
    X_train = X[train_index]  # gathered once: it can be most of the data
    mean, scale = fit_standardizer(X_train, data_config.standardize)

    def part(rows_X: Matrix, rows_y: np.ndarray) -> ArrayData:
        return ArrayData(standardize(rows_X, mean, scale, dtype), rows_y)

    return Prepared(
        train=part(X_train, y[train_index]),  # never empty: split_indices always leaves training rows
        val=part(X[val_index], y[val_index]) if len(val_index) else None,
        test=part(X_test, y_test) if X_test.shape[0] else None,
        test_raw=X_test,
        classes=classes,
        feature_names=dataset.feature_names,
        label_name=dataset.label_name,
        feature_mean=mean,
        feature_scale=scale,
        source=dataset.source,
        index_base=dataset.index_base,
    )
