"""Everything the user reads: progress, human summaries and ``--json`` documents."""

import json
import math
import sys

import click


def _number(value, digits=4):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"


def epoch_line(record, total):
    parts = [f"epoch {record.epoch}/{total}", f"lr={record.lr:.4g}", f"train_loss={record.train_loss:.6g}"]
    if record.objective is not None:
        parts.append(f"objective={record.objective:.7g}")
    if record.val_loss is not None:
        parts.append(f"val_loss={record.val_loss:.6g}")
        parts.append(f"val_acc={record.val_accuracy:.4f}")
    parts.append(f"({record.seconds:.2f}s)")
    return "  ".join(parts)


class Progress:
    """Per-epoch progress: a bar on a terminal, one flushed ``epoch N/E`` line otherwise.

    With ``to_stderr`` (``--json``) the lines go to stderr so stdout stays one JSON document.
    """

    def __init__(self, quiet=False, to_stderr=False):
        self.quiet = quiet
        self.stream = sys.stderr if to_stderr else sys.stdout
        self.bar = None

    def __call__(self, record, total):
        if self.quiet:
            return
        if self.stream.isatty():
            if self.bar is None:
                self.bar = click.progressbar(
                    length=total, label="training", file=self.stream, show_pos=True, show_eta=True,
                    item_show_func=lambda r: None if r is None else _bar_item(r),
                )
                self.bar.__enter__()
            self.bar.update(1, current_item=record)
            if record.epoch == total:
                self.close()
        else:
            click.echo(epoch_line(record, total), file=self.stream)
            self.stream.flush()

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _bar_item(record):
    text = f"loss {record.train_loss:.5g}"
    if record.val_accuracy is not None:
        text += f"  val acc {record.val_accuracy:.4f}"
    return text


def print_json(document):
    click.echo(json.dumps(document, indent=2, default=_default))


def _default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def train_summary(outcome):
    metrics, training = outcome.metrics, outcome.training
    stopped = f", stopped early (best epoch {training['best_epoch']})" if training["stopped_early"] else ""
    lines = [
        f"trained {training['epochs_run']} epochs in {training['seconds']:.2f}s on {training['n_train']} rows "
        f"({training['n_features']} features, {len(metrics['classes'])} classes){stopped}",
        f"final objective {training['objective']:.6f}   gradient norm {_number(training['grad_norm'])}",
        f"{metrics['split']} accuracy {metrics['accuracy']:.4f}   log loss {metrics['log_loss']:.4f}   "
        f"({metrics['n_samples']} rows)",
        f"run directory: {outcome.run_dir}",
    ]
    return "\n".join(lines)


def metrics_table(metrics, confused=()):
    """Per-class rows, then the averages, then the most confused pairs."""
    names = list(metrics["per_class"])
    width = max(12, max(len(name) for name in names) + 2)
    lines = [f"evaluated on {metrics.get('source', metrics.get('split', ''))}: {metrics['n_samples']} rows", ""]
    lines.append(f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name, row in metrics["per_class"].items():
        lines.append(f"{name:<{width}}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}{row['support']:>10d}")
    lines.append(
        f"{'macro avg':<{width}}{metrics['macro_precision']:>10.4f}{metrics['macro_recall']:>10.4f}"
        f"{metrics['macro_f1']:>10.4f}{metrics['n_samples']:>10d}"
    )
    lines.append("")
    lines.append(f"accuracy           {metrics['accuracy']:.4f}")
    lines.append(f"balanced accuracy  {metrics['balanced_accuracy']:.4f}")
    lines.append(f"log loss           {metrics['log_loss']:.4f}")
    lines.append(f"Brier score        {metrics['brier_score']:.4f}")
    lines.append(f"ECE (15 bins)      {metrics['ece']:.4f}")
    for k, value in metrics["top_k_accuracy"].items():
        lines.append(f"top-{k} accuracy     {value:.4f}")
    if metrics.get("objective") is not None:
        lines.append(f"train objective    {metrics['objective']:.6f}   gradient norm {_number(metrics['grad_norm'])}")
    if confused:
        lines.append("")
        lines.append("most confused (true -> predicted: count)")
        for true_label, predicted, count in confused:
            lines.append(f"  {true_label} -> {predicted}: {count}")
    return "\n".join(lines)
