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
from softreg.errors import DivergedError, Interrupted
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
    state: object = None  # the finished TrainingState (what the final checkpoint holds)

    def summary(self):
        return {
            "epochs_run": len(self.history),
            "objective": self.objective,
            "grad_norm": self.grad_norm,
            "stopped_early": self.stopped_early,
            "best_epoch": self.best_epoch,
            "seconds": self.seconds,
        }


@dataclass
class TrainingState:
    """Everything training needs to continue after ``epoch`` completed epochs, bit for bit.

    weights : ndarray of shape (n_classes * n_features + n_classes,), coef then intercept
    velocity : list of ndarray, the optimizer's momentum buffers
    rng_state : dict, the batch-order generator's ``bit_generator.state``
    """

    epoch: int
    n_classes: int
    n_features: int
    weights: np.ndarray
    velocity: list
    rng_state: dict
    history: list
    early_stopping: object = None  # {"best_loss", "best_epoch", "waited"} or None
    best_params: list = field(default_factory=list)
    finished: bool = False
    summary: object = None  # FitResult.summary() once finished

    @property
    def stopped_early(self):
        return bool(self.summary and self.summary["stopped_early"])

    def to_checkpoint(self):
        """Plain arrays and JSON-able metadata (see `softreg.rundir.save_checkpoint`)."""
        arrays = {"weights": self.weights}
        arrays.update({f"velocity_{index}": array for index, array in enumerate(self.velocity)})
        arrays.update({f"best_{index}": array for index, array in enumerate(self.best_params)})
        meta = {
            "epoch": self.epoch,
            "n_classes": self.n_classes,
            "n_features": self.n_features,
            "n_velocity": len(self.velocity),
            "n_best": len(self.best_params),
            "rng_state": self.rng_state,
            "history": [asdict(record) for record in self.history],
            "early_stopping": self.early_stopping,
            "finished": self.finished,
            "summary": self.summary,
        }
        return arrays, meta

    @classmethod
    def from_checkpoint(cls, arrays, meta):
        return cls(
            epoch=meta["epoch"],
            n_classes=meta["n_classes"],
            n_features=meta["n_features"],
            weights=arrays["weights"],
            velocity=[arrays[f"velocity_{index}"] for index in range(meta["n_velocity"])],
            rng_state=meta["rng_state"],
            history=[EpochRecord(**record) for record in meta["history"]],
            early_stopping=meta.get("early_stopping"),
            best_params=[arrays[f"best_{index}"] for index in range(meta["n_best"])],
            finished=meta["finished"],
            summary=meta.get("summary"),
        )

    def result(self):
        """The FitResult of a finished state: the best weights when early stopping kept some."""
        size = self.n_classes * self.n_features
        weights = self.weights.copy()
        if self.best_params:  # one flat vector, or the coef alone when the intercept is not fitted
            weights[: self.best_params[0].size] = self.best_params[0].ravel()
        return FitResult(
            coef=weights[:size].reshape(self.n_classes, self.n_features),
            intercept=weights[size:],
            history=list(self.history),
            objective=self.summary["objective"],
            grad_norm=self.summary["grad_norm"],
            stopped_early=self.summary["stopped_early"],
            best_epoch=self.summary["best_epoch"],
            seconds=self.summary["seconds"],
            state=self,
        )


def evaluate_objective(coef, intercept, part, weight_decay, fit_intercept=True, work=None):
    """Training objective J and ||grad J|| over a whole part (the intercept's gradient
    counts only when the intercept is fitted), in chunks of ``work`` (a `softmax.Workspace`;
    None makes one sized by `chunk_rows`)."""
    if work is None:
        work = softmax.Workspace(*coef.shape, chunk_rows(part.X, len(coef)), coef.dtype)
    _, objective, grad_coef, grad_intercept = softmax.chunked_loss_gradient(
        coef, intercept, part.X, part.y, weight_decay, work
    )
    return objective, softmax.gradient_norm(grad_coef, grad_intercept if fit_intercept else grad_intercept[:0])


def validation(coef, intercept, part, rows=8192):
    """Mean cross-entropy and accuracy on a validation part, ``rows`` at a time."""
    loss_sum = correct = 0.0
    for start in range(0, part.n_samples, rows):
        y = part.y[start:start + rows]
        logits = softmax.decision_function(coef, intercept, part.X[start:start + rows])
        log_proba = softmax.log_softmax(logits)
        loss_sum -= float(log_proba[np.arange(len(y)), y].sum())
        correct += int(np.count_nonzero(logits.argmax(axis=1) == y))
    return loss_sum / part.n_samples, correct / part.n_samples


