"""A shard's sums, and the engine that computes every shard's in this process.

`shard_partial_sums` is the one function that turns rows into sums, wherever they are: the
numpy engine calls it here, the Dask engine's actors call it on the workers. A `CacheShard`
is one row range of a cache part, opened by path (memory maps), that answers the batch
plan's steps (`softreg.engine.plan`) and full passes with `PartialSums`. A `ShardGroup`
holds the shards of one process: the numpy engine one group of all the shards, the Dask
engine one group per worker, as an actor. The same rows, the same function and the same order of
addition give the same bits on either.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from softreg.engine import plan
from softreg.engine.shard_logits import FULL_PASS_ROWS, ShardLogits
from softreg.evaluate import MetricSums, model_metrics
from softreg.model import Model
from softreg.train import PartialSums, add_partials
from softreg.train.rate import block_gram, block_squares

SAMPLE_KEY = 0  # the key of the order in which shards take ``lr: auto``'s sample (the batch plan's keys are drawn)


def shard_partial_sums(
    coef: np.ndarray, intercept: np.ndarray, X: np.ndarray, y: np.ndarray, *, correct: bool = False
) -> PartialSums:
    """Sums of the softmax cross-entropy and its gradient over the rows ``X``, ``y``::

        loss = sum_i -log p_{y_i},   grad_coef = sum_i (p_i - e_{y_i}) x_i^T,   grad_intercept = sum_i (p_i - e_{y_i})

    with ``p_i = softmax(W x_i + b)``; ``log p`` from the logits less their maximum (a log-softmax).

    Parameters
    ----------
    coef : ndarray of shape (n_classes, n_features)
    intercept : ndarray of shape (n_classes,)
    X : ndarray of shape (n_samples, n_features), dense, of coef's dtype
    y : ndarray of shape (n_samples,), class indices
    correct : bool
        Also count the rows whose largest logit is their class (full passes: accuracy).

    Returns
    -------
    PartialSums
        No decay and no division: the caller adds shards, divides by the rows and adds lambda W.
    """
    n_samples = len(y)
    logits = X @ coef.T  # (n, K)
    logits += intercept
    logits -= logits.max(axis=1, keepdims=True)
    rows = np.arange(n_samples)
    picked = logits[rows, y]  # each row's shifted true-class logit
    hits = int(np.count_nonzero(logits.argmax(axis=1) == y)) if correct else 0
    proba = np.exp(logits, out=logits)
    norm = proba.sum(axis=1)
    loss = float(np.log(norm).sum()) - float(picked.sum())
    proba /= norm[:, None]
    proba[rows, y] -= 1.0  # P - Y
    return PartialSums(proba.T @ X, proba.sum(axis=0), loss, n_samples, hits)


@dataclass(frozen=True)
class ShardSpec:
    """Rows ``[start, stop)`` of a cache part's ``X.npy`` (float, n_rows x n_features) and ``y.npy``,
    shard number ``shard`` of its part: all a process needs to open it."""

    X_path: str
    y_path: str
    start: int
    stop: int
    shard: int


class CacheShard(ShardLogits):
    """One shard of a cache part through memory maps: steps of the batch plan and full passes as sums.

    The only state besides the rows is the current epoch's order, a function of (key, shard):
    a shard made again from its spec and told the epoch answers every step the same. Its
    callers (`ShardGroup`) pass weights in fresh memory and run it on one BLAS thread.
    """

    def __init__(self, spec: ShardSpec) -> None:
        X = np.load(spec.X_path, mmap_mode="r", allow_pickle=False)
        y = np.load(spec.y_path, mmap_mode="r", allow_pickle=False)
        if not 0 <= spec.start <= spec.stop <= min(len(X), len(y)):
            raise ValueError(f"{spec.X_path}: has {len(X)} rows, the shard is rows {spec.start} to {spec.stop}")
        self.spec = spec
        self.X, self.y = X[spec.start:spec.stop], y[spec.start:spec.stop]
        self.order = np.arange(0)
        self.rows = 0
        self.sampled: np.ndarray | None = None
        self.cert_logits: np.ndarray | None = None  # `ShardLogits`' state
        self.cert_labels = np.empty(0, dtype=np.int64)

    def begin_epoch(self, key: int, rows: int) -> None:
        """Order the rows for the epoch keyed ``key``; each step takes ``rows`` of them."""
        self.order = plan.shard_order(key, self.spec.shard, len(self.y))
        self.rows = rows

    def step(self, step: int, coef: np.ndarray, intercept: np.ndarray) -> PartialSums:
        """The sums of this shard's rows of step ``step`` (none after the shard ran out)."""
        started = time.perf_counter()
        index = plan.step_rows(self.order, step, self.rows)
        sums = shard_partial_sums(coef, intercept, np.take(self.X, index, axis=0), np.take(self.y, index))
        sums.seconds = time.perf_counter() - started
        return sums

    def full(self, coef: np.ndarray, intercept: np.ndarray) -> PartialSums:
        """The sums over all the shard's rows, in order, chunk by chunk (``correct`` counted)."""
        started = time.perf_counter()
        chunks = [
            shard_partial_sums(
                coef, intercept, np.asarray(self.X[start:start + FULL_PASS_ROWS]),
                np.asarray(self.y[start:start + FULL_PASS_ROWS]), correct=True,
            )
            for start in range(0, max(1, len(self.y)), FULL_PASS_ROWS)
        ]
        sums = add_partials(chunks)
        sums.seconds = time.perf_counter() - started
        return sums


    def sample(self, rows: int, n_total: int, whole: bool, intercept: float) -> tuple[int, float]:
        """Take this shard's share of ``lr: auto``'s sample: ``ceil(rows * n_s / n_total)`` of its
        ``n_s`` rows in the order of a fixed key (``whole``: all of them); their count and
        ``sum_i ||x~_i||^2``. A function of the shard alone, wherever it is opened."""
        n_rows = len(self.y)
        if whole:
            self.sampled = None
        else:
            count = min(n_rows, math.ceil(rows * n_rows / max(1, n_total)))
            order = plan.shard_order(SAMPLE_KEY, self.spec.shard, n_rows)[:count]
            self.sampled = np.take(self.X, np.sort(order), axis=0)
        count, squares = 0, 0.0
        for X in self._sample_blocks():  # one read of the sample
            count += len(X)
            squares += block_squares(X, None, intercept)
        return count, squares

    def gram(self, vector: np.ndarray, intercept: float) -> np.ndarray:
        """``X~^T X~ v`` (n_features + 1,) over the sample `sample` took, not divided."""
        result = np.zeros_like(vector)
        for X in self._sample_blocks():
            result += block_gram(X, None, vector, intercept)
        return result

    def _sample_blocks(self) -> Iterator[np.ndarray]:
        rows = self.X if self.sampled is None else self.sampled
        for start in range(0, len(rows), FULL_PASS_ROWS):
            yield np.asarray(rows[start:start + FULL_PASS_ROWS])

    def metrics(self, model: Model, keep: int) -> tuple[MetricSums, np.ndarray, np.ndarray]:
        """The metric sums of ``model`` over the shard's rows, raw again (x * scale + mean, as a run
        keeps its test rows), chunk by chunk; and the classes and probabilities of its first ``keep`` rows."""
        kept: list[tuple[np.ndarray, np.ndarray]] = []

        def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for start in range(0, len(self.y), FULL_PASS_ROWS):
                X = np.asarray(self.X[start:start + FULL_PASS_ROWS], dtype=np.float64)
                yield X * model.feature_scale + model.feature_mean, np.asarray(self.y[start:start + FULL_PASS_ROWS])

        def keep_first(X: Any, y: np.ndarray, proba: np.ndarray) -> None:
            held = sum(len(part) for part, _ in kept)
            if held < keep:
                kept.append((y[:keep - held], proba[:keep - held]))

        sums = model_metrics(model, chunks(), on_chunk=keep_first)
        y_kept = np.concatenate([y for y, _ in kept]) if kept else np.empty(0, dtype=np.int64)
        proba_kept = np.concatenate([p for _, p in kept]) if kept else np.empty((0, model.n_classes))
        return sums, y_kept, proba_kept


