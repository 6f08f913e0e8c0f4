"""Learning-rate schedules, the SGD/momentum/Nesterov update and early stopping.

Everything here is linear in the gradient and in the base rate, which is why the two-class
softmax trajectory maps exactly onto logistic SGD (see `softreg.compare.logistic`): the trainer and
the logistic reference of `compare-logistic` call the same `Schedule` and the same `SGD`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

SCHEDULES = ("constant", "step", "cosine", "inverse_time")
VARIANCE_REDUCTION = ("none", "svrg")  # the gradient estimators: see kernels.variance_reduced_gradient


def learning_rate(
    schedule: str,
    base_lr: float,
    progress: float,
    total_epochs: int,
    step_size: int = 10,
    gamma: float = 0.1,
    decay: float = 1.0,
) -> float:
    """Learning rate after ``progress`` epochs (a float: epoch + fraction of it done).

    - ``constant``: ``base_lr``
    - ``step``: ``base_lr * gamma ** floor(progress / step_size)``
    - ``cosine``: ``base_lr * (1 + cos(pi * progress / total_epochs)) / 2``, annealing to 0
    - ``inverse_time``: ``base_lr / (1 + decay * progress)``
    """
    if schedule == "constant":
        return base_lr
    if schedule == "step":
        return base_lr * gamma ** math.floor(progress / step_size)
    if schedule == "cosine":
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * min(progress / total_epochs, 1.0)))
    if schedule == "inverse_time":
        return base_lr / (1.0 + decay * progress)
    raise ValueError(f"unknown schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")


def resumed_schedule_note(schedule: str, base_lr: float, done: int, old_epochs: int, new_epochs: int) -> str | None:
    """What new total epochs do to a resumed run's rates, in one sentence; None when nothing changes.

    Only ``cosine`` depends on the total (it anneals over ``optim.epochs``): with other epochs
    its curve is another one, so the rate of epoch ``done + 1`` is not the one the old curve
    would give after epoch ``done``. ``step``, ``inverse_time`` and ``constant`` continue as they were.
    """
    if schedule != "cosine" or new_epochs == old_epochs or done == 0:
        return None
    before = learning_rate(schedule, base_lr, done, old_epochs)
    after = learning_rate(schedule, base_lr, done, new_epochs)
    return (
        f"optim.epochs {new_epochs} (was {old_epochs}): the cosine schedule restarts its curve over {new_epochs} "
        f"epochs, so the rate goes from {before:.4g} (the old curve after epoch {done}) to {after:.4g} at epoch "
        f"{done + 1}; a run of {new_epochs} epochs from the start follows the new curve throughout"
    )


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule over ``epochs`` epochs of ``steps_per_epoch`` steps.

    ``rate(epoch, step)`` is the rate of step ``step`` (0-based) of epoch ``epoch``
    (1-based): the schedule evaluated at ``progress = epoch - 1 + step / steps_per_epoch``.
    Every schedule is proportional to ``base_lr``, so ``with_base_lr(2 * base_lr)`` doubles
    each step's rate (the logistic side of the two-class identity).
    """

    kind: str
    base_lr: float
    epochs: int
    steps_per_epoch: int
    step_size: int = 10
    gamma: float = 0.1
    decay: float = 1.0

    def at(self, progress: float) -> float:
        """The rate after ``progress`` epochs."""
        return learning_rate(
            self.kind, self.base_lr, progress, self.epochs, step_size=self.step_size, gamma=self.gamma, decay=self.decay
        )

    def rate(self, epoch: int, step: int) -> float:
        return self.at(epoch - 1 + step / self.steps_per_epoch)

    def with_base_lr(self, base_lr: float) -> Schedule:
        """The same schedule from another base rate: every step's rate scales with it."""
        return replace(self, base_lr=base_lr)


@dataclass
class SGD:
    """Heavy-ball / Nesterov SGD in PyTorch's convention.

    ``v <- momentum * v + g``; plain: ``w <- w - lr * v``; Nesterov: ``w <- w - lr * (g + momentum * v)``.
    With ``momentum == 0`` both reduce to ``w <- w - lr * g``. The update is applied in place.
    """

    momentum: float = 0.0
    nesterov: bool = False
    velocity: list[np.ndarray] = field(default_factory=list)

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], lr: float) -> None:
        """Update each array of ``params`` in place from the matching ``grads``."""
        if self.momentum == 0.0:
            for param, grad in zip(params, grads, strict=True):
                param -= lr * grad
            return
        if not self.velocity:
            self.velocity = [np.zeros_like(param) for param in params]
        for param, grad, velocity in zip(params, grads, self.velocity, strict=True):
            velocity *= self.momentum
            velocity += grad
            if self.nesterov:
                param -= lr * (grad + self.momentum * velocity)
            else:
                param -= lr * velocity


@dataclass
class EarlyStopping:
    """Stop when the validation loss has not improved by ``min_delta`` for ``patience`` epochs.

    Keeps a copy of the best weights so that training can restore them.
    """

    patience: int
    min_delta: float = 0.0
    best_loss: float = math.inf
    best_epoch: int = 0
    best_params: tuple[np.ndarray, ...] = ()
    waited: int = 0

    def update(self, epoch: int, val_loss: float, params: Sequence[np.ndarray]) -> bool:
        """Record this epoch; return True when training should stop."""
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss = val_loss
            self.best_epoch = epoch
            self.best_params = tuple(param.copy() for param in params)
            self.waited = 0
            return False
        self.waited += 1
        return self.waited >= self.patience

    @property
    def triggered(self) -> bool:
        return self.waited >= self.patience

    def state(self) -> dict[str, float | int]:
        """The counters a checkpoint keeps (the best weights travel as arrays)."""
        return {"best_loss": self.best_loss, "best_epoch": self.best_epoch, "waited": self.waited}

    def restore(self, state: dict[str, float | int], best_params: Sequence[np.ndarray]) -> None:
        self.best_loss = float(state["best_loss"])
        self.best_epoch = int(state["best_epoch"])
        self.waited = int(state["waited"])
        self.best_params = tuple(param.copy() for param in best_params)
