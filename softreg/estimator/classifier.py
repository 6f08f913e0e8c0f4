"""`SoftmaxRegression`: the trainer of ``softreg train`` as a scikit-learn classifier.

It calls the same core, `softreg.train.fit`, with the same settings (its parameters are
the config's ``model`` and ``optim`` keys, with the same defaults and rules), so it drops
into Pipelines, cross-validation and grid search while staying bit-identical to the
command line for the same data and seed. Like the command line it standardizes the features
(``standardize=True``: each column's mean and scale, learnt in `fit`, kept as ``feature_mean_``
and ``feature_scale_``, applied in every prediction and saved by `save_run`), so that
``SoftmaxRegression()`` on raw features minimizes LogisticRegression's objective on scaled ones.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, validate_data

from softreg.estimator.fitting import (
    PARAMETERS,
    encode,
    print_epoch,
    seed_of,
    settings_of,
    sparse_center,
    standardizer_of,
    training_parts,
    warm_start_state,
    warn_if_not_converged,
)
from softreg.estimator.predicting import SoftmaxPredictions
from softreg.model import standardize
from softreg.prepare.data import random_streams
from softreg.train import AUTO, Settings, fit


class SoftmaxRegression(SoftmaxPredictions, BaseEstimator):
    """Multinomial logistic (softmax) regression with weight decay, by minibatch SGD.

    Minimizes ``J(W, b) = sum_i s_i (-log p_{y_i}(x_i)) / sum_i s_i + weight_decay / 2 ||W||_F^2``
    (``s`` the sample weights, 1 by default; the intercept is not decayed) with the
    trainer of ``softreg train``; ``loss``, ``normalizer`` and ``temperature`` replace
    ``-log p`` and ``p = softmax(z)`` by the alternatives of `softreg.losses`.

    Parameters
    ----------
    weight_decay : float, default=1e-4
        lambda >= 0 (``model.weight_decay``).
    fit_intercept : bool, default=True
    dtype : {"float64", "float32"}, default="float64"
        Precision of training and of ``coef_``.
    loss : {"cross_entropy", "squared_error"}, default="cross_entropy"
        ``-log p_y``, or ``sum_k (p_k - [k = y])^2`` (``model.loss``).
    normalizer : {"softmax", "taylor", "spherical"}, default="softmax"
        The map from logits to probabilities (``model.normalizer``); `predict_proba` uses it.
    temperature : float, default=1.0
        T > 0 in ``p = normalizer(z / T)`` (``model.temperature``).
    lr : float or "auto", default="auto"
        Base learning rate (``optim.lr``), > 0; "auto" chooses it from the training data's
        curvature, the batch size and the momentum when `fit` starts (``learning_rate_``).
    batch_size : int, default=64
    epochs : int or "auto", default="auto"
        The most epochs (``optim.epochs``; a fit stops earlier at ``tol``): "auto" is 1000 where
        a certificate can stop the fit, else 20.
    momentum : float, default=0.9
        Heavy-ball momentum in [0, 1).
    nesterov : bool, default=False
    schedule : {"constant", "step", "cosine", "inverse_time"}, default="constant"
    step_size, gamma : schedule="step" parameters (epochs between decays, decay factor).
    decay : float, default=1.0
        schedule="inverse_time": ``lr / (1 + decay * epoch)``.
    early_stopping : bool or dict or None, default=None
        ``{"patience": 5, "min_delta": 0.0}`` (``True`` for those defaults) stops when the
        validation loss has not improved for ``patience`` epochs and restores the best
        weights, as the config's ``optim.early_stopping``. It needs validation data:
        ``X_val, y_val`` in `fit`, or ``validation_fraction``. None or False: off (the
        validation loss and accuracy are still logged when there are validation data).
    variance_reduction : {"auto", "svrg", "none"}, default="auto"
        "auto" is "svrg" for `fit` and "none" for `partial_fit`, whose batches come one at a time.
    full_batch : {"auto", "never"}, default="auto"
        "auto": SVRG hands over to full-batch Barzilai-Borwein steps once it slows (``optim.full_batch``).
    standardize : bool, default=True
        Learn each feature's mean and scale in `fit` (constant columns get scale 1; sparse
        columns are centred implicitly, the matrix stays sparse) and train and predict on the
        standardized features, as ``data.standardize`` does; False trains on X as given.
        `partial_fit` sees one batch at a time and learns none: it keeps a standardizer that
        `fit` learnt, and otherwise trains on X as given.
    tol : float or None, default=1e-4
        Stop at the first epoch whose certified relative gap (J - J*) / J* is <= tol
        (``optim.tol``); ``epochs`` is then the most. A fit that ends above it emits
        scikit-learn's ``ConvergenceWarning``. None: run all ``epochs``.
    validation_fraction : float or None, default=None
        Hold out this stratified fraction of the training rows for validation (as the
        config's ``data.val``) when ``X_val`` is not given.
    class_weight : dict, "balanced" or None, default=None
        Multiplies the sample weights per class, as in scikit-learn.
    warm_start : bool, default=False
        `fit` continues from the current weights instead of from zero.
    verbose : int, default=0
        1 prints one ``epoch N/E ...`` line per epoch on stderr.
    random_state : int or None, default=None
        Seeds the batch order and the validation split, exactly as the config's ``seed``
        does (None draws a fresh seed).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (n_classes, n_features)
    intercept_ : ndarray of shape (n_classes,)
    history_ : list of dict, one per epoch (the columns of ``history.csv``)
    n_iter_ : int, the epochs run
    converged_ : bool, whether the certified relative gap is <= tol (1e-4 when tol is None)
    gap_bound_ : float or None, the certified bound on (J - J*) / J* of the fitted model
        (None at weight_decay 0 or for losses other than cross_entropy)
    learning_rate_ : float, the base rate used (the number "auto" chose); `partial_fit` and
        ``warm_start`` keep it
    n_features_in_ : int
    feature_mean_, feature_scale_ : ndarray of shape (n_features,) or None
        The standardizer applied before the model: learnt by `fit` (``standardize=True``) or a
        run's saved one (`load_run`); None when ``standardize=False``.
    """

    learning_rate_: float  # set by fit
    feature_mean_: np.ndarray | None  # (n_features,), set by fit: None without a standardizer
    feature_scale_: np.ndarray | None

    def __init__(
        self,
        weight_decay: float = 1e-4,
        fit_intercept: bool = True,
        dtype: str = "float64",
        loss: str = "cross_entropy",
        normalizer: str = "softmax",
        temperature: float = 1.0,
        lr: float | str = "auto",
        batch_size: int = 64,
        epochs: int | str = "auto",
        momentum: float = 0.9,
        nesterov: bool = False,
        schedule: str = "constant",
        step_size: int = 10,
        gamma: float = 0.1,
        decay: float = 1.0,
        early_stopping: bool | dict | None = None,
        variance_reduction: str = "auto",
        full_batch: str = "auto",
        standardize: bool = True,
        tol: float | None = 1e-4,
        validation_fraction: float | None = None,
        class_weight: dict | str | None = None,
        warm_start: bool = False,
        verbose: int = 0,
        random_state: int | None = None,
    ):
        self.weight_decay = weight_decay
        self.fit_intercept = fit_intercept
        self.dtype = dtype
        self.loss = loss
        self.normalizer = normalizer
        self.temperature = temperature
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.momentum = momentum
        self.nesterov = nesterov
        self.schedule = schedule
        self.step_size = step_size
        self.gamma = gamma
        self.decay = decay
        self.early_stopping = early_stopping
        self.variance_reduction = variance_reduction
        self.full_batch = full_batch
        self.standardize = standardize
        self.tol = tol
        self.validation_fraction = validation_fraction
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.verbose = verbose
        self.random_state = random_state

    # -- fitting

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        X_val: Any = None,
        y_val: Any = None,
    ) -> SoftmaxRegression:
        """Train by minibatch SGD.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), labels of any type
        sample_weight : array-like of shape (n_samples,) or None
            Enters the objective as a weighted mean: weight 2 counts a row twice.
        X_val, y_val : validation data for the logged validation loss and early stopping.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, X_val, y_val, epochs=None, classes=None)

    def partial_fit(self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None) -> SoftmaxRegression:
        """One pass of minibatch SGD over ``(X, y)``, continuing from the current weights.

        ``classes`` (all labels the stream will contain) is required on the first call.
        """
        first = not hasattr(self, "classes_")
        if first and classes is None:
            raise ValueError("SoftmaxRegression.partial_fit: classes must be given on the first call")
        return self._fit(X, y, sample_weight, None, None, epochs=1, classes=None if not first else classes)

    def _fit(self, X, y, sample_weight, X_val, y_val, epochs, classes):
        has_validation = X_val is not None or y_val is not None or self.validation_fraction is not None
        settings = self._settings(epochs, has_validation)
        continuing = epochs is not None or self.warm_start
        fitted = hasattr(self, "coef_")
        X, y = validate_data(
            self, X, y, accept_sparse="csr", dtype=np.dtype(self.dtype), reset=not (continuing and fitted)
        )
        check_classification_targets(y)
        if classes is not None:
            self.classes_ = np.unique(np.asarray(classes))
        elif not (continuing and fitted):
            self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(
                f"SoftmaxRegression needs at least two classes; y has one class: {self.classes_[0]!r}"
            )
        y_index = encode(self.classes_, y, "y")
        weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if self.class_weight is not None:
            weight = weight * compute_sample_weight(self.class_weight, y)
        if not (continuing and fitted):  # partial_fit (epochs set) sees one batch: it learns no standardizer
            weighted = weight if epochs is None else None  # weighted as the loss counts rows
            self.feature_mean_, self.feature_scale_ = standardizer_of(X, self.standardize, weighted)
        if not np.any(weight > 0):
            raise ValueError("SoftmaxRegression: the sample weights are all zero; at least one must be positive")
        streams = random_streams(seed_of(self.random_state))
        train, val = self._parts(self._standardized(X), y_index, weight, X_val, y_val, streams.split)
        start = None
        if continuing and fitted:
            seed = seed_of(self.random_state)
            start = warm_start_state(self.coef_, self.intercept_, self.classes_, train.n_features, self.dtype, seed)
        if start is not None and settings.lr == AUTO and hasattr(self, "learning_rate_"):
            settings = dataclasses.replace(settings, lr=self.learning_rate_)  # one rate for the whole stream
        on_epoch = print_epoch if self.verbose else None
        result = fit(train, len(self.classes_), settings, streams.batches, val=val, start=start, on_epoch=on_epoch)
        self.coef_, self.intercept_ = result.coef, result.intercept
        self.learning_rate_ = result.lr
        self.history_ = [dataclasses.asdict(record) for record in result.history]
        self.n_iter_ = len(result.history)
        self.stopped_early_ = result.stopped_early
        self.objective_ = result.objective
        self.converged_, self.gap_bound_ = result.converged, result.gap_bound
        if epochs is None:  # partial_fit's single passes are not asked to converge
            warn_if_not_converged(result, settings.tol)
        if not hasattr(self, "feature_mean_"):
            self.feature_mean_ = self.feature_scale_ = None
        return self

    def _settings(self, epochs: int | None = None, has_validation: bool = False) -> Settings:
        """The parameters checked by the config's rules, as the core's `Settings`."""
        parameters = {name: getattr(self, name) for name in PARAMETERS}
        return settings_of(parameters, self.validation_fraction, epochs, has_validation)

    def _parts(self, X, y, weight, X_val, y_val, split_rng):
        """The training part and the validation part (None without validation data)."""
        validation = None
        if X_val is not None or y_val is not None:
            if X_val is None or y_val is None:
                raise ValueError("SoftmaxRegression: give both X_val and y_val, or neither")
            X_val = self._standardized(validate_data(self, X_val, accept_sparse="csr", dtype=X.dtype, reset=False))
            validation = (X_val, encode(self.classes_, np.asarray(y_val), "y_val"))
        return training_parts(X, y, weight, self._center(X), validation, self.validation_fraction, split_rng)

    def _center(self, X: Any) -> np.ndarray | None:
        return sparse_center(getattr(self, "feature_mean_", None), getattr(self, "feature_scale_", None), X)

    def _standardized(self, X: Any) -> Any:
        mean, scale = getattr(self, "feature_mean_", None), getattr(self, "feature_scale_", None)
        if mean is None or scale is None:
            return X
        return standardize(X, mean, scale, np.dtype(self.dtype))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_class = True
        return tags

    # -- run directories

    def save_run(self, path: str | Path, force: bool = False) -> Path:
        """Write a run directory (config.yaml, model.npz, model.json, history.csv, metrics.json)
        that ``softreg evaluate --data``, ``predict`` and ``report`` accept. Existing ``path`` is
        refused unless ``force`` (and then replaced only if softreg wrote it)."""
        from softreg.estimator.saving import save_run

        return save_run(self, path, force)

    def to_onnx(self, path: str | Path, dtype: str | None = None, force: bool = False) -> Path:
        """Write the fitted model as an ONNX graph (needs ``softreg[onnx]``): input ``X`` of shape
        (N, n_features), outputs ``label`` (N,) and ``probabilities`` (N, n_classes), those of
        `predict` and `predict_proba`. ``dtype`` (float64 or float32) defaults to the model's;
        an existing ``path`` is refused unless ``force``. See `softreg.export`."""
        from softreg.export import export_estimator

        return export_estimator(self, path, dtype, force).path