def chunk_rows(X, n_classes, at_least=256, at_most=8192):
    """Rows per chunk of a full-data pass: its (n_classes, rows) logits stay within an eighth
    of the size of ``X`` (letters has more classes than features), and no fewer than a batch."""
    n_samples, n_features = X.shape
    return int(min(n_samples, max(at_least, min(at_most, n_samples * n_features // (8 * n_classes)))))


@np.errstate(over="ignore", invalid="ignore")  # divergence is detected and reported, not warned about
def fit(
    train,
    val,
    n_classes,
    model,
    optim,
    batch_rng,
    eval_every=None,
    on_epoch=None,
    on_step=None,
    start=None,
    on_checkpoint=None,
    checkpoint_every=1,
):
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
        Epochs between full-data objective evaluations (and the first); None adapts it
        so that all of them, the last included, cost under 10% of training time where the
        last alone fits. The last epoch is always evaluated.
    on_epoch : callable(EpochRecord, total_epochs) or None
        Called after every epoch (progress display).
    on_step : callable(coef, intercept) or None
        Called after every SGD step with the live (not copied) weights, e.g. to follow
        the trajectory step by step (``compare-logistic``). It must not modify them.
    start : TrainingState or None
        Continue from this state (a checkpoint) instead of from zero.
    on_checkpoint : callable(TrainingState) or None
        Called every ``checkpoint_every`` epochs and once more when training has
        finished, with a copy of everything needed to continue.

    Returns
    -------
    FitResult

    Raises
    ------
    DivergedError
        When the loss or the weights stop being finite.
    Interrupted
        On KeyboardInterrupt (Ctrl-C, or SIGTERM mapped to it): carries the state after
        the last completed epoch, so that no half-done step is ever saved.
    """
    dtype = train.X.dtype
    n_features = train.X.shape[1]
    # coef and intercept are views of one vector, as is the gradient in the workspace, so
    # that the optimizer updates both with one operation per step
    weights = np.zeros(n_classes * n_features + n_classes, dtype=dtype)
    coef = weights[: n_classes * n_features].reshape(n_classes, n_features)
    intercept = weights[n_classes * n_features:]
    svrg = optim.variance_reduction == "svrg"
    work = softmax.Workspace(n_classes, n_features, min(optim.batch_size, train.n_samples), dtype, n_models=1 + svrg)
    full_pass_work = softmax.Workspace(n_classes, n_features, chunk_rows(train.X, n_classes, optim.batch_size), dtype)
    params, grads = ([weights], [work.gradient]) if model.fit_intercept else ([coef], [work.grad_coef])
    sgd = SGD(momentum=optim.momentum, nesterov=optim.nesterov)
    stopper = EarlyStopping(**optim.early_stopping) if optim.early_stopping and val is not None else None
    result = FitResult(coef=coef, intercept=intercept)
    objective_args = (model.weight_decay, model.fit_intercept)
    budget = _EvaluationBudget(eval_every, optim.epochs)
    snapshot = None  # SVRG's first epoch is plain SGD: a warm start, as in Johnson & Zhang (2013)
    started = time.perf_counter()
    if start is not None:
        _restore(start, weights, sgd, stopper, batch_rng, result)
        if svrg and start.epoch >= 1:  # the snapshot is a function of the weights: recompute it exactly
            snapshot = _snapshot(coef, intercept, train, model, full_pass_work)[0]
    first_epoch = 1 + (start.epoch if start else 0)
    if stopper is not None and stopper.waited >= stopper.patience:  # resumed after early stopping triggered
        result.stopped_early, first_epoch = True, optim.epochs + 1
    state, state_saved = start, True  # a start state is the checkpoint on disk already
    try:
        for epoch in range(first_epoch, optim.epochs + 1):
            epoch_start = time.perf_counter()
            train_loss = _sgd_epoch(epoch, coef, intercept, train, model, optim, sgd, params, grads, work, snapshot, batch_rng, on_step)
            if not np.isfinite(weights).all():
                raise diverged(epoch, train, model, optim)
            record = EpochRecord(epoch=epoch, lr=_lr(optim, epoch - 1), train_loss=train_loss)
            eval_start = time.perf_counter()
            budget.train_seconds += eval_start - epoch_start
            if svrg:  # the next epoch's snapshot is this epoch's evaluation: it costs nothing extra
                snapshot, record.objective, record.grad_norm = _snapshot(coef, intercept, train, model, full_pass_work)
            elif budget.due(epoch, lambda: _evaluation_cost(coef, intercept, train, full_pass_work)):
                evaluated = time.perf_counter()
                record.objective, record.grad_norm = evaluate_objective(coef, intercept, train, *objective_args, full_pass_work)
                budget.cost = time.perf_counter() - evaluated
            if val is not None:
                record.val_loss, record.val_accuracy = validation(coef, intercept, val)
            budget.eval_seconds += time.perf_counter() - eval_start
            record.seconds = time.perf_counter() - epoch_start
            result.history.append(record)
            if on_epoch is not None:
                on_epoch(record, optim.epochs)
            stop = stopper is not None and stopper.update(epoch, record.val_loss, params)
            state, state_saved = _state(epoch, n_classes, n_features, weights, sgd, stopper, batch_rng, result), False
            if on_checkpoint is not None and epoch % checkpoint_every == 0:
                on_checkpoint(state)
                state_saved = True
            if stop:
                result.stopped_early = True
                break
        # the final state keeps the last weights (a longer run continues from them), taken
        # before early stopping puts the best ones into the result
        final = _state(len(result.history), n_classes, n_features, weights, sgd, stopper, batch_rng, result)
        _finish(result, train, model, stopper, params, full_pass_work, started, start)
        final.finished, final.summary = True, result.summary()
        result.state = state = final
        state_saved = False
        if on_checkpoint is not None:
            on_checkpoint(final)
    except KeyboardInterrupt:
        raise Interrupted(state, saved=state_saved) from None
    return result


def _finish(result, train, model, stopper, params, work, started, start):
    """The final objective (of the best weights when early stopping restores them) and the time."""
    objective_args = (model.weight_decay, model.fit_intercept)
    coef, intercept = result.coef, result.intercept
    last = result.history[-1]
    if last.objective is None:  # early stopping ended the run on an epoch the schedule skipped
        last.objective, last.grad_norm = evaluate_objective(coef, intercept, train, *objective_args, work)
    result.objective, result.grad_norm = last.objective, last.grad_norm
    if stopper is not None:
        result.best_epoch = stopper.best_epoch
        for param, best in zip(params, stopper.best_params):
            param[...] = best
        result.objective, result.grad_norm = evaluate_objective(coef, intercept, train, *objective_args, work)
    previous = sum(record.seconds for record in start.history) if start else 0.0
    result.seconds = previous + time.perf_counter() - started


def _state(epoch, n_classes, n_features, weights, sgd, stopper, batch_rng, result):
    """A copy of the training state after ``epoch`` epochs."""
    return TrainingState(
        epoch=epoch,
        n_classes=n_classes,
        n_features=n_features,
        weights=weights.copy(),
        velocity=[velocity.copy() for velocity in sgd.velocity],
        rng_state=batch_rng.bit_generator.state,
        history=list(result.history),
        early_stopping=None if stopper is None else {
            "best_loss": stopper.best_loss, "best_epoch": stopper.best_epoch, "waited": stopper.waited
        },
        best_params=[] if stopper is None else [param.copy() for param in stopper.best_params],
    )


def _restore(start, weights, sgd, stopper, batch_rng, result):
    """Put a TrainingState back into the live objects of `fit`."""
    if start.weights.shape != weights.shape:
        raise ValueError(f"checkpoint weights have shape {start.weights.shape}, the model needs {weights.shape}")
    weights[...] = start.weights
    sgd.velocity = [velocity.copy() for velocity in start.velocity]
    batch_rng.bit_generator.state = start.rng_state
    result.history = list(start.history)
    if stopper is not None and start.early_stopping is not None:
        stopper.best_loss = start.early_stopping["best_loss"]
        stopper.best_epoch = start.early_stopping["best_epoch"]
        stopper.waited = start.early_stopping["waited"]
        stopper.best_params = tuple(param.copy() for param in start.best_params)


def _lr(optim, progress):
    return learning_rate(
        optim.schedule, optim.lr, progress, optim.epochs, step_size=optim.step_size, gamma=optim.gamma, decay=optim.decay
    )


def _snapshot(coef, intercept, part, model, work):
    """An SVRG snapshot of the current weights with the full-data gradient there, and the
    objective J and ||grad J|| it gives for free."""
    data_loss, _, grad_coef, grad_intercept = softmax.chunked_loss_gradient(coef, intercept, part.X, part.y, 0.0, work)
    snapshot = softmax.Snapshot(coef.copy(), intercept.copy(), grad_coef, grad_intercept)
    objective = data_loss + 0.5 * model.weight_decay * float(np.vdot(coef, coef))
    grad_norm = softmax.gradient_norm(
        grad_coef + model.weight_decay * coef, grad_intercept if model.fit_intercept else grad_intercept[:0]
    )
    return snapshot, objective, grad_norm


def _sgd_epoch(epoch, coef, intercept, train, model, optim, sgd, params, grads, work, snapshot, batch_rng, on_step):
    """One pass of minibatch steps over ``train`` (SVRG steps when ``snapshot`` is given).

    Returns the mean minibatch loss; raises DivergedError on a non-finite loss.
    """
    steps_per_epoch = math.ceil(train.n_samples / optim.batch_size)
    loss_sum = 0.0
    for step, (X_batch, y_batch) in enumerate(iter_minibatches(train.X, train.y, optim.batch_size, batch_rng)):
        lr = _lr(optim, epoch - 1 + step / steps_per_epoch)
        if snapshot is not None:
            data_loss = softmax.variance_reduced_gradient(coef, intercept, snapshot, X_batch, y_batch, model.weight_decay, work)
        else:
            data_loss = softmax.batch_loss_gradient(coef, intercept, X_batch, y_batch, model.weight_decay, work)
        if not math.isfinite(data_loss):  # overflowing weights make the logits, so the loss, non-finite
            raise diverged(epoch, train, model, optim)
        loss_sum += data_loss * len(y_batch)
        sgd.step(params, grads, lr)
        if on_step is not None:
            on_step(coef, intercept)
    return loss_sum / train.n_samples


def stable_learning_rate(X, weight_decay, momentum):
    """Half the heavy-ball stability bound 2 (1 + momentum) / L for this data.

    The cross-entropy's Hessian in the logits is diag(p) - pp^T, whose norm is at most 1/2,
    so J is L-smooth with L <= weight_decay + max_i ||x_i||^2 / 2.

    X : {ndarray, sparse matrix} of shape (n_samples, n_features), standardized
    """
    row_norms = np.einsum("ij,ij->i", X, X) if isinstance(X, np.ndarray) else np.asarray(X.multiply(X).sum(axis=1))
    return (1.0 + momentum) / (weight_decay + 0.5 * float(row_norms.max()))


def diverged(epoch, train, model, optim):
    """DivergedError suggesting a rate that is stable for this data."""
    stable = stable_learning_rate(train.X, model.weight_decay, optim.momentum)
    return DivergedError(epoch, optim.lr, suggested=min(optim.lr / 10, stable))


@dataclass
class _EvaluationBudget:
    """When the full-data objective is evaluated: the last epoch always; with ``eval_every``
    the first and every ``eval_every``-th; otherwise when the evaluations so far, this one and
    the final one (``cost`` seconds each) stay within EVAL_BUDGET of the training time so far."""

    eval_every: object
    epochs: int
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    cost: object = None  # seconds one full-data evaluation takes, once known

    def due(self, epoch, measure_cost):
        if epoch == self.epochs:
            return True
        if self.eval_every is not None:
            return epoch == 1 or epoch % self.eval_every == 0
        if self.cost is None:
            self.cost = measure_cost()
        return self.eval_seconds + 2 * self.cost <= EVAL_BUDGET * self.train_seconds


def _evaluation_cost(coef, intercept, part, work):
    """Seconds a full-data evaluation will take, extrapolated from timing its first chunk."""
    rows = min(work.max_rows, part.n_samples)
    started = time.perf_counter()
    softmax.batch_loss_gradient(coef, intercept, part.X[:rows], part.y[:rows], 0.0, work)
    return (time.perf_counter() - started) * part.n_samples / rows


def history_rows(history):
    """History as a list of dicts in ``HISTORY_FIELDS`` order."""
    return [asdict(record) for record in history]  # EpochRecord's fields are HISTORY_FIELDS, in order
