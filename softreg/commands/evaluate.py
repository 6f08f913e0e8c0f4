"""``softreg evaluate``: a saved model's metrics on its test split or other data, and the
gap to the exact optimum."""
from __future__ import annotations

from dataclasses import replace
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from softreg import rundir
from softreg.commands.evaluated_parts import PLOT_ROWS, PlotRows, Scoring, Tally, evaluated_source
from softreg.commands.run_parts import fit_temperature, solve_optimum, validation_part
from softreg.errors import UsageError
from softreg.model import Model
from softreg.rundir.figures import draw_plots
from softreg.solve import Optimum


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
    engine: str | None = None,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Metrics of a saved run on its test split, or on another labelled ``data`` source.

    Delimited ``data`` (a file, or ``-``) is read ``chunk_rows`` rows at a time (default: from
    the run's ``data.memory_budget``, `softreg.cache.budget.read_chunk_rows`) and the metrics are
    added up chunk by chunk (`MetricSums`): memory stays bounded whatever the file's size, and
    the metrics are those of the whole file, bit for bit, whatever the chunk size. Parquet
    ``data`` (a file, or a folder's files) is tallied part by part on ``engine`` (None: the run's
    ``engine.kind``; ``dask``: one task per part on the workers of ``scheduler``, None: the run's
    ``engine.scheduler``) and the parts' sums added in part order: the same metrics, bit for bit.

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
    placed = _placed_evaluation(run_dir, model, optimum, calibrate) if data is None else None
    scored: Model | None
    if placed is not None:  # the run's rows are on the Dask workers: so are its test metrics' sums
        tally, solved = placed
        calibration, scored, source_name = None, None, "test split (on the Dask workers)"
    else:
        with evaluated_source(run_dir, model, data, label, header, chunk_rows, engine, scheduler) as source:
            calibration = fit_temperature(model, validation_part(run_dir, model)) if calibrate else None
            solved = solve_optimum(run_dir, model) if optimum else None
            scored = None if calibration is None else replace(
                model, temperature=model.temperature * calibration["temperature"])
            exact = (solved[0].coef, solved[0].intercept) if solved else None
            tally = source.tally(Scoring(model, scored, exact, plots=out is not None))
        source_name = source.name
    sums, before = tally.sums, tally.before
    metrics = sums.metrics(model.classes)
    if calibration is not None:
        calibration["evaluated"] = {
            "ece_before": before.expected_calibration_error(), "ece_after": metrics["ece"],
            "log_loss_before": before.metrics(model.classes)["log_loss"], "log_loss_after": metrics["log_loss"],
        }
        metrics["calibration"] = calibration
    training = rundir.read_model_json(Path(run_dir) / rundir.MODEL_JSON).get("training", {})
    metrics.update(source=source_name, objective=training.get("objective"), grad_norm=training.get("grad_norm"))
    if "converged" in training:  # runs of earlier versions have no certificate
        metrics.update(converged=training["converged"], gap_bound=training.get("gap_bound"))
        metrics["certifiable"] = training.get("certifiable", True)
    if solved is not None:
        found, model_objective = solved
        metrics["optimum"] = {
            "objective": found.objective,
            "gap": (model_objective - found.objective) / abs(found.objective),
            "accuracy": tally.optimum_hits / sums.n_samples,
            "model_objective": model_objective,
            "grad_norm": found.grad_norm,
            "iterations": found.iterations,
        }
    if out is not None and tally.kept is not None:
        y, proba, X_raw = tally.kept.arrays()
        with rundir.staging_dir(out, force=force) as staging:
            rundir.write_json(staging / rundir.METRICS, metrics)
            draw_plots(
                staging / rundir.PLOTS, True, _read_history_if_any(run_dir), scored or model, metrics, y, proba,
                X_raw=X_raw, optimum_objective=solved[0].objective if solved else None, points="evaluated",
                bins=sums.reliability(),
            )
    return metrics


def _placed_evaluation(
    run_dir: str | PathLike[str], model: Model, optimum: bool, calibrate: bool
) -> tuple[Tally, tuple[Optimum, float] | None] | None:
    """`evaluate_run`'s tally for a run whose rows are on the Dask workers (None for any other run):
    the test part's metric sums computed there, the optimum's hits on the same rows, the plotted rows;
    and the exact optimum when asked."""
    from softreg.commands.run_parts import placed_test_sums, run_is_placed

    if not run_is_placed(run_dir):
        return None
    if calibrate:
        validation_part(run_dir, model)  # refuses, saying why
    solved = solve_optimum(run_dir, model) if optimum else None
    others = [] if solved is None else [replace(model, coef=solved[0].coef, intercept=solved[0].intercept)]
    found = placed_test_sums(run_dir, model, others, PLOT_ROWS)
    assert found is not None, "run_is_placed said so"
    sums, y, proba, other_sums = found
    kept = PlotRows(False)
    kept.add(np.empty((len(y), 0)), y, proba)
    hits = int(np.trace(other_sums[0].confusion)) if other_sums else 0
    return Tally(sums, sums, hits, kept), solved


def _check_evaluation_out(run_dir: str | PathLike[str], out: str | PathLike[str], force: bool) -> None:
    target, run = Path(out).resolve(), Path(run_dir).resolve()
    if target == run or target in run.parents:
        raise UsageError(f"--out {target}: would replace the run directory {run_dir}; choose another directory")
    rundir.check_output_dir(target, force)  # before the work, not only when the results are saved


def _read_history_if_any(run_dir: str | PathLike[str]) -> list[dict[str, float | None]]:
    return rundir.read_history(run_dir) if (Path(run_dir) / rundir.HISTORY).exists() else []
