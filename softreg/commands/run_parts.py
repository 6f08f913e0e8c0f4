"""A run's data parts rebuilt from its saved config, and what ``evaluate --calibrate`` and
``evaluate --optimum`` compute on them: a temperature fitted on the validation split, and the
exact optimum of the objective on the training part (in memory, over a cache's shards a chunk at
a time, or over a Dask cluster's workers)."""

from __future__ import annotations

import math
from dataclasses import replace
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from softreg import losses, rundir
from softreg.cache import CacheData
from softreg.config import Config, read_yaml, resolve
from softreg.engine.placed import PlacedPart
from softreg.errors import DataError, RunDirError, UsageError
from softreg.evaluate import MetricSums, classification_metrics
from softreg.io.delimited import CHUNK_ROWS
from softreg.io.remote import storage_options
from softreg.model import Model
from softreg.prepare.data import Prepared, prepare, random_streams
from softreg.softmax import penalty, penalty_gradient
from softreg.solve import Optimum, exact_optimum, streamed_optimum
from softreg.train import ArrayData, data_logits, evaluate_objective


def rebuild_parts(run_dir: str | PathLike[str], model: Model, flag: str) -> tuple[Config, Prepared]:
    """The run's config and its training, validation and test parts, rebuilt in float64 from
    the saved config (the split depends only on the data and the seed); ``flag`` names the
    option that needs them in messages."""
    path = Path(run_dir) / rundir.CONFIG
    if not path.exists():
        raise RunDirError(f"{path}: missing; {flag} needs the run's config to rebuild its data splits")
    config = resolve(read_yaml(path), origin=str(path))
    with storage_options(config.data.storage_options):
        if config.data.cache is not None:
            prepared = _cached_in_float64(config)
        else:
            prepared = as_trained(prepare(config.data, np.dtype(np.float64), random_streams(config.seed).split), model)
    same = [str(label) for label in prepared.classes] == [str(label) for label in model.classes] and np.allclose(
        prepared.feature_mean, model.feature_mean
    ) and np.allclose(prepared.feature_scale, model.feature_scale)
    if not same:
        raise DataError(
            f"{config.data.source}: no longer gives the training part this run was trained on "
            f"(its classes or feature statistics changed); {flag} cannot rebuild it"
        )
    return config, prepared


def as_trained(prepared: Prepared, model: Model) -> Prepared:
    """``prepared`` in the scaling ``model`` was trained with: a run that predates unscaled
    indicators (no ``feature_scaling`` in model.json) divided its indicators by their standard
    deviation, and its rebuilt dense parts are rescaled so; any other run's parts as they are."""
    from softreg.prepare.scaling import indicator_mask

    indicators = indicator_mask(prepared.columns, len(prepared.feature_scale))
    if model.scaling is not None or not indicators.any() or model.feature_scale.shape != prepared.feature_scale.shape:
        return prepared
    factor = np.where(indicators, prepared.feature_scale / model.feature_scale, 1.0)

    def rescaled(part: ArrayData | None) -> ArrayData | None:
        if part is None or not isinstance(part.X, np.ndarray):
            return part
        return replace(part, X=part.X * factor)

    return replace(prepared, train=rescaled(prepared.train), val=rescaled(prepared.val),  # type: ignore[arg-type]
                   test=rescaled(prepared.test), feature_scale=np.where(indicators, model.feature_scale,
                                                                       prepared.feature_scale))


def _cached_in_float64(config: Config) -> Prepared:
    """A cached run's parts (its shards hold ``model.dtype``), read as float64 a chunk at a time."""
    from softreg.cache import CacheData, open_cache, prepare_cached
    from softreg.engine.placed import is_placed, prepare_placed

    manifest = open_cache(config, rebuild=False)  # a cache ingested since under another config stays as it is
    if is_placed(manifest):  # on the Dask workers: their engine reads the rows (in the shards' dtype)
        return prepare_placed(manifest)
    prepared = prepare_cached(config, manifest=manifest)

    def in_float64(part: CacheData | None) -> CacheData | None:
        return None if part is None else replace(part, read_as="float64")

    assert isinstance(prepared.train, CacheData), "prepare_cached gives CacheData parts"
    return replace(
        prepared,
        train=replace(prepared.train, read_as="float64"),
        val=in_float64(prepared.val),  # type: ignore[arg-type]
        test=in_float64(prepared.test),  # type: ignore[arg-type]
    )


