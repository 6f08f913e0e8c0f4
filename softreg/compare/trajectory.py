"""Softmax SGD and logistic SGD in lockstep on one batch sequence, compared after every step."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from softreg import softmax
from softreg.compare import logistic
from softreg.kernels import Matrix
from softreg.train import (
    ArrayData,
    EpochCallback,
    EpochRecord,
    Settings,
    fit,
)

if TYPE_CHECKING:
    pass

TRACKED_FEATURES = 4  # coefficient paths kept for the plot (see `tracked_features`)
# the sensitivity run changes every logistic rate by this relative amount, a rounding-sized
# nudge; SGD that amplifies it more than AMPLIFICATION_LIMIT-fold is unstable at that rate
# (stable runs measure 0.5 to 100, unstable ones 1e11 and more)
PERTURBATION = 1e-12


@dataclass
class Trajectory:
    """Softmax and logistic SGD compared after every step.

    prob_diff, coef_diff, intercept_diff, sum_norm : ndarray of shape (n_steps,)
        max |p_softmax(B) - p_logistic| over the sampled rows, max |(w_2 - w_1) - w|,
        |(b_2 - b_1) - b| and ||w_1 + w_2|| after each step.
    tracked : ndarray of shape (n_tracked,)
        Feature indices whose paths are kept.
    softmax_path, logistic_path : ndarray of shape (n_steps, n_tracked)
        ``w_2 - w_1`` and ``w`` of the tracked features.
    softmax_coef (2, n_features), softmax_intercept (2,), logistic_coef (1, n_features),
    logistic_intercept (1,) : the weights at the end of the run.
    """

    prob_diff: np.ndarray
    coef_diff: np.ndarray
    intercept_diff: np.ndarray
    sum_norm: np.ndarray
    tracked: np.ndarray
    softmax_path: np.ndarray
    logistic_path: np.ndarray
    # the weights at the end of the run: set by `follow_trajectories` once it ends
    softmax_coef: np.ndarray = field(init=False)
    softmax_intercept: np.ndarray = field(init=False)
    logistic_coef: np.ndarray = field(init=False)
    logistic_intercept: np.ndarray = field(init=False)
    fit_summary: dict[str, Any] = field(default_factory=dict)
    history: list[EpochRecord] = field(default_factory=list)  # the softmax run's

    @classmethod
    def empty(cls, n_steps: int, tracked: Sequence[int] | np.ndarray) -> Trajectory:
        steps = np.full(n_steps, np.nan)
        path = np.full((n_steps, len(tracked)), np.nan)
        tracked = np.asarray(tracked, dtype=np.intp)
        return cls(steps, steps.copy(), steps.copy(), steps.copy(), tracked, path, path.copy())

    def record(
        self,
        step: int,
        X_sample: Matrix,
        softmax_weights: tuple[np.ndarray, np.ndarray],
        logistic_weights: tuple[np.ndarray, np.ndarray],
    ) -> None:
        """Store the gaps between the two models after ``step`` (0-based)."""
        mapped_coef, mapped_intercept = logistic.from_softmax(*softmax_weights)
        logistic_coef, logistic_intercept = logistic_weights
        softmax_proba = softmax.predict_proba(*softmax_weights, X_sample)[:, 1]
        self.prob_diff[step] = np.abs(softmax_proba - logistic.predict_proba(*logistic_weights, X_sample)).max()
        self.coef_diff[step] = np.abs(mapped_coef - logistic_coef).max()
        self.intercept_diff[step] = abs(mapped_intercept[0] - logistic_intercept[0])
        self.sum_norm[step] = np.linalg.norm(softmax_weights[0].sum(axis=0))
        self.softmax_path[step] = mapped_coef[0, self.tracked]
        self.logistic_path[step] = logistic_coef[0, self.tracked]

def logistic_batches(
    data: ArrayData, settings: Settings, batch_rng: np.random.Generator
) -> Iterator[tuple[Matrix, np.ndarray, float]]:
    """The batches `softreg.train.fit` draws from ``batch_rng``, with the logistic rate of each step.

    Yields ``(X_batch, y_batch, lr)``: the same `ArrayData.minibatches` and the same
    `Schedule` as the trainer, from the base rate 2 eta (every schedule is proportional
    to its base rate, so doubling the base doubles every step's rate).
    """
    schedule = settings.schedule_for(data.n_samples).with_base_lr(logistic.logistic_learning_rate(settings.base_lr))
    for epoch in range(1, settings.epochs + 1):
        for step, (X_batch, y_batch, _) in enumerate(data.minibatches(settings.batch_size, batch_rng)):
            yield X_batch, y_batch, schedule.rate(epoch, step)

def follow_trajectories(
    X: Matrix,
    y: np.ndarray,
    settings: Settings,
    batch_rng: np.random.Generator,
    sample_rows: np.ndarray | None = None,
    tracked: Sequence[int] | np.ndarray = (),
    on_epoch: EpochCallback | None = None,
) -> Trajectory:
    """Run softmax SGD (`softreg.train.fit`) and logistic SGD in lockstep on one batch sequence.

    Parameters
    ----------
    X : {ndarray, csr_matrix} of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), 0 or 1
    settings : softreg.train.Settings
        ``weight_decay`` is lambda of the softmax side.
    batch_rng : numpy.random.Generator
        Drawn by ``fit``; a copy taken first draws the same batches for the logistic side.
    sample_rows : ndarray of int or None
        Rows whose probabilities are compared (None: all).
    tracked : sequence of int
        Features whose coefficient paths are kept.
    on_epoch : callable(EpochRecord, total_epochs) or None
        Passed to ``fit`` (progress display).

    Returns
    -------
    Trajectory
    """
    n_samples, n_features = X.shape
    X_sample = X if sample_rows is None else X[sample_rows]
    data = ArrayData(X, y)
    trajectory = Trajectory.empty(settings.epochs * math.ceil(n_samples / settings.batch_size), tracked)
    logistic_steps = logistic.sgd_path(
        logistic_batches(data, settings, copy.deepcopy(batch_rng)),
        n_features,
        logistic.logistic_weight_decay(settings.weight_decay),
        momentum=settings.momentum,
        nesterov=settings.nesterov,
        fit_intercept=settings.fit_intercept,
    )
    step_counter = itertools.count()
    latest: list[np.ndarray] = []  # the logistic weights last yielded: live arrays, final once the run ends

    def on_step(coef: np.ndarray, intercept: np.ndarray) -> None:
        logistic_weights = next(logistic_steps, None)
        if logistic_weights is None:
            raise RuntimeError("the logistic batch sequence ended before the softmax one")
        latest[:] = logistic_weights
        trajectory.record(next(step_counter), X_sample, (coef, intercept), logistic_weights)

    result = fit(data, 2, settings, batch_rng, on_epoch=on_epoch, on_step=on_step)
    if next(logistic_steps, None) is not None or next(step_counter) != len(trajectory.prob_diff):
        raise RuntimeError("the softmax and logistic runs took different numbers of steps")
    trajectory.softmax_coef, trajectory.softmax_intercept = result.coef, result.intercept
    trajectory.logistic_coef, trajectory.logistic_intercept = latest
    trajectory.fit_summary = result.summary()
    trajectory.history = result.history
    return trajectory

def tracked_features(coef: ArrayLike, count: int = TRACKED_FEATURES, separation: float = 0.15) -> np.ndarray:
    """Indices of up to ``count`` features whose paths the plot shows.

    The largest ``|w*|`` first, skipping a feature whose optimum lies within ``separation``
    times the largest ``|w*|`` of one already taken: paths that end together cannot be told
    apart. ``coef`` is the logistic optimum, shape (n_features,).
    """
    coef = np.asarray(coef, dtype=float)
    gap = separation * float(np.abs(coef).max(initial=0.0))
    chosen: list[int] = []
    for index in np.argsort(-np.abs(coef), kind="stable"):
        if len(chosen) == count:
            break
        if all(abs(coef[index] - coef[other]) >= gap for other in chosen):
            chosen.append(int(index))
    return np.asarray(chosen, dtype=np.intp)

def rounding_amplification(
    X: Matrix, y: np.ndarray, settings: Settings, batch_rng: np.random.Generator
) -> tuple[float, float]:
    """How much logistic SGD amplifies a rounding-sized change: ``(gap, amplification)``.

    Runs logistic SGD twice on the batches of ``batch_rng`` (a fresh generator, as
    `follow_trajectories` gets), the second time with every rate times ``1 + PERTURBATION``.
    ``gap`` is the largest difference between the two runs' weights over all steps;
    ``amplification`` is ``gap / (PERTURBATION * max(1, largest |weight|))``: about 1 when
    SGD is stable, above 1e10 when it amplifies every nudge to the size of the weights.
    """
    decay = logistic.logistic_weight_decay(settings.weight_decay)
    data = ArrayData(X, y)

    def run(factor: float, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        batches = ((X_batch, y_batch, lr * factor) for X_batch, y_batch, lr in logistic_batches(data, settings, rng))
        return logistic.sgd_path(
            batches, X.shape[1], decay, settings.momentum, settings.nesterov, settings.fit_intercept
        )

    gap = largest = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        paths = zip(run(1.0, copy.deepcopy(batch_rng)), run(1.0 + PERTURBATION, copy.deepcopy(batch_rng)), strict=True)
        for (coef, intercept), (nudged_coef, nudged_intercept) in paths:
            gap = max(gap, np.abs(coef - nudged_coef).max(), np.abs(intercept - nudged_intercept).max())
            largest = max(largest, np.abs(coef).max(), np.abs(intercept).max())
    gap = float(gap) if math.isfinite(gap) else math.inf
    return gap, gap / (PERTURBATION * max(1.0, float(largest)))
