"""``softreg demo why-softmax``: the figures and numbers of the README's "Why softmax and
cross-entropy", made from real runs (``softreg sweep``) and the training core.

OUT/figures/*.png and OUT/numbers.json, OUT/numbers.md are the results; OUT/configs/ holds
the base configs and OUT/sweeps/ the sweeps' run directories, so every number can be
traced to a run directory and recomputed with ``softreg sweep``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from softreg import losses, rundir
from softreg.commands.sweep import SweepResult, sweep
from softreg.config import load_config
from softreg.errors import DataError, SoftregError
from softreg.prepare.data import prepare, random_streams
from softreg.solve import exact_optimum
from softreg.train import Settings, TrainingState, fit

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Scale:
    """Epochs of each part: the full demo, or a quick smoke test."""

    loss_epochs: int = 15
    digits_epochs: int = 100
    letters_epochs: int = 40
    norm_epochs: int = 300
    unique_epochs: int = 300
    decays: tuple[float, ...] = (0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


QUICK = Scale(loss_epochs=2, digits_epochs=3, letters_epochs=2, norm_epochs=6, unique_epochs=6, decays=(0.0, 1e-2))
LOSS_RATES = (0.03, 0.1, 0.3)
NORM_DECAYS = (0.0, 1e-4, 1e-3, 1e-2)
NORM_RATE = 0.05  # small enough that the weights' SGD noise does not hide where they level off
UNIQUE_DECAY = 1e-2


def why_softmax(
    out: str | os.PathLike[str], letters: str | os.PathLike[str], jobs: int = 1, quick: bool = False,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """Run every part of the demonstration into ``out``; return the numbers (also in numbers.json)."""
    letters = Path(letters)
    if not letters.is_file():
        raise DataError(f"{letters}: not found; the demo needs the UCI letters file (run from the repository "
                        "root, or give --letters PATH)")
    out = Path(out)
    scale = QUICK if quick else Scale()
    say = on_progress or (lambda message: None)
    figures, configs = out / "figures", out / "configs"
    for folder in (figures, configs):
        folder.mkdir(parents=True, exist_ok=True)
    digits_config, letters_config = write_configs(configs, letters.resolve(), scale)
    from softreg import plots

    numbers: dict[str, Any] = {"quick": quick}
    say("gradient of the true-class logit as p_y -> 0")
    numbers["gradient"] = true_class_gradients(figures / "gradient_vs_p.png")
    say("letters: cross-entropy vs squared error from the same start")
    numbers["loss"] = loss_sweep(out, letters_config, scale, jobs, say, figures / "loss_learning.png")
    say("digits and letters: softmax vs taylor vs spherical")
    table = {name: normalizer_sweep(out, name, config, jobs, say)
             for name, config in (("digits", digits_config), ("letters", letters_config))}
    numbers["normalizers"] = table
    plots.normalizer_comparison(table, figures / "normalizers.png")
    say("digits: the effect of the weight decay")
    numbers["weight_decay"] = decay_sweep(out, digits_config, scale, jobs, say, figures / "weight_decay.png")
    say("digits: one optimum for lambda > 0, growing weights for lambda = 0")
    numbers["uniqueness"] = uniqueness(digits_config, scale)
    numbers["norm_growth"] = norm_growth(digits_config, scale, figures / "norm_vs_epoch.png")
    rundir.write_json(out / "numbers.json", numbers)
    rundir.write_text(out / "numbers.md", numbers_markdown(numbers))
    return numbers


def write_configs(directory: Path, letters: Path, scale: Scale) -> tuple[Path, Path]:
    """The two base configs: configs/digits.yaml's settings and configs/letters.yaml's with a validation part."""
    common = {"output": {"plots": False}, "seed": 0}
    digits = {
        "data": {"source": "builtin:digits", "test": 0.2, "val": 0.1},
        "model": {"weight_decay": 1e-3},
        "optim": {"lr": 0.2, "batch_size": 32, "epochs": scale.digits_epochs, "momentum": 0.9, "schedule": "cosine",
                  "variance_reduction": "none"},  # textbook SGD: the losses compared at equal footing
        **common,
    }
    source = os.path.relpath(letters, directory.resolve())  # relative: the config moves with OUT
    letters_document = {
        "data": {"source": source, "label": "Letter", "split": "ordered", "test": 0.2, "val": 0.1},
        "model": {"weight_decay": 1e-4},
        "optim": {"lr": 0.1, "batch_size": 64, "epochs": scale.letters_epochs, "momentum": 0.9,
                  "schedule": "cosine", "variance_reduction": "none"},
        **common,
    }
    paths = directory / "digits.yaml", directory / "letters.yaml"
    for path, document in zip(paths, (digits, letters_document), strict=True):
        rundir.write_text(path, yaml.safe_dump(document, sort_keys=False))
    return paths


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


def true_class_gradients(path: Path, n_classes: int = 26) -> dict[str, Any]:
    """dL/dz_y against p_y for both losses (the other logits equal), through `losses.logit_loss_gradient`."""
    from softreg import plots

    true_logit = np.linspace(-12.0, 6.0, 400)
    logits = np.zeros((len(true_logit), n_classes))
    logits[:, 0] = true_logit
    y = np.zeros(len(true_logit), dtype=np.int64)
    p_true = losses.proba(logits)[:, 0]
    gradients = {loss: losses.logit_loss_gradient(logits, y, loss)[1][:, 0] for loss in losses.LOSSES}
    plots.true_class_gradient(p_true, gradients, n_classes, path)
    at = {}
    for p in (1e-3, 1 / n_classes, 0.5):
        index = int(np.argmin(np.abs(np.log(p_true) - math.log(p))))
        at[f"{p_true[index]:.3g}"] = {loss: float(gradient[index]) for loss, gradient in gradients.items()}
    return {"n_classes": n_classes, "dL_dz_true_at_p": at}


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


def _training_part(config: Path) -> tuple[np.ndarray, np.ndarray, int]:
    resolved = load_config(config)
    prepared = prepare(resolved.data, np.dtype(np.float64), random_streams(resolved.seed).split)
    return np.asarray(prepared.train.X), prepared.train.y, len(prepared.classes)


def uniqueness(config: Path, scale: Scale) -> dict[str, Any]:
    """Two SVRG runs on digits' training part with other seeds and batch sizes (so other batch
    orders): at lambda > 0 they reach the same W (and L-BFGS's); at lambda = 0 they do not."""
    X, y, n_classes = _training_part(config)
    result: dict[str, Any] = {}
    for decay in (UNIQUE_DECAY, 0.0):
        coefs = []
        for seed, batch_size in ((1, 128), (2, 256)):
            settings = Settings(weight_decay=decay, lr=0.3, batch_size=batch_size, epochs=scale.unique_epochs,
                                momentum=0.9, schedule="constant", variance_reduction="svrg")
            coefs.append(fit((X, y), n_classes, settings, np.random.default_rng(seed)).coef)
        first, second = coefs
        entry = {
            "runs": [{"seed": 1, "batch_size": 128}, {"seed": 2, "batch_size": 256}],
            "epochs": scale.unique_epochs,
            "coef_norms": [float(np.linalg.norm(first)), float(np.linalg.norm(second))],
            "relative_distance": float(np.linalg.norm(first - second) / np.linalg.norm(first)),
        }
        if decay > 0:
            optimum = exact_optimum(X, y, n_classes, decay).coef
            entry["relative_distance_to_lbfgs"] = [float(np.linalg.norm(coef - optimum) / np.linalg.norm(optimum))
                                                   for coef in coefs]
        result[f"{decay:g}"] = entry
    return result


def norm_growth(config: Path, scale: Scale, figure: Path) -> dict[str, Any]:
    """||W||_F after every epoch of plain SGD at a constant rate on digits' (separable) training
    part, and ||W*||_F of the exact optimum where there is one (lambda > 0)."""
    from softreg import plots

    X, y, n_classes = _training_part(config)
    norms: dict[float, list[float]] = {}
    optimum_norms: dict[float, float] = {}
    table = {}
    for decay in NORM_DECAYS:
        states: list[TrainingState] = []
        settings = Settings(weight_decay=decay, lr=NORM_RATE, batch_size=32, epochs=scale.norm_epochs, momentum=0.9,
                            schedule="constant")
        result = fit((X, y), n_classes, settings, np.random.default_rng(0), on_checkpoint=states.append)
        size = n_classes * X.shape[1]
        norms[decay] = [float(np.linalg.norm(state.weights[:size])) for state in states[:scale.norm_epochs]]
        logits = X @ result.coef.T + result.intercept
        table[f"{decay:g}"] = {
            "coef_norm_at_epoch": {str(epoch): norms[decay][epoch - 1] for epoch in _milestones(scale.norm_epochs)},
            "optimum_coef_norm": None,
            "train_accuracy": float(np.mean(logits.argmax(axis=1) == y)),
        }
        if decay > 0:
            optimum_norms[decay] = float(np.linalg.norm(exact_optimum(X, y, n_classes, decay).coef))
            table[f"{decay:g}"]["optimum_coef_norm"] = optimum_norms[decay]
    plots.norm_by_epoch(norms, optimum_norms, figure)
    return {"epochs": scale.norm_epochs, "lr": NORM_RATE, "batch_size": 32, "momentum": 0.9, "by_weight_decay": table}


def _milestones(epochs: int) -> list[int]:
    return sorted({epoch for epoch in (1, 10, 30, 100, epochs) if epoch <= epochs})


def numbers_markdown(numbers: dict[str, Any]) -> str:
    """The tables the README quotes, as markdown."""
    lines = ["# Why softmax and cross-entropy: the numbers", "",
             "Made by `softreg demo why-softmax`" + (" --quick (a smoke test, not the README's numbers)."
                                                     if numbers["quick"] else "."), ""]
    gradient = numbers["gradient"]
    lines += [f"## dL/dz_y at p_y ({gradient['n_classes']} classes, the other logits equal)", "",
              "| p_y | cross-entropy | squared error |", "|---|---|---|"]
    for p, values in gradient["dL_dz_true_at_p"].items():
        lines.append(f"| {p} | {values['cross_entropy']:.4f} | {values['squared_error']:.4f} |")
    lines += ["", "## letters: cross-entropy vs squared error from the zero start (constant rate)", "",
              "| loss | lr | val acc, epoch 1 | val acc, last epoch | val log loss | val ECE | test acc |",
              "|---|---|---|---|---|---|---|"]
    for run in numbers["loss"]["runs"]:
        curve = run["val_accuracy_by_epoch"]
        lines.append(f"| {run['loss']} | {run['lr']:g} | {curve[0]:.4f} | {curve[-1]:.4f} | "
                     f"{run['val_log_loss']:.4f} | {run['val_ece']:.4f} | {run['test_accuracy']:.4f} |")
    lines += ["", "## softmax vs Taylor vs spherical (test split; then calibrated on the validation split)", "",
              "| data | normalizer | accuracy | mean confidence | log loss | ECE | T fitted | log loss at T "
              "| ECE at T |",
              "|---|---|---|---|---|---|---|---|---|"]
    for data, table in numbers["normalizers"].items():
        for normalizer, row in table.items():
            lines.append(f"| {data} | {normalizer} | {row['test_accuracy']:.4f} | {row['test_mean_confidence']:.4f} | "
                         f"{row['test_log_loss']:.4f} | "
                         f"{row['test_ece']:.4f} | {row['calibrated_temperature']:.3f} | "
                         f"{row['calibrated_test_log_loss']:.4f} | {row['calibrated_test_ece']:.4f} |")
    lines += ["", "## digits: weight decay", "", "| lambda | test accuracy | test log loss | ‖W‖_F |",
              "|---|---|---|---|"]
    for row in numbers["weight_decay"]["runs"]:
        lines.append(f"| {row['weight_decay']:g} | {row['test_accuracy']:.4f} | {row['test_log_loss']:.4f} | "
                     f"{row['coef_norm']:.2f} |")
    lines += ["", "## digits: two runs, other seeds and batch sizes (SVRG)", "",
              "| lambda | ‖W_a − W_b‖ / ‖W_a‖ | ‖W_a‖, ‖W_b‖ | distance to L-BFGS's optimum |", "|---|---|---|---|"]
    for decay, entry in numbers["uniqueness"].items():
        to_lbfgs = entry.get("relative_distance_to_lbfgs")
        shown = ", ".join(f"{value:.1e}" for value in to_lbfgs) if to_lbfgs else "no unique optimum"
        lines.append(f"| {decay} | {entry['relative_distance']:.1e} | "
                     f"{entry['coef_norms'][0]:.2f}, {entry['coef_norms'][1]:.2f} | {shown} |")
    growth = numbers["norm_growth"]
    milestones = list(next(iter(growth["by_weight_decay"].values()))["coef_norm_at_epoch"])
    lines += ["", f"## digits: ‖W‖_F by epoch, plain SGD at a constant rate {growth['lr']:g}", "",
              "| lambda | " + " | ".join(f"epoch {epoch}" for epoch in milestones)
              + " | ‖W*‖_F (exact optimum) | training accuracy |",
              "|---" * (len(milestones) + 3) + "|"]
    for decay, entry in growth["by_weight_decay"].items():
        cells = " | ".join(f"{value:.2f}" for value in entry["coef_norm_at_epoch"].values())
        norm = entry["optimum_coef_norm"]
        optimum = "none (grows without end)" if norm is None else f"{norm:.2f}"
        lines.append(f"| {decay} | {cells} | {optimum} | {entry['train_accuracy']:.4f} |")
    return "\n".join(lines) + "\n"


DEMOS = {"why-softmax": why_softmax}