def validation_part(run_dir: str | PathLike[str], model: Model) -> ArrayData:
    """The run's validation split, standardized as in training; a UsageError when it has none."""
    config, prepared = rebuild_parts(run_dir, model, "--calibrate")
    if isinstance(prepared.val, PlacedPart):
        raise UsageError(f"{run_dir}: --calibrate reads the validation part into this process, and this run's "
                         "rows are on the Dask workers (engine.worker_cache); it is not supported there yet")
    if prepared.val is None:
        raise UsageError(
            f"{run_dir}: has no validation split (data.val is {config.data.val:g}); --calibrate fits the temperature "
            "on it, so retrain with data.val > 0 (e.g. 0.1)"
        )
    return prepared.val


CALIBRATION_BOUNDS = (math.log(1e-2), math.log(1e2))  # log T: the search range of fit_temperature
CALIBRATION_ROWS = 50  # the fewest validation rows that fit the one parameter T
LOW_CONFIDENCE = 0.9  # a row whose true class gets less than this tells T something, as an error does
BOUND_MARGIN = 1e-3  # log T this close to a bound of CALIBRATION_BOUNDS is at the bound


def calibration_refusal(n_samples: int, n_informative: int) -> str | None:
    """Why a validation split cannot fit T (None when it can): the rule is at least
    `CALIBRATION_ROWS` rows, of which at least one is misclassified or low-confidence (its
    true class's probability below `LOW_CONFIDENCE`); without such a row the log loss keeps
    falling as T shrinks, and the fitted T says nothing of unseen rows."""
    if n_samples < CALIBRATION_ROWS:
        return f"the validation split has {n_samples} rows, fewer than the {CALIBRATION_ROWS} needed to fit T"
    if n_informative == 0:
        return (f"no validation row is misclassified or has its class's probability below {LOW_CONFIDENCE:g}, "
                "so T would only shrink toward its bound")
    return None


def fit_temperature(model: Model, val: ArrayData) -> dict[str, Any]:
    """Temperature scaling (Guo et al. 2017): the factor T by which the model's logits are
    divided (on top of its own temperature) that minimizes the validation log loss.

    T is searched on log T with scipy's bounded `minimize_scalar`. It is kept only if the
    validation split can fit it (`calibration_refusal`), it lies strictly inside the search
    interval (not within `BOUND_MARGIN` of a bound), and it worsens neither the validation
    log loss nor the validation ECE; otherwise T = 1, ``improved`` is false and ``reason``
    says why, so that calibrating never makes the validation split worse.

    Returns
    -------
    dict with ``temperature``, ``effective_temperature`` (the model's times T), ``improved``,
    ``reason`` (None when T was kept), ``split``, ``n_samples``, ``ece_before``, ``ece_after``,
    ``log_loss_before``, ``log_loss_after``
    """
    from scipy.optimize import minimize_scalar

    coef, intercept = model.coef.astype(np.float64), model.intercept.astype(np.float64)
    if isinstance(val, CacheData):  # its float64 rows a chunk at a time; only the logits are kept
        logits = np.concatenate([data_logits(coef, intercept, X) for X, _, _ in val.chunks(CHUNK_ROWS)])
    else:
        logits = data_logits(coef, intercept, val.X, val.center)  # (n_val, K); sparse rows centred exactly
    rows = np.arange(val.n_samples)

    def mean_log_loss(log_temperature: float) -> float:
        temperature = model.temperature * math.exp(log_temperature)
        return float(-losses.log_proba(logits, model.normalizer, temperature)[rows, val.y].mean())

    proba = losses.proba(logits, model.normalizer, model.temperature)
    before = classification_metrics(val.y, proba, model.classes)
    informative = (proba.argmax(axis=1) != val.y) | (proba[rows, val.y] < LOW_CONFIDENCE)
    reason = calibration_refusal(val.n_samples, int(np.count_nonzero(informative)))
    temperature, after = 1.0, before
    if reason is None:
        found = minimize_scalar(mean_log_loss, bounds=CALIBRATION_BOUNDS, method="bounded", options={"xatol": 1e-6})
        log_temperature = float(found.x)
        temperature = math.exp(log_temperature)
        after = classification_metrics(
            val.y, losses.proba(logits, model.normalizer, model.temperature * temperature), model.classes
        )
        low, high = CALIBRATION_BOUNDS
        if not low + BOUND_MARGIN < log_temperature < high - BOUND_MARGIN:
            reason = (f"the fitted T = {temperature:.4g} lies at the bound of its search interval "
                      f"[{math.exp(low):g}, {math.exp(high):g}]")
        elif not (after["log_loss"] <= before["log_loss"] and after["ece"] <= before["ece"]):
            reason = "no better than T = 1 on the validation split"
        if reason is not None:
            temperature, after = 1.0, before
    return {
        "temperature": temperature,
        "effective_temperature": model.temperature * temperature,
        "improved": reason is None,
        "reason": reason,
        "split": "validation",
        "n_samples": val.n_samples,
        "ece_before": before["ece"],
        "ece_after": after["ece"],
        "log_loss_before": before["log_loss"],
        "log_loss_after": after["log_loss"],
    }


