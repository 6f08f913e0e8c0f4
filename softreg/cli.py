"""The command line: a click group whose commands orchestrate `softreg.pipeline`.

This is the one place that maps exceptions to messages and exit codes. Heavy
modules (numpy, scikit-learn, matplotlib) are imported inside the commands so that
``softreg --help`` stays fast.
"""

import functools
import sys
import traceback

import click

from softreg import __version__
from softreg.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, SoftregError


def _fail(message, code):
    click.echo(f"softreg: error: {message}", err=True)
    sys.exit(code)


def handle_errors(command):
    """Map typed errors to one line on stderr and their exit code; ``--debug`` re-raises."""

    @functools.wraps(command)
    def wrapper(*args, debug=False, **kwargs):
        debug = debug or (click.get_current_context().find_root().params.get("debug") or False)
        try:
            return command(*args, **kwargs)
        except SoftregError as error:
            if debug:
                raise
            _fail(str(error), error.exit_code)
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
def main(debug):
    """Softmax (multinomial logistic) regression with weight decay, by minibatch SGD.

    \b
    Train from a YAML config, then evaluate and predict from the run directory:
      softreg train --config configs/digits.yaml --out runs/digits
      softreg evaluate --run runs/digits
      softreg predict --run runs/digits --input new.csv --output predictions.csv
    """


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key (YAML-typed), e.g. optim.lr=0.05. Repeatable.")
@click.option("--out", type=click.Path(file_okay=False), help="Run directory (default: output.dir, else runs/NAME-TIME).")
@click.option("--force", is_flag=True, help="Replace an existing non-empty run directory.")
@click.option("--print-config", is_flag=True, help="Print the resolved config and exit.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of the summary.")
@handle_errors
def train(config_path, overrides, out, force, print_config, quiet, as_json):
    """Train a model from a YAML config into a run directory.

    \b
    Example:
      softreg train --config configs/digits.yaml
      softreg train --config configs/digits.yaml --set optim.lr=0.05 --out runs/lr005 --force
    """
    from softreg import console, pipeline
    from softreg.config import dump_config, load_config
    from softreg.rundir import check_output_dir

    config = load_config(config_path, overrides)
    if print_config:
        click.echo(dump_config(config), nl=False)
        return
    target = pipeline.output_dir_for(config, out)
    check_output_dir(target, force)
    progress = console.Progress(quiet=quiet, to_stderr=as_json)
    try:
        outcome = pipeline.train_run(config, target, force=force, on_epoch=progress)
    finally:
        progress.close()
    if as_json:
        console.print_json({"run_dir": str(outcome.run_dir), "metrics": outcome.metrics, "training": outcome.training})
    else:
        click.echo(console.train_summary(outcome))


@main.command()
@click.option("--run", "run_dir", required=True, type=click.Path(), help="Run directory written by train.")
@click.option("--data", help="Another labelled source (same forms as data.source) instead of the saved test split.")
@click.option("--label", help="Label column of --data (default: the model's label column if present, else the last).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of the table.")
@handle_errors
def evaluate(run_dir, data, label, as_json):
    """Report metrics of a saved model on its test split (or --data).

    \b
    Example:
      softreg evaluate --run runs/digits
      softreg evaluate --run runs/letters --data data/letter-recognition.csv --json
    """
    from softreg import console, pipeline
    from softreg.evaluate import most_confused

    label = int(label) if label is not None and label.lstrip("-").isdigit() else label
    metrics = pipeline.evaluate_run(run_dir, data=data, label=label)
    if as_json:
        console.print_json(metrics)
    else:
        click.echo(console.metrics_table(metrics, most_confused(metrics["confusion_matrix"], metrics["classes"])))


@main.command()
@click.option("--run", "run_dir", required=True, type=click.Path(), help="Run directory written by train.")
@click.option("--input", "input_path", required=True, type=click.Path(), help="Delimited file with the model's feature columns.")
@click.option("--output", type=click.Path(dir_okay=False), help="CSV to write (default: stdout).")
@click.option("--force", is_flag=True, help="Overwrite an existing --output file.")
@handle_errors
def predict(run_dir, input_path, output, force):
    """Predict labels and class probabilities for a delimited file.

    Columns are matched by the feature names saved with the model; a label column is
    ignored. The CSV has `label` and one `prob_<class>` column per class.

    \b
    Example:
      softreg predict --run runs/iris --input data/iris_new.csv --output predictions.csv
    """
    from softreg import pipeline, rundir

    pipeline.refuse_existing(output, force)
    labels, proba, classes = pipeline.predict_file(run_dir, input_path)
    text = pipeline.predictions_csv(labels, proba, classes)
    if output is None:
        click.echo(text, nl=False)
    else:
        rundir.write_text(output, text)
        click.echo(f"wrote {len(labels)} predictions to {output}", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
