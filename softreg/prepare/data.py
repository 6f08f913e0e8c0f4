"""From a config's ``data`` section to standardized parts: load (through the registry of
`softreg.io.sources`), select classes, encode labels, split, standardize.

Every error names the file and, where it applies, the line and column.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from softreg.errors import DataError, warn
from softreg.io.cells import label_policy, unlabelled_note
from softreg.io.dataset import Dataset, shown_names
from softreg.io.kinds import source_kind
from softreg.io.selection import Selection
from softreg.io.sources import align_features, load_source
from softreg.kernels import Matrix
from softreg.model import standardize
from softreg.prepare.columns import Columns
from softreg.prepare.features import drop_missing, features_of, fit_columns_for, identifiers_out, refuse_missing
from softreg.prepare.labels import check_label_kind, encode_labels, encode_with, select_classes
from softreg.prepare.scaling import feature_scaling, unscaled_indicators
from softreg.prepare.split import split_indices
from softreg.train import ArrayData

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

    from softreg.config import DataConfig

FALLBACK_AVAILABLE = 2**30  # bytes of memory assumed available where the system does not say

# -- standardization


def fit_standardizer(
    X: Matrix, standardize: bool, center_sparse: bool = True, sample_weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Feature mean and scale of the training part (constant columns get scale 1), weighted by
    ``sample_weight`` when given (a row of weight 2 counts as two rows, as in StandardScaler).

    Sparse ``X`` stays sparse: it is stored scaled, and its mean (unless not
    ``center_sparse``) is subtracted implicitly by the training loop and the model.

    Returns
    -------
    mean : ndarray of shape (n_features,)
    scale : ndarray of shape (n_features,)
    """
    n_features = X.shape[1]
    if not standardize:
        return np.zeros(n_features), np.ones(n_features)
    from sklearn.preprocessing import StandardScaler

    with np.errstate(over="ignore", invalid="ignore"):
        scaler = StandardScaler(with_mean=not sp.issparse(X)).fit(X, sample_weight=sample_weight)
    if not (np.all(np.isfinite(scaler.scale_)) and (scaler.mean_ is None or np.all(np.isfinite(scaler.mean_)))):
        bad = int(np.flatnonzero(~np.isfinite(scaler.scale_) | ~np.isfinite(scaler.mean_ if scaler.mean_ is not None
                                                                              else scaler.scale_))[0])
        raise DataError(
            f"feature {bad} has values too large to standardize (its variance overflows a float); "
            "rescale it, or set data.standardize: false"
        )
    keep_mean = scaler.mean_ is not None and (center_sparse or not sp.issparse(X))
    mean = np.asarray(scaler.mean_, dtype=np.float64) if keep_mean else np.zeros(n_features)
    return mean, np.asarray(scaler.scale_, dtype=np.float64)


# -- from a config to standardized parts


@dataclass
class Prepared:
    """Everything training needs: the three parts and what travels with the model."""

    train: ArrayData
    val: ArrayData | None
    test: ArrayData | None
    test_raw: Matrix  # the test rows' unstandardized features, saved with the run
    classes: np.ndarray
    feature_names: list[str]
    label_name: str
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    source: str
    index_base: int | None = None  # svmlight sources: the training file's feature index base
    columns: Columns | None = None  # how raw input columns become the features (saved with the model)
    header: bool | None = None  # whether the delimited training file had a header row
    id_name: str | None = None
    file_columns: list[str] | None = None
    scaling: list[str] | None = None  # how each feature was scaled (`softreg.prepare.scaling`)
    split: dict[str, np.ndarray] | None = None  # train, val, test: 0-based data-row indices into the source(s)
    unlabelled: int = 0  # rows of the source (and test file) left out for a missing label


