"""Learning-rate schedules, the SGD/momentum/Nesterov update and early stopping.

Everything here is linear in the gradient, which is why the two-class softmax
trajectory maps exactly onto logistic SGD (see `softreg.logistic`).
"""

import math
from dataclasses import dataclass, field

import numpy as np

SCHEDULES = ("constant", "step", "cosine", "inverse_time")
VARIANCE_REDUCTION = ("none", "svrg")  # the gradient estimators: see softmax.variance_reduced_gradient


def learning_rate(schedule, base_lr, progress, total_epochs, step_size=10, gamma=0.1, decay=1.0):
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


@dataclass
class SGD:
    """Heavy-ball / Nesterov SGD in PyTorch's convention.

    ``v <- momentum * v + g``; plain: ``w <- w - lr * v``; Nesterov: ``w <- w - lr * (g + momentum * v)``.
    With ``momentum == 0`` both reduce to ``w <- w - lr * g``. The update is applied in place.
    """

    momentum: float = 0.0
    nesterov: bool = False
    velocity: list = field(default_factory=list)

    def step(self, params, grads, lr):
        """Update each array of ``params`` in place from the matching ``grads``."""
        if self.momentum == 0.0:
            for param, grad in zip(params, grads):
                param -= lr * grad
            return
        if not self.velocity:
            self.velocity = [np.zeros_like(param) for param in params]
        for param, grad, velocity in zip(params, grads, self.velocity):
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
    best_params: tuple = ()
    waited: int = 0

    def update(self, epoch, val_loss, params):
        """Record this epoch; return True when training should stop."""
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss = val_loss
            self.best_epoch = epoch
            self.best_params = tuple(param.copy() for param in params)
            self.waited = 0
            return False
        self.waited += 1
        return self.waited >= self.patience
