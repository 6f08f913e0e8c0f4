"""The numbers of the model and the optimiser that `fit` takes: `Settings`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from softreg.train.optim import Schedule


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
    tol: float | None = None  # stop at the first certified relative gap <= tol (`softreg.train.certificate`)

    @classmethod
    def from_keys(cls, keys: Mapping[str, Any]) -> Settings:
        """Settings from the config's ``model`` and ``optim`` keys by name (``early_stopping`` as
        ``{patience, min_delta}`` or None); keys that are not settings (``dtype``) are ignored."""
        stopping = keys.get("early_stopping") or {}
        names = {field.name for field in fields(cls)}
        values = {name: value for name, value in keys.items() if name in names}
        return cls(**values, patience=stopping.get("patience"), min_delta=stopping.get("min_delta", 0.0))

    def schedule_for(self, n_samples: int) -> Schedule:
        steps = math.ceil(n_samples / self.batch_size)
        return Schedule(self.schedule, self.base_lr, self.epochs, steps, self.step_size, self.gamma, self.decay)

    @property
    def base_lr(self) -> float:
        """``lr`` as a number; "auto" must have been resolved (`resolve_learning_rate`)."""
        if isinstance(self.lr, str):
            raise ValueError(f"lr={self.lr!r} is chosen from the data: resolve it first (resolve_learning_rate)")
        return self.lr