def load_data(data_config: DataConfig, source: str, index_base: int | None = None) -> Dataset:
    """One source, read with the data section's options (label, columns, header, encoding).

    Delimited text of numbers loads straight into float64 (no text cells) unless
    ``data.categorical`` names columns, which may hold numbers to one-hot encode as text.
    Rows without a label are refused (``data.missing: error``) or left out, and counted
    (a label is never imputed)."""
    selection = Selection(
        label=data_config.label, id=data_config.id, features=data_config.features, exclude=data_config.exclude or ()
    )
    named_categories = isinstance(data_config.categorical, list) and bool(data_config.categorical)
    dataset = load_source(
        source, selection, data_config.delimiter, data_config.header, index_base, encoding=data_config.encoding,
        as_numbers=not named_categories, missing_labels=label_policy(data_config.missing),
    )
    if dataset.unlabelled:
        warn(unlabelled_note(dataset.source, dataset.unlabelled))
    if source == data_config.source:  # a separate test file's columns are taken by the training file's names
        dataset = _roles_checked(data_config, dataset)
    if data_config.missing == "error":
        refuse_missing(dataset)
    return dataset


def _roles_checked(data_config: DataConfig, dataset: Dataset) -> Dataset:
    """The training source with its row names and identifiers as the id (each said in one line),
    and a label that looks like classes (`check_label_kind`)."""
    if data_config.id is None and dataset.id_name is not None:
        check_row_names(dataset)
    if data_config.categorical == "auto":
        dataset = identifiers_out(dataset, given_id=data_config.id is not None)
    if source_kind(dataset.source) in ("delimited", "parquet"):
        check_label_kind(dataset.labels, dataset.source, dataset.label_name, data_config.label is not None)
    return dataset


def check_row_names(dataset: Dataset) -> None:
    """A first column named as R and pandas name row names, read as the id: say so in one line,
    or refuse it when its cells repeat (then it is no row index, and a feature needs a name)."""
    assert dataset.ids is not None, "an id column has its cells"
    ids, counts = np.unique(dataset.ids, return_counts=True)
    if np.any(counts > 1):
        raise DataError(
            f"{dataset.source}: the first column {dataset.id_name!r} is named like a row index but repeats "
            f"{str(ids[np.argmax(counts > 1)])!r}; name it in the header, or leave it out with data.exclude"
        )
    warn(f"{dataset.source}: the first column {dataset.id_name!r} holds row names: it is the id "
         "(copied into predict's output), not a feature")


