"""The gradient estimators of the training loop on the fast path: plain minibatch gradients
and SVRG from averaged snapshots, both computed by `softreg.kernels` in preallocated buffers.
`softreg.train.generic` has the same interface for the other losses and normalizers."""

from __future__ import annotations

import math

import numpy as np

from softreg.kernels import (
    Chunked,
    Matrix,
    Snapshot,
    Workspace,
    batch_loss_gradient,
    variance_reduced_gradient,
)
from softreg.softmax import gradient_norm, penalty, penalty_gradient
from softreg.train.passes import chunked_softmax_loss_gradient, full_pass_rows


class PlainGradient:
    """The minibatch gradient of J (`batch_loss_gradient`), left in ``work.gradient``."""

    n_models = 1

    def __init__(
        self, n_classes: int, n_features: int, n_samples: int, dtype: np.dtype, batch_size: int, weight_decay: float,
        fit_intercept: bool, center: np.ndarray | None = None,
    ) -> None:
        self.weight_decay, self.fit_intercept, self.center = weight_decay, fit_intercept, center
        self.work = Workspace(n_classes, n_features, min(batch_size, n_samples), dtype, n_models=self.n_models)
        rows = full_pass_rows(n_samples, n_features, n_classes, at_least=max(256, batch_size))
        self.full_pass_work = Workspace(n_classes, n_features, rows, dtype)

    def batch(
        self, coef: np.ndarray, intercept: np.ndarray, X: Matrix, y: np.ndarray, sample_weight: np.ndarray | None
    ) -> float:
        """The batch's mean cross-entropy; its gradient goes into ``work``."""
        return batch_loss_gradient(coef, intercept, X, y, self.weight_decay, self.work, sample_weight, self.center)

    def after_step(self, weights: np.ndarray, step: int) -> None:
        """Called after step ``step`` (0-based) of an epoch with the updated weights (coef, then intercept)."""

    def end_epoch(self, coef: np.ndarray, intercept: np.ndarray, data: Chunked) -> tuple[float, float] | None:
        """Called after each epoch; returns (J, ||grad J||) when it computed them anyway."""
        return None


class VarianceReducedGradient(PlainGradient):
    """SVRG (`variance_reduced_gradient`) from averaged snapshots.

    Each epoch ends at the mean of the weights after the steps of its second half: training
    continues from there, and the snapshot and its full-data gradient, which the next
    epoch's steps use, are taken there. The first epoch has no snapshot yet and takes plain
    steps, a warm start as in Johnson & Zhang (2013), whose second variant also ends an epoch
    away from its last iterate. The mean removes most of the batch noise that the last
    iterate carries, so that the rate can be as large as the curvature allows.
    """

    n_models = 2

    def __init__(
        self, n_classes: int, n_features: int, n_samples: int, dtype: np.dtype, batch_size: int, weight_decay: float,
        fit_intercept: bool, center: np.ndarray | None = None,
    ) -> None:
        super().__init__(n_classes, n_features, n_samples, dtype, batch_size, weight_decay, fit_intercept, center)
        self.snapshot: Snapshot | None = None
        self.average_from = math.ceil(n_samples / batch_size) // 2  # the first step of an epoch's second half
        self.tail_sum = np.zeros(n_classes * n_features + n_classes, dtype)
        self.tail_count = 0

    def batch(
        self, coef: np.ndarray, intercept: np.ndarray, X: Matrix, y: np.ndarray, sample_weight: np.ndarray | None
    ) -> float:
        if self.snapshot is None:
            return super().batch(coef, intercept, X, y, sample_weight)
        return variance_reduced_gradient(
            coef, intercept, self.snapshot, X, y, self.weight_decay, self.work, sample_weight, self.center
        )

    def after_step(self, weights: np.ndarray, step: int) -> None:
        if step >= self.average_from:
            self.tail_sum += weights
            self.tail_count += 1

    def end_epoch(self, coef: np.ndarray, intercept: np.ndarray, data: Chunked) -> tuple[float, float]:
        """Move to the epoch's averaged weights (none after a restore: the weights stay) and
        take the snapshot there; the objective and gradient norm there come for free."""
        if self.tail_count:
            self.tail_sum /= self.tail_count
            size = coef.size
            coef[...] = self.tail_sum[:size].reshape(coef.shape)
            intercept[...] = self.tail_sum[size:]
            self.tail_sum[...] = 0.0
            self.tail_count = 0
        work = self.full_pass_work
        data_loss, _, grad_coef, grad_intercept = chunked_softmax_loss_gradient(
            coef, intercept, data.chunks(work.max_rows), data.n_samples, 0.0, work, self.center
        )
        self.snapshot = Snapshot(coef.copy(), intercept.copy(), grad_coef, grad_intercept)
        objective = data_loss + penalty(coef, self.weight_decay)
        grad_norm = gradient_norm(
            grad_coef + penalty_gradient(coef, self.weight_decay),
            grad_intercept if self.fit_intercept else grad_intercept[:0],
        )
        return objective, grad_norm


ESTIMATORS: dict[str, type[PlainGradient]] = {"none": PlainGradient, "svrg": VarianceReducedGradient}
