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


def interrupted_message(stop):
    """Two lines: where training stopped, and the exact command that continues it."""
    if stop.run_dir is None:
        return "softreg: interrupted; nothing was written"
    if stop.state is None:
        where = "before the first epoch ended (resume starts it again)"
    elif stop.state.finished:
        where = "while saving the final model (resume finishes it)"
    else:
        where = f"after epoch {stop.state.epoch}; checkpoint saved"
    return f"softreg: interrupted {where}.\nResume with: softreg train --resume {stop.run_dir}"


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
    optimum = metrics.get("optimum")
    if optimum is not None:
        lines.append(
            f"exact optimum      objective {optimum['objective']:.6f}   relative gap {optimum['gap']:.2e}   "
            f"accuracy {optimum['accuracy']:.4f}"
        )
    if confused:
        lines.append("")
        lines.append("most confused (true -> predicted: count)")
        for true_label, predicted, count in confused:
            lines.append(f"  {true_label} -> {predicted}: {count}")
    return "\n".join(lines)


COMPARE_CHECK_LABELS = {
    "trajectory.max_abs_prob_diff": "trajectory  max |p_softmax(B) − p_logistic| over all steps",
    "trajectory.max_abs_coef_diff": "trajectory  max |(w₂ − w₁) − w|, |(b₂ − b₁) − b| over all steps",
    "optimum.max_abs_prob_diff": "optimum     max |p_softmax(B) − p_logistic|",
    "optimum.coef_rel_diff": "optimum     ‖(w₂ − w₁, b₂ − b₁) − (w, b)‖ / ‖(w, b)‖",
    "optimum.sum_norm": "optimum     ‖w₁ + w₂‖ at the softmax optimum",
    "sklearn.max_abs_prob_diff": "sklearn     C = 2/(nλ) = {C:.4g}: max |p − p*|",
}
COMPARE_WHY = (
    "Why: with two classes only the logit difference matters, p(B) = σ((w₂ − w₁)·x + b₂ − b₁), and the "
    "softmax gradient\nof w₂ − w₁ is 2(p − t)x + λ(w₂ − w₁): twice the logistic gradient with decay λ/2. "
    "So every softmax SGD step with\nrate η moves w₂ − w₁ exactly as a logistic step with rate 2η moves w "
    "(momentum and schedules are linear in the\ngradient), while w₁ + w₂ only decays and stays 0 from a zero start."
)


def compare_logistic_report(report):
    """The ``compare-logistic`` table: a ✓/✗ per check, the naive scikit-learn mapping, why."""
    optim = report["optim"]
    momentum = f"momentum {optim['momentum']:g}{' (Nesterov)' if optim['nesterov'] else ''}"
    decay, rate = report["weight_decay"], report["learning_rate"]
    lines = [
        (
            f"{report['source']}: A = {report['classes'][0]} vs B = {report['positive_class']} "
            f"({report['n_samples']} rows, {report['n_features']} features, every row, standardized)"
        ),
        (
            f"softmax:  decay λ = {decay['softmax']:g}, rate η = {rate['softmax']:g}    "
            f"logistic:  decay λ/2 = {decay['logistic']:g}, rate 2η = {rate['logistic']:g}"
        ),
        (
            f"SGD from zero: {optim['epochs']} epochs of batches of {optim['batch_size']} "
            f"({report['trajectory']['steps']} steps), {momentum}, {optim['schedule']} schedule, seed {report['seed']}"
        ),
        "",
        f"  {'check':<66}{'value':>10}   threshold",
    ]
    for check in report["checks"]:
        label = COMPARE_CHECK_LABELS[check["name"]].format(C=report["sklearn"]["C"])
        mark = "✓" if check["ok"] else "✗"
        lines.append(f"{mark} {label:<66}{check['value']:>10.1e}   ≤ {check['threshold']:.0e}")
    for label, value, note in (
        (f"sklearn     C = 1/(nλ) = {report['sklearn_naive']['C']:.4g} (naive): max |p − p*|",
         report["sklearn_naive"]["max_abs_prob_diff"], "twice the right decay"),
        ("SGD         the final softmax SGD model: max |p − p*|",
         report["sgd_vs_optimum"]["max_abs_prob_diff"], "how far training got"),
    ):
        lines.append(f"  {label:<66}{value:>10.1e}   (not a check: {note})")
    lines += ["  (p* is the exact softmax optimum's p(B) on every row)", "", COMPARE_WHY, ""]
    failed = [check["name"] for check in report["checks"] if not check["ok"]]
    if failed:
        lines.append(
            f"✗ not equivalent: {len(failed)} of {len(report['checks'])} checks failed ({', '.join(failed)})"
        )
    else:
        lines.append(f"✓ equivalent: all {len(report['checks'])} checks hold")
    return "\n".join(lines)
