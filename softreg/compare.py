"""Two-class softmax regression against binary logistic regression, with numbers.

Three comparisons on one standardized two-class problem (every row, no split):

1. the SGD trajectories, step by step: softmax SGD through `softreg.train.fit` (the
   code path ``train`` uses) with decay lambda and rate eta, against the independent
   `softreg.logistic` SGD with decay lambda/2 and rate 2 eta on the same batch sequence;
2. the exact optima of both objectives (scipy L-BFGS);
3. scikit-learn's ``LogisticRegression`` with ``C = 2/(n lambda)`` (and the naive
   ``C = 1/(n lambda)``, to show the factor 2) against the exact optimum.

Nothing here prints; `compare` returns a `Comparison` and `save_comparison` writes
the ``--out`` directory.
"""

import copy
import itertools
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from softreg import logistic, plots, rundir, softmax
from softreg.config import apply_overrides, dump_config, read_yaml, resolve
from softreg.data import (
    Part,
    encode_labels,
    fit_standardizer,
    generators,
    iter_minibatches,
    load_source,
    select_classes,
    standardize,
)
from softreg.evaluate import classification_metrics
from softreg.errors import DivergedError, SoftregError, UsageError
from softreg.optim import learning_rate
from softreg.solve import exact_optimum
from softreg.train import fit, history_rows, stable_learning_rate

# --data runs get these instead of train's defaults: enough decay for a well-conditioned
# optimum and a cosine-annealed SGD that ends within 0.02 in probability of it
COMPARE_DEFAULTS = {
    "model": {"weight_decay": 1e-2},
    "optim": {"lr": 0.05, "batch_size": 8, "epochs": 200, "schedule": "cosine"},
}
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

    def __init__(self, lr, weight_gap, prob_gap, suggested):
        self.epoch, self.lr = None, lr
        SoftregError.__init__(
            self,
            f"training is unstable at optim.lr = {lr:g}: SGD grows a relative change of {PERTURBATION:.0e} in the "
            f"rate into weights {weight_gap:.2g} apart, so rounding alone parts the softmax and logistic runs "
            f"(probabilities up to {prob_gap:.2g} apart).\n"
            f"The identity is about exact arithmetic: use a smaller optim.lr, e.g. {suggested:.2g}.",
        )


# -- the problem


def compare_config(config_path=None, data=None, label=None, classes=None, overrides=()):
    """The resolved `Config` of a comparison: a train config file, or ``--data`` with compare defaults.

    ``classes`` is the ``--classes A,B`` text; it and ``label`` override the config.
    """
    if (config_path is None) == (data is None):
        raise UsageError("give exactly one of --config FILE or --data SOURCE")
    if config_path is not None:
        document, origin, base_dir = read_yaml(config_path), str(config_path), Path(config_path).resolve().parent
    else:
        document = {"data": {"source": data}, **copy.deepcopy(COMPARE_DEFAULTS)}
        origin, base_dir = "compare-logistic", "."
    document, from_command_line = apply_overrides(document, overrides)
    section = document.setdefault("data", {})
    if not isinstance(section, dict):
        raise UsageError(f"{origin}: data must be a mapping of keys")
    if label is not None:
        section["label"] = label
    if classes is not None:
        section["classes"] = _parse_classes(classes)
    if data is not None:
        from_command_line.add("data.source")  # relative to the current directory
    config = resolve(document, origin=origin, base_dir=base_dir, from_command_line=from_command_line)
    _check_supported(config)
    return config


def _parse_classes(text):
    names = [name.strip() for name in text.split(",")]
    if len(names) != 2 or not all(names):
        raise UsageError(f"--classes takes two class labels separated by a comma, e.g. --classes 3,8; got {text!r}")
    if names[0] == names[1]:
        raise UsageError(f"--classes must name two different classes, got {text!r}")
    return names


@dataclass
class Problem:
    """The standardized two-class training problem.

    X : {ndarray, csr_matrix} of shape (n_samples, n_features), float64, standardized
    y : ndarray of shape (n_samples,), 0 or 1 (1 is ``classes[1]``)
    X_raw : the rows before standardization (for plots in feature units)
    """

    X: object
    y: np.ndarray
    X_raw: object
    classes: np.ndarray
    feature_names: list
    label_name: str
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    source: str


