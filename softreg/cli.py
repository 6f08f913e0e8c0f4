"""The command line: a click group over `softreg.commands` (one module per command).

This is the one place that maps exceptions to messages and exit codes. Heavy
modules (numpy, scikit-learn, matplotlib) are imported inside the commands so that
``softreg --help`` stays fast.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import click

from softreg import __version__
from softreg.errors import EXIT_FAILURE, EXIT_INTERRUPTED, SoftregError, SoftregWarning


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"softreg: error: {_short(message)}", err=True)
    sys.exit(code)


def _short(message: str, line_limit: int = 290) -> str:
    """A message whose lines each stay short: an overlong word (a long path, a pasted value) is
    cut in its middle, and a line past ``line_limit`` characters is cut at its end."""
    from softreg.config import shorten

    lines = []
    for line in message.splitlines() or [""]:
        words = [shorten(word, 80) if len(word) > 100 else word for word in line.split(" ")]
        line = " ".join(words)
        lines.append(line if len(line) <= line_limit else line[: line_limit - 3] + "...")
    return "\n".join(lines)


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """Warnings go to stderr as one line, like errors (results stay alone on stdout)."""
    if issubclass(category, SoftregWarning):
        click.echo(f"softreg: warning: {message}", err=True)
    else:
        click.echo(f"softreg: warning: {category.__name__}: {message}", err=True)


def handle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Map typed errors to one line on stderr and their exit code; ``--debug`` re-raises."""

    @functools.wraps(command)
    def wrapper(*args: Any, debug: bool = False, **kwargs: Any) -> Any:
        debug = debug or (click.get_current_context().find_root().params.get("debug") or False)
        if threading.current_thread() is threading.main_thread():  # SIGTERM stops any command like Ctrl-C
            signal.signal(signal.SIGTERM, _interrupt)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always", SoftregWarning)
                warnings.showwarning = _show_warning
                return command(*args, **kwargs)
        except SoftregError as error:
            if debug:
                raise
            _fail(str(error), error.exit_code)
        except BrokenPipeError:  # stdout closed early (`softreg predict ... | head`): the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except MemoryError:
            if debug:
                raise
            _fail("out of memory; try model.dtype: float32, a smaller optim.batch_size, or fewer rows", EXIT_FAILURE)
        except KeyboardInterrupt:
            if debug:
                raise
            click.echo("softreg: interrupted; nothing was written", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as error:  # a bug, not a user error
            if debug:
                raise
            click.echo(
                f"softreg: internal error: {error.__class__.__name__}: {error} (rerun with --debug for the traceback)",
                err=True,
            )
            sys.exit(EXIT_FAILURE)

    return click.option("--debug", is_flag=True, help="Show the Python traceback on errors.")(wrapper)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="softreg")
@click.option("--debug", is_flag=True, help="Show the Python traceback on errors.")
def main(debug: bool) -> None:
    """Softmax (multinomial logistic) regression with weight decay, by minibatch SGD.

    \b
    Train from a YAML config, then evaluate and predict from the run directory:
      softreg train --config configs/digits.yaml --out runs/digits
      softreg evaluate --run runs/digits
      softreg predict --run runs/digits --input new.csv --output predictions.csv
      softreg report --run runs/digits
    """


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

    \b
    Example:
      softreg train --config configs/digits.yaml
      softreg train --config configs/digits.yaml --set optim.lr=0.05 --out runs/lr005 --force
      softreg train --resume runs/lr005                      # after an interruption
      softreg train --resume runs/lr005 --set optim.epochs=200   # train a finished run further
    """
    from softreg import console
    from softreg.commands import train as command
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
            outcome = command.resume_run(resume_dir, overrides, on_epoch=progress)
        elif config_path is not None:  # always, without --resume (checked above)
            config = load_config(config_path, overrides)
            if print_config:
                click.echo(dump_config(config), nl=False)
                return
            target = command.output_dir_for(config, out)
            check_output_dir(target, force)
            outcome = command.train_run(
                config, target, force=force, on_epoch=progress, on_learning_rate=progress.learning_rate
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


def _interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    """SIGTERM stops training the way Ctrl-C does: checkpoint, then exit 130."""
    raise KeyboardInterrupt


@main.command()
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

    \b
    Example:
      softreg evaluate --run runs/digits
      softreg evaluate --run runs/digits --optimum --out runs/digits-eval
      softreg evaluate --run runs/digits --calibrate --json
      softreg evaluate --run runs/letters --data data/letter-recognition.csv --json
    """
    from softreg import console
    from softreg.commands.evaluate import evaluate_run
    from softreg.evaluate import most_confused

    metrics = evaluate_run(
        run_dir, data=data, label=_column(label), optimum=optimum, out=out, force=force, calibrate=calibrate,
        header=header,
    )
    if as_json:
        console.print_json(metrics)
    else:
        click.echo(console.metrics_table(metrics, most_confused(metrics["confusion_matrix"], metrics["classes"])))
    if out is not None:
        click.echo(f"wrote metrics.json and plots/ to {out}", err=as_json)


