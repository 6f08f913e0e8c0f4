"""`ShardedData`: one cache part whose shards an engine holds, as `fit` trains on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

from softreg.engine import plan
from softreg.evaluate import MetricSums
from softreg.kernels import Batch
from softreg.model import Model
from softreg.train import PartialSums, TrainingData, add_partials


class ShardEngine(Protocol):
    """Where the shards are: this process (`NumpyEngine`) or the workers of a cluster (`DaskEngine`).

    Every call answers for all the shards of ``part``, in shard order.
    """

    def begin_epoch(self, part: str, key: int, rows: int) -> None: ...

    def step(self, part: str, step: int, coef: np.ndarray, intercept: np.ndarray) -> list[PartialSums]: ...

    def full(self, part: str, coef: np.ndarray, intercept: np.ndarray) -> list[PartialSums]: ...

    def sample(self, part: str, rows: int, n_total: int, whole: bool, intercept: float) -> list[tuple[int, float]]: ...

    def gram(self, part: str, vector: np.ndarray, intercept: float) -> list[np.ndarray]: ...

    def metrics(self, part: str, model: Model, keep: int) -> list[tuple[MetricSums, np.ndarray, np.ndarray]]: ...

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

    def sample_sums(self, rows: int, whole: bool, intercept: float) -> tuple[int, float]:
        shares = self.engine.sample(self.part, rows, self.n_samples, whole, intercept)
        return sum(count for count, _ in shares), sum(squares for _, squares in shares)  # in shard order

    def gram_sums(self, vector: np.ndarray, intercept: float) -> np.ndarray:
        result = np.zeros_like(vector)
        for shard in self.engine.gram(self.part, vector, intercept):
            result += shard
        return result

    def metric_sums(self, model: Model, keep: int) -> tuple[MetricSums, np.ndarray, np.ndarray]:
        """The metric sums of ``model`` over every row of the part (merged exactly: the order does not
        matter), and the classes (n,) and probabilities (n, n_classes) of about ``keep`` of its rows."""
        answers = self.engine.metrics(self.part, model, -(-keep // self.n_shards))
        sums = MetricSums(model.n_classes)
        for shard_sums, _, _ in answers:
            sums.merge(shard_sums)
        y = np.concatenate([shard_y for _, shard_y, _ in answers])
        proba = np.concatenate([shard_proba for _, _, shard_proba in answers])
        return sums, y, proba

    def comm_seconds(self) -> float | None:
        return self.engine.comm_seconds()
