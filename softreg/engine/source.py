"""`ShardedData`: one cache part whose shards an engine holds, as `fit` trains on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

from softreg.engine import plan
from softreg.evaluate import MetricSums
from softreg.kernels import Batch
from softreg.model import Model
from softreg.train import PartialSums, TrainingData, add_partials
from softreg.train.certificate import HeldLogits
from softreg.train.intercept import InterceptProblem


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

    def each(self, part: str, method: str, args: tuple[Any, ...]) -> list[Any]: ...

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

    def held_logits(self, coef: np.ndarray, max_logits: int) -> HeldLogits | None:
        """The certificate's logits Z = X W^T, held by the shards (None where a shard's would pass ``max_logits``)."""
        answers = self.engine.each(self.part, "cert_begin", (coef, max_logits))
        if not all(fits for _, _, fits in answers):
            return None
        return ShardedLogits(self, sum((counts for counts, _, _ in answers), np.zeros(coef.shape[0])),
                             sum(norm for _, norm, _ in answers))

    def each(self, method: str, *args: Any) -> list[Any]:
        """Every shard's answer to a certificate call, in shard order."""
        return self.engine.each(self.part, method, args)

    def comm_seconds(self) -> float | None:
        return self.engine.comm_seconds()


class ShardedLogits:
    """`softreg.train.certificate.HeldLogits` whose logits the shards hold: every quantity the
    certificate needs is the shards' sums, added in shard order (the same on every engine)."""

    def __init__(self, source: ShardedData, counts: np.ndarray, norm_sum: float) -> None:
        self.source, self.counts = source, counts
        self.n_samples = int(round(float(counts.sum())))
        self.mean_norm = norm_sum / max(1, self.n_samples)

    def intercept_problem(self, present: np.ndarray, shares: np.ndarray) -> InterceptProblem:
        return _ShardedIntercept(self, present, shares)

    def data_loss(self, b: np.ndarray) -> float:
        return sum(self.source.each("cert_loss", b)) / max(1, self.n_samples)

    def gradient(self, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        answers = self.source.each("cert_gradient", b)
        grad, residual = answers[0][0].copy(), answers[0][1].copy()
        for shard_grad, shard_residual in answers[1:]:
            grad += shard_grad
            residual += shard_residual
        n = max(1, self.n_samples)
        return grad / n, residual / n


class _ShardedIntercept:
    """`softreg.train.certificate.InterceptProblem` over the shards' logits of the classes ``present``."""

    def __init__(self, held: ShardedLogits, present: np.ndarray, shares: np.ndarray) -> None:
        self.held, self.present, self.shares = held, present, shares

    def value(self, b: np.ndarray) -> float:
        total = sum(self.held.source.each("cert_value", b, self.present))
        return total / max(1, self.held.n_samples) - float(np.dot(self.shares, b))

    def terms(self, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        answers = self.held.source.each("cert_terms", b, self.present)
        proba, outer = answers[0][0].copy(), answers[0][1].copy()
        for shard_proba, shard_outer in answers[1:]:
            proba += shard_proba
            outer += shard_outer
        n = max(1, self.held.n_samples)
        return proba / n, outer / n
