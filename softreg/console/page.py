"""One self-contained HTML page about a run: the config, the data, the metrics, every
plot and the training history.

The page needs no network: the plots are embedded as base64 ``data:`` URIs, the style
sheet is inline, and there are no scripts or links to other documents. Every piece of
text from the run (class and feature names, paths, the config) goes through
`html.escape`. This module only renders; `softreg.commands.report.report_run` gathers the
pieces from the run directory.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from softreg._version import __version__

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
.subtitle { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f4f4f6; }
td.name, th.name { text-align: left; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8rem; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.5rem 0.9rem; min-width: 8rem; }
.card .value { font-size: 1.35rem; font-weight: 600; }
.card .label { color: #555; font-size: 0.85rem; }
.bar { display: inline-block; height: 0.7rem; background: #4c78a8; vertical-align: middle; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9rem; }
pre { background: #f7f7f9; border: 1px solid #e3e3e8; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
.scroll { max-height: 32rem; overflow-y: auto; display: inline-block; }
"""

PLOT_CAPTIONS = {
    "learning_curves": (
        "Learning curves: losses, validation accuracy (with a validation split) and the learning rate per epoch."
    ),
    "confusion_matrix": "Confusion matrix: counts and row-normalized percentages (rows: true class).",
    "reliability": "Reliability diagram: accuracy against confidence per bin; bin counts below.",
    "weights": "Weights per class (standardized features).",
    "decision_regions": "Decision regions over the two features, with the evaluated points.",
    "class_probabilities": "Probability given to the true class.",
}


def _text(value: object) -> str:
    return html.escape(str(value), quote=True)


def _number(value: object, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if value == 0 or 1e-3 <= abs(value) < 1e6 else f"{value:.3e}"
    return _text(value)


def _row(cells: Iterable[str], tag: str, name_columns: int) -> str:
    return "<tr>" + "".join(
        f'<{tag} class="name">{cell}</{tag}>' if index < name_columns else f"<{tag}>{cell}</{tag}>"
        for index, cell in enumerate(cells)
    ) + "</tr>"


def _table(header: Iterable[str], rows: Iterable[Iterable[str]], name_columns: int = 1) -> str:
    """An HTML table; the first ``name_columns`` columns are left-aligned text; cells are HTML already."""
    body = "\n".join(_row(row, "td", name_columns) for row in rows)
    return f"<table>\n<thead>{_row(header, 'th', name_columns)}</thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _cards(items: Iterable[tuple[str, str]]) -> str:
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="value">{value}</div><div class="label">{_text(label)}</div></div>'
        for label, value in items
    ) + "</div>"


def data_section(meta: Mapping[str, Any], metrics: Mapping[str, Any]) -> str:
    """n, d, K and the class balance of each part (from the training summary when it has it)."""
    training = meta.get("training", {})
    classes = [str(label) for label in meta.get("classes", metrics.get("classes", []))]
    cards = _cards([
        ("training rows", _number(training.get("n_train"))),
        ("validation rows", _number(training.get("n_val"))),
        ("test rows", _number(training.get("n_test"))),
        ("features (d)", _number(meta.get("n_features"))),
        ("classes (K)", _number(len(classes))),
    ])
    evaluated = {name: row["support"] for name, row in metrics.get("per_class", {}).items()}
    counts = training.get("class_counts") or {"evaluated": evaluated}  # runs before class_counts: the test part
    parts = list(counts)
    largest = max([max(part.values(), default=0) for part in counts.values()] + [1])
    rows = []
    for name in classes:
        cells = [_text(name)]
        for part in parts:
            count = counts[part].get(name, 0)
            total = sum(counts[part].values()) or 1
            cells.append(f"{count:,} ({100 * count / total:.1f}%)")
        first = counts[parts[0]].get(name, 0)
        cells.append(f'<span class="bar" style="width:{120 * first / largest:.0f}px"></span>')
        rows.append(cells)
    header = ["class"] + [_text(part) for part in parts] + [f"{_text(parts[0])} balance"]
    source = _text(training.get("source", "-"))
    features = ", ".join(meta.get("feature_names", [])[:40])
    more = len(meta.get("feature_names", [])) - 40
    features_line = _text(features + (f" ... and {more} more" if more > 0 else ""))
    label = _text(meta.get("label_name", "-"))
    return (
        f"<h2>Data</h2>\n<p>Source: <code>{source}</code>; label column <code>{label}</code>.</p>\n"
        f"{cards}\n<h3>Class balance</h3>\n{_table(header, rows)}\n"
        f"<p>Features: {features_line}</p>"
    )


