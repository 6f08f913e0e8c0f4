"""``softreg sweep``: the Cartesian product of config values, one run directory each.

Every combination is a normal ``softreg train`` run (`train_run`) in ``OUT/NAME``, NAME made
from its values. A run directory with model.npz is finished and skipped; one without (an
interrupted run) is trained again, so rerunning the same command resumes a sweep. Runs go
in parallel with joblib when ``jobs > 1``: each is deterministic given its config, so the
results do not depend on ``jobs``. ``OUT/sweep.csv`` has one row per run, in grid order.
"""

from __future__ import annotations

import csv
import io
import json
import shlex
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from softreg import rundir
from softreg.commands.grid import Combination, Grid, check_grid, combinations, parse_grid
from softreg.config import Config, load_config
from softreg.errors import Interrupted, SoftregError, UsageError

# the columns of sweep.csv after the grid keys; "seconds" is the only one that depends on timing
RESULT_COLUMNS = (
    "status", "val_accuracy", "val_log_loss", "val_ece", "test_accuracy", "test_log_loss", "test_ece",
    "objective", "epochs", "seconds", "run_dir", "error",
)
TIMING_COLUMNS = ("seconds",)






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
            "csv": str(self.out / "sweep.csv"),
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


def plan(
    config_path: str | PathLike[str], grids: Sequence[Grid], sets: Sequence[str], out: Path, force: bool
) -> list[Planned]:
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
        finished = (target / "model.npz").is_file()
        if finished and not force:
            _check_same_config(target, config)
        elif target.exists():
            rundir.check_output_dir(target, force=True)  # refuses a directory softreg did not write
        planned.append(Planned(combination, config, target, finished, target.exists()))
    return planned


def _check_same_config(target: Path, config: Config) -> None:
    """A finished run is reused only if it was trained with this combination's config."""
    saved = load_config(target / "config.yaml").to_dict()
    wanted = config.to_dict()
    for section, values in wanted.items():
        if not isinstance(values, dict):
            values, saved_values = {section: values}, {section: saved.get(section)}
        else:
            saved_values = saved.get(section, {})
        for key, value in values.items():
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
        return _row(item, "ok")
    from softreg.commands.train import train_run

    try:
        train_run(item.config, item.target, force=item.exists or item.finished)
    except Interrupted:
        raise
    except SoftregError as error:
        return _row(item, "failed", str(error))
    except Exception as error:  # a bug: reported with the run, the others still run
        return _row(item, "failed", f"internal error: {error.__class__.__name__}: {error}")
    return _row(item, "ok")


def _row(item: Planned, status: str, error: str = "") -> dict[str, Any]:
    row: dict[str, Any] = {**item.combination.values, **dict.fromkeys(RESULT_COLUMNS)}
    row.update(status=status, run_dir=item.combination.name, error=error)
    if status == "ok":
        row.update(_run_figures(item.target))
    return row


def _run_figures(run_dir: Path) -> dict[str, Any]:
    """Validation figures (the split rebuilt from the run's config), test figures and training summary."""
    from softreg.commands.run_parts import rebuild_parts
    from softreg.evaluate import classification_metrics

    model = rundir.load_model(run_dir)
    figures: dict[str, Any] = {}
    _, prepared = rebuild_parts(run_dir, model, "sweep")
    if prepared.val is not None:
        val = classification_metrics(prepared.val.y, model.predict_proba_standardized(prepared.val.X), model.classes)
        figures.update(val_accuracy=val["accuracy"], val_log_loss=val["log_loss"], val_ece=val["ece"])
    metrics = rundir.read_metrics(run_dir / "metrics.json")
    if metrics.get("split") == "test":
        figures.update(test_accuracy=metrics["accuracy"], test_log_loss=metrics["log_loss"], test_ece=metrics["ece"])
    training = rundir.read_model_json(run_dir / "model.json").get("training", {})
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
    planned = plan(config_path, grids, sets, out_dir, force)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any] | None] = [None] * len(planned)
    for done, (index, row) in enumerate(_results(planned, jobs, force), start=1):
        rows[index] = row
        if on_run is not None:
            on_run(done, len(planned), row, planned[index].finished and not force)
    complete = [row for row in rows if row is not None]
    write_csv(out_dir / "sweep.csv", [grid.key for grid in grids], complete)
    best = best_row(complete)
    result = SweepResult(
        out=out_dir, grids=grids, rows=complete, best=best,
        retrain_command=None if best is None else retrain_command(config_path, sets, planned, best),
        failed=[row for row in complete if row["status"] != "ok"],
    )
    if plots:
        result.plots = draw_sweep_plots(out_dir, grids, complete)
    return result


def _results(planned: list[Planned], jobs: int, force: bool) -> Iterator[tuple[int, dict[str, Any]]]:
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

    work = Parallel(n_jobs=min(jobs, len(pending)), return_as="generator_unordered")(
        delayed(_indexed)(item) for item in pending
    )
    yield from work


def _indexed(item: Planned) -> tuple[int, dict[str, Any]]:
    return item.combination.index, run_combination(item, rerun=True)


def best_row(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The finished run with the lowest validation log loss (None without a validation split)."""
    scored = [row for row in rows if row["status"] == "ok" and row["val_log_loss"] is not None]
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


def write_csv(path: Path, keys: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """sweep.csv: the grid keys, then `RESULT_COLUMNS`; empty cells where a figure does not exist."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*keys, *RESULT_COLUMNS], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else _cell(value) for key, value in row.items()})
    rundir.write_text(path, buffer.getvalue())


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def draw_sweep_plots(out_dir: Path, grids: Sequence[Grid], rows: Sequence[dict[str, Any]]) -> list[Path]:
    """``plots/sweep_accuracy.png`` (validation accuracy vs each numeric grid key) and
    ``plots/sweep_curves.png`` (every run's learning curves overlaid)."""
    from softreg import plots

    directory = out_dir / "plots"
    directory.mkdir(exist_ok=True)
    finished = [row for row in rows if row["status"] == "ok"]
    if not finished:
        return []
    keys = [grid.key for grid in grids]
    histories = {
        ", ".join(f"{key.rpartition('.')[2]}={row[key]}" for key in keys): rundir.read_history(out_dir / row["run_dir"])
        for row in finished
    }
    return [
        plots.sweep_accuracy(finished, keys, directory / "sweep_accuracy.png"),
        plots.sweep_curves(histories, directory / "sweep_curves.png"),
    ]
