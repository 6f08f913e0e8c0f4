"""Training on rows that live elsewhere: the loop sends the weights, the data answer with sums.

A `ShardedSource` (`softreg.engine` makes them) holds its rows in shards, in this process
or on the workers of a cluster. Each step the loop asks it for the step's `PartialSums` —
one per shard, added in shard order — and turns them into the exact minibatch gradient::

    grad_W J = (sum_i (p_i - e_{y_i}) x_i^T) / B + lambda W,    grad_b J = (sum_i (p_i - e_{y_i})) / B

with B the number of rows the step took, then calls the same optimiser as every other run.
The weights, the optimiser's state, the random stream, the schedule, early stopping and the
history stay here; the full-data objective and the validation figures are sums too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from softreg import losses
from softreg.softmax import gradient_norm, penalty, penalty_gradient
from softreg.train.certificate import MAX_LOGITS, HeldLogits, certify_held
from softreg.train.data import TrainingData
from softreg.train.loop import StepCallback, _Loop
from softreg.train.measures import _exploded, diverged
from softreg.train.state import EpochRecord


@dataclass
class PartialSums:
    """Sums of the cross-entropy of softmax and its gradient over some rows.

    grad_coef : ndarray of shape (n_classes, n_features), sum_i (p_i - e_{y_i}) x_i^T
    grad_intercept : ndarray of shape (n_classes,), sum_i (p_i - e_{y_i})
    loss : float, sum_i -log p_{y_i}
    count : int, the number of rows
    correct : int, rows whose largest logit is their class (computed by full passes only)
    seconds : float, the time the sums took where they were computed (not part of the result)
    """

    grad_coef: np.ndarray
    grad_intercept: np.ndarray
    loss: float
    count: int
    correct: int = 0
    seconds: float = 0.0


def add_partials(partials: Sequence[PartialSums]) -> PartialSums:
    """The sum of ``partials`` in their order (floating-point addition is not associative: the
    same partials in the same order give the same bits, whoever computed them)."""
    first = partials[0]
    total = PartialSums(
        first.grad_coef.copy(), first.grad_intercept.copy(), first.loss, first.count, first.correct, first.seconds
    )
    for part in partials[1:]:
        total.grad_coef += part.grad_coef
        total.grad_intercept += part.grad_intercept
        total.loss += part.loss
        total.count += part.count
        total.correct += part.correct
        total.seconds = max(total.seconds, part.seconds)
    return total


@runtime_checkable
class ShardedSource(TrainingData, Protocol):
    """`TrainingData` whose rows answer with sums: what `fit` trains on through `ShardedLoop`.

    ``chunks`` and ``minibatches`` read the rows where the loop runs (choosing ``lr: auto``
    reads a sample); training itself reads them through ``epoch``, ``step_sums`` and ``full_sums``.
    """

    def epoch(self, batch_size: int, rng: np.random.Generator) -> int:
        """Begin an epoch, its batch plan drawn from ``rng``; return its number of steps."""
        ...

    def step_sums(self, step: int, coef: np.ndarray, intercept: np.ndarray) -> PartialSums:
        """The added sums of step ``step``'s rows at the weights (coef, intercept)."""
        ...

    def full_sums(self, coef: np.ndarray, intercept: np.ndarray) -> PartialSums:
        """The added sums over every row (``correct`` included)."""
        ...

    def sample_sums(self, rows: int, whole: bool, intercept: float) -> tuple[int, float]:
        """`softreg.train.rate.SampledSource.sample_sums`: ``lr: auto``'s sample, summed by the shards."""
        ...

    def gram_sums(self, vector: np.ndarray, intercept: float) -> np.ndarray:
        """`softreg.train.rate.SampledSource.gram_sums`."""
        ...

    def held_logits(self, coef: np.ndarray, max_logits: int) -> HeldLogits | None:
        """The certificate's logits Z = X W^T held by the shards (None where one shard's pass ``max_logits``)."""
        ...

    @property
    def n_shards(self) -> int: ...

    def comm_seconds(self) -> float | None:
        """Seconds spent communicating so far (None: the rows are in this process)."""
        ...


