"""The demo's parts made of ``softreg sweep`` runs: the losses, the normalizers and the weight decay."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from softreg import rundir
from softreg.commands.demo.scale import LOSS_RATES, Progress, Scale
from softreg.commands.sweep import SweepResult, sweep
from softreg.errors import SoftregError


def _sweep(out: Path, name: str, config: Path, grids: list[str], sets: list[str], jobs: int,
           say: Progress) -> SweepResult:
    def progress(done: int, total: int, row: dict[str, Any], skipped: bool) -> None:
        state = "reused" if skipped else ("failed: " + row["error"] if row["status"] == "failed" else "done")
        say(f"  {name} [{done}/{total}] {row['run_dir']}: {state}")

    result = sweep(config, grids, sets, jobs=jobs, out=out / "sweeps" / name, on_run=progress)
    if result.failed:
        first = result.failed[0]
        raise SoftregError(f"{out / 'sweeps' / name}: {len(result.failed)} run(s) failed, e.g. {first['error']}")
    return result


def loss_sweep(out: Path, config: Path, scale: Scale, jobs: int, say: Progress, figure: Path) -> dict[str, Any]:
    """letters, loss x learning rate from the zero start at a constant rate: validation accuracy per epoch."""
    from softreg import plots

    rates = ",".join(f"{rate:g}" for rate in LOSS_RATES)
    result = _sweep(out, "letters-loss", config, ["model.loss=cross_entropy,squared_error", f"optim.lr={rates}"],
                    ["optim.schedule=constant", f"optim.epochs={scale.loss_epochs}"], jobs, say)
    curves: dict[tuple[str, float], list[float]] = {}
    runs = []
    for row in result.rows:
        history = rundir.read_history(result.out / row["run_dir"])
        accuracy = [math.nan if record["val_accuracy"] is None else record["val_accuracy"] for record in history]
        curves[(row["model.loss"], row["optim.lr"])] = accuracy
        runs.append({
            "loss": row["model.loss"], "lr": row["optim.lr"], "val_accuracy_by_epoch": accuracy,
            "val_accuracy": row["val_accuracy"], "val_log_loss": row["val_log_loss"], "val_ece": row["val_ece"],
            "test_accuracy": row["test_accuracy"], "test_log_loss": row["test_log_loss"],
        })
    plots.learning_by_loss(curves, figure)
    return {"sweep": str(result.out.relative_to(out)), "runs": runs}


def normalizer_sweep(out: Path, name: str, config: Path, jobs: int, say: Progress) -> dict[str, Any]:
    """The dataset's config with each normalizer: test accuracy, mean top-class probability, log
    loss and ECE, and the test log loss and ECE once ``evaluate --calibrate`` has fitted a
    temperature on the validation split."""
    from softreg.commands.evaluate import evaluate_run

    result = _sweep(out, f"{name}-normalizer", config, ["model.normalizer=softmax,taylor,spherical"], [], jobs, say)
    table = {}
    for row in result.rows:
        run_dir = result.out / row["run_dir"]
        calibration = evaluate_run(run_dir, calibrate=True)["calibration"]
        X_raw, _ = rundir.load_test_split(run_dir)
        confidence = float(rundir.load_model(run_dir).predict_proba(X_raw).max(axis=1).mean())
        table[row["model.normalizer"]] = {
            "test_accuracy": row["test_accuracy"], "test_mean_confidence": confidence,
            "test_log_loss": row["test_log_loss"], "test_ece": row["test_ece"],
            "val_accuracy": row["val_accuracy"], "calibrated_temperature": calibration["temperature"],
            "calibrated_test_log_loss": calibration["evaluated"]["log_loss_after"],
            "calibrated_test_ece": calibration["evaluated"]["ece_after"],
            "calibration_validation_ece": [calibration["ece_before"], calibration["ece_after"]],
        }
    return table


def decay_sweep(out: Path, config: Path, scale: Scale, jobs: int, say: Progress, figure: Path) -> dict[str, Any]:
    """digits over a log grid of weight decays: test accuracy and ||W||_F of each trained model."""
    from softreg import plots

    decays = ",".join(f"{decay:g}" for decay in scale.decays)
    result = _sweep(out, "digits-weight-decay", config, [f"model.weight_decay={decays}"], [], jobs, say)
    table = []
    for row in result.rows:
        coef = rundir.load_model(result.out / row["run_dir"]).coef
        table.append({"weight_decay": row["model.weight_decay"], "test_accuracy": row["test_accuracy"],
                      "val_accuracy": row["val_accuracy"], "test_log_loss": row["test_log_loss"],
                      "coef_norm": float(np.linalg.norm(coef))})
    plots.weight_decay_effect(table, figure)
    return {"sweep": str(result.out.relative_to(out)), "runs": table}
