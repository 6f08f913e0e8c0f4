"""The training core: minibatch SGD on J(W, b) from a zero start.

It takes the data as a `TrainingData` (in-memory arrays by default; a streamed source
plugs in through the same three members), or as a `ShardedSource` whose shards, here or on
other machines, answer each step with sums (`softreg.engine`), and the numbers of the model
and the optimiser as `Settings`. It knows nothing of configs, files or run directories,
and never prints: progress and checkpoints go through callbacks.
"""

from __future__ import annotations

import time

import numpy as np

from softreg.errors import Interrupted
from softreg.kernels import Matrix
from softreg.train.data import ArrayData, TrainingData, as_training_data, center_of, data_logits
from softreg.train.loop import CheckpointCallback, EpochCallback, StepCallback, _Loop, gradient_estimator
from softreg.train.measures import (
    EXPLOSION_FACTOR,
    diverged,
    evaluate_objective,
    resolve_learning_rate,
    stable_learning_rate,
    validation,
)
from softreg.train.rate import AUTO, auto_learning_rate
from softreg.train.settings import Settings
from softreg.train.sharded import PartialSums, ShardedLoop, ShardedSource, add_partials
from softreg.train.state import CERTIFICATE_PASSES, EpochRecord, FitResult, TrainingState, evaluation_due

__all__ = [
    "AUTO",
    "EXPLOSION_FACTOR",
    "ArrayData",
    "EpochRecord",
    "FitResult",
    "PartialSums",
    "Settings",
    "ShardedSource",
    "TrainingData",
    "TrainingState",
    "add_partials",
    "as_training_data",
    "auto_learning_rate",
    "center_of",
    "data_logits",
    "diverged",
    "evaluate_objective",
    "fit",
    "gradient_estimator",
    "resolve_learning_rate",
    "stable_learning_rate",
    "validation",
]


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
    train : TrainingData or (X, y) or ShardedSource
        Standardized ``X`` (n_samples, n_features) and class indices ``y`` (n_samples,); a
        `ShardedSource` trains on its shards' sums (`softreg.train.sharded`).
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
    loop = (ShardedLoop(train, val, n_classes, settings, rng, clock) if isinstance(train, ShardedSource)
            else _Loop(train, val, n_classes, settings, rng, clock))
    if start is not None:
        loop.restore(start)
    state, saved = start, True  # a start state is the checkpoint on disk already
    try:
        for epoch in range(loop.first_epoch, settings.epochs + 1):
            started, choosing = time.perf_counter() - choosing, 0.0
            comm_started = loop.comm_seconds()
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
                CERTIFICATE_PASSES if loop.certifying else 1,
            )
            loop.evaluate(record, due)
            record.seconds = time.perf_counter() - started
            comm_now = loop.comm_seconds()
            if comm_started is not None and comm_now is not None:
                record.comm_seconds = comm_now - comm_started
            loop.history.append(record)
            if on_epoch is not None:
                on_epoch(record, settings.epochs)
            stop = (
                loop.stopper is not None
                and record.val_loss is not None  # always, with a stopper: it needs validation data
                and loop.stopper.update(epoch, record.val_loss, loop.params)
            )
            if not stop and loop.certified(record):
                stop, loop.stopped_by = True, "tol"
            stop = stop or loop.stopped_by == "rounding"  # full-batch steps found no decrease of J
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
