"""``softreg sweep``: the Cartesian product of config values, one run directory each.

Every combination is a normal ``softreg train`` run (`train_run`) in ``OUT/NAME``, NAME made
from its values. A run directory with model.npz is finished and skipped; one without (an
interrupted run) is trained again, so rerunning the same command resumes a sweep.
``OUT/sweep.json`` remembers the grids and the base config: another sweep, or a folder that
is not a sweep, is refused unless ``force`` (`softreg.commands.sweep_dir`). Runs go in
parallel with joblib when ``jobs > 1``: each is deterministic given its config, so the
results do not depend on ``jobs``. ``OUT/sweep.csv`` has one row per run, in grid order, and
its ``status`` says what happened to the run (`STATUSES`).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from softreg import rundir
from softreg.commands import sweep_dir
from softreg.commands.grid import Combination, Grid, check_grid, combinations, parse_grid
from softreg.commands.sweep_dir import FINISHED, RESULT_COLUMNS, SWEEP_CSV, draw_sweep_plots, write_csv
from softreg.commands.sweep_dir import STATUSES as STATUSES  # sweep.csv's format, re-exported
from softreg.commands.sweep_dir import TIMING_COLUMNS as TIMING_COLUMNS
from softreg.config import Config, load_config
from softreg.errors import Interrupted, SoftregError, UsageError, cannot_write
from softreg.train.settings import AUTO


@dataclass
class SweepResult:
    out: Path
    grids: list[Grid]
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    retrain_command: str | None
    failed: list[dict[str, Any]] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "out": str(self.out),
            "grid": {grid.key: list(grid.values) for grid in self.grids},
            "runs": self.rows,
            "best": self.best,
            "retrain": self.retrain_command,
            "failed": [row["run_dir"] for row in self.failed],
            "csv": str(self.out / SWEEP_CSV),
            "plots": [str(path) for path in self.plots],
        }


# -- planning and running


@dataclass(frozen=True)
class Planned:
    combination: Combination
    config: Config
    target: Path
    finished: bool  # model.npz is there: skipped unless --force
    exists: bool  # the directory exists (then it is replaced, which softreg's own directories allow)


def plan(config_path: str | PathLike[str], grids: Sequence[Grid], sets: Sequence[str], out: Path) -> list[Planned]:
    """Every combination's resolved config and run directory, all checked before any run starts
    (``grids`` are checked by `check_grid`)."""
    keys = [grid.key for grid in grids]
    if not grids:
        raise UsageError("give at least one --grid KEY=V1,V2,...")
    if len(set(keys)) != len(keys):
        raise UsageError(f"--grid: a key is given twice ({', '.join(sorted({k for k in keys if keys.count(k) > 1}))})")
    planned = []
    for combination in combinations(grids):
        config = load_config(config_path, [*sets, *combination.assignments])
        target = out / combination.name
        planned.append(Planned(combination, config, target, (target / rundir.MODEL).is_file(), target.exists()))
    return planned


def check_targets(planned: Sequence[Planned], force: bool) -> None:
    """A finished run is reused only with its own config (unless ``force``); an unfinished one is
    replaced only if softreg wrote it."""
    for item in planned:
        rundir.refuse_links(item.target)  # a run entry that links elsewhere is someone else's folder
        if item.finished and not force:
            _check_same_config(item.target, item.config)
        elif item.exists:
            rundir.check_output_dir(item.target, force=True)  # refuses a directory softreg did not write


def base_config(planned: Sequence[Planned], grids: Sequence[Grid]) -> dict[str, Any]:
    """The resolved config every run shares: the first run's without its grid keys."""
    document = planned[0].config.to_dict()
    for grid in grids:
        section, _, key = grid.key.partition(".")
        if key and isinstance(document.get(section), dict):
            document[section].pop(key, None)
        else:
            document.pop(section, None)
    return document


