"""The training core: minibatch SGD on J(W, b) from a zero start.

It takes the data as a `TrainingData` (in-memory arrays by default; a streamed or
distributed source plugs in through the same three members) and the numbers of the model
and the optimiser as `Settings`. It knows nothing of configs, files or run directories,
and never prints: progress and checkpoints go through callbacks.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from softreg import kernels, losses, softmax
from softreg.errors import DivergedError, Interrupted
from softreg.kernels import Batch, Matrix
from softreg.optim import SGD, EarlyStopping, Schedule
from softreg.train.rate import AUTO, auto_learning_rate
from softreg.train.state import EpochRecord, FitResult, TrainingState, evaluation_due

__all__ = [
    "AUTO",
    "ArrayData",
    "EpochRecord",
    "FitResult",
    "Settings",
    "TrainingData",
    "TrainingState",
    "auto_learning_rate",
    "diverged",
    "evaluate_objective",
    "fit",
    "resolve_learning_rate",
    "stable_learning_rate",
    "validation",
]


@dataclass(frozen=True)
class Settings:
    """The model's and the optimiser's numbers: everything `fit` needs besides the data.

    The names and defaults are those of the config's ``model`` and ``optim`` sections.
    """

    weight_decay: float = 1e-4  # lambda in J = mean loss + lambda/2 ||W||^2
    fit_intercept: bool = True
    loss: str = "cross_entropy"  # or squared_error (see softreg.losses)
    normalizer: str = "softmax"  # or taylor, spherical
    temperature: float = 1.0  # p = normalizer(z / temperature)
    lr: float | str = 0.1  # or "auto": `auto_learning_rate` of the training data, chosen when `fit` starts
    batch_size: int = 64
    epochs: int = 20
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "constant"  # see optim.learning_rate
    step_size: int = 10  # schedule=step
    gamma: float = 0.1  # schedule=step
    decay: float = 1.0  # schedule=inverse_time
    patience: int | None = None  # early stopping on the validation loss; None disables it
    min_delta: float = 0.0
    variance_reduction: str = "none"  # or "svrg"
    eval_every: int | None = None  # epochs between full-data objectives; None: from the data's size

    def schedule_for(self, n_samples: int) -> Schedule:
        steps = math.ceil(n_samples / self.batch_size)
        return Schedule(self.schedule, self.base_lr, self.epochs, steps, self.step_size, self.gamma, self.decay)

    @property
    def base_lr(self) -> float:
        """``lr`` as a number; "auto" must have been resolved (`resolve_learning_rate`)."""
        if isinstance(self.lr, str):
            raise ValueError(f"lr={self.lr!r} is chosen from the data: resolve it first (resolve_learning_rate)")
        return self.lr


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
        return kernels.array_chunks(self.X, self.y, rows, self.sample_weight)


def center_of(data: object) -> np.ndarray | None:
    """The implicit centring of a data source's sparse rows (None: its rows are as stored)."""
    return getattr(data, "center", None)


def data_logits(coef: np.ndarray, intercept: np.ndarray, X: Matrix, center: np.ndarray | None = None) -> np.ndarray:
    """Logits (n_samples, n_classes) of the rows ``X - center`` (``center`` None: of ``X``)."""
    if center is not None:
        intercept = intercept - coef @ center
    return softmax.decision_function(coef, intercept, X)


def as_training_data(data: TrainingData | tuple[Matrix, np.ndarray]) -> TrainingData:
    """Arrays ``(X, y)`` as `ArrayData`; a `TrainingData` as it is."""
    return ArrayData(*data) if isinstance(data, tuple) else data


EpochCallback = Callable[[EpochRecord, int], None]
StepCallback = Callable[[np.ndarray, np.ndarray], None]
CheckpointCallback = Callable[[TrainingState], None]