class ShardGroup:
    """The shards one process holds, of one or more parts (``{"train": [...], "val": [...]}``):
    the numpy engine holds them all, a Dask worker those placed on it (as one actor, so that a
    step costs one round trip per worker). Every call answers for the group's shards of
    ``part`` in the order of ``specs[part]``."""

    def __init__(self, specs: dict[str, list[ShardSpec]]) -> None:
        self.shards = {part: [CacheShard(spec) for spec in part_specs] for part, part_specs in specs.items()}

    def begin_epoch(self, part: str, key: int, rows: int) -> None:
        for shard in self.shards[part]:
            shard.begin_epoch(key, rows)

    def step(self, part: str, step: int, coef: np.ndarray, intercept: np.ndarray) -> list[PartialSums]:
        with one_blas_thread():
            coef, intercept = _fresh(coef, intercept)
            return [shard.step(step, coef, intercept) for shard in self.shards[part]]

    def full(self, part: str, coef: np.ndarray, intercept: np.ndarray) -> list[PartialSums]:
        with one_blas_thread():
            coef, intercept = _fresh(coef, intercept)
            return [shard.full(coef, intercept) for shard in self.shards[part]]

    def sample(self, part: str, rows: int, n_total: int, whole: bool, intercept: float) -> list[tuple[int, float]]:
        with one_blas_thread():
            return [shard.sample(rows, n_total, whole, intercept) for shard in self.shards[part]]

    def gram(self, part: str, vector: np.ndarray, intercept: float) -> list[np.ndarray]:
        with one_blas_thread():
            vector = np.array(vector)
            return [shard.gram(vector, intercept) for shard in self.shards[part]]

    def metrics(self, part: str, model: Model, keep: int) -> list[tuple[MetricSums, np.ndarray, np.ndarray]]:
        with one_blas_thread():
            return [shard.metrics(model, keep) for shard in self.shards[part]]

    def each(self, part: str, method: str, args: tuple[Any, ...]) -> list[Any]:
        """Every shard of ``part``'s answer to ``CacheShard.<method>(*args)`` (the certificate's calls)."""
        if not method.startswith("cert_"):
            raise ValueError(f"not a shard call: {method}")
        with one_blas_thread():
            return [getattr(shard, method)(*args) for shard in self.shards[part]]


