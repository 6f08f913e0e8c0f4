"""Two-class softmax regression against binary logistic regression, with numbers.

Three comparisons on one standardized two-class problem (every row, no split):

1. the SGD trajectories, step by step: softmax SGD through `softreg.train.fit` (the
   code path ``train`` uses) with decay lambda and rate eta, against the independent
   `softreg.logistic` SGD with decay lambda/2 and rate 2 eta on the same batch sequence;
2. the exact optima of both objectives (scipy L-BFGS);
3. scikit-learn's ``LogisticRegression`` with ``C = 2/(n lambda)`` (and the naive
   ``C = 1/(n lambda)``, to show the factor 2) against the exact optimum.

Nothing here prints or reads files; `compare` returns a `Comparison`, and
`softreg.commands.compare_logistic` loads the problem and writes the ``--out`` directory.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from softreg import logistic, softmax
from softreg.data import random_streams
from softreg.errors import DivergedError, SoftregError, UsageError
from softreg.kernels import Matrix
from softreg.solve import Optimum, exact_optimum
from softreg.train import (
    AUTO,
    ArrayData,
    EpochCallback,
    EpochRecord,
    Settings,
    auto_learning_rate,
    fit,
    stable_learning_rate,
)

if TYPE_CHECKING:
    from softreg.config import Config

SAMPLE_ROWS = 1000  # rows whose probabilities are compared after every step
TRACKED_FEATURES = 4  # coefficient paths kept for the plot (see `tracked_features`)
THRESHOLDS = {  # float64; the checks pass when value <= threshold
    "trajectory.max_abs_prob_diff": 1e-9,
    "trajectory.max_abs_coef_diff": 1e-9,
    "optimum.max_abs_prob_diff": 1e-6,
    "optimum.coef_rel_diff": 1e-5,
    "optimum.sum_norm": 1e-6,
    "sklearn.max_abs_prob_diff": 1e-4,
}
# the sensitivity run changes every logistic rate by this relative amount, a rounding-sized
# nudge; SGD that amplifies it more than AMPLIFICATION_LIMIT-fold is unstable at that rate
# (stable runs measure 0.5 to 100, unstable ones 1e11 and more)
PERTURBATION = 1e-12
AMPLIFICATION_LIMIT = 1e3


class UnstableError(DivergedError):
    """The trajectories parted because SGD at this rate amplifies rounding, not because the identity fails."""

    def __init__(self, lr: float, weight_gap: float, prob_gap: float, suggested: float) -> None:
        self.epoch, self.lr = None, lr
        SoftregError.__init__(
            self,
            f"training is unstable at optim.lr = {lr:g}: SGD grows a relative change of {PERTURBATION:.0e} in the "
            f"rate into weights {weight_gap:.2g} apart, so rounding alone parts the softmax and logistic runs "
            f"(probabilities up to {prob_gap:.2g} apart).\n"
            f"The identity is about exact arithmetic: use a smaller optim.lr, e.g. {suggested:.2g}.",
        )


@dataclass
class Problem:
    """The standardized two-class training problem.

    X : {ndarray, csr_matrix} of shape (n_samples, n_features), float64, standardized
    y : ndarray of shape (n_samples,), 0 or 1 (1 is ``classes[1]``)
    X_raw : the rows before standardization (for plots in feature units)
    """

    X: Matrix
    y: np.ndarray
    X_raw: Matrix
    classes: np.ndarray
    feature_names: list[str]
    label_name: str
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    source: str


# -- 1. the trajectories


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


# -- 2. the exact optima


@dataclass
class Optima:
    """Both exact optima and their gaps.

    softmax : Optimum with coef (2, n_features); logistic : Optimum with coef (1, n_features)
    softmax_proba, logistic_proba : ndarray of shape (n_samples,), probability of class B
    """

    softmax: Optimum
    logistic: Optimum
    softmax_proba: np.ndarray
    logistic_proba: np.ndarray

    def gaps(self) -> dict[str, Any]:
        mapped = _flat(*logistic.from_softmax(self.softmax.coef, self.softmax.intercept))
        reference = _flat(self.logistic.coef, self.logistic.intercept)
        return {
            "max_abs_prob_diff": float(np.abs(self.softmax_proba - self.logistic_proba).max()),
            "coef_rel_diff": float(np.linalg.norm(mapped - reference) / max(np.linalg.norm(reference), 1e-300)),
            "sum_norm": float(np.linalg.norm(self.softmax.coef.sum(axis=0))),
            "objective": {"softmax": self.softmax.objective, "logistic": self.logistic.objective},
            "grad_norm": {"softmax": self.softmax.grad_norm, "logistic": self.logistic.grad_norm},
            "iterations": {"softmax": self.softmax.iterations, "logistic": self.logistic.iterations},
        }


def _flat(coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """``(w, b)`` as one vector: the coefficients and the intercept are compared together."""
    return np.concatenate([np.ravel(coef), np.ravel(intercept)])


def exact_optima(X: Matrix, y: np.ndarray, weight_decay: float, fit_intercept: bool = True) -> Optima:
    """Softmax optimum (`softreg.solve`) with decay lambda, logistic optimum with lambda / 2."""
    softmax_optimum = exact_optimum(X, y, 2, weight_decay, fit_intercept)
    logistic_optimum = logistic.exact_optimum(X, y, logistic.logistic_weight_decay(weight_decay), fit_intercept)
    return Optima(
        softmax=softmax_optimum,
        logistic=logistic_optimum,
        softmax_proba=softmax.predict_proba(softmax_optimum.coef, softmax_optimum.intercept, X)[:, 1],
        logistic_proba=logistic.predict_proba(logistic_optimum.coef, logistic_optimum.intercept, X),
    )


# -- 3. scikit-learn


def sklearn_gap(
    X: Matrix,
    y: np.ndarray,
    C: float,
    fit_intercept: bool,
    reference_proba: np.ndarray,
    reference_coef: np.ndarray,
) -> dict[str, float]:
    """Fit ``LogisticRegression(C)`` to tight tolerance; its gaps to the exact optimum.

    ``reference_proba`` (n_samples,) and ``reference_coef`` (1, n_features) are the
    exact optimum's probability of class B and ``w_2 - w_1``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    estimator = LogisticRegression(C=C, tol=1e-10, max_iter=10000, fit_intercept=fit_intercept)
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the gap below says how far it got
        estimator.fit(X, y)
    coef_gap = np.linalg.norm(estimator.coef_ - reference_coef) / max(np.linalg.norm(reference_coef), 1e-300)
    return {
        "C": float(C),
        "max_abs_prob_diff": float(np.abs(estimator.predict_proba(X)[:, 1] - reference_proba).max()),
        "coef_rel_diff": float(coef_gap),
        "iterations": int(np.max(estimator.n_iter_)),
    }