def solve_optimum(run_dir: str | PathLike[str], model: Model) -> tuple[Optimum, float]:
    """The exact optimum of the run's objective on its training part, and the model's objective there.

    The training part is rebuilt from the saved config (`rebuild_parts`); a cached run's is
    read from its cache a chunk at a time (`streamed_optimum`). Both objectives are computed
    in float64. Only the convex objectives have one: cross-entropy with softmax
    (at any temperature); squared error and the other normalizers are refused.

    Returns
    -------
    optimum : softreg.solve.Optimum
    model_objective : float, J of the saved model on the same training part
    """
    if model.loss != "cross_entropy" or model.normalizer != "softmax":
        raise UsageError(
            f"{run_dir}: --optimum solves convex objectives only (cross_entropy with softmax); this run's "
            f"{model.loss} with {model.normalizer} is not convex, so L-BFGS would find a local minimum, not the optimum"
        )
    config, prepared = rebuild_parts(run_dir, model, "--optimum")
    train, settings = prepared.train, config.training_settings()
    if config.engine.kind == "dask":
        return _engine_optimum(config, prepared, model)
    if isinstance(train, CacheData) and isinstance(train.X, np.ndarray):  # a chunked oracle over the dense shards
        optimum = streamed_optimum(
            train, len(model.classes), settings.weight_decay, settings.fit_intercept, temperature=settings.temperature
        )
    else:
        X = train.X.astype(np.float64) if not isinstance(train.X, np.ndarray) else train.X  # CSR: held whole
        optimum = exact_optimum(
            X, train.y, len(model.classes), settings.weight_decay, settings.fit_intercept,
            temperature=settings.temperature, center=train.center,
        )
    coef, intercept = model.coef.astype(np.float64), model.intercept.astype(np.float64)
    model_objective, _ = evaluate_objective(coef, intercept, train, settings)
    return optimum, model_objective


def _engine_optimum(config: Config, prepared: Prepared, model: Model) -> tuple[Optimum, float]:
    """`solve_optimum` of a run trained on Dask: L-BFGS here, each objective and gradient the
    sums over the shards that the cluster's workers hold (in float64, added in shard order)."""
    from softreg.engine import open_engine
    from softreg.solve import optimum_of

    settings = config.training_settings()
    weight_decay = settings.weight_decay
    with open_engine(config, prepared.train, None) as parts:
        train = parts.train

        def loss_gradient(coef: np.ndarray, intercept: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
            sums = train.full_sums(coef, intercept)
            data_loss = sums.loss / sums.count
            objective = data_loss + penalty(coef, weight_decay)
            return data_loss, objective, sums.grad_coef / sums.count + penalty_gradient(coef, weight_decay), \
                sums.grad_intercept / sums.count

        optimum = optimum_of(loss_gradient, len(model.classes), train.n_features, settings.fit_intercept)
        model_objective = loss_gradient(model.coef.astype(np.float64), model.intercept.astype(np.float64))[1]
    return optimum, model_objective


def run_is_placed(run_dir: str | PathLike[str]) -> bool:
    """Whether the run trained on Dask from a cache whose shards are on the workers."""
    from softreg.cache import read_manifest
    from softreg.engine.placed import is_placed

    path = Path(run_dir) / rundir.CONFIG
    if not path.exists():
        return False
    config = resolve(read_yaml(path), origin=str(path))
    if config.data.cache is None or config.engine.kind != "dask":
        return False
    manifest = read_manifest(config.data.cache)
    return manifest is not None and is_placed(manifest)


def placed_test_sums(
    run_dir: str | PathLike[str], model: Model, others: list[Model], keep: int
) -> tuple[MetricSums, np.ndarray, np.ndarray, list[MetricSums]] | None:
    """For a run whose rows are on the Dask workers (None for any other run): the metric sums of
    ``model`` on its test part, computed there as training computed them (so ``evaluate`` repeats
    ``metrics.json``'s numbers), the classes and probabilities of about ``keep`` of its rows, and
    the sums of each of ``others`` (e.g. the optimum's model) on the same rows."""
    from softreg.engine import ShardedData, open_engine

    if not run_is_placed(run_dir):
        return None
    config, prepared = rebuild_parts(run_dir, model, "evaluate")
    if prepared.test is None:
        raise UsageError(f"{run_dir}: its cache has no test part to evaluate on (data.test is {config.data.test}); "
                         "give labelled data with --data")
    with open_engine(config, prepared.train, None, test=prepared.test) as parts:
        assert isinstance(parts.test, ShardedData), "a cache on the workers puts its test part on the engine"
        sums, y, proba = parts.test.metric_sums(model, keep)
        return sums, y, proba, [parts.test.metric_sums(other, 0)[0] for other in others]
