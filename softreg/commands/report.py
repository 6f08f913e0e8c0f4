"""``softreg report``: one self-contained HTML page of a run."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from softreg import rundir
from softreg.commands.common import refuse_existing
from softreg.config import PLOT_NAMES
from softreg.console.page import render_html
from softreg.errors import RunDirError
from softreg.evaluate import most_confused


def report_run(
    run_dir: str | PathLike[str], output: str | PathLike[str] | None = None, force: bool = False
) -> tuple[Path, int]:
    """Write the run's one-file HTML report (default ``run_dir/report.html``).

    Another ``output`` that exists is refused unless ``force``; the default is rewritten.

    Returns
    -------
    path : Path, the report written
    n_plots : int, the plots embedded
    """
    run_dir = Path(run_dir)
    default = run_dir / rundir.REPORT
    target = default if output is None else Path(output)
    if target.resolve() != default.resolve():
        refuse_existing(target, force)
    rundir.load_model(run_dir)  # a finished, loadable run, or a RunDirError naming what is wrong
    meta = rundir.read_model_json(run_dir / rundir.MODEL_JSON)
    metrics = rundir.read_metrics(run_dir / rundir.METRICS)
    config_path = run_dir / rundir.CONFIG
    try:
        config_text = config_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RunDirError(
            f"{config_path}: cannot read ({error.__class__.__name__}); the run directory is incomplete"
        ) from None
    plot_dir = run_dir / rundir.PLOTS
    files = sorted(plot_dir.glob("*.png")) if plot_dir.is_dir() else []
    order = {name: index for index, name in enumerate(PLOT_NAMES)}
    files.sort(key=lambda path: (order.get(path.stem, len(order)), path.stem))
    images = [(path.stem, path.read_bytes()) for path in files]
    confused = most_confused(metrics["confusion_matrix"], metrics["classes"]) if "confusion_matrix" in metrics else []
    history = rundir.read_history(run_dir)
    page = render_html(run_dir.resolve().name, config_text, meta, metrics, history, images, confused)
    rundir.write_text(target, page)
    return target, len(images)
