"""The training loop: minibatch SGD on J(W, b) from a zero start. It never prints.

``fit`` consumes one iterator of minibatches per epoch, so a streamed or distributed
source can plug in without touching the model code.
"""

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from softreg import softmax
from softreg.data import iter_minibatches
from softreg.errors import DivergedError
from softreg.optim import SGD, EarlyStopping, learning_rate

HISTORY_FIELDS = ("epoch", "lr", "train_loss", "objective", "grad_norm", "val_loss", "val_accuracy", "seconds")
EVAL_BUDGET = 0.1  # adaptive eval_every keeps full-data evaluation under this share of training time


@dataclass
class EpochRecord:
    """One row of ``history.csv``; ``None`` where a value was not computed."""

    epoch: int
    lr: float
    train_loss: float
    objective: object = None
    grad_norm: object = None
    val_loss: object = None
    val_accuracy: object = None
    seconds: float = 0.0


@dataclass
class FitResult:
    """The trained weights and how training went.

    coef : ndarray of shape (n_classes, n_features)
    intercept : ndarray of shape (n_classes,)
    """

    coef: np.ndarray
    intercept: np.ndarray
    history: list = field(default_factory=list)
    objective: float = math.nan
    grad_norm: float = math.nan
    stopped_early: bool = False
    best_epoch: object = None
    seconds: float = 0.0

    def summary(self):
        return {
            "epochs_run": len(self.history),
            "objective": self.objective,
            "grad_norm": self.grad_norm,
            "stopped_early": self.stopped_early,
            "best_epoch": self.best_epoch,
            "seconds": self.seconds,
        }


def evaluate_objective(coef, intercept, part, weight_decay, fit_intercept=True):
    """Training objective J and ||grad J|| over a whole part (the intercept's gradient
    counts only when the intercept is fitted)."""
    _, objective, grad_coef, grad_intercept = softmax.full_loss_gradient(coef, intercept, part.X, part.y, weight_decay)
    return objective, softmax.gradient_norm(grad_coef, grad_intercept if fit_intercept else grad_intercept[:0])


def validation(coef, intercept, part):
    """Mean cross-entropy and accuracy on a validation part."""
    logits = softmax.decision_function(coef, intercept, part.X)
    log_proba = softmax.log_softmax(logits)
    loss = float(-log_proba[np.arange(part.n_samples), part.y].mean())
    return loss, float(np.mean(logits.argmax(axis=1) == part.y))


@np.errstate(over="ignore", invalid="ignore")  # divergence is detected and reported, not warned about
def fit(train, val, n_classes, model, optim, batch_rng, eval_every=None, on_epoch=None, on_step=None):
    """Train softmax regression by minibatch SGD.

    Parameters
    ----------
    train : Part
        Standardized ``X`` (n_samples, n_features) and class indices ``y`` (n_samples,).
    val : Part or None
    n_classes : int
    model : ModelConfig
    optim : OptimConfig
    batch_rng : numpy.random.Generator
        Draws the batch order; the only randomness in training.
    eval_every : int or None
        Epochs between full-data objective evaluations; None adapts it so that they
        cost under 10% of training time. The last epoch is always evaluated.
    on_epoch : callable(EpochRecord, total_epochs) or None
        Called after every epoch (progress display).
    on_step : callable(coef, intercept) or None
        Called after every SGD step with the live (not copied) weights, e.g. to follow
        the trajectory step by step (``compare-logistic``). It must not modify them.

    Returns
    -------
    FitResult

    Raises
    ------
    DivergedError
        When the loss or the weights stop being finite.
    """
    dtype = train.X.dtype
    n_features = train.X.shape[1]
    coef = np.zeros((n_classes, n_features), dtype=dtype)
    intercept = np.zeros(n_classes, dtype=dtype)
    params = [coef, intercept] if model.fit_intercept else [coef]
    sgd = SGD(momentum=optim.momentum, nesterov=optim.nesterov)
    stopper = EarlyStopping(**optim.early_stopping) if optim.early_stopping and val is not None else None
    steps_per_epoch = math.ceil(train.n_samples / optim.batch_size)
    result = FitResult(coef=coef, intercept=intercept)
    objective_args = (model.weight_decay, model.fit_intercept)
    train_seconds = eval_seconds = 0.0
    started = time.perf_counter()
    for epoch in range(1, optim.epochs + 1):
        epoch_start = time.perf_counter()
        loss_sum = 0.0
        for step, (X_batch, y_batch) in enumerate(iter_minibatches(train.X, train.y, optim.batch_size, batch_rng)):
            lr = _lr(optim, epoch - 1 + step / steps_per_epoch)
            data_loss, objective, grad_coef, grad_intercept = softmax.loss_gradient(
                coef, intercept, X_batch, y_batch, model.weight_decay
            )
            if not math.isfinite(objective):  # includes ||W||^2: catches weights on their way to inf
                raise DivergedError(epoch, optim.lr)
            loss_sum += data_loss * len(y_batch)
            sgd.step(params, (grad_coef, grad_intercept), lr)
            if on_step is not None:
                on_step(coef, intercept)
        if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
            raise DivergedError(epoch, optim.lr)
        record = EpochRecord(epoch=epoch, lr=_lr(optim, epoch - 1), train_loss=loss_sum / train.n_samples)
        eval_start = time.perf_counter()
        train_seconds += eval_start - epoch_start
        if _evaluation_due(epoch, optim.epochs, eval_every, train_seconds, eval_seconds, result.history):
            record.objective, record.grad_norm = evaluate_objective(coef, intercept, train, *objective_args)
        if val is not None:
            record.val_loss, record.val_accuracy = validation(coef, intercept, val)
        eval_seconds += time.perf_counter() - eval_start
        record.seconds = time.perf_counter() - epoch_start
        result.history.append(record)
        if on_epoch is not None:
            on_epoch(record, optim.epochs)
        if stopper is not None and stopper.update(epoch, record.val_loss, params):
            result.stopped_early = True
            break
    last = result.history[-1]
    if last.objective is None:  # early stopping ended the run on an epoch the schedule skipped
        last.objective, last.grad_norm = evaluate_objective(coef, intercept, train, *objective_args)
    if stopper is not None:
        result.best_epoch = stopper.best_epoch
        for param, best in zip(params, stopper.best_params):
            param[...] = best
    result.objective, result.grad_norm = evaluate_objective(coef, intercept, train, *objective_args)
    result.seconds = time.perf_counter() - started
    return result


def _lr(optim, progress):
    return learning_rate(
        optim.schedule, optim.lr, progress, optim.epochs, step_size=optim.step_size, gamma=optim.gamma, decay=optim.decay
    )


def _evaluation_due(epoch, epochs, eval_every, train_seconds, eval_seconds, history):
    if epoch in (1, epochs):
        return True
    if eval_every is not None:
        return epoch % eval_every == 0
    evaluations = sum(record.objective is not None for record in history)
    cost = eval_seconds / max(evaluations, 1)
    return eval_seconds + cost <= EVAL_BUDGET * train_seconds


def history_rows(history):
    """History as a list of dicts in ``HISTORY_FIELDS`` order."""
    return [{name: asdict(record)[name] for name in HISTORY_FIELDS} for record in history]