def _check_same_config(target: Path, config: Config) -> None:
    """A finished run is reused only if it was trained with this combination's config."""
    saved = load_config(target / rundir.CONFIG).to_dict()
    wanted = config.to_dict()
    for section, values in wanted.items():
        if not isinstance(values, dict):
            values, saved_values = {section: values}, {section: saved.get(section)}
        else:
            saved_values = saved.get(section, {})
        for key, value in values.items():
            if (section, key, value) == ("optim", "lr", AUTO) and isinstance(saved_values.get(key), int | float):
                continue  # train saves the number that auto chose, a function of the same config and data
            if saved_values.get(key) != value:
                raise UsageError(
                    f"{target}: was trained with {section}.{key} = {saved_values.get(key)!r}, this sweep "
                    f"asks for {value!r}; choose another --out, or --force to retrain every run"
                )


def run_combination(item: Planned, rerun: bool) -> dict[str, Any]:
    """Train one combination (unless finished and not ``rerun``) and return its sweep.csv row.

    Runs in a joblib worker: only its return value comes back. A failed run is a row with
    status "failed" and the error; an interruption propagates.
    """
    if item.finished and not rerun:
        return _row(item, "reused")
    from softreg.run import train_run

    try:
        train_run(item.config, item.target, force=item.exists or item.finished)
    except Interrupted:
        raise
    except SoftregError as error:
        return _row(item, "failed", str(error))
    except Exception as error:  # a bug: reported with the run, the others still run
        return _row(item, "failed", f"internal error: {error.__class__.__name__}: {error}")
    return _row(item, "trained")


def _row(item: Planned, status: str, error: str = "") -> dict[str, Any]:
    row: dict[str, Any] = {**item.combination.values, **dict.fromkeys(RESULT_COLUMNS)}
    row.update(status=status, run_dir=item.combination.name, error=error)
    if status in FINISHED:
        row.update(_run_figures(item.target))
    return row


def _run_figures(run_dir: Path) -> dict[str, Any]:
    """Validation figures (the split rebuilt from the run's config), test figures and training summary."""
    from softreg.commands.run_parts import rebuild_parts
    from softreg.evaluate import model_metrics

    model = rundir.load_model(run_dir)
    figures: dict[str, Any] = {}
    _, prepared = rebuild_parts(run_dir, model, "sweep")
    if prepared.val is not None:
        part = prepared.val
        val = model_metrics(model, [(part.X, part.y)], standardized=True, center=part.center).metrics(model.classes)
        figures.update(val_accuracy=val["accuracy"], val_log_loss=val["log_loss"], val_ece=val["ece"])
    metrics = rundir.read_metrics(run_dir / rundir.METRICS)
    if metrics.get("split") == "test":
        figures.update(test_accuracy=metrics["accuracy"], test_log_loss=metrics["log_loss"], test_ece=metrics["ece"])
    training = rundir.read_model_json(run_dir / rundir.MODEL_JSON).get("training", {})
    figures.update(objective=training.get("objective"), epochs=training.get("epochs_run"),
                   seconds=training.get("seconds"))
    return figures


RunCallback = Callable[[int, int, dict[str, Any], bool], None]  # (done, total, row, skipped)