def sklearn_gaps(
    X: Matrix, y: np.ndarray, weight_decay: float, fit_intercept: bool, optima: Optima
) -> dict[str, dict[str, float]]:
    """``sklearn`` (C = 2/(n lambda)) and ``sklearn_naive`` (C = 1/(n lambda)) against the softmax optimum."""
    reference_coef, _ = logistic.from_softmax(optima.softmax.coef, optima.softmax.intercept)
    n_samples = X.shape[0]
    choices = {
        "sklearn": logistic.sklearn_C(n_samples, weight_decay),
        "sklearn_naive": 1.0 / (n_samples * weight_decay),
    }
    return {
        name: sklearn_gap(X, y, C, fit_intercept, optima.softmax_proba, reference_coef) for name, C in choices.items()
    }


# -- all of it


@dataclass
class Comparison:
    """The outcome of `compare`: ``report`` is the JSON document; the rest feeds plots and models."""

    report: dict[str, Any]
    trajectory: Trajectory
    optima: Optima
    problem: Problem
    config: Config

    @property
    def equivalent(self) -> bool:
        return self.report["equivalent"]


def compare(config: Config, problem: Problem, on_epoch: EpochCallback | None = None) -> Comparison:
    """Run the three comparisons on ``problem`` with ``config``'s model, optim and seed.

    ``on_epoch(record, total_epochs)`` is called after every SGD epoch (progress display).

    Returns
    -------
    Comparison
    """
    check_supported(config)
    if config.optim.lr == AUTO:  # both sides need the number, and the report shows it
        chosen = auto_learning_rate(ArrayData(problem.X, problem.y), config.training_settings())
        config = config.with_learning_rate(chosen)
    weight_decay, fit_intercept = config.model.weight_decay, config.model.fit_intercept
    started = time.perf_counter()
    streams = random_streams(config.seed)
    optima = exact_optima(problem.X, problem.y, weight_decay, fit_intercept)
    tracked = tracked_features(optima.logistic.coef[0])
    sample_rows = _sample(problem.X.shape[0], streams.sampling)
    trajectory = follow_trajectories(
        problem.X, problem.y, config.training_settings(), streams.batches, sample_rows, tracked, on_epoch=on_epoch
    )
    report = _report(config, problem, trajectory, optima)
    report.update(sklearn_gaps(problem.X, problem.y, weight_decay, fit_intercept, optima))
    report["checks"] = _checks(report)
    if not all(check["ok"] for check in report["checks"] if check["name"].startswith("trajectory.")):
        _refuse_unstable(config, problem, report)
    report["equivalent"] = all(check["ok"] for check in report["checks"])
    report["seconds"] = time.perf_counter() - started
    return Comparison(report=report, trajectory=trajectory, optima=optima, problem=problem, config=config)


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


