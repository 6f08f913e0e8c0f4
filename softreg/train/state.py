"""What training produces and keeps: per-epoch records, the result, the resumable state,
and the (deterministic) schedule of full-data evaluations."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from softreg.train.passes import full_pass_rows

EVAL_BUDGET = 0.1  # full-data evaluations, the last included, cost at most this share of training
# A cost model of an epoch and of a full-data pass, in units of one multiply-add of a full
# pass (measured with OpenBLAS on letters, digits, wine and iris, and on the benchmark's
# synthetic sets; constants, not timings, so that the schedule is the same on any machine
# under any load):
STEP_OVERHEAD = 110_000  # one SGD step's fixed cost: the interpreter, a dozen small-array calls, the update
CHUNK_OVERHEAD = 170_000  # one chunk of a full pass
# An epoch's multiply-adds cost this many of a full pass's. Small batches of narrow data make
# them dearer (about 1.5 on letters and digits), but on wide data the batch products run as fast
# as the full pass's (a pass cost 0.94-1.06 epoch on 60000 x 784), and the budget must hold there too.
EPOCH_ARITHMETIC = 1.0
# The certificate (`softreg.train.certificate`) reads the rows twice (logits, then the gradient at
# b*(W)) and solves b*(W) over the (n, K) logits: it costs about two full passes (measured
# 1.7-2.0 passes on digits and letters, 0.5 on 60000 x 784), so an evaluation with its objective
# and its certificate counts as three.
CERTIFICATE_PASSES = 3
# A checkpoint writes the weights and the history to two files and flushes them to the disk:
# about 10-20 ms on the shared machines measured (the fsyncs dominate), in the units above
CHECKPOINT_COST = 100_000_000
CHECKPOINT_BUDGET = 0.1  # output.checkpoint_every: auto keeps checkpoints within this share of training


@dataclass
class EpochRecord:
    """One row of ``history.csv``; ``None`` where a value was not computed."""

    epoch: int
    lr: float
    train_loss: float
    objective: float | None = None
    grad_norm: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    seconds: float = 0.0
    comm_seconds: float | None = None  # of ``seconds``, the time spent talking to workers (softreg.engine)
    gap_bound: float | None = None  # certified bound on (J - J*) / J* (`softreg.train.certificate`); inf: none yet


@dataclass
class FitResult:
    """The trained weights and how training went.

    coef : ndarray of shape (n_classes, n_features)
    intercept : ndarray of shape (n_classes,)
    """

    coef: np.ndarray
    intercept: np.ndarray
    history: list[EpochRecord] = field(default_factory=list)
    objective: float = math.nan
    grad_norm: float = math.nan
    stopped_early: bool = False
    best_epoch: int | None = None
    seconds: float = 0.0
    state: TrainingState | None = None  # the finished state (what the final checkpoint holds)
    lr: float = math.nan  # the base learning rate: the number chosen when the settings said "auto"
    gap_bound: float | None = None  # certified bound on (J - J*) / J* of the returned model; None: no bound
    converged: bool = False  # gap_bound <= tol
    stopped_by: str = "epochs"  # the rule that ended training: "tol", "early_stopping" or "epochs"
    tol: float | None = None  # optim.tol (None: fixed epochs)
    certifiable: bool = True  # whether a bound exists for this run (False: weight_decay 0, another loss, shards)

    def summary(self) -> dict[str, Any]:
        return {
            "epochs_run": len(self.history),
            "objective": self.objective,
            "grad_norm": self.grad_norm,
            "stopped_early": self.stopped_early,
            "best_epoch": self.best_epoch,
            "seconds": self.seconds,
            "lr": self.lr,
            "gap_bound": self.gap_bound,
            "converged": self.converged,
            "stopped_by": self.stopped_by,
            "tol": self.tol,
            "certifiable": self.certifiable,
        }


@dataclass
class TrainingState:
    """Everything training needs to continue after ``epoch`` completed epochs, bit for bit.

    weights : ndarray of shape (n_classes * n_features + n_classes,), coef then intercept
    velocity : list of ndarray, the optimiser's momentum buffers
    rng_state : mapping, the batch-order generator's ``bit_generator.state``
    best_params : list of ndarray, early stopping's best weights (empty without it)

    `softreg.rundir` writes and reads it as ``checkpoint.npz``.
    """

    epoch: int
    n_classes: int
    n_features: int
    weights: np.ndarray
    velocity: list[np.ndarray]
    rng_state: Mapping[str, Any]
    history: list[EpochRecord]
    early_stopping: dict[str, Any] | None = None  # {"best_loss", "best_epoch", "waited"}
    best_params: list[np.ndarray] = field(default_factory=list)
    full_batch: dict[str, Any] | None = None  # `FullBatchSteps.state()` once a run took full-batch steps
    finished: bool = False
    summary: dict[str, Any] | None = None  # FitResult.summary() once finished

    @property
    def stopped_early(self) -> bool:
        return bool(self.summary and self.summary["stopped_early"])

    def result(self) -> FitResult:
        """The FitResult of a finished state: the best weights when early stopping kept some."""
        if self.summary is None:
            raise ValueError("the training state is not finished")
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
            lr=self.summary.get("lr", math.nan),  # absent from checkpoints of earlier versions
            gap_bound=self.summary.get("gap_bound"),
            converged=self.summary.get("converged", False),
            stopped_by=self.summary.get("stopped_by", "early_stopping" if self.summary["stopped_early"] else "epochs"),
            tol=self.summary.get("tol"),
            certifiable=self.summary.get("certifiable", False),
        )


def evaluation_cost(n_samples: int, n_features: int, n_classes: int, batch_size: int) -> float:
    """The modelled cost of one full-data evaluation relative to one epoch.

    With ``A = n d K`` multiply-adds, a full pass in ``c`` chunks costs ``c CHUNK_OVERHEAD + A``
    and an epoch of ``s`` steps ``s STEP_OVERHEAD + EPOCH_ARITHMETIC A``.
    """
    arithmetic = n_samples * n_features * n_classes
    steps = math.ceil(n_samples / batch_size)
    chunks = math.ceil(n_samples / full_pass_rows(n_samples, n_features, n_classes, at_least=max(256, batch_size)))
    return (chunks * CHUNK_OVERHEAD + arithmetic) / (steps * STEP_OVERHEAD + EPOCH_ARITHMETIC * arithmetic)


def checkpoint_interval(n_samples: int, n_features: int, n_classes: int, batch_size: int) -> int:
    """Epochs between checkpoints for ``output.checkpoint_every: auto``: the fewest that keep one
    checkpoint (CHECKPOINT_COST) within CHECKPOINT_BUDGET of the epochs it follows, by the epoch
    cost model of `evaluation_cost`. A function of sizes only: identical runs checkpoint alike."""
    arithmetic = n_samples * n_features * n_classes
    epoch = math.ceil(n_samples / batch_size) * STEP_OVERHEAD + EPOCH_ARITHMETIC * arithmetic
    return max(1, math.ceil(CHECKPOINT_COST / (CHECKPOINT_BUDGET * epoch)))


def evaluation_interval(
    n_samples: int, n_features: int, n_classes: int, batch_size: int, epochs: int, passes: int = 1
) -> int:
    """Epochs between full-data evaluations of the objective when ``output.eval_every`` is unset.

    With one evaluation every ``m`` epochs plus the last, at relative cost ``r``
    (`evaluation_cost`) each, their share of training is at most ``(E/m + 1) r / E``; the
    smallest ``m`` that keeps it within EVAL_BUDGET is returned (``E``, only the last, which
    is always evaluated, when even one more exceeds the budget of a short run). An evaluation
    that costs ``passes`` full passes (a certificate: CERTIFICATE_PASSES) counts that many times.
    """
    relative_cost = passes * evaluation_cost(n_samples, n_features, n_classes, batch_size)
    others = EVAL_BUDGET * epochs / relative_cost - 1  # evaluations the budget allows besides the last
    if others < 1:
        return epochs
    return min(epochs, math.ceil(epochs / others))


def evaluation_due(
    epoch: int, epochs: int, eval_every: int | None, n_samples: int, n_features: int, n_classes: int, batch_size: int,
    passes: int = 1,
) -> bool:
    """Whether epoch ``epoch`` (1-based) evaluates the full-data objective: always the last;
    with ``eval_every`` the first and every ``eval_every``-th; otherwise every
    `evaluation_interval`-th. A function of sizes only: identical runs log identical columns."""
    if epoch == epochs:
        return True
    if eval_every is not None:
        return epoch == 1 or epoch % eval_every == 0
    return epoch % evaluation_interval(n_samples, n_features, n_classes, batch_size, epochs, passes) == 0
