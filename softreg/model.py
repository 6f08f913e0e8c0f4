"""A trained model and what it needs to read raw features: no I/O (`softreg.rundir`
writes and reads it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import DTypeLike

from softreg import losses, softmax
from softreg.errors import DataError, warn
from softreg.io.dataset import shown_names
from softreg.kernels import Matrix
from softreg.prepare.columns import Columns


def standardize(X: Matrix, mean: np.ndarray, scale: np.ndarray, dtype: DTypeLike = np.float64) -> Matrix:
    """``(X - mean) / scale`` in ``dtype``; X (n_samples, n_features), mean and scale (n_features,).

    Sparse X is only scaled (``X / scale``) and stays CSR.
    """
    if sp.issparse(X):
        return (sp.csr_matrix(X) @ sp.diags(1.0 / scale)).astype(dtype).tocsr()
    out = np.subtract(X, mean, dtype=dtype)
    out /= scale.astype(dtype)
    return out


def raw_logits(
    coef: np.ndarray, intercept: np.ndarray, mean: np.ndarray, scale: np.ndarray, X_raw: Matrix
) -> np.ndarray:
    """Logits of raw features under a standardizer: ``((X - mean)/scale) coef^T + intercept``,
    shape (n_samples, n_classes); CSR ``X`` stays sparse, its centring folded into the intercept."""
    X = standardize(X_raw, mean, scale, coef.dtype)
    if sp.issparse(X) and np.any(mean):
        intercept = intercept - coef @ (mean / scale).astype(coef.dtype)
    return softmax.decision_function(coef, intercept, X)


@dataclass
class Model:
    """A trained softmax regression with its standardizer.

    coef : ndarray of shape (n_classes, n_features), in standardized feature space
    intercept : ndarray of shape (n_classes,)
    classes : ndarray of shape (n_classes,), the labels in the model's order
    feature_mean, feature_scale : ndarray of shape (n_features,), the standardizer
    feature_names : list of str, length n_features
    loss, normalizer, temperature : the output the model was trained with (`softreg.losses`);
        predictions use its normalizer at its temperature
    """

    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    feature_names: list[str] = field(default_factory=list)
    label_name: str = "label"
    dtype: str = "float64"
    loss: str = "cross_entropy"
    normalizer: str = "softmax"
    temperature: float = 1.0

    @property
    def is_softmax(self) -> bool:
        """Whether predictions are the plain softmax of the logits (softmax at T = 1)."""
        return self.normalizer == "softmax" and self.temperature == 1.0

    columns: Columns | None = None  # how raw input columns become the features (None: they are the features)
    header: bool | None = None  # whether the delimited training file had a header row (None: not text)
    id_name: str | None = None  # the training file's row-id column, copied to predictions
    file_columns: list[str] | None = None  # every column of the delimited training file, in order
    scaling: list[str] | None = None  # how each feature was scaled (`softreg.prepare.scaling`; None: not recorded)
    by_position: bool = False  # fitted without feature names (an array): files are read by position

    def input_positions(self, header: Sequence[str], where: str) -> list[int]:
        """Indices of the model's input columns among a file's columns ``header``.

        By name; by position when the model was trained without a header or the file has
        none (``col0, col1, ...``): a file with exactly the input columns, or laid out like
        the training file (its id column included, its label column included or not).
        """
        names = self.input_names
        if self.by_position:
            return self._positions(len(header), where)
        if self._unnamed(header):
            if len(header) == len(names):
                return list(range(len(names)))
            layout = self._training_layout(len(header))
            if layout is not None:
                return [layout.index(name) for name in names]
            if self.header is False or not set(names) <= set(header):
                expected = f"{len(names)}" + (
                    f" (or the training file's {len(self.file_columns)})" if self.file_columns is not None else ""
                )
                raise DataError(
                    f"{where}: has {len(header)} columns without names; the model reads {expected} by position"
                )
        position = {name: index for index, name in enumerate(header)}
        missing = [name for name in names if name not in position]
        if missing:
            raise DataError(f"{where}: missing feature column(s) {shown_names(missing)} that the model needs")
        return [position[name] for name in names]

    def _positions(self, n_columns: int, where: str) -> list[int]:
        """The input columns of a model fitted without feature names: the first n_features of
        a file with n_features columns, or n_features + 1 whose last (a label) is not read."""
        n_features = len(self.input_names)
        if n_columns not in (n_features, n_features + 1):
            raise DataError(f"{where}: has {n_columns} feature columns; the model, fitted without feature "
                            f"names, reads {n_features} by position")
        ignored = " (the last column, a label, is not read)" if n_columns > n_features else ""
        warn(f"{where}: the model was fitted without feature names (an array): its {n_features} feature "
             f"columns are read by position{ignored}")
        return list(range(n_features))

    def id_position(self, header: Sequence[str]) -> int | None:
        """Index of the model's id column among a file's columns ``header`` (by position where
        `input_positions` reads by position), or None when the file has none."""
        if self.id_name is None:
            return None
        if self._unnamed(header):  # only a file laid out like the training file carries it
            layout = self._training_layout(len(header)) if len(header) != len(self.input_names) else None
            return layout.index(self.id_name) if layout is not None and self.id_name in layout else None
        return list(header).index(self.id_name) if self.id_name in header else None

    def _unnamed(self, header: Sequence[str]) -> bool:
        return self.header is False or list(header) == [f"col{index}" for index in range(len(header))]

    def _training_layout(self, n_columns: int) -> list[str] | None:
        """The training file's columns, or those less the label, when ``n_columns`` long."""
        if self.file_columns is None:
            return None
        for layout in (self.file_columns, [name for name in self.file_columns if name != self.label_name]):
            if len(layout) == n_columns:
                return list(layout)
        return None

    @property
    def input_names(self) -> list[str]:
        """The raw input columns a file needs (before one-hot encoding)."""
        return self.columns.names if self.columns is not None else list(self.feature_names)

    def input_json(self) -> dict[str, Any]:
        """What model.json keeps of the input format (see `softreg.rundir.save_model`)."""
        return {
            "columns": None if self.columns is None else self.columns.to_json(),
            "header": self.header,
            "id": self.id_name,
            "file_columns": self.file_columns,
            "by_position": self.by_position,
        }

    @property
    def n_features(self) -> int:
        return int(self.coef.shape[1])

    @property
    def n_classes(self) -> int:
        return int(self.coef.shape[0])

    def standardize(self, X_raw: Matrix) -> Matrix:
        """Raw features (n_samples, n_features) in the space the coefficients live in."""
        return standardize(X_raw, self.feature_mean, self.feature_scale, self.coef.dtype)

    def check_finite_standardized(
        self, X_raw: Matrix, where: str, lines: Sequence[int] | None = None, first_row: int = 0
    ) -> None:
        """Refuse rows whose standardized values overflow (e.g. 1.7e308 minus a mean), naming the first
        such row (its file line, else its row number: ``X_raw`` starts after ``first_row`` rows) and
        column: a NaN probability is never an answer."""
        X = X_raw if isinstance(X_raw, np.ndarray) else None
        if X is None:
            return  # sparse values are only scaled: finite stays finite unless the scale is tiny
        with np.errstate(over="ignore", invalid="ignore"):
            bad = ~np.isfinite((X - self.feature_mean) / self.feature_scale)
        if bad.any():
            row, column = (int(index) for index in np.argwhere(bad)[0])
            place = f"line {lines[row]}" if lines is not None else f"row {first_row + row + 1}"
            raise DataError(
                f"{where}: {place}, column {self.feature_names[column]!r}: {X[row, column]:g} is too large to "
                "standardize with the model's mean and scale (the result overflows)"
            )

    def decision_function(self, X_raw: Matrix) -> np.ndarray:
        """Logits (n_samples, n_classes) for raw features (n_samples, n_features), dense or CSR.

        Sparse input is scaled, not centred (it stays sparse): the centring folds into the
        intercept exactly, ``(X - mu)/s W^T + b = (X/s) W^T + (b - W mu/s)``.
        """
        return raw_logits(self.coef, self.intercept, self.feature_mean, self.feature_scale, X_raw)

    def proba_of_logits(self, logits: np.ndarray) -> np.ndarray:
        """The model's own map from logits (n_samples, n_classes) to probabilities: its
        normalizer at its temperature (`softreg.losses.proba`), the plain softmax at T = 1."""
        return softmax.softmax(logits) if self.is_softmax else losses.proba(logits, self.normalizer, self.temperature)

    def predict_proba(self, X_raw: Matrix) -> np.ndarray:
        """Probabilities (n_samples, n_classes) for raw (unstandardized) features (n_samples, n_features)."""
        return self.proba_of_logits(self.decision_function(X_raw))

    def predict_proba_standardized(self, X: Matrix, center: np.ndarray | None = None) -> np.ndarray:
        """Probabilities (n_samples, n_classes) for features already standardized: the rows
        ``X - center`` when ``center`` (n_features,) is given (sparse rows stored scaled, not centred)."""
        intercept = softmax.centred_intercept(self.coef, self.intercept, center)
        return self.proba_of_logits(softmax.decision_function(self.coef, intercept, X))

    def predict(self, X_raw: Matrix) -> np.ndarray:
        """The most probable class label of each row, shape (n_samples,)."""
        logits = self.decision_function(X_raw)
        if not self.is_softmax:  # taylor and spherical: argmax p is not argmax z
            return np.asarray(self.classes)[self.proba_of_logits(logits).argmax(axis=1)]
        return np.asarray(self.classes)[logits.argmax(axis=1)]