@np.errstate(over="ignore", invalid="ignore")  # divergence is detected and reported, not warned about
def fit(
    train: TrainingData | tuple[Matrix, np.ndarray],
    n_classes: int,
    settings: Settings,
    rng: np.random.Generator,
    *,
    val: TrainingData | tuple[Matrix, np.ndarray] | None = None,
    start: TrainingState | None = None,
    on_epoch: EpochCallback | None = None,
    on_step: StepCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    checkpoint_every: int = 1,
) -> FitResult:
    """Train softmax regression by minibatch SGD from zero weights (or from ``start``).

    Parameters
    ----------
    train : TrainingData or (X, y)
        Standardized ``X`` (n_samples, n_features) and class indices ``y`` (n_samples,).
    n_classes : int
    settings : Settings
    rng : numpy.random.Generator
        Draws the batch order: the only randomness in training.
    val : TrainingData or (X, y) or None
        Its loss and accuracy are logged each epoch and drive early stopping.
    start : TrainingState or None
        Continue from this state (a checkpoint), bit for bit.
    on_epoch : callable(EpochRecord, total_epochs), after every epoch (progress display).
    on_step : callable(coef, intercept), after every step with the live weights (read only).
    on_checkpoint : callable(TrainingState), every ``checkpoint_every`` epochs and at the end.

    Returns
    -------
    FitResult
        Its ``lr`` is the base rate used: the number ``settings.lr`` chose when "auto".

    Raises
    ------
    DivergedError
        When the loss or the weights stop being finite, or the loss explodes.
    Interrupted
        On KeyboardInterrupt: carries the state after the last completed epoch.
    """
    train, val = as_training_data(train), None if val is None else as_training_data(val)
    clock = time.perf_counter()
    settings = resolve_learning_rate(train, settings)
    choosing = time.perf_counter() - clock  # the time to choose lr: part of the first epoch's seconds
    loop = _Loop(train, val, n_classes, settings, rng, clock)
    if start is not None:
        loop.restore(start)
    state, saved = start, True  # a start state is the checkpoint on disk already
    try:
        for epoch in range(loop.first_epoch, settings.epochs + 1):
            started, choosing = time.perf_counter() - choosing, 0.0
            train_loss = loop.sgd_epoch(epoch, on_step)
            record = EpochRecord(epoch=epoch, lr=loop.schedule.rate(epoch, 0), train_loss=train_loss)
            due = evaluation_due(
                epoch,
                settings.epochs,
                settings.eval_every,
                train.n_samples,
                train.n_features,
                n_classes,
                settings.batch_size,
            )
            loop.evaluate(record, due)
            record.seconds = time.perf_counter() - started
            loop.history.append(record)
            if on_epoch is not None:
                on_epoch(record, settings.epochs)
            stop = (
                loop.stopper is not None
                and record.val_loss is not None  # always, with a stopper: it needs validation data
                and loop.stopper.update(epoch, record.val_loss, loop.params)
            )
            state, saved = loop.state(epoch), False
            if on_checkpoint is not None and epoch % checkpoint_every == 0:
                on_checkpoint(state)
                saved = True
            if stop:
                break
        result, state = loop.finish()
        saved = False
        if on_checkpoint is not None:
            on_checkpoint(state)
    except KeyboardInterrupt:
        raise Interrupted(state, saved=saved) from None
    return result


class _Loop:
    """The live objects of one `fit`: weights, optimiser, gradient estimator, stopper, history."""

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
        if start.epoch >= 1:  # SVRG's snapshot is a function of the weights: recomputed exactly
            self.gradient.end_epoch(self.coef, self.intercept, self.train)
        self.first_epoch = start.epoch + 1
        if self.stopper is not None and self.stopper.triggered:  # resumed after early stopping fired
            self.first_epoch = self.settings.epochs + 1

    def sgd_epoch(self, epoch: int, on_step: StepCallback | None) -> float:
        """One pass of minibatch steps; returns the mean batch loss."""
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

    def evaluate(self, record: EpochRecord, objective_due: bool) -> None:
        """The full-data objective (free with SVRG; else when due) and the validation figures."""
        evaluated = self.gradient.end_epoch(self.coef, self.intercept, self.train)
        if evaluated is None and objective_due:
            evaluated = self.objective()
        if evaluated is not None:
            record.objective, record.grad_norm = evaluated
        if self.val is not None:
            settings = self.settings
            record.val_loss, record.val_accuracy = validation(
                self.coef, self.intercept, self.val,
                loss=settings.loss, normalizer=settings.normalizer, temperature=settings.temperature,
            )

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
        )

    def finish(self) -> tuple[FitResult, TrainingState]:
        """The result (best weights when early stopping kept some) and the final state, which
        keeps the last weights so that a longer run continues from them."""
        final = self.state(len(self.history))
        last = self.history[-1]
        if last.objective is None:  # early stopping ended the run on an epoch the schedule skipped
            last.objective, last.grad_norm = self.objective()
        objective, grad_norm = last.objective, last.grad_norm
        stopper = self.stopper
        if stopper is not None:
            for param, best in zip(self.params, stopper.best_params, strict=True):
                param[...] = best
            objective, grad_norm = self.objective()
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
        }
        return final.result(), final


def gradient_estimator(settings: Settings) -> Callable[..., kernels.PlainGradient]:
    """The class that estimates each step's gradient: the fast kernels for cross-entropy +
    softmax at T = 1, else the generic (allocating) estimator of `softreg.train.generic`."""
    if losses.is_fast_path(settings.loss, settings.normalizer, settings.temperature):
        return kernels.ESTIMATORS[settings.variance_reduction]
    from softreg.train import generic

    return functools.partial(
        generic.ESTIMATORS[settings.variance_reduction],
        loss=settings.loss, normalizer=settings.normalizer, temperature=settings.temperature,
    )