def metrics_section(metrics: Mapping[str, Any], confused: Sequence[tuple[str, str, int]] = ()) -> str:
    """Headline numbers, the per-class table and the most confused pairs."""
    headline = [
        ("accuracy", _number(metrics.get("accuracy"))),
        ("balanced accuracy", _number(metrics.get("balanced_accuracy"))),
        ("log loss", _number(metrics.get("log_loss"))),
        ("Brier score", _number(metrics.get("brier_score"))),
        ("ECE (15 bins)", _number(metrics.get("ece"))),
        ("macro F1", _number(metrics.get("macro_f1"))),
    ]
    summary_rows = [[_text(name), _number(metrics.get(key), digits)] for name, key, digits in (
        ("rows evaluated", "n_samples", 4), ("accuracy", "accuracy", 4), ("balanced accuracy", "balanced_accuracy", 4),
        ("log loss", "log_loss", 4), ("Brier score", "brier_score", 4), ("expected calibration error", "ece", 4),
        ("macro precision", "macro_precision", 4), ("macro recall", "macro_recall", 4), ("macro F1", "macro_f1", 4),
        ("training objective J (training part)", "objective", 6), ("gradient norm of J", "grad_norm", 4),
    )]
    top_k = metrics.get("top_k_accuracy", {})
    summary_rows += [[f"top-{_text(k)} accuracy", _number(value)] for k, value in top_k.items()]
    per_class_rows = [
        [_text(name), _number(row["precision"]), _number(row["recall"]), _number(row["f1"]), _number(row["support"])]
        for name, row in metrics.get("per_class", {}).items()
    ]
    per_class_rows.append([
        "<strong>macro average</strong>", _number(metrics.get("macro_precision")), _number(metrics.get("macro_recall")),
        _number(metrics.get("macro_f1")), _number(metrics.get("n_samples")),
    ])
    split = metrics.get("split") or metrics.get("source") or "-"
    parts = [
        f"<h2>Metrics</h2>\n<p>On the <strong>{_text(split)}</strong> part "
        f"({_number(metrics.get('n_samples'))} rows).</p>",
        _cards(headline),
        "<h3>Summary</h3>", _table(["metric", "value"], summary_rows),
        "<h3>Per class</h3>", _table(["class", "precision", "recall", "F1", "support"], per_class_rows),
    ]
    if confused:
        rows = [[_text(true_label), _text(predicted), _number(count)] for true_label, predicted, count in confused]
        parts += ["<h3>Most confused pairs</h3>", _table(["true class", "predicted", "count"], rows, name_columns=2)]
    return "\n".join(parts)


def plots_section(images: Sequence[tuple[str, bytes]]) -> str:
    """Every plot as an ``<img>`` with a base64 PNG ``data:`` URI."""
    if not images:
        return "<h2>Plots</h2>\n<p>This run has no plots (<code>output.plots: false</code>).</p>"
    figures = []
    for name, png in images:
        encoded = base64.b64encode(png).decode("ascii")
        caption = PLOT_CAPTIONS.get(name, name.replace("_", " ").capitalize() + ".")
        figures.append(
            f'<figure id="plot-{_text(name)}"><img alt="{_text(name)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption><code>plots/{_text(name)}.png</code>: {_text(caption)}</figcaption></figure>"
        )
    return "<h2>Plots</h2>\n" + "\n".join(figures)


def history_section(history: Sequence[Mapping[str, Any]]) -> str:
    """The history as a table, one row per epoch."""
    if not history:
        return "<h2>Training history</h2>\n<p>No history was recorded.</p>"
    columns = list(history[0])

    def cell(name: str, value: Any) -> str:
        return _number(int(value)) if name == "epoch" and value is not None else _number(value, 6)

    rows = [[cell(name, row[name]) for name in columns] for row in history]
    table = _table([_text(name) for name in columns], rows, name_columns=0)
    return f'<h2>Training history</h2>\n<div class="scroll">{table}</div>'


def render_html(
    run_name: str,
    config_text: str,
    meta: Mapping[str, Any],
    metrics: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    images: Sequence[tuple[str, bytes]],
    confused: Sequence[tuple[str, str, int]] = (),
) -> str:
    """The whole page as a string.

    Parameters
    ----------
    run_name : str, shown in the title
    config_text : str, the resolved ``config.yaml``
    meta : dict, ``model.json``
    metrics : dict, ``metrics.json``
    history : list of dict, the ``history.csv`` rows
    images : list of (name, bytes), the PNG plots in display order
    confused : list of (true, predicted, count), the most confused class pairs
    """
    training = meta.get("training", {})
    epochs = training.get("epochs_run")
    seconds = training.get("seconds")
    trained = (
        f"{epochs} epochs in {seconds:.2f}s" if isinstance(epochs, int) and isinstance(seconds, (int, float)) else "-"
    )
    contents = "".join(
        f'<a href="#{anchor}">{label}</a> &middot; '
        for anchor, label in (("data", "Data"), ("metrics", "Metrics"), ("plots", "Plots"), ("config", "Config"))
    ) + '<a href="#history">History</a>'
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>softreg report: {_text(run_name)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>softreg report: {_text(run_name)}</h1>",
        f'<p class="subtitle">Softmax regression, trained {_text(trained)} with softreg '
        f"{_text(meta.get('softreg_version', '-'))} (report by softreg {_text(__version__)}). {contents}</p>",
        f'<section id="data">{data_section(meta, metrics)}</section>',
        f'<section id="metrics">{metrics_section(metrics, confused)}</section>',
        f'<section id="plots">{plots_section(images)}</section>',
        f'<section id="config"><h2>Config</h2>\n<pre>{_text(config_text)}</pre></section>',
        f'<section id="history">{history_section(history)}</section>',
        "</body>",
        "</html>",
        "",
    ])
