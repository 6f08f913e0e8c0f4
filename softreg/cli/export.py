"""``softreg export``: a run's model as a file other runtimes serve (ONNX)."""

from __future__ import annotations

import click

from softreg.cli.group import handle_errors, main


@main.command(short_help="Export a run's model as an ONNX graph.")
@click.option("--run", "run_dir", required=True, type=click.Path(), help="Run directory written by train.")
@click.option("--format", "format_", required=True, type=click.Choice(["onnx"]), help="Model format to write.")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="File to write, e.g. model.onnx.")
@click.option(
    "--dtype", type=click.Choice(["float64", "float32"]), default=None,
    help="Precision of the graph's numeric inputs and arithmetic (default: the model's).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing --output file.")
@handle_errors
def export(run_dir: str, format_: str, output: str, dtype: str | None, force: bool) -> None:
    """Export a run's model as an ONNX graph, for serving without softreg or Python.

    The graph takes the model's raw input columns (one input per column, named as
    the column, shape [N, 1]: double for numbers, NaN missing; string for text
    columns) and applies the model's imputation, standardization, one-hot encoding,
    normalizer and temperature; its outputs `label` [N] and `probabilities` [N, K]
    are those of `softreg predict`. Needs the onnx package (softreg[onnx]).

    \b
    Example:
      softreg train --config configs/iris-csv.yaml --out runs/iris-csv
      softreg export --run runs/iris-csv --format onnx --output iris.onnx
      softreg export --run runs/iris-csv --format onnx --output iris32.onnx --dtype float32
    """
    from softreg.export import export_run

    exported = export_run(run_dir, output, dtype=dtype, force=force)
    click.echo(
        f"wrote {exported.path}: ONNX opset {exported.opset}, {exported.dtype}, "
        f"{len(exported.inputs)} input(s), {exported.n_classes} classes"
    )
