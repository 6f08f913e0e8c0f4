"""The demo's parts computed with the training core directly: the true-class gradient, one optimum
for lambda > 0, and the growth of the weights' norm."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from softreg import losses
from softreg.commands.demo.scale import NORM_DECAYS, NORM_RATE, UNIQUE_DECAY, Scale
from softreg.config import load_config
from softreg.prepare.data import prepare, random_streams
from softreg.solve import exact_optimum
from softreg.train import Settings, TrainingState, fit


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