@main.command()
@click.option("--run", "run_dir", required=True, type=click.Path(), help="Run directory written by train.")
@click.option(
    "--input", "input_path", required=True, type=click.Path(allow_dash=True),
    help="File with the model's feature columns: CSV/TSV (- for standard input), svmlight or .npz.",
)
@click.option("--output", type=click.Path(dir_okay=False), help="File to write, CSV (TSV for .tsv); default stdout.")
@click.option(
    "--header/--no-header", default=None, help="Whether the input starts with a header row (default: as in training)."
)
@click.option("--force", is_flag=True, help="Overwrite an existing --output file.")
@handle_errors
def predict(run_dir: str, input_path: str, output: str | None, header: bool | None, force: bool) -> None:
    """Predict labels and class probabilities for a file of raw features.

    Columns are matched by the names saved with the model (by position in a file
    without a header); a label column is ignored. The output has the model's id column
    (data.id) first when the input has it, then `label` and one `prob_<class>` column
    per class, one line per input row, in order. Written to stdout, the input is
    checked whole before the first line.

    \b
    Example (a model trained on data/iris.csv, then applied to its rows):
      softreg train --config configs/iris-csv.yaml --out runs/iris-csv
      softreg predict --run runs/iris-csv --input data/iris.csv --output predictions.csv
      cat data/iris.csv | softreg predict --run runs/iris-csv --input - | head
    """
    from softreg import rundir
    from softreg.commands.common import refuse_existing
    from softreg.commands.predict import prediction_stream, write_predictions

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


