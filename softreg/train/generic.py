"""Gradient estimators for every loss, normalizer and temperature of `softreg.losses`.

The training loop's fast path is cross-entropy + softmax at T = 1 (`softreg.kernels`:
preallocated buffers, no Jacobian products). Any other choice goes through these two
estimators, which call `losses.weighted_loss_gradient` on each batch: allocating and
slower, but with the same interface (``batch``, ``end_epoch``, ``work.gradient``), so that
the loop does not know which one it runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from softreg import losses
from softreg.kernels import Chunked, Matrix, Snapshot
from softreg.softmax import gradient_norm, penalty, penalty_gradient
from softreg.train import gradients


class GenericGradient(gradients.PlainGradient):
    """The minibatch gradient of J for the given loss, normalizer and temperature."""

    def __init__(self, *args: Any, loss: str, normalizer: str, temperature: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        losses.check_options(loss, normalizer, temperature)
        self.loss, self.normalizer, self.temperature = loss, normalizer, temperature

    def batch(
        self, coef: np.ndarray, intercept: np.ndarray, X: Matrix, y: np.ndarray, sample_weight: np.ndarray | None
    ) -> float:
        """The batch's mean (weighted) loss; its gradient goes into ``work``."""
        data_loss, grad_coef, grad_intercept = self._data_term(coef, intercept, X, y, sample_weight)
        np.add(grad_coef, penalty_gradient(coef, self.weight_decay), out=self.work.grad_coef)
        self.work.grad_intercept[...] = grad_intercept
        return data_loss

    def _data_term(
        self, coef: np.ndarray, intercept: np.ndarray, X: Matrix, y: np.ndarray, sample_weight: np.ndarray | None
    ) -> tuple[float, np.ndarray, np.ndarray]:
        # relative weights (mean 1 over the data) over the batch size: an unbiased estimate, as in the kernels
        n_samples = X.shape[0]
        row_weight = 1.0 / n_samples if sample_weight is None else sample_weight / n_samples
        return losses.weighted_loss_gradient(
            coef, intercept, X, y, row_weight, self.loss, self.normalizer, self.temperature, self.center
        )

    def full_gradient(
        self, coef: np.ndarray, intercept: np.ndarray, data: Chunked
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """The mean loss over all of ``data`` and its gradient, without weight decay."""
        data_loss, _, grad_coef, grad_intercept = losses.chunked_loss_gradient(
            coef, intercept, data.chunks(self.full_pass_work.max_rows), data.n_samples, 0.0,
            self.loss, self.normalizer, self.temperature, self.center,
        )
        return data_loss, grad_coef, grad_intercept


class GenericVarianceReducedGradient(GenericGradient):
    """SVRG for any loss: ``g = grad L_B(W) - grad L_B(W~) + grad L(W~) + lambda W`` (see
    `kernels.variance_reduced_gradient`); the first epoch takes plain steps."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.snapshot: Snapshot | None = None

    def batch(
        self, coef: np.ndarray, intercept: np.ndarray, X: Matrix, y: np.ndarray, sample_weight: np.ndarray | None
    ) -> float:
        snapshot = self.snapshot
        if snapshot is None:
            return super().batch(coef, intercept, X, y, sample_weight)
        data_loss, grad_coef, grad_intercept = self._data_term(coef, intercept, X, y, sample_weight)
        _, past_coef, past_intercept = self._data_term(snapshot.coef, snapshot.intercept, X, y, sample_weight)
        work = self.work
        work.grad_coef[...] = grad_coef - past_coef + snapshot.grad_coef + penalty_gradient(coef, self.weight_decay)
        work.grad_intercept[...] = grad_intercept - past_intercept + snapshot.grad_intercept
        return data_loss

    def end_epoch(self, coef: np.ndarray, intercept: np.ndarray, data: Chunked) -> tuple[float, float]:
        """Take the snapshot; the objective and gradient norm there come for free."""
        data_loss, grad_coef, grad_intercept = self.full_gradient(coef, intercept, data)
        self.snapshot = Snapshot(coef.copy(), intercept.copy(), grad_coef, grad_intercept)
        objective = data_loss + penalty(coef, self.weight_decay)
        grad_norm = gradient_norm(
            grad_coef + penalty_gradient(coef, self.weight_decay),
            grad_intercept if self.fit_intercept else grad_intercept[:0],
        )
        return objective, grad_norm


ESTIMATORS: dict[str, type[GenericGradient]] = {"none": GenericGradient, "svrg": GenericVarianceReducedGradient}
