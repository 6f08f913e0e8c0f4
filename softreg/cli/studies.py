"""The commands that study the method: compare-logistic, sweep, demo."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import click

from softreg.cli.group import _fail, _interrupt, handle_errors, label_column, main
from softreg.errors import EXIT_FAILURE, EXIT_INTERRUPTED


@main.command("compare-logistic", short_help="Show that two-class softmax is logistic regression.")
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

    config = command.compare_config(config_path, data, label_column(label), classes, overrides)
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


@main.command(short_help="Train every combination of config values.")
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
@click.option("--force", is_flag=True, help="Retrain finished runs too; replace another sweep in --out (its run "
              "directories are removed), or sweep into a folder that is not a sweep (its files are left alone).")
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


@main.command(short_help="Remake the figures and numbers of a README section.")
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
      softreg demo why-softmax --out runs/why-softmax
      softreg demo why-softmax --out runs/why-quick --quick
    """
    from softreg.commands.demo import DEMOS

    numbers = DEMOS[name](out, letters, jobs=jobs, quick=quick, on_progress=lambda line: click.echo(line, err=True))
    figures = sorted(path.name for path in (Path(out) / "figures").glob("*.png"))
    click.echo(f"wrote {len(figures)} figures to {Path(out) / 'figures'} ({', '.join(figures)})")
    click.echo(f"wrote {Path(out) / 'numbers.json'} and {Path(out) / 'numbers.md'}")
    del numbers