def sweep(
    config_path: str | PathLike[str],
    grid_assignments: Sequence[str],
    sets: Sequence[str] = (),
    jobs: int = 1,
    out: str | PathLike[str] | None = None,
    force: bool = False,
    on_run: RunCallback | None = None,
    plots: bool = True,
) -> SweepResult:
    """Run every combination of the grids; write ``OUT/sweep.csv`` and ``OUT/plots/``.

    Parameters
    ----------
    config_path : the base config; ``sets`` (``KEY=VALUE``) override it for every run
    grid_assignments : the ``--grid KEY=V1,V2,...`` texts
    jobs : runs at a time (joblib processes when > 1)
    out : the sweep directory (default ``runs/<config name>-sweep``, so a rerun resumes it)
    force : retrain finished runs too
    on_run : called after each run (and for each skipped one) with (done, total, row, skipped)
    """
    if jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {jobs}")
    grids = [check_grid(parse_grid(assignment)) for assignment in grid_assignments]
    out_dir = Path(out) if out is not None else Path("runs") / f"{Path(config_path).stem}-sweep"
    planned = plan(config_path, grids, sets, out_dir)
    wanted = sweep_dir.identity(grids, base_config(planned, grids), [item.combination.name for item in planned])
    sweep_dir.check_sweep_dir(out_dir, wanted, force)  # before any run: refused with nothing written
    check_targets(planned, force)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise cannot_write(out_dir, error, "cannot create the sweep directory") from None
    lock = sweep_dir.SweepLock(out_dir)
    try:
        replaced = sweep_dir.check_sweep_dir(out_dir, wanted, force)  # again, now that no other sweep can write
        sweep_dir.remove_runs(out_dir, replaced, keep=wanted["runs"])
        rundir.write_json(out_dir / sweep_dir.SWEEP_FILE, wanted)
        rows = _run_all(planned, jobs, force, out_dir, [grid.key for grid in grids], on_run)
    finally:
        lock.release()
    best = best_row(rows)
    result = SweepResult(
        out=out_dir, grids=grids, rows=rows, best=best,
        retrain_command=None if best is None else retrain_command(config_path, sets, planned, best),
        failed=[row for row in rows if row["status"] not in FINISHED],
    )
    if plots:
        result.plots = draw_sweep_plots(out_dir, grids, rows)
    return result


def _run_all(
    planned: list[Planned], jobs: int, force: bool, out: Path, keys: list[str], on_run: RunCallback | None
) -> list[dict[str, Any]]:
    """Every run's sweep.csv row, in grid order; sweep.csv is written even when the sweep is
    interrupted (the runs it did not finish: status "not run")."""
    rows: list[dict[str, Any] | None] = [None] * len(planned)
    try:
        for done, (index, row) in enumerate(_results(planned, jobs, force, out), start=1):
            rows[index] = row
            if on_run is not None:
                on_run(done, len(planned), row, planned[index].finished and not force)
    except BaseException:
        stopped = [row or _row(item, "not run") for row, item in zip(rows, planned, strict=True)]
        write_csv(out / SWEEP_CSV, keys, stopped)
        raise
    complete = [row for row in rows if row is not None]
    write_csv(out / SWEEP_CSV, keys, complete)
    return complete


def _results(planned: list[Planned], jobs: int, force: bool, out: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(index, row)`` per run as each finishes: in order with one job, as they come with more."""
    pending = [item for item in planned if force or not item.finished]
    for item in planned:  # finished runs first: they cost a read
        if item.finished and not force:
            yield item.combination.index, run_combination(item, rerun=False)
    if jobs == 1 or len(pending) <= 1:
        for item in pending:
            yield item.combination.index, run_combination(item, rerun=True)
        return
    from joblib import Parallel, delayed

    # loky's worker processes are the sweep's children: what `sweep_dir.worker_start` relies on
    work = Parallel(n_jobs=min(jobs, len(pending)), backend="loky", return_as="generator_unordered")(
        delayed(_in_worker)(item, out, os.getpid()) for item in pending
    )
    yield from work


def _in_worker(item: Planned, out: Path, sweep_pid: int) -> tuple[int, dict[str, Any]]:
    """One run in a joblib worker that dies with the sweep (`softreg.commands.sweep_dir.worker_start`)."""
    held = sweep_dir.worker_start(out, sweep_pid)
    try:
        return item.combination.index, run_combination(item, rerun=True)
    finally:
        sweep_dir.worker_end(held)


def best_row(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The finished run with the lowest validation log loss (None without a validation split)."""
    scored = [row for row in rows if row["status"] in FINISHED and row["val_log_loss"] is not None]
    return min(scored, key=lambda row: row["val_log_loss"]) if scored else None


def retrain_command(
    config_path: str | PathLike[str], sets: Sequence[str], planned: Sequence[Planned], best: dict[str, Any]
) -> str:
    """The ``softreg train`` command line that trains the best run again."""
    item = next(item for item in planned if item.combination.name == best["run_dir"])
    words = ["softreg", "train", "--config", str(config_path)]
    for assignment in [*sets, *item.combination.assignments]:
        words += ["--set", assignment]
    return shlex.join(words)
