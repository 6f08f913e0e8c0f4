"""The commands that make and use a run directory: train, evaluate, predict, report."""

from __future__ import annotations

import os
import signal
import sys

import click

from softreg.cli.group import _interrupt, handle_errors, main


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(file_okay=False),
    help="Continue an interrupted run directory from its last checkpoint.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key (YAML-typed), e.g. optim.lr=0.05. Repeatable.",
)
@click.option(
    "--out", type=click.Path(file_okay=False), help="Run directory (default: output.dir, else runs/NAME-TIME)."
)
@click.option("--force", is_flag=True, help="Replace an existing non-empty run directory.")
@click.option("--print-config", is_flag=True, help="Print the resolved config and exit.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of the summary.")
@handle_errors
def train(
    config_path: str | None,
    resume_dir: str | None,
    overrides: tuple[str, ...],
    out: str | None,
    force: bool,
    print_config: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Train a model from a YAML config into a run directory.

    Ctrl-C (or SIGTERM) stops after checkpointing the last finished epoch; --resume
    continues from there and ends with the same model, bit for bit.

    Data that do not fit data.memory_budget (default: half the available memory)
    train through an on-disk cache beside the run (data.cache names one; see
    softreg ingest). data.shards and engine.kind: dask train on a Dask cluster's
    workers with the same bits as one process (README: "Training on a cluster").

    \b
    Example:
      softreg train --config configs/digits.yaml
      softreg train --config configs/digits.yaml --set optim.lr=0.05 --out runs/lr005 --force
      softreg train --resume runs/lr005                      # after an interruption
      softreg train --resume runs/lr005 --set optim.epochs=200   # train a finished run further
    """
    from softreg import console
    from softreg import run as command
    from softreg.cache.budget import auto_cache
    from softreg.config import dump_config, load_config
    from softreg.errors import Interrupted, UsageError
    from softreg.rundir import check_output_dir

    if (config_path is None) == (resume_dir is None):
        raise UsageError("give either --config FILE (a new run) or --resume DIR (continue one)")
    if resume_dir is not None and (out or force or print_config):
        raise UsageError("--resume continues the run in place: --out, --force and --print-config do not apply")
    progress = console.Progress(quiet=quiet, to_stderr=True)  # stdout carries the results alone
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if resume_dir is not None:
            outcome = command.resume_run(resume_dir, overrides, on_epoch=progress, on_engine=progress.engine)
        elif config_path is not None:  # always, without --resume (checked above)
            config = load_config(config_path, overrides)
            if print_config:
                click.echo(dump_config(config), nl=False)
                return
            target = command.output_dir_for(config, out)
            check_output_dir(target, force)
            config, switched = auto_cache(config, target)
            if switched is not None:  # said whatever --quiet says: a directory appears that nobody asked for
                click.echo(f"softreg: {switched}", err=True)
            outcome = command.train_run(
                config, target, force=force, on_epoch=progress, on_learning_rate=progress.learning_rate,
                on_engine=progress.engine,
            )
    except Interrupted as stop:
        progress.finish_line()  # the message starts on a line of its own, not on the bar's
        click.echo(console.interrupted_message(stop), err=True)
        sys.exit(stop.exit_code)
    finally:
        progress.close()
    if outcome.already_finished and as_json:
        console.print_json({"run_dir": str(outcome.run_dir), "already_finished": True, "training": outcome.training})
    elif outcome.already_finished:
        click.echo(f"{outcome.run_dir}: run already finished ({outcome.training['epochs_run']} epochs); nothing to do")
    elif as_json:
        console.print_json({"run_dir": str(outcome.run_dir), "metrics": outcome.metrics, "training": outcome.training})
    else:
        click.echo(console.train_summary(outcome))
    if not outcome.already_finished:
        warning = console.not_converged_line(outcome.training, outcome.run_dir, outcome.training["epochs_run"])
        if warning is not None:
            click.echo(warning, err=True)


@main.command(short_help="Build the on-disk shuffled cache of a config's data.")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), help="Cache directory (default: data.cache).")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key (YAML-typed), e.g. seed=1. Repeatable.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--json", "as_json", is_flag=True, help="Print the cache's manifest as JSON instead of the summary.")
@handle_errors
def ingest(config_path: str, cache_dir: str | None, overrides: tuple[str, ...], quiet: bool, as_json: bool) -> None:
    """Build a shuffled on-disk cache of a config's data, that train streams from.

    The source is read in chunks and checked cell by cell; each row goes to the
    training, validation or test part by a seeded hash of its index; the training
    part's mean and scale are computed on the way; and the rows are shuffled on disk
    (a two-pass external shuffle), standardized and written as X.npy/y.npy per part in
    model.dtype, with manifest.json. Training with data.cache set reads the cache (and
    builds it when missing). A cache that is up to date is left as it is.

    Sources: delimited text, Parquet files or folders (pip install 'softreg[parquet]'),
    svmlight (stored as CSR parts), .npz and builtin sets. Categorical columns and
    data.missing: drop or mean are learnt on the way; data.split: ordered, data.classes,
    a separate data.test file and data.missing: median or most_frequent are refused.

    With engine.kind: dask the workers read the source (Parquet in pieces; delimited text
    by one worker) and each keeps its shards in its own folder (engine.worker_cache, or
    its dask local directory); this process keeps manifest.json only. The shards hold
    the same bytes as a one-machine ingest's, for any number of workers.

    \b
    Example:
      softreg ingest --config configs/iris-csv.yaml --cache cache/iris
      softreg train --config configs/iris-csv.yaml --set data.cache=cache/iris
      softreg ingest --config configs/letters-cache.yaml   (data.cache set in the config)
      softreg ingest --config configs/letters-cache.yaml --set engine.kind=dask \\
          --set engine.scheduler=tcp://HOST:8786        (the shards on the workers' disks)
    """
    from softreg import console
    from softreg.cache import fingerprint
    from softreg.commands.ingest import RowProgress, ingest_run, ingest_summary
    from softreg.config import load_config
    from softreg.io.remote import storage_options

    config = load_config(config_path, overrides)
    with storage_options(config.data.storage_options):
        size = fingerprint(config.data.source).get("size") if config.data.source != "-" else None
    progress = None if quiet else RowProgress(lambda line: click.echo(line, err=True), total_bytes=size)
    outcome = ingest_run(config, cache_dir, progress)
    if as_json:
        console.print_json({"cache": str(outcome.manifest.directory), "rebuilt": outcome.rebuilt,
                            "seconds": outcome.seconds, "manifest": outcome.manifest.document})
    else:
        click.echo(ingest_summary(outcome))


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
SCHEDULER_HELP = (
    "The Dask scheduler for --engine dask: tcp://HOST:8786, or local (a cluster of the run's engine.workers "
    "processes); default: the run's engine.scheduler."
)


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
@click.option(
    "--engine", "engine_kind", type=click.Choice(["numpy", "dask"]),
    help="Where the parts of Parquet --data are tallied: " + ENGINE_HELP,
)
@click.option("--scheduler", metavar="ADDRESS", help=SCHEDULER_HELP)
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
        run_dir, data=data, label=_column(label), optimum=optimum, out=out, force=force, calibrate=calibrate,
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
@click.option(
    "--engine", "engine_kind", type=click.Choice(["numpy", "dask"]),
    help="Where the parts of a Parquet folder --output are predicted: " + ENGINE_HELP,
)
@click.option("--scheduler", metavar="ADDRESS", help=SCHEDULER_HELP)
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


def _column(label: str | None) -> str | int | None:
    """A ``--label`` value: a 0-based column index when it is an integer, else a column name."""
    return int(label) if label is not None and label.lstrip("-").isdigit() else label
