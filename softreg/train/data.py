"""What `fit` reads: the `TrainingData` protocol and its in-memory form, `ArrayData`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from softreg import softmax
from softreg.kernels import Batch, Matrix
from softreg.train.passes import array_chunks


class TrainingData(Protocol):
    """What `fit` reads: minibatches in a random order, and chunks for full passes.

    ``X`` blocks are dense arrays or CSR matrices of ``dtype``; ``y`` blocks class indices.
    """

    @property
    def n_samples(self) -> int: ...

    @property
    def n_features(self) -> int: ...

    @property
    def dtype(self) -> np.dtype: ...

    def minibatches(self, batch_size: int, rng: np.random.Generator) -> Iterator[Batch]: ...

    def chunks(self, rows: int) -> Iterator[Batch]: ...

@dataclass
class ArrayData:
    """In-memory `TrainingData`: ``X`` (n_samples, n_features) dense or CSR, ``y`` (n_samples,),
    and optional ``sample_weight`` (n_samples,) >= 0, kept relative to its mean (the objective
    is the weighted mean of the losses); equal weights are dropped, as they change nothing."""

    X: Matrix
    y: np.ndarray
    sample_weight: np.ndarray | None = None
    center: np.ndarray | None = None  # sparse X stored scaled, not centred: the rows are X - center

    def __post_init__(self) -> None:
        weight = self.sample_weight
        if weight is not None:
            weight = np.asarray(weight, dtype=np.float64)
            all_equal = weight.size == 0 or bool(np.all(weight == weight[0]))
            self.sample_weight = None if all_equal else (weight / weight.mean()).astype(self.X.dtype)
        if self.center is not None:
            self.center = None if not np.any(self.center) else np.asarray(self.center, dtype=self.X.dtype)

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.X.dtype)

    def minibatches(self, batch_size: int, rng: np.random.Generator) -> Iterator[Batch]:
        """One epoch of batches in an order drawn from ``rng`` (one permutation).

        Dense batches are gathered into one reused buffer: a consumer must finish with a
        batch before asking for the next.
        """
        order = rng.permutation(self.n_samples)
        X, y, weight = self.X, self.y, self.sample_weight
        dense = isinstance(X, np.ndarray)
        buffer = np.empty((min(batch_size, self.n_samples), self.n_features), self.dtype) if dense else None
        for start in range(0, self.n_samples, batch_size):
            index = order[start:start + batch_size]
            if buffer is not None:
                X_batch = buffer if len(index) == len(buffer) else buffer[: len(index)]
                # a permutation needs no bounds check; mode="raise" would gather into a temporary first
                np.take(X, index, axis=0, out=X_batch, mode="clip")
            else:
                X_batch = X[index]
            yield X_batch, y[index], None if weight is None else weight[index]

    def chunks(self, rows: int) -> Iterator[Batch]:
        return array_chunks(self.X, self.y, rows, self.sample_weight)

def center_of(data: object) -> np.ndarray | None:
    """The implicit centring of a data source's sparse rows (None: its rows are as stored)."""
    return getattr(data, "center", None)

def data_logits(coef: np.ndarray, intercept: np.ndarray, X: Matrix, center: np.ndarray | None = None) -> np.ndarray:
    """Logits (n_samples, n_classes) of the rows ``X - center`` (``center`` None: of ``X``)."""
    return softmax.decision_function(coef, softmax.centred_intercept(coef, intercept, center), X)

def as_training_data(data: TrainingData | tuple[Matrix, np.ndarray]) -> TrainingData:
    """Arrays ``(X, y)`` as `ArrayData`; a `TrainingData` as it is."""
    return ArrayData(*data) if isinstance(data, tuple) else data
