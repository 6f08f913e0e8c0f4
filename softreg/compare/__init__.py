"""Two-class softmax regression against binary logistic regression, with numbers.

Three comparisons on one standardized two-class problem (every row, no split):

1. the SGD trajectories, step by step: softmax SGD through `softreg.train.fit` (the
   code path ``train`` uses) with decay lambda and rate eta, against the independent
   `softreg.compare.logistic` SGD with decay lambda/2 and rate 2 eta on the same batch sequence;
2. the exact optima of both objectives (scipy L-BFGS);
3. scikit-learn's ``LogisticRegression`` with ``C = 2/(n lambda)`` (and the naive
   ``C = 1/(n lambda)``, to show the factor 2) against the exact optimum.

Nothing here prints or reads files; `compare` returns a `Comparison`, and
`softreg.commands.compare_logistic` loads the problem and writes the ``--out`` directory.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from softreg import softmax
from softreg.compare import logistic
from softreg.compare.optima import Optima, exact_optima, sklearn_gap, sklearn_gaps
from softreg.compare.trajectory import (
    PERTURBATION,
    TRACKED_FEATURES,
    Trajectory,
    follow_trajectories,
    logistic_batches,
    rounding_amplification,
    tracked_features,
)
from softreg.errors import DivergedError, SoftregError, UsageError
from softreg.kernels import Matrix
from softreg.prepare.data import random_streams
from softreg.train import (
    AUTO,
    ArrayData,
    EpochCallback,
    auto_learning_rate,
    stable_learning_rate,
)

if TYPE_CHECKING:
    from softreg.config import Config

__all__ = [
    "AMPLIFICATION_LIMIT",
    "PERTURBATION",
    "SAMPLE_ROWS",
    "THRESHOLDS",
    "TRACKED_FEATURES",
    "Comparison",
    "Optima",
    "Problem",
    "Trajectory",
    "UnstableError",
    "check_supported",
    "compare",
    "exact_optima",
    "follow_trajectories",
    "logistic_batches",
    "rounding_amplification",
    "sklearn_gap",
    "sklearn_gaps",
    "tracked_features",
]

SAMPLE_ROWS = 1000  # rows whose probabilities are compared after every step
THRESHOLDS = {  # float64; the checks pass when value <= threshold
    "trajectory.max_abs_prob_diff": 1e-9,
    "trajectory.max_abs_coef_diff": 1e-9,
    "optimum.max_abs_prob_diff": 1e-6,
    "optimum.coef_rel_diff": 1e-5,
    "optimum.sum_norm": 1e-6,
    "sklearn.max_abs_prob_diff": 1e-4,
}
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