def load_problem(data_config):
    """Load ``data.source``, keep two classes and standardize every row as ``train`` does."""
    dataset = load_source(data_config.source, data_config.label, data_config.delimiter)
    if data_config.classes is None:
        _require_two(dataset.source, [str(label) for label in np.unique(dataset.labels)])
    elif len(data_config.classes) != 2:
        raise UsageError(
            f"compare-logistic needs exactly two classes, got {len(data_config.classes)} in data.classes "
            f"({', '.join(map(str, data_config.classes))})"
        )
    dataset = select_classes(dataset, data_config.classes)
    classes, y = encode_labels(dataset)
    mean, scale = fit_standardizer(dataset.X, data_config.standardize)
    return Problem(
        X=standardize(dataset.X, mean, scale, np.float64),
        y=y,
        X_raw=dataset.X,
        classes=classes,
        feature_names=dataset.feature_names,
        label_name=dataset.label_name,
        feature_mean=mean,
        feature_scale=scale,
        source=dataset.source,
    )


def _require_two(source, present):
    if len(present) > 2:
        shown = ", ".join(present[:20]) + (f" and {len(present) - 20} more" if len(present) > 20 else "")
        raise UsageError(
            f"{source}: has {len(present)} classes ({shown}); compare-logistic needs two: "
            f"pick them with --classes A,B, e.g. --classes {present[0]},{present[1]}"
        )


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
    softmax_coef: np.ndarray = None
    softmax_intercept: np.ndarray = None
    logistic_coef: np.ndarray = None
    logistic_intercept: np.ndarray = None
    fit_summary: dict = field(default_factory=dict)
    history: list = field(default_factory=list)  # the softmax run's EpochRecords

    @classmethod
    def empty(cls, n_steps, tracked):
        steps = np.full(n_steps, np.nan)
        path = np.full((n_steps, len(tracked)), np.nan)
        tracked = np.asarray(tracked, dtype=np.intp)
        return cls(steps, steps.copy(), steps.copy(), steps.copy(), tracked, path, path.copy())

    def record(self, step, X_sample, softmax_weights, logistic_weights):
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


def logistic_batches(X, y, optim, batch_rng):
    """The batches `softreg.train.fit` draws from ``batch_rng``, with the logistic rate of each step.

    Yields ``(X_batch, y_batch, lr)`` with ``lr = 2 eta(progress)``: every schedule is
    proportional to its base rate, so doubling the base doubles every step's rate.
    """
    steps_per_epoch = math.ceil(X.shape[0] / optim.batch_size)
    base_lr = logistic.logistic_learning_rate(optim.lr)
    for epoch in range(optim.epochs):
        for step, (X_batch, y_batch) in enumerate(iter_minibatches(X, y, optim.batch_size, batch_rng)):
            progress = epoch + step / steps_per_epoch
            lr = learning_rate(
                optim.schedule,
                base_lr,
                progress,
                optim.epochs,
                step_size=optim.step_size,
                gamma=optim.gamma,
                decay=optim.decay,
            )
            yield X_batch, y_batch, lr