def _fresh(coef: np.ndarray, intercept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Copies in new memory: weights that arrived over the network may sit at any byte offset,
    and BLAS rounds a product of misaligned operands differently."""
    return np.array(coef, order="C"), np.array(intercept)


_blas: Any = None


def one_blas_thread() -> Any:
    """A context in which BLAS runs on one thread: a product split over threads adds in
    another order, so the sums would depend on how many threads a machine gives BLAS."""
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController()  # after numpy: it finds the BLAS that numpy loaded
    return _blas.limit(limits=1, user_api="blas")


class NumpyEngine:
    """Every shard in this process, one `ShardGroup`: the reference the Dask engine equals."""

    def __init__(self, specs: dict[str, list[ShardSpec]]) -> None:
        self.group: ShardGroup | None = ShardGroup(specs)

    def _group(self) -> ShardGroup:
        if self.group is None:
            raise ValueError("the engine is closed")
        return self.group

    def begin_epoch(self, part: str, key: int, rows: int) -> None:
        self._group().begin_epoch(part, key, rows)

    def step(self, part: str, step: int, coef: np.ndarray, intercept: np.ndarray) -> list[PartialSums]:
        return self._group().step(part, step, coef, intercept)

    def full(self, part: str, coef: np.ndarray, intercept: np.ndarray) -> list[PartialSums]:
        return self._group().full(part, coef, intercept)

    def sample(self, part: str, rows: int, n_total: int, whole: bool, intercept: float) -> list[tuple[int, float]]:
        return self._group().sample(part, rows, n_total, whole, intercept)

    def gram(self, part: str, vector: np.ndarray, intercept: float) -> list[np.ndarray]:
        return self._group().gram(part, vector, intercept)

    def metrics(self, part: str, model: Model, keep: int) -> list[tuple[MetricSums, np.ndarray, np.ndarray]]:
        return self._group().metrics(part, model, keep)

    def each(self, part: str, method: str, args: tuple[Any, ...]) -> list[Any]:
        return self._group().each(part, method, args)

    def comm_seconds(self) -> float | None:
        return None

    def close(self) -> None:
        self.group = None