class ShardedLoop(_Loop):
    """`_Loop` whose steps, objective and validation are sums from a `ShardedSource`."""

    train: ShardedSource

    def __init__(self, train: ShardedSource, *args: Any, **kwargs: Any) -> None:
        super().__init__(train, *args, **kwargs)
        # the certificate's logits are held shard by shard: a shard's must fit, not all of them
        fast = losses.is_fast_path(self.settings.loss, self.settings.normalizer, self.settings.temperature)
        largest = math.ceil(train.n_samples / max(1, train.n_shards)) + 1
        self.certifying = fast and largest * self.n_classes <= MAX_LOGITS

    def certify(self) -> float | None:
        """The certified bound on (J - J*) / J* (`softreg.train.certificate.certify_held`), every sum
        of it the shards': the logits stay where the rows are."""
        if not self.certifying:
            return None
        held = self.train.held_logits(self.coef, MAX_LOGITS)
        if held is None:
            return None
        found = certify_held(self.coef, self.intercept, held, self.settings.weight_decay,
                             self.settings.fit_intercept, adopt=False)
        bound = found.relative_gap
        return bound if bound is not None and math.isfinite(bound) else None

    def sgd_epoch(self, epoch: int, on_step: StepCallback | None) -> float:
        """One pass of minibatch steps, each the exact gradient of the step's rows; returns the mean loss."""
        source, settings = self.train, self.settings
        steps = source.epoch(settings.batch_size, self.rng)
        work = self.gradient.work
        coef, intercept, params, grads = self.coef, self.intercept, self.params, self.grads
        update, schedule, weight_decay = self.sgd.step, self.schedule, settings.weight_decay
        loss_sum = 0.0
        for step in range(steps):
            sums = source.step_sums(step, coef, intercept)
            if not math.isfinite(sums.loss):  # overflowing weights make the logits, so the loss, non-finite
                raise diverged(epoch, source, settings)
            loss_sum += sums.loss
            np.divide(sums.grad_coef, sums.count, out=work.grad_coef)
            np.multiply(coef, weight_decay, out=work.decay)
            work.grad_coef += work.decay
            np.divide(sums.grad_intercept, sums.count, out=work.grad_intercept)
            update(params, grads, schedule.rate(epoch, step))
            if on_step is not None:
                on_step(coef, intercept)
        train_loss = loss_sum / source.n_samples
        if not np.isfinite(self.weights).all() or _exploded(train_loss, self.history, self.n_classes):
            raise diverged(epoch, source, settings)
        return train_loss

    def evaluate(self, record: EpochRecord, objective_due: bool) -> None:
        """The objective when due; its certificate when due or likely to succeed (as `_Loop`'s);
        the validation figures, all the shards' sums."""
        if objective_due:
            record.objective, record.grad_norm = self.objective()
        likely = self.certificate_likely(record)
        if likely and record.objective is None:
            record.objective, record.grad_norm = self.objective()
        if objective_due or likely:
            record.gap_bound = self.certify()
            estimate = self.gap_estimate(record)
            if likely and estimate and record.gap_bound is not None:
                self.bound_ratio = max(1.0, record.gap_bound / estimate)
        if isinstance(self.val, ShardedSource):
            sums = self.val.full_sums(self.coef, self.intercept)
            record.val_loss, record.val_accuracy = sums.loss / sums.count, sums.correct / sums.count
        elif self.val is not None:
            super().evaluate(record, objective_due=False)

    def objective(self) -> tuple[float, float]:
        """J = mean loss + lambda/2 ||W||^2 and ||grad J|| from the sums over every training row."""
        sums = self.train.full_sums(self.coef, self.intercept)
        weight_decay = self.settings.weight_decay
        grad_coef = sums.grad_coef / sums.count + penalty_gradient(self.coef, weight_decay)
        grad_intercept = sums.grad_intercept / sums.count
        objective = sums.loss / sums.count + penalty(self.coef, weight_decay)
        fitted = grad_intercept if self.settings.fit_intercept else grad_intercept[:0]
        return objective, gradient_norm(grad_coef, fitted)

    def comm_seconds(self) -> float | None:
        return self.train.comm_seconds()