def available_memory(meminfo: str | os.PathLike[str] = "/proc/meminfo",
                     cgroup: str | os.PathLike[str] = "/sys/fs/cgroup") -> int:
    """Bytes of memory available now: MemAvailable, capped by the cgroup v2 limit less its usage.

    The one measure of free memory: `check_memory` and the default data cache budget
    (`softreg.cache.budget.memory_budget`) both read it, so they agree inside a container.
    """
    available = None
    try:
        for line in Path(meminfo).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            available = FALLBACK_AVAILABLE
    try:
        limit = (Path(cgroup) / "memory.max").read_text().strip()
        if limit != "max":
            used = int((Path(cgroup) / "memory.current").read_text())
            available = min(available, max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return int(available)


def check_memory(shape: tuple[int, ...], dtype: np.dtype, source: str) -> None:
    """Refuse before allocating when the standardized copy of the data cannot fit."""
    needed = shape[0] * shape[1] * dtype.itemsize
    available = available_memory()
    if needed > available:
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
    """Load, select classes, encode labels, split, encode the feature columns (learnt on the
    training part) and standardize, as ``data_config`` says."""
    dataset = _loaded(data_config, data_config.source)
    unlabelled = dataset.unlabelled
    classes, y = encode_labels(dataset)
    if isinstance(data_config.test, str):
        test_set = _loaded(data_config, data_config.test, dataset.index_base, require_all=False)
        unlabelled += test_set.unlabelled
        test_set = _aligned(test_set, dataset, data_config.test)
        y_test = encode_with(classes, test_set.labels, data_config.test)
        rest = np.arange(dataset.n_samples)
    else:
        rest, test_index = split_indices(
            dataset.n_samples, data_config.test, y, data_config.split, data_config.stratify, split_rng, classes
        )
        test_set, y_test = dataset.take(test_index), y[test_index]
    kept, val_index = split_indices(
        len(rest), data_config.val, y[rest], data_config.split, data_config.stratify, split_rng, classes
    )
    train_index, val_index = rest[kept], rest[val_index]
    train_set = dataset.take(train_index)  # gathered once: it can be most of the data
    absent = [str(name) for index, name in enumerate(classes) if not np.any(y[train_index] == index)]
    if absent:
        warn(
            f"{dataset.source}: class(es) {shown_names(absent)} have no row in the training part; "
            "the model never learns them (more data, or data.stratify: true, would help)"
        )
    columns = fit_columns_for(data_config, train_set)
    X_train, _ = features_of(train_set, columns)
    X_val, unknown_val = features_of(dataset.take(val_index), columns)
    X_test, unknown = features_of(test_set, columns)
    if unknown_val:
        warn(_unknown_warning("validation split", unknown_val))
    if unknown:
        warn(_unknown_warning(data_config.test if isinstance(data_config.test, str) else "test split", unknown))
    if not sp.issparse(X_train):
        check_memory((dataset.n_samples, X_train.shape[1]), np.dtype(dtype), dataset.source)
    mean, scale = fit_standardizer(X_train, data_config.standardize)
    scale = unscaled_indicators(scale, columns)

    center = (mean / scale) if sp.issparse(X_train) and np.any(mean) else None

    def part(rows_X: Matrix, rows_y: np.ndarray) -> ArrayData:
        return ArrayData(standardize(rows_X, mean, scale, dtype), rows_y, center=center)

    return Prepared(
        train=part(X_train, y[train_index]),  # never empty: split_indices always leaves training rows
        val=part(X_val, y[val_index]) if len(val_index) else None,
        test=part(X_test, y_test) if X_test.shape[0] else None,
        test_raw=X_test,
        classes=classes,
        feature_names=columns.feature_names if columns is not None else dataset.feature_names,
        label_name=dataset.label_name,
        feature_mean=mean,
        feature_scale=scale,
        source=dataset.source,
        index_base=dataset.index_base,
        columns=columns,
        header=dataset.named if dataset.file_columns is not None else None,  # delimited text only
        id_name=dataset.id_name,
        file_columns=dataset.file_columns,
        scaling=feature_scaling(columns, len(scale), data_config.standardize),
        split=None if dataset.untracked or test_set.untracked else {
            "train": dataset.row_index[train_index], "val": dataset.row_index[val_index], "test": test_set.row_index},
        unlabelled=unlabelled,
    )


def _loaded(data_config: DataConfig, source: str, index_base: int | None = None, require_all: bool = True) -> Dataset:
    dataset = load_data(data_config, source, index_base)
    if data_config.missing == "drop":
        dataset = drop_missing(dataset)
    return select_classes(dataset, data_config.classes, require_all=require_all)


def _aligned(test_set: Dataset, train_set: Dataset, what: str) -> Dataset:
    """A separate test file with the training file's feature columns, in their order: by name
    between delimited files (read as text cells or as numbers), else as `align_features` does."""
    if train_set.file_columns is None or test_set.file_columns is None:
        return replace(test_set, X=align_features(test_set, train_set.feature_names, what), cells=None,
                       feature_names=list(train_set.feature_names))
    if test_set.feature_names == train_set.feature_names:
        return test_set
    if not (train_set.named and test_set.named):
        raise DataError(f"{what}: has {len(test_set.feature_names)} unnamed feature columns, "
                        f"the training file {len(train_set.feature_names)}")
    position = {name: index for index, name in enumerate(test_set.feature_names)}
    missing = [name for name in train_set.feature_names if name not in position]
    if missing:
        raise DataError(f"{what}: missing feature column(s) {shown_names(missing)} that the model needs")
    order = [position[name] for name in train_set.feature_names]
    table = test_set.table[:, order]
    if test_set.cells is not None:
        return replace(test_set, cells=table, feature_names=list(train_set.feature_names))
    return replace(test_set, X=table, feature_names=list(train_set.feature_names))


def _unknown_warning(where: str, unknown: dict[str, int]) -> str:
    """``where`` names the part: a separate test file, else "test split" or "validation split"."""
    counts = ", ".join(f"{name}: {count}" for name, count in unknown.items())
    return f"{where}: categories unseen in training get all-zero indicators ({counts} cells)"
