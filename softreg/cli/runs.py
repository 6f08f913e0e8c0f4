"""The commands that make a run directory and its data cache: train, ingest (scoring.py has those that use one)."""

from __future__ import annotations

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
