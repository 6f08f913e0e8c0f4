"""What `SoftmaxRegression.fit` decides before it calls the core, as plain functions of its
parameters: the settings (checked by the config's rules), the seed, the standardizer, the class
indices and the state a warm start continues from."""

from __future__ import annotations

import dataclasses
import sys
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from softreg.config import key_spec
from softreg.config.rules import plain
from softreg.losses import SPHERICAL_START
from softreg.prepare.data import fit_standardizer, random_streams
from softreg.prepare.split import split_indices
from softreg.train import ArrayData, EpochRecord, FitResult, Settings, TrainingState
from softreg.train.settings import automatic_choices

# each parameter and the config section of the key it mirrors (same default, same rule;
# the tests check that the defaults of __init__ are the config's)
PARAMETERS = {
    "weight_decay": "model",
    "fit_intercept": "model",
    "dtype": "model",
    "loss": "model",
    "normalizer": "model",
    "temperature": "model",
    "lr": "optim",
    "batch_size": "optim",
    "epochs": "optim",
    "momentum": "optim",
    "nesterov": "optim",
    "schedule": "optim",
    "step_size": "optim",
    "gamma": "optim",
    "decay": "optim",
    "early_stopping": "optim",
    "variance_reduction": "optim",
    "full_batch": "optim",
    "tol": "optim",
}


def settings_of(
    parameters: Mapping[str, Any], validation_fraction: Any, epochs: int | None = None, has_validation: bool = False
) -> Settings:
    """The estimator's ``parameters`` (the `PARAMETERS` by name) checked by the config's rules, as
    the core's `Settings`; ``epochs`` replaces theirs (`partial_fit`'s one pass)."""
    values = {}
    for name, section in PARAMETERS.items():
        _, rule, _ = key_spec(section, name)
        try:
            values[name] = rule(parameters[name])
        except ValueError as error:
            raise ValueError(f"SoftmaxRegression: {name} {error} ({section}.{name} in a config)") from None
    fraction = plain(validation_fraction)
    if fraction is not None and not (isinstance(fraction, float | int) and 0 < fraction < 1):
        raise ValueError(f"SoftmaxRegression: validation_fraction must be in (0, 1) or None, got {fraction!r}")
    if values["normalizer"] == "spherical" and not values["fit_intercept"]:
        raise ValueError(f"SoftmaxRegression: normalizer='spherical' needs fit_intercept=True ({SPHERICAL_START})")
    stopping = values["early_stopping"]
    if stopping and not has_validation:
        raise ValueError(
            "SoftmaxRegression: early_stopping needs validation data: X_val and y_val, or validation_fraction"
        )
    # partial_fit (epochs set) sees one batch at a time: plain minibatch gradients, as a stream needs
    chosen = automatic_choices(values, sharded=epochs is not None)
    settings = Settings.from_keys({**chosen, "early_stopping": stopping})
    return settings if epochs is None else dataclasses.replace(settings, epochs=epochs)


def seed_of(random_state: Any) -> int:
    """The one seed of a fit: ``random_state``'s, or a fresh one when it is None."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    return int(random_state)


def standardizer_of(
    X: Any, standardize: Any, weight: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    """``(feature_mean_, feature_scale_)`` of the rows to fit, weighted (the CLI's `fit_standardizer`),
    or ``(None, None)`` (``standardize=False``, or ``weight`` None: a first `partial_fit`).

    X : {ndarray, sparse matrix} of shape (n_samples, n_features); weight : ndarray of shape (n_samples,)
    """
    wanted = plain(standardize)
    if not isinstance(wanted, bool):
        raise ValueError(f"SoftmaxRegression: standardize must be true or false, got {standardize!r}")
    if wanted and weight is not None:
        return fit_standardizer(X, True, sample_weight=weight)
    return None, None


def sparse_center(mean: np.ndarray | None, scale: np.ndarray | None, X: Any) -> np.ndarray | None:
    """The implicit centring (n_features,) of sparse rows standardized by a run's standardizer (None otherwise)."""
    if mean is None or scale is None or not sp.issparse(X):
        return None
    return np.asarray(mean / scale)


def warm_start_state(
    coef: Any, intercept: Any, classes: np.ndarray, n_features: int, dtype: str, seed: int
) -> TrainingState:
    """A state at epoch 0 that holds the current weights, coef (n_classes, n_features) and
    intercept (n_classes,): the next fit continues from them."""
    coef = np.asarray(coef, dtype=dtype)
    intercept = np.asarray(intercept, dtype=dtype)
    if coef.shape != (len(classes), n_features):
        raise ValueError(
            f"SoftmaxRegression: warm start from coef_ of shape {coef.shape}, but the data need "
            f"{(len(classes), n_features)}"
        )
    rng = random_streams(seed).batches
    return TrainingState(
        epoch=0, n_classes=len(classes), n_features=n_features,
        weights=np.concatenate([coef.ravel(), intercept]), velocity=[], rng_state=rng.bit_generator.state,
        history=[],
    )


def encode(classes: np.ndarray, labels: np.ndarray, what: str) -> np.ndarray:
    """Class indices (n_samples,) of ``labels`` under the sorted ``classes``; unknown labels are an error."""
    index = np.searchsorted(classes, labels)
    index = np.clip(index, 0, len(classes) - 1)
    unknown = classes[index] != labels
    if np.any(unknown):
        shown = ", ".join(repr(label) for label in np.unique(labels[unknown])[:10])
        raise ValueError(f"SoftmaxRegression: {what} has labels that are not in classes_: {shown}")
    return index.astype(np.int64)


def training_parts(
    X: Any, y: np.ndarray, weight: np.ndarray, center: np.ndarray | None,
    validation: tuple[Any, np.ndarray] | None, fraction: float | None = None,
    split_rng: np.random.Generator | None = None,
) -> tuple[ArrayData, ArrayData | None]:
    """The training part and the validation part (None without validation data): the given
    ``validation`` (standardized X_val, class indices), else a stratified ``fraction`` of the rows.

    X : {ndarray, sparse matrix} of shape (n_samples, n_features), standardized; y, weight : (n_samples,)
    """
    if validation is not None:
        return ArrayData(X, y, weight, center), ArrayData(validation[0], validation[1], center=center)
    if fraction is None or split_rng is None:
        return ArrayData(X, y, weight, center), None
    kept, held = split_indices(len(y), fraction, y, "random", True, split_rng)
    return ArrayData(X[kept], y[kept], weight[kept], center), ArrayData(X[held], y[held], weight[held], center)


def print_epoch(record: EpochRecord, total: int) -> None:
    """``verbose``: the epoch line of ``softreg train`` on stderr."""
    from softreg.run.progress import epoch_line

    print(epoch_line(record, total), file=sys.stderr, flush=True)


def warn_if_not_converged(result: FitResult, tol: float | None) -> None:
    """A `ConvergenceWarning` (shown at the caller of `fit`) for a fit that a certificate could have
    stopped at ``tol`` but ended above it; none when early stopping ended it or no bound exists."""
    if tol is None or not result.certifiable or result.converged or result.stopped_early:
        return
    bound = "no finite bound" if result.gap_bound is None else f"a bound of {result.gap_bound:.2e}"
    warnings.warn(
        f"SoftmaxRegression did not converge: the relative gap has {bound} after {len(result.history)} epochs "
        f"(tol={tol:g}); raise epochs",
        ConvergenceWarning,
        stacklevel=4,
    )
