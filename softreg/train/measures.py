"""Full-data measures of a model during training: the objective, the validation figures,
and the checks that stop a diverging run (with a rate to suggest)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from softreg import kernels, losses, softmax
from softreg.errors import DivergedError
from softreg.train import passes
from softreg.train.data import TrainingData, center_of, data_logits
from softreg.train.rate import AUTO, auto_learning_rate
from softreg.train.settings import Settings
from softreg.train.state import EpochRecord


def evaluate_objective(
    coef: np.ndarray,
    intercept: np.ndarray,
    data: TrainingData,
    settings: Settings,
    work: kernels.Workspace | None = None,
) -> tuple[float, float]:
    """Objective J (the configured loss's mean + lambda/2 ||W||^2) and ||grad J|| over all of
    ``data`` (the intercept's gradient counts only when the intercept is fitted), in chunks of
    ``work.max_rows`` rows."""
    if work is None:
        n_classes, n_features = coef.shape
        rows = passes.full_pass_rows(data.n_samples, data.n_features, n_classes)
        work = kernels.Workspace(n_classes, n_features, rows, coef.dtype)
    if losses.is_fast_path(settings.loss, settings.normalizer, settings.temperature):
        _, objective, grad_coef, grad_intercept = passes.chunked_softmax_loss_gradient(
            coef, intercept, data.chunks(work.max_rows), data.n_samples, settings.weight_decay, work, center_of(data)
        )
    else:
        _, objective, grad_coef, grad_intercept = losses.chunked_loss_gradient(
            coef, intercept, data.chunks(work.max_rows), data.n_samples, settings.weight_decay,
            settings.loss, settings.normalizer, settings.temperature, center_of(data),
        )
    return objective, softmax.gradient_norm(grad_coef, grad_intercept if settings.fit_intercept else grad_intercept[:0])

def validation(
    coef: np.ndarray,
    intercept: np.ndarray,
    data: TrainingData,
    rows: int = 8192,
    *,
    loss: str = "cross_entropy",
    normalizer: str = "softmax",
    temperature: float = 1.0,
) -> tuple[float, float]:
    """Mean loss and accuracy over ``data`` (weighted means when it has sample weights),
    ``rows`` at a time: cross-entropy from `softmax.log_softmax` by default, else the given
    loss of `softreg.losses`, with the prediction ``argmax p`` of the given normalizer."""
    fast = losses.is_fast_path(loss, normalizer, temperature)
    loss_sum = correct = 0.0
    center = center_of(data)
    for X, y, weight in data.chunks(rows):
        logits = data_logits(coef, intercept, X, center)  # (rows, K)
        if fast:
            sample_losses = -softmax.log_softmax(logits)[np.arange(len(y)), y]
            hits = logits.argmax(axis=1) == y
        else:
            sample_losses, proba = losses.sample_losses(logits, y, loss, normalizer, temperature)
            hits = proba.argmax(axis=1) == y
        if weight is None:
            loss_sum += float(sample_losses.sum())
            correct += int(np.count_nonzero(hits))
        else:
            loss_sum += float(np.dot(weight, sample_losses))
            correct += float(np.dot(weight, hits))
    return loss_sum / data.n_samples, correct / data.n_samples

EXPLOSION_FACTOR = 1e3  # a training loss this many times the first epoch's is a divergence

def _exploded(train_loss: float, history: list[EpochRecord], n_classes: int) -> bool:
    """Whether the loss has exploded: above EXPLOSION_FACTOR times the first epoch's (or
    log K, the loss of the zero start, when that is larger). SGD that merely oscillates
    stays far below; a rate past the stability bound grows the loss geometrically."""
    reference = max(history[0].train_loss if history else 0.0, math.log(n_classes))
    return train_loss > EXPLOSION_FACTOR * reference

def resolve_learning_rate(data: TrainingData, settings: Settings) -> Settings:
    """``settings`` with ``lr="auto"`` replaced by `auto_learning_rate` of ``data`` (unchanged otherwise)."""
    if settings.lr == AUTO:
        return dataclasses.replace(settings, lr=auto_learning_rate(data, settings))
    return settings

def stable_learning_rate(data: TrainingData, weight_decay: float, momentum: float) -> float:
    """Half the heavy-ball stability bound 2 (1 + momentum) / L for this data.

    The cross-entropy's Hessian in the logits is diag(p) - pp^T, whose norm is at most 1/2,
    so J is L-smooth with L <= weight_decay + max_i ||x_i||^2 / 2.
    """
    largest = 0.0
    center = center_of(data)
    for X, _, _ in data.chunks(65536):
        squares = np.einsum("ij,ij->i", X, X) if isinstance(X, np.ndarray) else np.asarray(X.multiply(X).sum(axis=1))
        if center is not None:  # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2
            squares = squares.ravel() - 2 * np.asarray(X @ center).ravel() + float(center @ center)
        largest = max(largest, float(squares.max(initial=0.0)))
    return (1.0 + momentum) / (weight_decay + 0.5 * largest)

def diverged(epoch: int, data: TrainingData, settings: Settings) -> DivergedError:
    """DivergedError suggesting a rate that is stable for this data."""
    stable = stable_learning_rate(data, settings.weight_decay, settings.momentum)
    return DivergedError(epoch, settings.base_lr, suggested=min(settings.base_lr / 10, stable))
