"""What a finished command prints: the training summary, the metrics table, the
logistic comparison, the sweep's lines and table, and ``--json`` documents."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from softreg.escape import visible

if TYPE_CHECKING:
    from softreg.errors import Interrupted
    from softreg.run import TrainOutcome


def _number(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"

def print_json(document: object) -> None:
    """One strict JSON document on stdout (NaN and infinity as null)."""
    from softreg.rundir import json_text

    click.echo(json_text(document))


def train_summary(outcome: TrainOutcome) -> str:
    metrics, training = outcome.metrics, outcome.training
    stopped = f", stopped early (best epoch {training['best_epoch']})" if training["stopped_early"] else ""
    if training.get("stopped_by") == "tol":
        stopped = f", stopped by optim.tol = {training['tol']:g}"
    lines = [
        f"trained {training['epochs_run']} epochs in {training['seconds']:.2f}s on {training['n_train']} rows "
        f"({training['n_features']} features, {len(metrics['classes'])} classes){stopped}",
        f"final objective {training['objective']:.6f}   gradient norm {_number(training['grad_norm'])}",
        certificate_line(training),
        f"{metrics['split']} accuracy {metrics['accuracy']:.4f}   log loss {metrics['log_loss']:.4f}   "
        f"({metrics['n_samples']} rows)",
        f"run directory: {visible(outcome.run_dir)}",
    ]
    return "\n".join(lines)


def certificate_line(summary: Mapping[str, Any]) -> str:
    """``converged: yes|no, relative gap <= X (certified)``, or why there is no bound."""
    bound = summary.get("gap_bound")
    answer = "yes" if summary.get("converged") else "no"
    if bound is None:
        return f"converged: {answer}, {_no_bound(summary)}"
    return f"converged: {answer}, relative gap (J - J*) / J* <= {bound:.2e} (certified)"


def _no_bound(summary: Mapping[str, Any]) -> str:
    if summary.get("certifiable", True):  # absent from evaluate's metrics: the training summary had it
        return "no finite bound on the relative gap yet (J is still above twice J*)"
    return ("no bound on the gap at weight_decay 0, for losses other than cross_entropy, or past 2^25 logits "
            "in one process or shard")


def not_converged_line(summary: Mapping[str, Any], run_dir: object, epochs: int) -> str | None:
    """The one stderr line of a run that ended with optim.tol set and not met (None otherwise)."""
    tol = summary.get("tol")
    if tol is None or summary.get("converged") or summary.get("stopped_by") == "early_stopping":
        return None
    bound, done = summary.get("gap_bound"), summary["epochs_run"]
    if bound is None and not summary.get("certifiable", True):
        return f"not converged: {_no_bound(summary)} (optim.tol = {tol:g} after {done} epochs)"
    said = "no finite bound on the relative gap" if bound is None else f"relative gap ≤ {bound:.2e}"
    return (
        f"not converged: {said} after {done} epochs (optim.tol = {tol:g}); raise optim.epochs "
        f"to train further: softreg train --resume {run_dir} --set optim.epochs={max(2 * epochs, done + 1)}"
    )


def interrupted_message(stop: Interrupted) -> str:
    """Two lines: where training stopped, and the exact command that continues it."""
    if stop.run_dir is None:
        return "softreg: interrupted; nothing was written"
    if stop.state is None:
        where = "before the first epoch ended (resume starts it again)"
    elif stop.state.finished:
        where = "while saving the final model (resume finishes it)"
    else:
        where = f"after epoch {stop.state.epoch}; checkpoint saved"
    return f"softreg: interrupted {where}.\nResume with: softreg train --resume {visible(stop.run_dir)}"


def metrics_table(metrics: Mapping[str, Any], confused: Sequence[tuple[str, str, int]] = ()) -> str:
    """Per-class rows, then the averages, then the most confused pairs (names with control
    characters escaped, as everywhere on a terminal)."""
    names = [visible(name) for name in metrics["per_class"]]
    width = max(12, max(len(name) for name in names) + 2)
    source = visible(metrics.get("source", metrics.get("split", "")))
    lines = [f"evaluated on {source}: {metrics['n_samples']} rows", ""]
    lines.append(f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name, row in zip(names, metrics["per_class"].values(), strict=True):
        lines.append(
            f"{name:<{width}}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}{row['support']:>10d}"
        )
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
    if "converged" in metrics:
        lines.append(certificate_line(metrics))
    optimum = metrics.get("optimum")
    if optimum is not None:
        lines.append(
            f"exact optimum      objective {optimum['objective']:.6f}   relative gap {optimum['gap']:.2e}   "
            f"accuracy {optimum['accuracy']:.4f}"
        )
    calibration = metrics.get("calibration")
    if calibration is not None:
        reason = calibration.get("reason") or "no better than T = 1 on validation"
        kept = "" if calibration["improved"] else f"   (kept T = 1: {reason})"
        lines.append(f"calibrated         temperature {calibration['temperature']:.4f}{kept}")
        for where, figures in (("validation", calibration), ("evaluated data", calibration["evaluated"])):
            lines.append(
                f"  {where:<16} ECE {figures['ece_before']:.4f} -> {figures['ece_after']:.4f}   "
                f"log loss {figures['log_loss_before']:.4f} -> {figures['log_loss_after']:.4f}"
            )
    if confused:
        lines.append("")
        lines.append("most confused (true -> predicted: count)")
        for true_label, predicted, count in confused:
            lines.append(f"  {visible(true_label)} -> {visible(predicted)}: {count}")
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


def compare_logistic_report(report: Mapping[str, Any]) -> str:
    """The ``compare-logistic`` table: a ✓/✗ per check, the naive scikit-learn mapping, why."""
    optim = report["optim"]
    momentum = f"momentum {optim['momentum']:g}{' (Nesterov)' if optim['nesterov'] else ''}"
    decay, rate = report["weight_decay"], report["learning_rate"]
    first, positive = visible(report["classes"][0]), visible(report["positive_class"])
    lines = [
        (
            f"{visible(report['source'])}: A = {first} vs B = {positive} "
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


def sweep_line(done: int, total: int, row: Mapping[str, Any], skipped: bool) -> str:
    """One progress line per finished (or skipped) run of a sweep."""
    head = f"sweep [{done}/{total}] {visible(row['run_dir'])}:"
    from softreg.commands.sweep_dir import FINISHED  # here: the console stays light to import

    if row["status"] not in FINISHED:
        return f"{head} FAILED: {visible(row['error'])}"
    what = "skipped (finished before)" if skipped else f"trained {row['epochs']} epochs in {row['seconds']:.2f}s"
    figures = [f"{name} {_number(row[key])}" for key, name in (
        ("val_accuracy", "val accuracy"), ("val_log_loss", "val log loss"), ("test_accuracy", "test accuracy")
    ) if row[key] is not None]
    return "  ".join([head, what, *figures])


def sweep_summary(result: Any) -> str:
    """The table of runs, the best setting by validation log loss and the command that retrains it."""
    columns = (("val_accuracy", "val acc"), ("val_log_loss", "val loss"), ("val_ece", "val ECE"),
               ("test_accuracy", "test acc"), ("test_log_loss", "test loss"), ("epochs", "epochs"),
               ("seconds", "seconds"))
    from softreg.commands.sweep_dir import FINISHED

    names = [visible(row["run_dir"]) for row in result.rows]  # grid values are the user's text
    width = max(12, *(len(name) for name in names)) + 2
    lines = [f"{'run':<{width}}" + "".join(f"{title:>10}" for _, title in columns)]
    for name, row in zip(names, result.rows, strict=True):
        cells = "".join(
            f"{'-' if row[key] is None else (str(row[key]) if key == 'epochs' else _number(row[key])):>10}"
            for key, _ in columns
        )
        lines.append(f"{name:<{width}}{cells}" + ("   FAILED" if row["status"] not in FINISHED else ""))
    lines.append("")
    if result.best is None and len(result.failed) == len(result.rows):
        lines.append("no run finished: no best setting is chosen")
    elif result.best is None:
        lines.append("no validation split (data.val: 0): no best setting is chosen; set data.val > 0 to choose one")
    else:
        best = result.best
        lines.append(
            f"best by validation log loss: {visible(best['run_dir'])} (val log loss {_number(best['val_log_loss'])}, "
            f"val accuracy {_number(best['val_accuracy'])})"
        )
        lines.append(f"retrain it with: {visible(result.retrain_command)}")
    out = visible(str(result.out))
    lines.append(f"wrote {out}/sweep.csv" + (f" and {len(result.plots)} plots in {out}/plots" if result.plots else ""))
    return "\n".join(lines)