def follow_trajectories(X, y, model, optim, batch_rng, sample_rows=None, tracked=(), on_epoch=None):
    """Run softmax SGD (`softreg.train.fit`) and logistic SGD in lockstep on one batch sequence.

    Parameters
    ----------
    X : {ndarray, csr_matrix} of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), 0 or 1
    model : ModelConfig
        ``weight_decay`` (lambda of the softmax side) and ``fit_intercept``.
    optim : OptimConfig
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
    trajectory = Trajectory.empty(optim.epochs * math.ceil(n_samples / optim.batch_size), tracked)
    logistic_steps = logistic.sgd_path(
        logistic_batches(X, y, optim, copy.deepcopy(batch_rng)),
        n_features,
        logistic.logistic_weight_decay(model.weight_decay),
        momentum=optim.momentum,
        nesterov=optim.nesterov,
        fit_intercept=model.fit_intercept,
    )
    step_counter = itertools.count()
    latest = []  # the logistic weights last yielded: live arrays, final once the run ends

    def on_step(coef, intercept):
        logistic_weights = next(logistic_steps, None)
        if logistic_weights is None:
            raise RuntimeError("the logistic batch sequence ended before the softmax one")
        latest[:] = logistic_weights
        trajectory.record(next(step_counter), X_sample, (coef, intercept), logistic_weights)

    result = fit(Part(X, y), None, 2, model, optim, batch_rng, on_epoch=on_epoch, on_step=on_step)
    if next(logistic_steps, None) is not None or next(step_counter) != len(trajectory.prob_diff):
        raise RuntimeError("the softmax and logistic runs took different numbers of steps")
    trajectory.softmax_coef, trajectory.softmax_intercept = result.coef, result.intercept
    trajectory.logistic_coef, trajectory.logistic_intercept = latest
    trajectory.fit_summary = result.summary()
    trajectory.history = result.history
    return trajectory


def tracked_features(coef, count=TRACKED_FEATURES, separation=0.15):
    """Indices of up to ``count`` features whose paths the plot shows.

    The largest ``|w*|`` first, skipping a feature whose optimum lies within ``separation``
    times the largest ``|w*|`` of one already taken: paths that end together cannot be told
    apart. ``coef`` is the logistic optimum, shape (n_features,).
    """
    coef = np.asarray(coef, dtype=float)
    gap = separation * float(np.abs(coef).max(initial=0.0))
    chosen = []
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

    softmax: object
    logistic: object
    softmax_proba: np.ndarray
    logistic_proba: np.ndarray

    def gaps(self):
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


def _flat(coef, intercept):
    """``(w, b)`` as one vector: the coefficients and the intercept are compared together."""
    return np.concatenate([np.ravel(coef), np.ravel(intercept)])


def exact_optima(X, y, weight_decay, fit_intercept=True):
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


def sklearn_gap(X, y, C, fit_intercept, reference_proba, reference_coef):
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


def sklearn_gaps(X, y, weight_decay, fit_intercept, optima):
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

    report: dict
    trajectory: Trajectory
    optima: Optima
    problem: Problem
    config: object  # the resolved `Config`

    @property
    def equivalent(self):
        return self.report["equivalent"]


def compare(config, problem, on_epoch=None):
    """Run the three comparisons on ``problem`` with ``config``'s model, optim and seed.

    ``on_epoch(record, total_epochs)`` is called after every SGD epoch (progress display).

    Returns
    -------
    Comparison
    """
    _check_supported(config)
    weight_decay, fit_intercept = config.model.weight_decay, config.model.fit_intercept
    started = time.perf_counter()
    _, batch_rng, sample_rng = generators(config.seed)
    optima = exact_optima(problem.X, problem.y, weight_decay, fit_intercept)
    tracked = tracked_features(optima.logistic.coef[0])
    sample_rows = _sample(problem.X.shape[0], sample_rng)
    trajectory = follow_trajectories(
        problem.X, problem.y, config.model, config.optim, batch_rng, sample_rows, tracked, on_epoch=on_epoch
    )
    report = _report(config, problem, trajectory, optima)
    report.update(sklearn_gaps(problem.X, problem.y, weight_decay, fit_intercept, optima))
    report["checks"] = _checks(report)
    if not all(check["ok"] for check in report["checks"] if check["name"].startswith("trajectory.")):
        _refuse_unstable(config, problem, report)
    report["equivalent"] = all(check["ok"] for check in report["checks"])
    report["seconds"] = time.perf_counter() - started
    return Comparison(report=report, trajectory=trajectory, optima=optima, problem=problem, config=config)


def rounding_amplification(X, y, model, optim, batch_rng):
    """How much logistic SGD amplifies a rounding-sized change: ``(gap, amplification)``.

    Runs logistic SGD twice on the batches of ``batch_rng`` (a fresh generator, as
    `follow_trajectories` gets), the second time with every rate times ``1 + PERTURBATION``.
    ``gap`` is the largest difference between the two runs' weights over all steps;
    ``amplification`` is ``gap / (PERTURBATION * max(1, largest |weight|))``: about 1 when
    SGD is stable, above 1e10 when it amplifies every nudge to the size of the weights.
    """
    decay = logistic.logistic_weight_decay(model.weight_decay)

    def run(factor, rng):
        batches = ((X_batch, y_batch, lr * factor) for X_batch, y_batch, lr in logistic_batches(X, y, optim, rng))
        return logistic.sgd_path(batches, X.shape[1], decay, optim.momentum, optim.nesterov, model.fit_intercept)

    gap = largest = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        paths = zip(run(1.0, copy.deepcopy(batch_rng)), run(1.0 + PERTURBATION, copy.deepcopy(batch_rng)))
        for (coef, intercept), (nudged_coef, nudged_intercept) in paths:
            gap = max(gap, np.abs(coef - nudged_coef).max(), np.abs(intercept - nudged_intercept).max())
            largest = max(largest, np.abs(coef).max(), np.abs(intercept).max())
    gap = float(gap) if math.isfinite(gap) else math.inf
    return gap, gap / (PERTURBATION * max(1.0, float(largest)))


def _refuse_unstable(config, problem, report):
    """Failed trajectory checks: raise `UnstableError` when SGD itself amplifies rounding at this rate.

    Otherwise the failure stands (the report says "not equivalent"), with the measured
    ``trajectory.rounding_amplification`` added to the report.
    """
    _, batch_rng, _ = generators(config.seed)
    gap, amplification = rounding_amplification(problem.X, problem.y, config.model, config.optim, batch_rng)
    report["trajectory"]["rounding_amplification"] = amplification
    if not amplification <= AMPLIFICATION_LIMIT:  # NaN or inf count as unstable
        suggested = min(config.optim.lr / 10, stable_learning_rate(problem.X, config.model.weight_decay, config.optim.momentum))
        raise UnstableError(config.optim.lr, gap, report["trajectory"]["max_abs_prob_diff"], suggested)


def _check_supported(config):
    """Refuse settings the comparison does not cover, before any work."""
    if config.model.weight_decay <= 0:
        raise UsageError(
            "compare-logistic needs model.weight_decay > 0 (the optimum is unique only then), "
            f"got {config.model.weight_decay:g}"
        )
    # the logistic side implements plain minibatch SGD (with momentum); an SVRG run would
    # differ by construction, not by a failure of the identity
    variance_reduction = getattr(config.optim, "variance_reduction", "none")
    if variance_reduction != "none":
        raise UsageError(
            f"compare-logistic follows plain minibatch SGD; set optim.variance_reduction to none "
            f"(got {variance_reduction})"
        )


def _sample(n_samples, rng):
    """A fixed sample of up to SAMPLE_ROWS rows (None: all of them)."""
    return None if n_samples <= SAMPLE_ROWS else np.sort(rng.choice(n_samples, SAMPLE_ROWS, replace=False))


def _report(config, problem, trajectory, optima):
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
        "learning_rate": {"softmax": optim.lr, "logistic": logistic.logistic_learning_rate(optim.lr)},
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


def _checks(report):
    """One entry per threshold: name (the report's dotted key), value, threshold, ok."""
    checks = []
    for name, threshold in THRESHOLDS.items():
        section, key = name.split(".")
        value = report[section][key]
        checks.append({"name": name, "value": value, "threshold": threshold, "ok": bool(value <= threshold)})
    return checks


# -- --out


def save_comparison(comparison, target, force=False):
    """Write both SGD models, the JSON report, the config and the plots into ``target`` atomically.

    ``softmax/`` is a run directory ``evaluate``, ``predict`` and ``report`` accept: model,
    config, history, metrics and plots, where the "test" part (``test.npz``, the metrics)
    is every row the models were trained on (there is no held-out split: the claim is
    about the training problem). ``logistic/model.npz`` holds coef (1, d) and intercept (1,)
    with the same classes and standardizer.
    """
    problem, trajectory = comparison.problem, comparison.trajectory
    shared = {
        "classes": np.asarray(problem.classes),
        "feature_mean": problem.feature_mean,
        "feature_scale": problem.feature_scale,
    }
    with rundir.staging_dir(target, force=force) as staging:
        for name in ("softmax", "logistic", "plots"):
            (staging / name).mkdir()
        rundir.write_npz(
            staging / "logistic" / "model.npz",
            coef=trajectory.logistic_coef,
            intercept=trajectory.logistic_intercept,
            **shared,
        )
        rundir.write_json(staging / "report.json", comparison.report)
        rundir.write_text(staging / "config.yaml", _config_text(comparison.config))  # also marks it as softreg's
        draw_comparison_plots(comparison, staging / "plots")
        model = rundir.Model(
            coef=trajectory.softmax_coef,
            intercept=trajectory.softmax_intercept,
            feature_names=problem.feature_names,
            label_name=problem.label_name,
            **shared,
        )
        _save_softmax_run(staging / "softmax", comparison, model)
    return Path(target)


def _config_text(config):
    return (
        "# compare-logistic: trained on every row of data.source (data.test and data.val are not used), "
        "in float64\n" + dump_config(config)
    )


def _save_softmax_run(directory, comparison, model):
    """The softmax SGD model as a run directory, its metrics and plots on every row; model.npz last."""
    from softreg.pipeline import draw_plots, history_csv  # the run-directory layout train writes

    problem, trajectory = comparison.problem, comparison.trajectory
    proba = softmax.predict_proba(model.coef, model.intercept, problem.X)  # (n_samples, 2)
    metrics = classification_metrics(problem.y, proba, problem.classes)
    summary = trajectory.fit_summary
    metrics.update(split="train", objective=summary.get("objective"), grad_norm=summary.get("grad_norm"))
    history = history_rows(trajectory.history)
    rundir.write_text(directory / "config.yaml", _config_text(comparison.config))
    rundir.write_text(directory / "history.csv", history_csv(history))
    rundir.write_json(directory / "metrics.json", metrics)
    rundir.save_test_split(directory, problem.X_raw, problem.y)
    X_raw = _dense(problem.X_raw) if problem.X.shape[1] == 2 else None
    draw_plots(directory / "plots", True, history, model, metrics, problem.y, proba, X_raw=X_raw, points="training")
    training = {
        **summary,
        "n_train": int(problem.X.shape[0]),
        "n_val": 0,
        "n_test": int(problem.X.shape[0]),
        "n_features": int(problem.X.shape[1]),
        "source": problem.source,
    }
    rundir.save_model(directory, model, training)


def draw_comparison_plots(comparison, directory):
    """Coefficient paths, per-step probability gaps and, for two features, the decision boundaries."""
    problem, trajectory = comparison.problem, comparison.trajectory
    optimum = comparison.optima.logistic.coef[0]
    names = [f"{problem.feature_names[index]} (w* = {optimum[index]:.3g})" for index in trajectory.tracked]
    drawn = [
        plots.coefficient_paths(
            trajectory.softmax_path, trajectory.logistic_path, names, directory / "coefficient_paths.png"
        ),
        plots.trajectory_gaps(
            trajectory.prob_diff,
            np.maximum(trajectory.coef_diff, trajectory.intercept_diff),
            THRESHOLDS["trajectory.max_abs_prob_diff"],
            directory / "trajectory_gaps.png",
        ),
    ]
    if problem.X.shape[1] == 2:
        softmax_weights = logistic.from_softmax(trajectory.softmax_coef, trajectory.softmax_intercept)
        lines = [_raw_space_line(*softmax_weights, problem)]
        lines.append(_raw_space_line(trajectory.logistic_coef, trajectory.logistic_intercept, problem))
        points = (_dense(problem.X_raw), problem.y, problem.classes, problem.feature_names)
        drawn.append(plots.decision_boundaries(*points, *lines, directory / "decision_boundaries.png"))
    return drawn


def _dense(X):
    return X.toarray() if hasattr(X, "toarray") else np.asarray(X)


def _raw_space_line(coef, intercept, problem):
    """``w . (x - mean) / scale + b = 0`` as ``(a, c)`` with ``a . x + c = 0`` in raw feature units."""
    slope = coef[0] / problem.feature_scale  # (2,)
    return slope, float(intercept[0] - slope @ problem.feature_mean)
