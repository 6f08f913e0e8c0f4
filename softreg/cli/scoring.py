"""The commands that use a run directory: evaluate, predict, report."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from softreg.cli.group import handle_errors, label_column, main


class _OutputPath(click.Path):
    """predict's ``--output``: a file (an existing directory refused, as click.Path(dir_okay=False)
    refuses it), or a name ending in / or .parquet, a folder of Parquet parts."""

    def convert(
        self, value: str | os.PathLike[str], param: click.Parameter | None, ctx: click.Context | None
    ) -> str | bytes | os.PathLike[str]:
        from softreg.commands.predict_folder import is_folder_output

        if isinstance(value, str) and is_folder_output(value):
            return value
        return super().convert(value, param, ctx)


ENGINE_HELP = (
    "numpy (this process) or dask (one task per part on the workers); default: the run's engine.kind."
)
F = TypeVar("F", bound=Callable[..., Any])

SCHEDULER_HELP = (
    "The Dask scheduler for --engine dask: tcp://HOST:8786, or local (a cluster of the run's engine.workers "
    "processes); default: the run's engine.scheduler."
)


def engine_options(where: str) -> Callable[[F], F]:
    """``--engine`` (``where`` says for what) and ``--scheduler``, as evaluate and predict take them."""

    def decorate(command: F) -> F:
        command = click.option("--scheduler", metavar="ADDRESS", help=SCHEDULER_HELP)(command)
        return click.option("--engine", "engine_kind", type=click.Choice(["numpy", "dask"]),
                            help=where + ENGINE_HELP)(command)

    return decorate


@main.command(short_help="Metrics of a saved model on its test split or a file.")
@click.option("--run", "run_dir", required=True, type=click.Path(), help="Run directory written by train.")
@click.option(
    "--data", help="Another labelled source (as data.source takes it; - for standard input) instead of the test split."
)
@click.option("--label", help="Label column of --data (default: the model's label column if present, else the last).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of the table.")
@click.option("--optimum", is_flag=True, help="Also solve the exact optimum of the objective and report the gap to it.")
@click.option(
    "--calibrate",
    is_flag=True,
    help="Fit a temperature on the run's validation split (temperature scaling) and report ECE before and after.",
)
@click.option(
    "--out", type=click.Path(file_okay=False), help="Directory for metrics.json and plots/ of this evaluation."
)
@click.option("--force", is_flag=True, help="Replace an existing non-empty --out directory.")
@click.option(
    "--header/--no-header", default=None, help="Whether --data starts with a header row (default: as in training)."
)
@engine_options("Where the parts of Parquet --data are tallied: ")
@handle_errors
def evaluate(
    run_dir: str,
    data: str | None,
    label: str | None,
    as_json: bool,
    optimum: bool,
    calibrate: bool,
    out: str | None,
    force: bool,
    header: bool | None,
    engine_kind: str | None,
    scheduler: str | None,
) -> None:
    """Report metrics of a saved model on its test split (or --data).

    With --optimum, the exact optimum of the same objective is solved on the run's
    training part (rebuilt from its config.yaml and seed), and its objective, the
    saved model's relative gap to it and the optimum's accuracy are reported.

    With --calibrate, the model's logits are divided by the temperature T that
    minimizes the log loss of the run's validation split (rebuilt the same way; a run
    without one is refused). T is kept only if it worsens neither the validation log
    loss nor its ECE. The report gives T, ECE and log loss before and after on the
    validation split and on the evaluated data, whose metrics are then the rescaled model's.

    Parquet --data (a file, or a folder's *.parquet files) is scored part by part on
    --engine (default: the run's engine.kind): numpy in this process, dask one task
    per part on the workers of --scheduler (default: the run's engine.scheduler).
    Each part returns exact sums (counts, log loss, squared error, confidence per
    bin), added in part order: the metrics are the same bits on either engine.

    \b
    Example:
      softreg evaluate --run runs/digits
      softreg evaluate --run runs/digits --optimum --out runs/digits-eval
      softreg evaluate --run runs/digits --calibrate --json
      softreg evaluate --run runs/letters --data data/letter-recognition.csv --json
      softreg evaluate --run runs/iris-csv --data parts/ --engine dask --scheduler local
    """
    from softreg import console
    from softreg.commands.evaluate import evaluate_run
    from softreg.evaluate import most_confused

    metrics = evaluate_run(
        run_dir, data=data, label=label_column(label), optimum=optimum, out=out, force=force, calibrate=calibrate,
        header=header, engine=engine_kind, scheduler=scheduler,
    )
    if as_json:
        console.print_json(metrics)
    else:
        click.echo(console.metrics_table(metrics, most_confused(metrics["confusion_matrix"], metrics["classes"])))
    if out is not None:
        click.echo(f"wrote metrics.json and plots/ to {out}", err=as_json)


@main.command(short_help="Predict labels and probabilities for a file of rows.")
@click.option("--run", "run_dir", required=True, type=click.Path(), help="Run directory written by train.")
@click.option(
    "--input", "input_path", required=True, type=click.Path(allow_dash=True),
    help="File with the model's feature columns: CSV/TSV (- for standard input), a Parquet file or folder, "
    "svmlight or .npz; or a URL (s3://, https://, ...) of CSV/TSV or Parquet. Text and Parquet are read a "
    "chunk at a time (sized by the run's data.memory_budget).",
)
@click.option(
    "--output", type=_OutputPath(dir_okay=False),
    help="File to write, CSV (TSV for .tsv); default stdout. A name ending in / or .parquet is a folder of "
    "Parquet parts, one per part of Parquet --input.",
)
@click.option(
    "--header/--no-header", default=None, help="Whether the input starts with a header row (default: as in training)."
)
@click.option("--force", is_flag=True, help="Overwrite an existing --output file (or folder of predictions).")
@engine_options("Where the parts of a Parquet folder --output are predicted: ")
@handle_errors
def predict(
    run_dir: str, input_path: str, output: str | None, header: bool | None, force: bool, engine_kind: str | None,
    scheduler: str | None,
) -> None:
    """Predict labels and class probabilities for a file of raw features.

    Columns are matched by the names saved with the model (by position in a file
    without a header); a label column is ignored. The output has the model's id column
    (data.id) first when the input has it, then `label` and one `prob_<class>` column
    per class, one line per input row, in order. Written to stdout, the input is
    checked whole before the first line.

    An --output ending in / or .parquet names a folder: Parquet --input (a file, or a
    folder's *.parquet files in name order) gives OUT/part-00000.parquet, ... one part
    per input part with the same columns, its rows in order. Each part is one task of
    --engine (default: the run's engine.kind): numpy scores the parts in this process,
    dask on the workers of --scheduler (default: the run's engine.scheduler), each
    worker reading its part and writing its output part (every worker must see the
    folder at the same path). The bytes are the same on either engine. The folder is
    staged beside OUT and renamed into place at the end; --force replaces only a
    folder of predictions softreg wrote.

    \b
    Example (a model trained on data/iris.csv, then applied to its rows):
      softreg train --config configs/iris-csv.yaml --out runs/iris-csv
      softreg predict --run runs/iris-csv --input data/iris.csv --output predictions.csv
      cat data/iris.csv | softreg predict --run runs/iris-csv --input - | head
      softreg predict --run runs/iris-csv --input parts/ --output predictions/ --engine dask --scheduler local
    """
    from softreg import rundir
    from softreg.commands.common import refuse_existing
    from softreg.commands.predict import prediction_stream, write_predictions
    from softreg.commands.predict_folder import is_folder_output, predict_folder
    from softreg.engine.score import saved_engine
    from softreg.errors import UsageError

    if output is not None and is_folder_output(output):
        engine = saved_engine(run_dir, engine_kind, scheduler)
        written = predict_folder(run_dir, input_path, output, engine, force=force)
        click.echo(f"wrote {written.rows} predictions in {written.parts} parts to {written.output}", err=True)
        return
    if engine_kind == "dask" or scheduler is not None:
        raise UsageError("--engine dask and --scheduler apply to a Parquet folder --output (a name ending in / or "
                         ".parquet); other output is written by this process")
    refuse_existing(output, force)
    delimiter = "\t" if output is not None and output.lower().endswith((".tsv", ".tab")) else ","
    with prediction_stream(run_dir, input_path, header=header, validate=output is None) as stream:
        if output is None:
            write_predictions(sys.stdout, stream, delimiter)
            return
        with rundir.atomic_open(output, "w", encoding="utf-8", newline="") as handle:
            count = write_predictions(handle, stream, delimiter)
    click.echo(f"wrote {count} predictions to {output}", err=True)


@main.command()
@click.option(
    "--run",
    "run_dir",
    required=True,
    type=click.Path(),
    help="Run directory of train (or OUT/softmax of compare-logistic).",
)
@click.option("--output", type=click.Path(dir_okay=False), help="HTML file to write (default: RUN/report.html).")
@click.option("--force", is_flag=True, help="Overwrite an existing --output file (the default is always rewritten).")
@handle_errors
def report(run_dir: str, output: str | None, force: bool) -> None:
    """Write one self-contained HTML report of a run.

    The page holds the config, the data summary (rows, features, classes, class
    balance), the metrics, every plot (embedded, no network needed) and the history.

    \b
    Example:
      softreg report --run runs/digits
      softreg report --run runs/digits --output digits.html --force
      softreg report --run runs/wine-logistic/softmax    # after compare-logistic --out runs/wine-logistic
    """
    from softreg.commands.report import report_run

    path, n_plots = report_run(run_dir, output=output, force=force)
    click.echo(f"wrote {path} ({n_plots} plots)")
