"""The numbers of the model and the optimiser that `fit` takes: `Settings`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from softreg.train.optim import Schedule

AUTO = "auto"
CERTIFIED_EPOCHS = 1000  # optim.epochs: auto, where the certificate stops the run (at optim.tol)
UNCERTIFIED_EPOCHS = 20  # optim.epochs: auto, where nothing can say the run is done


@dataclass(frozen=True)
class Settings:
    """The model's and the optimiser's numbers: everything `fit` needs besides the data.

    The names are those of the config's ``model`` and ``optim`` sections. The defaults here are
    textbook minibatch SGD for a fixed number of epochs, the core's building block; the
    product's defaults (``lr: auto``, SVRG finished by full-batch steps, ``tol: 1e-4``, at most
    1000 epochs) are the config schema's and the estimator's (`softreg.config`).
    """

    weight_decay: float = 1e-4  # lambda in J = mean loss + lambda/2 ||W||^2
    fit_intercept: bool = True
    loss: str = "cross_entropy"  # or squared_error (see softreg.losses)
    normalizer: str = "softmax"  # or taylor, spherical
    temperature: float = 1.0  # p = normalizer(z / temperature)
    lr: float | str = 0.1  # or "auto": `auto_learning_rate` of the training data, chosen when `fit` starts
    batch_size: int = 64
    epochs: int = 20  # the most: with tol, training stops at the first certified epoch
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "constant"  # see optim.learning_rate
    step_size: int = 10  # schedule=step
    gamma: float = 0.1  # schedule=step
    decay: float = 1.0  # schedule=inverse_time
    patience: int | None = None  # early stopping on the validation loss; None disables it
    min_delta: float = 0.0
    variance_reduction: str = "none"  # or "svrg"
    full_batch: str = "never"  # or "auto": SVRG hands over to full-batch steps (`softreg.train.full_batch`)
    eval_every: int | None = None  # epochs between full-data objectives; None: from the data's size
    tol: float | None = None  # stop at the first certified relative gap <= tol (`softreg.train.certificate`)

    @property
    def certifies(self) -> bool:
        """Whether a certificate can stop this training (`softreg.train.certificate` bounds the
        gap of the softmax cross-entropy at T = 1 with weight decay > 0) and tol asks it to."""
        return (
            self.tol is not None and self.weight_decay > 0 and self.loss == "cross_entropy"
            and self.normalizer == "softmax" and self.temperature == 1.0
        )

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


def automatic_choices(keys: Mapping[str, Any], sharded: bool) -> dict[str, Any]:
    """``keys`` (the config's ``model`` and ``optim`` keys by name) with ``variance_reduction``
    and ``epochs`` of "auto" replaced by numbers and names:

    - variance_reduction: svrg where the rows are in this process; none on the sharded engine
      (data.shards > 1 or engine.kind: dask), which sums plain minibatch gradients;
    - epochs: CERTIFIED_EPOCHS where a certificate can stop the run (`Settings.certifies`, rows
      in this process), else UNCERTIFIED_EPOCHS.
    """
    chosen = dict(keys)
    if chosen.get("variance_reduction") == AUTO:
        chosen["variance_reduction"] = "none" if sharded else "svrg"
    if chosen.get("epochs") == AUTO:
        settings = Settings.from_keys({**chosen, "epochs": 1, "lr": 1.0})
        chosen["epochs"] = CERTIFIED_EPOCHS if settings.certifies and not sharded else UNCERTIFIED_EPOCHS
    return chosen
