"""The live objects of one `fit`: weights, optimiser, gradient estimator, stopper, history."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable

import numpy as np

from softreg import losses
from softreg.softmax import penalty, penalty_gradient
from softreg.train import gradients
from softreg.train.certificate import MAX_LOGITS, certify
from softreg.train.data import TrainingData, center_of
from softreg.train.full_batch import FullBatchSteps, should_switch
from softreg.train.measures import _exploded, diverged, evaluate_objective, validation
from softreg.train.optim import SGD, EarlyStopping
from softreg.train.passes import chunked_softmax_loss_gradient
from softreg.train.settings import Settings
from softreg.train.state import EpochRecord, FitResult, TrainingState

DEFAULT_TOL = 1e-4  # the relative gap that `converged` means when optim.tol is null (fixed epochs)
# The certificate is computed besides its schedule when ||dJ/dW||^2 / (2 lambda), the bound's main
# term, is within this factor of tol J: only where it can succeed, so that a run stops at the first
# epoch it can certify without paying for a certificate every epoch
LIKELY = 1.0

EpochCallback = Callable[[EpochRecord, int], None]
StepCallback = Callable[[np.ndarray, np.ndarray], None]
CheckpointCallback = Callable[[TrainingState], None]


class _Loop:
    """The live objects of one `fit`: weights, optimiser, gradient estimator, stopper, history."""

    CERTIFIES = True  # whether the rows are here to certify the gap (`softreg.train.certificate`)

    def __init__(
        self,
        train: TrainingData,
        val: TrainingData | None,
        n_classes: int,
        settings: Settings,
        rng: np.random.Generator,
        started: float,
    ) -> None:
        self.train, self.val, self.settings, self.rng = train, val, settings, rng
        self.n_classes, n_features = n_classes, train.n_features
        # coef and intercept are views of one vector, as is the gradient in the workspace, so
        # that the optimiser updates both with one operation per step
        self.weights = np.zeros(n_classes * n_features + n_classes, dtype=train.dtype)
        self.coef = self.weights[: n_classes * n_features].reshape(n_classes, n_features)
        self.intercept = self.weights[n_classes * n_features:]
        self.intercept[...] = losses.START_INTERCEPT.get(settings.normalizer, 0.0)
        estimator = gradient_estimator(settings)
        self.gradient = estimator(
            n_classes, n_features, train.n_samples, train.dtype, settings.batch_size, settings.weight_decay,
            settings.fit_intercept, center_of(train),
        )
        work = self.gradient.work
        self.params: list[np.ndarray] = [self.weights] if settings.fit_intercept else [self.coef]
        self.grads: list[np.ndarray] = [work.gradient] if settings.fit_intercept else [work.grad_coef]
        self.sgd = SGD(momentum=settings.momentum, nesterov=settings.nesterov)
        self.stopper = (
            EarlyStopping(settings.patience, settings.min_delta)
            if settings.patience is not None and val is not None
            else None
        )
        self.schedule = settings.schedule_for(train.n_samples)
        self.history: list[EpochRecord] = []
        self.previous_seconds = 0.0
        self.first_epoch = 1
        self.started = started
        # the certificate bounds the softmax cross-entropy's gap (other losses: no bound)
        fast = losses.is_fast_path(settings.loss, settings.normalizer, settings.temperature)
        self.certifying = self.CERTIFIES and fast and train.n_samples * n_classes <= MAX_LOGITS
        self.stopped_by = "epochs"
        # optim.full_batch: auto: an SVRG run on the fast path hands over to full-batch steps once it slows
        self.finishing = settings.full_batch == "auto" and settings.variance_reduction == "svrg" and fast
        self.full: FullBatchSteps | None = None
        self.full_values: tuple[float, float, np.ndarray] | None = None  # (data loss, J, grad J) at the weights
        self.bound_ratio = 1.0  # the last certificate's bound over its main term's estimate (`certificate_likely`)

    def restore(self, start: TrainingState) -> None:
        if start.weights.shape != self.weights.shape:
            raise ValueError(
                f"checkpoint weights have shape {start.weights.shape}, the model needs {self.weights.shape}"
            )
        self.weights[...] = start.weights
        self.sgd.velocity = [velocity.copy() for velocity in start.velocity]
        self.rng.bit_generator.state = start.rng_state
        self.history = list(start.history)
        self.previous_seconds = sum(record.seconds for record in start.history)
        if self.stopper is not None and start.early_stopping is not None:
            self.stopper.restore(start.early_stopping, start.best_params)
        if start.full_batch is not None:  # the full-batch phase: its gradient is recomputed exactly
            self.full = FullBatchSteps.restore(start.full_batch)
            self.full_values = self.full_objective(self.weights)
        elif start.epoch >= 1:  # SVRG's snapshot is a function of the weights: recomputed exactly
            self.gradient.end_epoch(self.coef, self.intercept, self.train)
        self.first_epoch = start.epoch + 1
        if self.stopper is not None and self.stopper.triggered:  # resumed after early stopping fired
            self.first_epoch, self.stopped_by = self.settings.epochs + 1, "early_stopping"
        if self.history and self.certified(self.history[-1]):  # resumed after the tolerance was met
            self.first_epoch, self.stopped_by = self.settings.epochs + 1, "tol"

    def sgd_epoch(self, epoch: int, on_step: StepCallback | None) -> float:
        """One pass of minibatch steps (or, in the full-batch phase, one step); returns the mean batch loss."""
        if self.full is not None:
            return self.full_batch_step(on_step)
        loss_sum = 0.0
        batches = self.train.minibatches(self.settings.batch_size, self.rng)
        # the step's callables and arrays as locals: with small batches a step is a few microseconds
        # of numpy calls, and attribute lookups and a schedule call per step add up
        gradient, update, after_step = self.gradient.batch, self.sgd.step, self.gradient.after_step
        coef, intercept, weights, params, grads = self.coef, self.intercept, self.weights, self.params, self.grads
        schedule = self.schedule
        constant = schedule.kind == "constant"
        lr = schedule.rate(epoch, 0)
        for step, (X_batch, y_batch, weight_batch) in enumerate(batches):
            data_loss = gradient(coef, intercept, X_batch, y_batch, weight_batch)
            if not math.isfinite(data_loss):  # overflowing weights make the logits, so the loss, non-finite
                raise diverged(epoch, self.train, self.settings)
            loss_sum += data_loss * len(y_batch)
            update(params, grads, lr if constant else schedule.rate(epoch, step))
            after_step(weights, step)
            if on_step is not None:
                on_step(coef, intercept)
        train_loss = loss_sum / self.train.n_samples
        if not np.isfinite(self.weights).all() or _exploded(train_loss, self.history, self.n_classes):
            raise diverged(epoch, self.train, self.settings)
        return train_loss

    def full_batch_step(self, on_step: StepCallback | None) -> float:
        """One full-batch step (`softreg.train.full_batch`); returns the data loss it reached."""
        assert self.full is not None and self.full_values is not None
        found = self.full.step(self.weights, self.full_values[2], self.full_objective)
        if found is None:  # no rate decreased J: the weights are optimal to rounding
            self.stopped_by = "rounding"
        else:
            self.full_values = found
        if on_step is not None:
            on_step(self.coef, self.intercept)
        return self.full_values[0]

    def full_objective(self, weights: np.ndarray) -> tuple[float, float, np.ndarray]:
        """(data loss, J, grad J) at the flat ``weights`` over every row; the intercept's part of
        the gradient is 0 when it is not fitted."""
        size = self.coef.size
        coef, intercept = weights[:size].reshape(self.coef.shape), weights[size:]
        work, settings = self.gradient.full_pass_work, self.settings
        data_loss, objective, grad_coef, grad_intercept = chunked_softmax_loss_gradient(
            coef, intercept, self.train.chunks(work.max_rows), self.train.n_samples, settings.weight_decay, work,
            center_of(self.train),
        )
        if not settings.fit_intercept:
            grad_intercept[...] = 0.0
        return data_loss, objective, np.concatenate([grad_coef.ravel(), grad_intercept])

    def start_full_batch(self, objective: float) -> None:
        """Hand over from SVRG at its snapshot (the weights), whose full gradient it holds."""
        snapshot = self.gradient.snapshot  # type: ignore[attr-defined]  # VarianceReducedGradient's
        grad_coef = snapshot.grad_coef + penalty_gradient(self.coef, self.settings.weight_decay)
        grad_intercept = snapshot.grad_intercept if self.settings.fit_intercept else np.zeros_like(self.intercept)
        data_loss = objective - penalty(self.coef, self.settings.weight_decay)  # J less the decay term
        self.full_values = (data_loss, objective, np.concatenate([grad_coef.ravel(), grad_intercept]))
        self.full = FullBatchSteps(self.settings.base_lr, objective)
        self.sgd.velocity = [np.zeros_like(velocity) for velocity in self.sgd.velocity]

    def evaluate(self, record: EpochRecord, objective_due: bool) -> None:
        """The full-data objective (free with SVRG and full-batch steps; else when due), its
        certificate when due or likely to succeed, and the validation figures."""
        if self.full is not None and self.full_values is not None:
            record.lr = self.full.last_rate
            evaluated: tuple[float, float] | None = (self.full_values[1], float(np.linalg.norm(self.full_values[2])))
        else:
            evaluated = self.gradient.end_epoch(self.coef, self.intercept, self.train)
        if evaluated is None and objective_due:
            evaluated = self.objective()
        if evaluated is not None:
            record.objective, record.grad_norm = evaluated
        likely = self.certificate_likely(record)
        if objective_due or likely:
            record.gap_bound = self.certify()
            estimate = self.gap_estimate(record)
            if likely and estimate and record.gap_bound is not None:
                self.bound_ratio = max(1.0, record.gap_bound / estimate)
        if self.finishing and self.full is None and record.objective is not None:
            objectives = [past.objective for past in self.history if past.objective is not None]
            if should_switch([*objectives, record.objective]):
                self.start_full_batch(record.objective)
        if self.val is not None:
            settings = self.settings
            record.val_loss, record.val_accuracy = validation(
                self.coef, self.intercept, self.val,
                loss=settings.loss, normalizer=settings.normalizer, temperature=settings.temperature,
            )

    def certify(self) -> float | None:
        """The certified bound on (J - J*) / J* of the live weights (None: no finite bound, or no
        certificate for this run). The certificate solves b*(W) for its dual point only: the weights
        and so the trajectory stay as SGD left them, the same for any optim.epochs and any engine."""
        if not self.certifying:
            return None
        weight_decay, fit_intercept = self.settings.weight_decay, self.settings.fit_intercept
        rows = self.gradient.full_pass_work.max_rows  # the chunks of the objective's passes
        found = certify(self.coef, self.intercept, self.train, weight_decay, fit_intercept, adopt=False, rows=rows)
        bound = found.relative_gap
        return bound if bound is not None and math.isfinite(bound) else None

    def gap_estimate(self, record: EpochRecord) -> float | None:
        """||grad J||^2 / (2 lambda J) from the epoch's gradient norm: the certified bound's main term
        (the bound takes dJ/dW at the optimal intercept instead), or None where it is not known."""
        weight_decay = self.settings.weight_decay
        if weight_decay <= 0 or not record.objective or record.grad_norm is None:
            return None
        return record.grad_norm**2 / (2.0 * weight_decay * record.objective)

    def certificate_likely(self, record: EpochRecord) -> bool:
        """Whether a certificate may meet optim.tol now: the estimate (`gap_estimate`), times what the
        last certificate found over its estimate, is within LIKELY tol. Deterministic: a function of
        the run's numbers, so a run certifies the same epochs on any machine."""
        tol, estimate = self.settings.tol, self.gap_estimate(record)
        return tol is not None and estimate is not None and estimate * self.bound_ratio <= LIKELY * tol

    def certified(self, record: EpochRecord) -> bool:
        """Whether ``record``'s bound meets optim.tol (never when tol is null: fixed epochs)."""
        tol = self.settings.tol
        return tol is not None and record.gap_bound is not None and record.gap_bound <= tol

    def comm_seconds(self) -> float | None:
        """Seconds spent communicating with the data so far (None: the rows are in this process)."""
        return None

    def objective(self) -> tuple[float, float]:
        return evaluate_objective(self.coef, self.intercept, self.train, self.settings, self.gradient.full_pass_work)

    def state(self, epoch: int) -> TrainingState:
        """A copy of everything needed to continue after ``epoch`` epochs."""
        stopper = self.stopper
        return TrainingState(
            epoch=epoch,
            n_classes=self.n_classes,
            n_features=self.train.n_features,
            weights=self.weights.copy(),
            velocity=[velocity.copy() for velocity in self.sgd.velocity],
            rng_state=self.rng.bit_generator.state,
            history=list(self.history),
            early_stopping=None if stopper is None else stopper.state(),
            best_params=[] if stopper is None else [param.copy() for param in stopper.best_params],
            full_batch=None if self.full is None else self.full.state(),
        )

    def finish(self) -> tuple[FitResult, TrainingState]:
        """The result (best weights when early stopping kept some) and the final state, which
        keeps the last weights so that a longer run continues from them."""
        final = self.state(len(self.history))
        last = self.history[-1]
        if last.objective is None:  # early stopping ended the run on an epoch the schedule skipped
            last.objective, last.grad_norm = self.objective()
            last.gap_bound = self.certify()
        objective, grad_norm, gap_bound = last.objective, last.grad_norm, last.gap_bound
        stopper = self.stopper
        if stopper is not None:
            for param, best in zip(self.params, stopper.best_params, strict=True):
                param[...] = best
            (objective, grad_norm), gap_bound = self.objective(), self.certify()
            if stopper.triggered:
                self.stopped_by = "early_stopping"
        tol = DEFAULT_TOL if self.settings.tol is None else self.settings.tol
        final.history = list(self.history)
        final.finished = True
        final.summary = {
            "epochs_run": len(self.history),
            "objective": objective,
            "grad_norm": grad_norm,
            "stopped_early": stopper is not None and stopper.triggered,
            "best_epoch": None if stopper is None else stopper.best_epoch,
            "seconds": self.previous_seconds + time.perf_counter() - self.started,
            "lr": self.settings.base_lr,
            "gap_bound": gap_bound,
            "converged": gap_bound is not None and gap_bound <= tol,
            "stopped_by": self.stopped_by,
            "tol": self.settings.tol,
            "certifiable": self.certifying and self.settings.weight_decay > 0,  # False: gap_bound is always None
        }
        return final.result(), final

def gradient_estimator(settings: Settings) -> Callable[..., gradients.PlainGradient]:
    """The class that estimates each step's gradient: the fast kernels for cross-entropy +
    softmax at T = 1, else the generic (allocating) estimator of `softreg.train.generic`."""
    if losses.is_fast_path(settings.loss, settings.normalizer, settings.temperature):
        return gradients.ESTIMATORS[settings.variance_reduction]
    from softreg.train import generic

    return functools.partial(
        generic.ESTIMATORS[settings.variance_reduction],
        loss=settings.loss, normalizer=settings.normalizer, temperature=settings.temperature,
    )