def _refuse_unstable(config: Config, problem: Problem, report: dict[str, Any]) -> None:
    """Failed trajectory checks: raise `UnstableError` when SGD itself amplifies rounding at this rate.

    Otherwise the failure stands (the report says "not equivalent"), with the measured
    ``trajectory.rounding_amplification`` added to the report.
    """
    settings = config.training_settings()
    gap, amplification = rounding_amplification(problem.X, problem.y, settings, random_streams(config.seed).batches)
    report["trajectory"]["rounding_amplification"] = amplification
    if not amplification <= AMPLIFICATION_LIMIT:  # NaN or inf count as unstable
        stable = stable_learning_rate(ArrayData(problem.X, problem.y), settings.weight_decay, settings.momentum)
        suggested = min(settings.base_lr / 10, stable)
        raise UnstableError(settings.base_lr, gap, report["trajectory"]["max_abs_prob_diff"], suggested)


def check_supported(config: Config) -> None:
    """Refuse settings the comparison does not cover, before any work."""
    if config.model.weight_decay <= 0:
        raise UsageError(
            "compare-logistic needs model.weight_decay > 0 (the optimum is unique only then), "
            f"got {config.model.weight_decay:g}"
        )
    # the logistic side implements plain minibatch SGD (with momentum); an SVRG run would
    # differ by construction, not by a failure of the identity
    model = config.model
    if (model.loss, model.normalizer, model.temperature) != ("cross_entropy", "softmax", 1.0):
        raise UsageError(
            "compare-logistic compares cross-entropy softmax regression with logistic regression; set "
            f"model.loss: cross_entropy, model.normalizer: softmax and model.temperature: 1 (got {model.loss}, "
            f"{model.normalizer}, {model.temperature:g})"
        )
    variance_reduction = getattr(config.optim, "variance_reduction", "none")
    if variance_reduction != "none":
        raise UsageError(
            f"compare-logistic follows plain minibatch SGD; set optim.variance_reduction to none "
            f"(got {variance_reduction})"
        )


def _sample(n_samples: int, rng: np.random.Generator) -> np.ndarray | None:
    """A fixed sample of up to SAMPLE_ROWS rows (None: all of them)."""
    return None if n_samples <= SAMPLE_ROWS else np.sort(rng.choice(n_samples, SAMPLE_ROWS, replace=False))


def _report(config: Config, problem: Problem, trajectory: Trajectory, optima: Optima) -> dict[str, Any]:
    model, optim = config.model, config.optim
    sgd_proba = softmax.predict_proba(trajectory.softmax_coef, trajectory.softmax_intercept, problem.X)[:, 1]
    return {
        "equivalent": None,  # filled in once the checks are known
        "source": problem.source,
        "classes": [str(label) for label in problem.classes],
        "positive_class": str(problem.classes[1]),
        "n_samples": int(problem.X.shape[0]),
        "n_features": int(problem.X.shape[1]),
        "fit_intercept": model.fit_intercept,
        "weight_decay": {"softmax": model.weight_decay, "logistic": logistic.logistic_weight_decay(model.weight_decay)},
        "learning_rate": {"softmax": optim.lr, "logistic": logistic.logistic_learning_rate(float(optim.lr))},
        "optim": {
            "batch_size": optim.batch_size,
            "epochs": optim.epochs,
            "momentum": optim.momentum,
            "nesterov": optim.nesterov,
            "schedule": optim.schedule,
        },
        "seed": config.seed,
        "trajectory": {
            "steps": len(trajectory.prob_diff),
            "sample_rows": min(problem.X.shape[0], SAMPLE_ROWS),
            "max_abs_prob_diff": float(trajectory.prob_diff.max()),
            "max_abs_coef_diff": float(max(trajectory.coef_diff.max(), trajectory.intercept_diff.max())),
            "max_sum_norm": float(trajectory.sum_norm.max()),
        },
        "optimum": optima.gaps(),
        "sgd_vs_optimum": {"max_abs_prob_diff": float(np.abs(sgd_proba - optima.softmax_proba).max())},
    }


def _checks(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One entry per threshold: name (the report's dotted key), value, threshold, ok."""
    checks = []
    for name, threshold in THRESHOLDS.items():
        section, key = name.split(".")
        value = report[section][key]
        checks.append({"name": name, "value": value, "threshold": threshold, "ok": bool(value <= threshold)})
    return checks
