"""``softreg evaluate``: a saved model's metrics on its test split or other data, and the
gap to the exact optimum."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from softreg import losses, rundir
from softreg.cache import CacheData, budget
from softreg.columns import MISSING_HINT, Columns
from softreg.commands.common import draw_plots
from softreg.config import Config, read_yaml, resolve
from softreg.data import Prepared, encode_with, prepare, random_streams
from softreg.delimited import CHUNK_ROWS, Chunk, Selection, delimited_chunks, hint_label_first, typed_labels
from softreg.delimited_numbers import NotNumeric, NumericChunk, numbers_then_text, read_layout
from softreg.errors import DataError, RunDirError, UsageError, warn
from softreg.evaluate import MetricSums, classification_metrics
from softreg.kernels import Matrix
from softreg.model import Model, raw_logits
from softreg.parquet import parquet_column_names, read_batches, read_parquet_layout
from softreg.solve import Optimum, exact_optimum, streamed_optimum
from softreg.sources import (
    DELIMITED_SUFFIXES,
    align_features,
    check_file,
    load_source,
    looks_like_svmlight,
    source_kind,
)
from softreg.train import ArrayData, data_logits, evaluate_objective


def evaluate_run(
    run_dir: str | PathLike[str],
    data: str | None = None,
    label: str | int | None = None,
    optimum: bool = False,
    out: str | PathLike[str] | None = None,
    force: bool = False,
    header: bool | None = None,
    calibrate: bool = False,
    chunk_rows: int | None = None,
) -> dict[str, Any]:
    """Metrics of a saved run on its test split, or on another labelled ``data`` source.

    Delimited ``data`` (a file, or ``-``) is read ``chunk_rows`` rows at a time (default: from
    the run's ``data.memory_budget``, `softreg.cache.budget.chunk_rows`) and the metrics are
    added up chunk by chunk (`MetricSums`): memory stays bounded whatever the file's size, and
    the metrics are those of the whole file, bit for bit, whatever the chunk size.

    With ``optimum``, ``metrics["optimum"]`` holds the exact optimum's objective J*, the
    saved model's relative gap to it and the optimum's accuracy on the same data. With
    ``calibrate``, a temperature is fitted on the run's validation split (`fit_temperature`),
    ``metrics["calibration"]`` reports it with the validation ECE and log loss before and
    after, and the metrics of the evaluated data are those of the rescaled model. With
    ``out``, the metrics and the plots of the evaluated data are written into that
    directory (refused when it exists and is not empty, unless ``force``); the plots of
    streamed data show its first `PLOT_ROWS` rows (the reliability diagram: all of them).
    """
    if out is not None:
        _check_evaluation_out(run_dir, out, force)
    model = rundir.load_model(run_dir)
    with _evaluated_chunks(run_dir, model, data, label, header, chunk_rows) as (chunks, source):
        calibration = fit_temperature(model, validation_part(run_dir, model)) if calibrate else None
        solved = solve_optimum(run_dir, model) if optimum else None
        scored = replace(model, temperature=model.temperature * calibration["temperature"]) if calibration else model
        kept = _PlotRows(model.n_features == 2) if out is not None else None
        sums, before, optimum_hits = _tally(chunks, model, scored, solved[0] if solved else None, kept)
    metrics = sums.metrics(model.classes)
    if calibration is not None:
        calibration["evaluated"] = {
            "ece_before": before.expected_calibration_error(), "ece_after": metrics["ece"],
            "log_loss_before": before.metrics(model.classes)["log_loss"], "log_loss_after": metrics["log_loss"],
        }
        metrics["calibration"] = calibration
    training = rundir.read_model_json(Path(run_dir) / "model.json").get("training", {})
    metrics.update(source=source, objective=training.get("objective"), grad_norm=training.get("grad_norm"))
    if solved is not None:
        found, model_objective = solved
        metrics["optimum"] = {
            "objective": found.objective,
            "gap": (model_objective - found.objective) / abs(found.objective),
            "accuracy": optimum_hits / sums.n_samples,
            "model_objective": model_objective,
            "grad_norm": found.grad_norm,
            "iterations": found.iterations,
        }
    if out is not None and kept is not None:
        y, proba, X_raw = kept.arrays()
        with rundir.staging_dir(out, force=force) as staging:
            rundir.write_json(staging / "metrics.json", metrics)
            draw_plots(
                staging / "plots", True, _read_history_if_any(run_dir), scored, metrics, y, proba,
                X_raw=X_raw, optimum_objective=solved[0].objective if solved else None, points="evaluated",
                bins=sums.reliability(),
            )
    return metrics


def _tally(
    chunks: EvaluatedChunks, model: Model, scored: Model, optimum: Optimum | None, kept: _PlotRows | None
) -> tuple[MetricSums, MetricSums, int]:
    """One pass over the evaluated rows: the metric sums of the ``scored`` model (the calibrated
    one, or ``model`` itself) and of ``model``, the rows the ``optimum`` classifies right, and the
    rows ``kept`` for the plots."""
    sums, before = MetricSums(model.n_classes), MetricSums(model.n_classes)
    optimum_hits = 0
    for X_raw, y in chunks:
        proba = scored.predict_proba(X_raw)
        sums.add(y, proba)
        if scored is not model:
            before.add(y, model.predict_proba(X_raw))
        if optimum is not None:
            logits = raw_logits(optimum.coef, optimum.intercept, model.feature_mean, model.feature_scale, X_raw)
            optimum_hits += int(np.count_nonzero(logits.argmax(axis=1) == y))
        if kept is not None:
            kept.add(X_raw, y, proba)
    return sums, before, optimum_hits


PLOT_ROWS = 100_000  # rows of streamed data kept for the plots that draw rows (the first chunk always whole)


class _PlotRows:
    """The first rows of the evaluated data, for the plots that draw rows: class indices,
    probabilities and (with two features) the raw features."""

    def __init__(self, with_features: bool) -> None:
        self.with_features = with_features
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        self.rows = 0

    def add(self, X_raw: Matrix, y: np.ndarray, proba: np.ndarray) -> None:
        if self.parts and self.rows >= PLOT_ROWS:
            return
        take = len(y) if not self.parts else min(len(y), PLOT_ROWS - self.rows)
        features = _raw_features(X_raw[:take], 2) if self.with_features else None
        self.parts.append((y[:take], proba[:take], features))
        self.rows += take

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        if len(self.parts) == 1:
            return self.parts[0]
        y = np.concatenate([part[0] for part in self.parts])
        proba = np.concatenate([part[1] for part in self.parts])
        features = [part[2] for part in self.parts if part[2] is not None]
        return y, proba, np.concatenate(features) if self.with_features else None


def _check_evaluation_out(run_dir: str | PathLike[str], out: str | PathLike[str], force: bool) -> None:
    target, run = Path(out).resolve(), Path(run_dir).resolve()
    if target == run or target in run.parents:
        raise UsageError(f"--out {target}: would replace the run directory {run_dir}; choose another directory")
    rundir.check_output_dir(target, force)  # before the work, not only when the results are saved


EvaluatedChunks = Iterator[tuple[Matrix, np.ndarray]]  # raw features (n, d), class indices (n,)


@contextmanager
def _evaluated_chunks(
    run_dir: str | PathLike[str], model: Model, data: str | None, label: str | int | None, header: bool | None,
    chunk_rows: int | None,
) -> Iterator[tuple[EvaluatedChunks, str]]:
    """The evaluated rows in chunks, and a description of them: delimited text and Parquet
    streamed, the saved test split and other sources (.npz, svmlight, builtin) in one piece.
    Whatever can be refused before the first row (a missing file, missing columns) is refused
    on entry."""
    if data is not None and _streams(data):
        with _delimited_chunks(run_dir, model, data, label, header, chunk_rows) as chunks:
            yield chunks, data
        return
    if data is not None and source_kind(data) == "parquet":
        rows = chunk_rows or budget.chunk_rows(budget.run_budget(run_dir), len(model.input_names) + 2, CHUNK_ROWS)
        yield _parquet_chunks(model, data, label if label is not None else _label_for(data, model, header), rows), data
        return
    X_raw, y, source = _evaluated_data(run_dir, model, data, label, header)
    yield iter([(X_raw, y)]), source


def _streams(source: str) -> bool:
    """Whether ``source`` is delimited text, read in chunks (`softreg.sources.load_source`'s rule)."""
    if source == "-":
        return True
    path = Path(source)
    if source_kind(source) != "delimited":
        return False
    return path.suffix.lower() in DELIMITED_SUFFIXES or not path.is_file() or not looks_like_svmlight(path)


@contextmanager
def _delimited_chunks(
    run_dir: str | PathLike[str], model: Model, data: str, label: str | int | None, header: bool | None,
    chunk_rows: int | None,
) -> Iterator[EvaluatedChunks]:
    """Stream a labelled delimited file as `_evaluated_data` reads it whole: the same columns,
    checks and messages, a chunk at a time; through the fast path when the model reads plain
    numeric columns, as text cells otherwise and from wherever the fast path declines."""
    flag = header if header is not None else model.header
    label = label if label is not None else _label_for(data, model, flag)
    if data != "-":
        check_file(data, Path(data))
    rows = chunk_rows or budget.chunk_rows(budget.run_budget(run_dir), len(model.input_names) + 2, CHUNK_ROWS)
    delimiter = DELIMITED_SUFFIXES.get(Path(data).suffix.lower()) if data != "-" else None
    columns = model.columns or Columns.numeric(model.feature_names)
    choice = _EvaluatedColumns(model, label, data)
    try:
        layout = read_layout(data, choice, delimiter, flag) if columns.plain else None
    except NotNumeric:  # the text path reads the file, and refuses what it must
        layout = None
    if layout is not None and layout.target is not None and choice.hints(layout.target) and 0 not in layout.features:
        layout = None  # column 0 may hold text labels to warn about, which only the text path reads
    if layout is not None:

        def text(names: list[str], chunks: Iterator[Chunk], skipped: int) -> EvaluatedChunks:
            return _text_chunks(model, columns, choice, names, chunks, first=skipped == 0)

        evaluated = numbers_then_text(layout, rows, lambda chunk: _numeric_chunk(model, chunk, data), text)
        try:
            yield evaluated
        finally:
            evaluated.close()  # the file, when the rows are left before their end
        return
    with delimited_chunks(data, delimiter, rows, flag) as (names, chunks):
        choice.columns(names)  # refuse missing columns up front
        yield _text_chunks(model, columns, choice, names, chunks, first=True)


@dataclass(frozen=True)
class _EvaluatedColumns:
    """The columns of a labelled file to evaluate (a `softreg.delimited.ColumnChoice`): ``label``
    (None: the last column), and the model's input columns among the others."""

    model: Model
    label: str | int | None
    where: str

    def columns(self, header: Sequence[str]) -> tuple[int, list[int], list[int]]:
        """The label's index, every other column's (the candidate features), and the model's input columns'."""
        if len(header) < 2:
            raise DataError(
                f"{self.where}: needs at least one feature column besides the label; columns are: {', '.join(header)}"
            )
        target, _, features = Selection(label=self.label).resolve(self.where, header)
        names = [header[index] for index in features]
        return target, features, [features[index] for index in self.model.input_positions(names, self.where)]

    def hints(self, target: int) -> bool:
        """Whether the text path looks at the first chunk for text labels in column 0 (`hint_label_first`),
        which is a candidate feature unless it is the label."""
        return self.label is None and target != 0

    def resolve(self, path: str | PathLike[str], header: Sequence[str]) -> tuple[int, None, list[int]]:
        target, _, positions = self.columns(header)
        return target, None, positions


def _numeric_chunk(model: Model, chunk: NumericChunk, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Raw features and class indices of rows read by the fast path: the text path's, bit for bit;
    NotNumeric for a value too large to standardize (the text path reads that chunk again and
    names its line)."""
    X = np.ascontiguousarray(chunk.X)  # laid out as the text path's: the same arithmetic, the same bits
    try:
        model.check_finite_standardized(X, where)
    except DataError:
        raise NotNumeric from None
    return X, encode_with(model.classes, typed_labels(chunk.labels), where)


def _text_chunks(
    model: Model, columns: Columns, choice: _EvaluatedColumns, names: list[str], chunks: Iterator[Chunk], first: bool
) -> EvaluatedChunks:
    """Raw features and class indices of rows read as text cells (every error names the line and
    column); ``first``: these chunks start at the file's first row."""
    data = choice.where
    target, _, positions = choice.columns(names)
    unknown: dict[str, int] = {}
    for number, (cells_list, lines) in enumerate(chunks):
        cells = np.array(cells_list, dtype=str)
        labels = np.char.strip(cells[:, target])
        blank = np.flatnonzero(labels == "")
        if blank.size:
            raise DataError(f"{data}: line {lines[blank[0]]}: empty label in column {names[target]!r}")
        if first and number == 0 and choice.hints(target):
            hint_label_first(data, names, cells)
        encoded = columns.encode(cells[:, positions], data, lines)
        for name, count in encoded.unknown.items():
            unknown[name] = unknown.get(name, 0) + count
        model.check_finite_standardized(encoded.X, data, lines)
        yield encoded.X, encode_with(model.classes, typed_labels(labels), data)
    if unknown:
        counts = ", ".join(f"{name}: {count}" for name, count in unknown.items())
        warn(f"{data}: categories unseen in training got all-zero indicators ({counts} cells)")


def _parquet_chunks(model: Model, data: str, label: str | int | None, chunk_rows: int) -> EvaluatedChunks:
    """A labelled Parquet file or folder, at most ``chunk_rows`` rows at a time: ``label`` (None: the
    last column) and the model's input columns among the others, by name (any other column is not
    read). A null feature is a missing value: filled as the model's columns fill them, else refused
    naming its row and column. Missing columns are refused on the call, before the first row."""
    if not os.path.isdir(data):
        check_file(data, Path(data))  # as load_source does: a pipe named .parquet is refused, not read
    layout = read_parquet_layout(data, _EvaluatedColumns(model, label, data))
    columns = model.columns or Columns.numeric(model.feature_names)
    fills = any(column.fill is not None for column in columns.columns)

    def read() -> EvaluatedChunks:
        first_row = 0
        unknown: dict[str, int] = {}
        for batch in read_batches(layout, chunk_rows, refuse_missing=None if fills else MISSING_HINT):
            X = batch.X
            if not columns.plain:
                encoded = columns.encode(X, data)
                for name, count in encoded.unknown.items():
                    unknown[name] = unknown.get(name, 0) + count
                X = encoded.X
            model.check_finite_standardized(X, data, first_row=first_row)
            yield X, encode_with(model.classes, typed_labels(batch.labels), data)
            first_row += len(batch)
        if unknown:
            counts = ", ".join(f"{name}: {count}" for name, count in unknown.items())
            warn(f"{data}: categories unseen in training got all-zero indicators ({counts} cells)")

    return read()


def _evaluated_data(
    run_dir: str | PathLike[str], model: Model, data: str | None, label: str | int | None, header: bool | None
) -> tuple[Matrix, np.ndarray, str]:
    """Raw features (n, d), class indices (n,) and a description of what is evaluated, read whole."""
    if data is None:
        X_raw, y = rundir.load_test_split(run_dir)
        if X_raw.shape[1] != model.n_features:
            raise DataError(f"{run_dir}/test.npz: has {X_raw.shape[1]} features, the model has {model.n_features}")
        return X_raw, y, f"{run_dir} (saved test split)"
    training = rundir.read_model_json(Path(run_dir) / "model.json").get("training", {})
    flag = header if header is not None else model.header
    selection = Selection(label=label if label is not None else _label_for(data, model, flag))
    dataset = load_source(data, selection, header=flag, index_base=training.get("svmlight_index_base"))
    if dataset.cells is None:
        X_raw = align_features(dataset, model.input_names, data)
    else:
        positions = model.input_positions(dataset.feature_names, data)
        columns = model.columns or Columns.numeric(model.feature_names)
        lines = None if dataset.line_numbers is None else dataset.line_numbers.tolist()
        encoded = columns.encode(dataset.cells[:, positions], data, lines)
        if encoded.unknown:
            counts = ", ".join(f"{name}: {count}" for name, count in encoded.unknown.items())
            warn(f"{data}: categories unseen in training got all-zero indicators ({counts} cells)")
        X_raw = encoded.X
    lines = None if dataset.line_numbers is None else dataset.line_numbers.tolist()
    model.check_finite_standardized(X_raw, data, lines)
    return X_raw, encode_with(model.classes, dataset.labels, data), data


def _raw_features(X_raw: Matrix, n_features: int) -> np.ndarray | None:
    """Dense float64 raw features for the decision regions; None unless the model has two features."""
    if n_features != 2:
        return None
    return (X_raw if isinstance(X_raw, np.ndarray) else X_raw.toarray()).astype(np.float64)


def _read_history_if_any(run_dir: str | PathLike[str]) -> list[dict[str, float | None]]:
    return rundir.read_history(run_dir) if (Path(run_dir) / "history.csv").exists() else []


def rebuild_parts(run_dir: str | PathLike[str], model: Model, flag: str) -> tuple[Config, Prepared]:
    """The run's config and its training, validation and test parts, rebuilt in float64 from
    the saved config (the split depends only on the data and the seed); ``flag`` names the
    option that needs them in messages."""
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise RunDirError(f"{path}: missing; {flag} needs the run's config to rebuild its data splits")
    config = resolve(read_yaml(path), origin=str(path))
    if config.data.cache is not None:
        prepared = _cached_in_float64(config)
    else:
        prepared = prepare(config.data, np.dtype(np.float64), random_streams(config.seed).split)
    same = [str(label) for label in prepared.classes] == [str(label) for label in model.classes] and np.allclose(
        prepared.feature_mean, model.feature_mean
    ) and np.allclose(prepared.feature_scale, model.feature_scale)
    if not same:
        raise DataError(
            f"{config.data.source}: no longer gives the training part this run was trained on "
            f"(its classes or feature statistics changed); {flag} cannot rebuild it"
        )
    return config, prepared


def _cached_in_float64(config: Config) -> Prepared:
    """A cached run's parts (its shards hold ``model.dtype``), read as float64 a chunk at a time."""
    from softreg.cache import CacheData, prepare_cached

    prepared = prepare_cached(config)

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
    if prepared.val is None:
        raise UsageError(
            f"{run_dir}: has no validation split (data.val is {config.data.val:g}); --calibrate fits the temperature "
            "on it, so retrain with data.val > 0 (e.g. 0.1)"
        )
    return prepared.val


CALIBRATION_BOUNDS = (math.log(1e-2), math.log(1e2))  # log T: the search range of fit_temperature


def fit_temperature(model: Model, val: ArrayData) -> dict[str, Any]:
    """Temperature scaling (Guo et al. 2017): the factor T by which the model's logits are
    divided (on top of its own temperature) that minimizes the validation log loss.

    T is searched on log T with scipy's bounded `minimize_scalar`. It is kept only if it
    worsens neither the validation log loss nor the validation ECE; otherwise T = 1 (and
    ``improved`` says so), so that calibrating never makes the validation split worse.

    Returns
    -------
    dict with ``temperature``, ``effective_temperature`` (the model's times T), ``improved``,
    ``split``, ``n_samples``, ``ece_before``, ``ece_after``, ``log_loss_before``, ``log_loss_after``
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

    found = minimize_scalar(mean_log_loss, bounds=CALIBRATION_BOUNDS, method="bounded", options={"xatol": 1e-6})
    before = classification_metrics(val.y, losses.proba(logits, model.normalizer, model.temperature), model.classes)
    temperature = math.exp(float(found.x))
    after = classification_metrics(
        val.y, losses.proba(logits, model.normalizer, model.temperature * temperature), model.classes
    )
    improved = after["log_loss"] <= before["log_loss"] and after["ece"] <= before["ece"]
    if not improved:
        temperature, after = 1.0, before
    return {
        "temperature": temperature,
        "effective_temperature": model.temperature * temperature,
        "improved": improved,
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
    with open_engine(config, prepared.train, None) as (train, _):

        def loss_gradient(coef: np.ndarray, intercept: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
            sums = train.full_sums(coef, intercept)
            data_loss = sums.loss / sums.count
            objective = data_loss + 0.5 * weight_decay * float(np.vdot(coef, coef))
            return data_loss, objective, sums.grad_coef / sums.count + weight_decay * coef, \
                sums.grad_intercept / sums.count

        optimum = optimum_of(loss_gradient, len(model.classes), train.n_features, settings.fit_intercept)
        model_objective = loss_gradient(model.coef.astype(np.float64), model.intercept.astype(np.float64))[1]
    return optimum, model_objective


def _label_for(source: str, model: Model, header_flag: bool | None) -> str | None:
    """Use the model's label column name when a delimited or Parquet source has it, else the default."""
    kind = source_kind(source)
    if kind not in ("delimited", "parquet") or source == "-":
        return None
    try:
        if kind == "parquet":
            header = parquet_column_names(source)
        else:
            with delimited_chunks(Path(source), header=header_flag) as (header, _):  # the header (and a few rows)
                pass
    except DataError:
        return None  # the reader says what is wrong
    return model.label_name if model.label_name in header else None