def evaluate_objective(
    coef: np.ndarray,
    intercept: np.ndarray,
    data: TrainingData,
    settings: Settings,
    work: kernels.Workspace | None = None,
) -> tuple[float, float]:
    """Objective J (the configured loss's mean + lambda/2 ||W||^2) and ||grad J|| over all of
    ``data`` (the intercept's gradient counts only when the intercept is fitted), in chunks of
    ``work.max_rows`` rows."""
    if work is None:
        n_classes, n_features = coef.shape
        rows = kernels.chunk_rows(data.n_samples, data.n_features, n_classes)
        work = kernels.Workspace(n_classes, n_features, rows, coef.dtype)
    if losses.is_fast_path(settings.loss, settings.normalizer, settings.temperature):
        _, objective, grad_coef, grad_intercept = kernels.chunked_loss_gradient(
            coef, intercept, data.chunks(work.max_rows), data.n_samples, settings.weight_decay, work, center_of(data)
        )
    else:
        _, objective, grad_coef, grad_intercept = losses.chunked_loss_gradient(
            coef, intercept, data.chunks(work.max_rows), data.n_samples, settings.weight_decay,
            settings.loss, settings.normalizer, settings.temperature, center_of(data),
        )
    return objective, softmax.gradient_norm(grad_coef, grad_intercept if settings.fit_intercept else grad_intercept[:0])


def validation(
    coef: np.ndarray,
    intercept: np.ndarray,
    data: TrainingData,
    rows: int = 8192,
    *,
    loss: str = "cross_entropy",
    normalizer: str = "softmax",
    temperature: float = 1.0,
) -> tuple[float, float]:
    """Mean loss and accuracy over ``data`` (weighted means when it has sample weights),
    ``rows`` at a time: cross-entropy from `softmax.log_softmax` by default, else the given
    loss of `softreg.losses`, with the prediction ``argmax p`` of the given normalizer."""
    fast = losses.is_fast_path(loss, normalizer, temperature)
    loss_sum = correct = 0.0
    center = center_of(data)
    for X, y, weight in data.chunks(rows):
        logits = data_logits(coef, intercept, X, center)  # (rows, K)
        if fast:
            sample_losses = -softmax.log_softmax(logits)[np.arange(len(y)), y]
            hits = logits.argmax(axis=1) == y
        else:
            sample_losses, proba = losses.sample_losses(logits, y, loss, normalizer, temperature)
            hits = proba.argmax(axis=1) == y
        if weight is None:
            loss_sum += float(sample_losses.sum())
            correct += int(np.count_nonzero(hits))
        else:
            loss_sum += float(np.dot(weight, sample_losses))
            correct += float(np.dot(weight, hits))
    return loss_sum / data.n_samples, correct / data.n_samples


EXPLOSION_FACTOR = 1e3  # a training loss this many times the first epoch's is a divergence


def _exploded(train_loss: float, history: list[EpochRecord], n_classes: int) -> bool:
    """Whether the loss has exploded: above EXPLOSION_FACTOR times the first epoch's (or
    log K, the loss of the zero start, when that is larger). SGD that merely oscillates
    stays far below; a rate past the stability bound grows the loss geometrically."""
    reference = max(history[0].train_loss if history else 0.0, math.log(n_classes))
    return train_loss > EXPLOSION_FACTOR * reference


def resolve_learning_rate(data: TrainingData, settings: Settings) -> Settings:
    """``settings`` with ``lr="auto"`` replaced by `auto_learning_rate` of ``data`` (unchanged otherwise)."""
    if settings.lr == AUTO:
        return dataclasses.replace(settings, lr=auto_learning_rate(data, settings))
    return settings


def stable_learning_rate(data: TrainingData, weight_decay: float, momentum: float) -> float:
    """Half the heavy-ball stability bound 2 (1 + momentum) / L for this data.

    The cross-entropy's Hessian in the logits is diag(p) - pp^T, whose norm is at most 1/2,
    so J is L-smooth with L <= weight_decay + max_i ||x_i||^2 / 2.
    """
    largest = 0.0
    center = center_of(data)
    for X, _, _ in data.chunks(65536):
        squares = np.einsum("ij,ij->i", X, X) if isinstance(X, np.ndarray) else np.asarray(X.multiply(X).sum(axis=1))
        if center is not None:  # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2
            squares = squares.ravel() - 2 * np.asarray(X @ center).ravel() + float(center @ center)
        largest = max(largest, float(squares.max(initial=0.0)))
    return (1.0 + momentum) / (weight_decay + 0.5 * largest)


def diverged(epoch: int, data: TrainingData, settings: Settings) -> DivergedError:
    """DivergedError suggesting a rate that is stable for this data."""
    stable = stable_learning_rate(data, settings.weight_decay, settings.momentum)
    return DivergedError(epoch, settings.base_lr, suggested=min(settings.base_lr / 10, stable))
