"""`ShardedData`: one cache part whose shards an engine holds, as `fit` trains on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

from softreg.engine import plan
from softreg.kernels import Batch
from softreg.train import PartialSums, TrainingData, add_partials


class ShardEngine(Protocol):
    """Where the shards are: this process (`NumpyEngine`) or the workers of a cluster (`DaskEngine`).

    Every call answers for all the shards of ``part``, in shard order.
    """

    def begin_epoch(self, part: str, key: int, rows: int) -> None: ...

    def step(self, part: str, step: int, coef: np.ndarray, intercept: np.ndarray) -> list[PartialSums]: ...

    def full(self, part: str, coef: np.ndarray, intercept: np.ndarray) -> list[PartialSums]: ...

    def comm_seconds(self) -> float | None: ...

    def close(self) -> None: ...


class ShardedData:
    """A `softreg.train.ShardedSource`: the part ``part`` cut into ``n_shards`` shards that
    ``engine`` holds; ``rows`` is the same part readable here (for ``lr: auto``'s sample)."""

    def __init__(self, part: str, engine: ShardEngine, rows: TrainingData, n_shards: int) -> None:
        self.part, self.engine, self.rows, self.n_shards = part, engine, rows, n_shards

    @property
    def n_samples(self) -> int:
        return self.rows.n_samples

    @property
    def n_features(self) -> int:
        return self.rows.n_features

    @property
    def dtype(self) -> np.dtype:
        return self.rows.dtype

    def minibatches(self, batch_size: int, rng: np.random.Generator) -> Iterator[Batch]:
        return self.rows.minibatches(batch_size, rng)

    def chunks(self, rows: int) -> Iterator[Batch]:
        return self.rows.chunks(rows)

    def epoch(self, batch_size: int, rng: np.random.Generator) -> int:
        key = plan.epoch_key(rng)
        self.engine.begin_epoch(self.part, key, plan.rows_per_step(batch_size, self.n_shards))
        return plan.steps_per_epoch(self.n_samples, batch_size)

    def step_sums(self, step: int, coef: np.ndarray, intercept: np.ndarray) -> PartialSums:
        return add_partials(self.engine.step(self.part, step, coef, intercept))

    def full_sums(self, coef: np.ndarray, intercept: np.ndarray) -> PartialSums:
        return add_partials(self.engine.full(self.part, coef, intercept))

    def comm_seconds(self) -> float | None:
        return self.engine.comm_seconds()