@main.command("compare-logistic")
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="A train config (its data, model, optim and seed)."
)
@click.option("--data", help="A data source, as data.source takes it (instead of --config).")
@click.option("--label", help="Label column (name or 0-based index; default data.label, else the last column).")
@click.option("--classes", metavar="A,B", help="The two classes to compare, e.g. 3,8 (needed when the data has more).")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key, e.g. optim.lr=0.05. Repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of the table.")
@click.option("--out", type=click.Path(file_okay=False), help="Write both models, report.json and plots/ here.")
@click.option("--force", is_flag=True, help="Replace an existing non-empty --out directory.")
@handle_errors
def compare_logistic(
    config_path: str | None,
    data: str | None,
    label: str | None,
    classes: str | None,
    overrides: tuple[str, ...],
    as_json: bool,
    out: str | None,
    force: bool,
) -> None:
    """Show that two-class softmax regression is logistic regression.

    Softmax SGD (decay λ, rate η, the code path of train) and an independent binary
    logistic SGD (decay λ/2, rate 2η) run on the same batches, on every row of the
    data, standardized. After every step their probabilities and w₂ − w₁ against w
    must agree to rounding; the exact optima (L-BFGS) must agree, and so must
    scikit-learn's LogisticRegression with C = 2/(nλ). Exit 0 when every check
    holds, 1 when one fails or SGD is unstable at the rate. With --data, the defaults are λ = 0.01, η = 0.05,
    batches of 8, 200 epochs, momentum 0.9, cosine schedule. Computes in float64.
    --out writes softmax/ (a run directory evaluate, predict and report accept;
    its test split is every row), logistic/model.npz, report.json and plots/.

    \b
    Example:
      softreg compare-logistic --data builtin:wine --classes class_0,class_1
      softreg compare-logistic --data builtin:digits --classes 3,8 --json
      softreg compare-logistic --config configs/wine.yaml --classes class_0,class_2 --out runs/wine-logistic
    """
    from softreg import compare, console
    from softreg.commands import compare_logistic as command
    from softreg.rundir import check_output_dir

    config = command.compare_config(config_path, data, _column(label), classes, overrides)
    if out is not None:
        check_output_dir(out, force)
    problem = command.load_problem(config.data)
    # a bar on a terminal only: stdout carries the table or the JSON document
    progress = console.Progress(quiet=not sys.stderr.isatty(), to_stderr=True)
    try:
        comparison = compare.compare(config, problem, on_epoch=progress)
    finally:
        progress.close()
    if out is not None:
        command.save_comparison(comparison, out, force=force)
    if as_json:
        console.print_json(comparison.report)
    else:
        click.echo(console.compare_logistic_report(comparison.report))
    if out is not None:
        click.echo(f"wrote softmax/, logistic/, report.json and plots/ to {out}", err=as_json)
    if not comparison.equivalent:
        sys.exit(EXIT_FAILURE)


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="The base config.")
@click.option(
    "--grid",
    "grids",
    multiple=True,
    metavar="KEY=V1,V2,...",
    help="A config key and its values (YAML-typed, comma-separated). Repeatable: the runs are the product.",
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a key for every run.")
@click.option("--jobs", "-j", type=int, default=1, show_default=True, help="Runs at a time (processes).")
@click.option(
    "--out", type=click.Path(file_okay=False), help="Sweep directory (default: runs/<config name>-sweep)."
)
@click.option("--force", is_flag=True, help="Retrain finished runs too.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of the table.")
@handle_errors
def sweep(
    config_path: str,
    grids: tuple[str, ...],
    overrides: tuple[str, ...],
    jobs: int,
    out: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Train every combination of config values, each as a run directory under --out.

    Writes OUT/sweep.csv (one row per run: the grid values, validation and test accuracy,
    log loss and ECE, objective, epochs, seconds) and OUT/plots/ (validation accuracy vs
    each numeric key, the learning curves overlaid), then prints the best setting by
    validation log loss and the command that retrains it. Rerunning the same command
    skips finished runs and retrains interrupted ones: a sweep resumes. Exit 0 when every
    run trained, 1 when one failed (named on stderr), 2 for a bad grid or config.

    \b
    Example:
      softreg sweep --config configs/digits.yaml --grid model.weight_decay=1e-5,1e-4,1e-3 \\
          --grid model.loss=cross_entropy,squared_error --jobs 2 --out runs/digits-sweep
      softreg sweep --config configs/iris.yaml --grid seed=0,1,2 --set data.val=0.2
    """
    from softreg import console
    from softreg.commands import sweep as command
    from softreg.errors import Interrupted

    def progress(done: int, total: int, row: dict[str, Any], skipped: bool) -> None:
        click.echo(console.sweep_line(done, total, row, skipped), err=True)

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = command.sweep(config_path, grids, overrides, jobs=jobs, out=out, force=force, on_run=progress)
    except (Interrupted, KeyboardInterrupt):
        click.echo("softreg: sweep interrupted; finished runs are kept. Rerun the same command to resume.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if as_json:
        console.print_json(result.document())
    else:
        click.echo(console.sweep_summary(result))
    if result.failed:
        failed = "; ".join(f"{row['run_dir']} ({row['error']})" for row in result.failed)
        _fail(f"{len(result.failed)} of {len(result.rows)} runs failed: {failed}", EXIT_FAILURE)


@main.command()
@click.argument("name", type=click.Choice(["why-softmax"]))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory for figures, numbers and runs.")
@click.option(
    "--letters",
    default="data/letter-recognition.csv",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The UCI letters file (the default is the repository's copy).",
)
@click.option("--jobs", "-j", type=int, default=1, show_default=True, help="Sweep runs at a time (processes).")
@click.option("--quick", is_flag=True, help="A few epochs only: a smoke test, not the README's numbers.")
@handle_errors
def demo(name: str, out: str, letters: str, jobs: int, quick: bool) -> None:
    """Make the figures and numbers of a README section from real runs.

    why-softmax: the gradient of the true-class logit for cross-entropy and squared
    error; a sweep on letters of both losses from the same start; softmax vs Taylor vs
    spherical on digits and letters; test accuracy and ||W|| against the weight decay;
    two runs with other seeds and batch orders that reach the same W at lambda > 0; and
    ||W|| by epoch at lambda = 0 and > 0. Writes OUT/figures/*.png, OUT/numbers.json and
    OUT/numbers.md; the sweeps' run directories stay in OUT/sweeps (rerunning reuses them).
    About a minute on two cores.

    \b
    Example:
      softreg demo why-softmax --out benchmarks/why-softmax
      softreg demo why-softmax --out runs/why-quick --quick
    """
    from softreg.commands.demo import DEMOS

    numbers = DEMOS[name](out, letters, jobs=jobs, quick=quick, on_progress=lambda line: click.echo(line, err=True))
    figures = sorted(path.name for path in (Path(out) / "figures").glob("*.png"))
    click.echo(f"wrote {len(figures)} figures to {Path(out) / 'figures'} ({', '.join(figures)})")
    click.echo(f"wrote {Path(out) / 'numbers.json'} and {Path(out) / 'numbers.md'}")
    del numbers


def _column(label: str | None) -> str | int | None:
    """A ``--label`` value: a 0-based column index when it is an integer, else a column name."""
    return int(label) if label is not None and label.lstrip("-").isdigit() else label


if __name__ == "__main__":  # pragma: no cover
    main()
