"""Metrics of predicted probabilities: accuracy, balanced accuracy, log loss, Brier score,
top-k accuracy, per-class precision/recall/F1, the confusion matrix, and the expected
calibration error with its reliability bins.

Every metric is a function of sufficient statistics that add up chunk by chunk
(`MetricSums`): counts (the confusion matrix, top-k hits, rows per calibration bin) and sums
of floats (per-sample log loss and squared error, confidence per bin) kept exactly
(`ExactSums`) and rounded once when read. So the metrics of data streamed in chunks of
any size are those of the data in one piece, bit for bit. Each metric is scikit-learn's
definition (tests/test_evaluate.py checks them against it): the counts give its values
exactly, and the means of log loss and Brier score are correctly rounded where
scikit-learn's pairwise sums may differ in the last bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    from softreg.kernels import Matrix
    from softreg.model import Model

N_BINS = 15

_MANTISSA_BITS = 53
_LOW_BITS = 26  # a mantissa splits into a high part below 2**27 and a low part below 2**26
# a float64 is m * 2**(e - 53) with |m| < 2**53 and -1073 <= e <= 1024 (np.frexp's exponent);
# shifting by e - 53 + _OFFSET >= 0 makes every value an integer multiple of 2**-_OFFSET
_OFFSET = 1074 + _MANTISSA_BITS - 1
_SHIFTS = 1024 - _MANTISSA_BITS + _OFFSET + 1
_CHUNK = 1 << 24  # values added at a time: their float64 bin sums of 27-bit parts stay exact


class ExactSums:
    """Sums of float64 values in ``n_groups`` groups, exact whatever the order and the chunking
    of the values, and rounded once, correctly, when read.

    Each value is split into its exponent and two integer halves of its mantissa; per group
    and exponent the halves add up exactly (as integers), and the total is assembled as a
    Python integer scaled by 2**1126 when read.
    """

    def __init__(self, n_groups: int) -> None:
        self.n_groups = n_groups
        self._high = np.zeros(n_groups * _SHIFTS, dtype=np.int64)
        self._low = np.zeros(n_groups * _SHIFTS, dtype=np.int64)

    def add(self, values: ArrayLike, groups: ArrayLike | int = 0) -> None:
        """Add finite ``values`` (n,) to the groups ``groups`` (n,) (one group for all when an int)."""
        values = np.asarray(values, dtype=np.float64).ravel()
        if not np.isfinite(values).all():
            raise ValueError("ExactSums adds finite values only")
        groups = np.broadcast_to(np.asarray(groups, dtype=np.int64), values.shape)
        for start in range(0, values.size, _CHUNK):
            self._add(values[start:start + _CHUNK], groups[start:start + _CHUNK])

    def _add(self, values: np.ndarray, groups: np.ndarray) -> None:
        fraction, exponent = np.frexp(values)
        mantissa = np.ldexp(fraction, _MANTISSA_BITS).astype(np.int64)  # exact: 53 significant bits
        high = mantissa >> _LOW_BITS  # floor: mantissa == high * 2**26 + low with 0 <= low < 2**26
        low = mantissa - (high << _LOW_BITS)
        index = groups * _SHIFTS + (exponent.astype(np.int64) - _MANTISSA_BITS + _OFFSET)
        size = self._high.size
        # float64 sums of at most 2**24 integers below 2**27 stay below 2**53: exact
        self._high += np.bincount(index, weights=high, minlength=size).astype(np.int64)
        self._low += np.bincount(index, weights=low, minlength=size).astype(np.int64)

    def total(self, group: int = 0) -> int:
        """The exact sum of ``group`` times 2**1126, as a Python integer."""
        span = slice(group * _SHIFTS, (group + 1) * _SHIFTS)
        high, low = self._high[span], self._low[span]
        return sum(
            ((int(high[shift]) << _LOW_BITS) + int(low[shift])) << shift
            for shift in np.flatnonzero(high | low).tolist()
        )

    def merge(self, other: ExactSums) -> None:
        """Add ``other``'s sums (of the same groups): exact, so the order of merging does not matter."""
        self._high += other._high
        self._low += other._low

    def mean(self, group: int, count: int) -> float:
        """The group's sum divided by ``count``, correctly rounded (Python's integer division is)."""
        return self.total(group) / (count << _OFFSET)

    def sum(self, group: int = 0) -> float:
        return self.total(group) / (1 << _OFFSET)


_LOG_LOSS, _BRIER, _CONFIDENCE = 0, 1, 2  # ExactSums groups: per-sample log loss, squared error, then one per bin


class MetricSums:
    """What `classification_metrics` needs, added chunk by chunk in bounded memory.

    ``add(y, proba)`` takes class indices (n,) and probabilities (n, n_classes) of one chunk;
    ``metrics(classes)`` and ``reliability()`` read the totals. The result depends on the
    rows only, not on how they were cut into chunks.
    """

    def __init__(self, n_classes: int, n_bins: int = N_BINS) -> None:
        self.n_classes, self.n_bins = n_classes, n_bins
        self.n_samples = 0
        self.confusion = np.zeros((n_classes, n_classes), dtype=np.int64)  # rows true, columns predicted
        self.top_k_hits = np.zeros(n_classes + 1, dtype=np.int64)  # [k]: rows whose class is among the top k
        self.bin_count = np.zeros(n_bins, dtype=np.int64)
        self.bin_correct = np.zeros(n_bins, dtype=np.int64)
        self.sums = ExactSums(_CONFIDENCE + n_bins)

    def add(self, y: np.ndarray, proba: NDArray[np.floating]) -> MetricSums:
        """Add a chunk: ``y`` (n,) class indices, ``proba`` (n, n_classes). Returns self."""
        y = np.asarray(y, dtype=np.int64)
        n, n_classes = len(y), self.n_classes
        if n == 0:
            return self
        rows = np.arange(n)
        predicted = proba.argmax(axis=1)
        self.n_samples += n
        self.confusion += np.bincount(y * n_classes + predicted, minlength=n_classes**2).reshape(n_classes, -1)
        # scikit-learn's order of the top k: a stable sort reversed, so that the later of tied classes ranks first
        ranked = np.argsort(proba, axis=1, kind="mergesort")[:, ::-1]
        rank = np.argmax(ranked == y[:, None], axis=1)  # 0 for the top class
        self.top_k_hits += np.cumsum(np.bincount(rank + 1, minlength=n_classes + 1))
        # per-sample log loss as scikit-learn has it: -log p_y, p clipped to [eps, 1 - eps] of its dtype
        eps = float(np.finfo(proba.dtype).eps) if np.issubdtype(proba.dtype, np.floating) else 2.0**-52
        self.sums.add(-np.log(np.clip(proba[rows, y], eps, 1 - eps)), _LOG_LOSS)
        residual = np.array(proba, dtype=np.float64)
        residual[rows, y] -= 1.0
        self.sums.add((residual**2).sum(axis=1), _BRIER)
        confidence = proba.max(axis=1)
        edges = np.linspace(0.0, 1.0, self.n_bins + 1)
        # bins are (lo, hi]; a confidence of exactly 0 cannot occur for a probability vector's max
        index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, self.n_bins - 1)
        self.bin_count += np.bincount(index, minlength=self.n_bins)
        self.bin_correct += np.bincount(index[predicted == y], minlength=self.n_bins)
        self.sums.add(confidence, _CONFIDENCE + index)
        return self

    def merge(self, other: MetricSums) -> MetricSums:
        """Add the rows ``other`` counted (another part of the same data, e.g. a shard's). Returns self."""
        self.n_samples += other.n_samples
        self.confusion += other.confusion
        self.top_k_hits += other.top_k_hits
        self.bin_count += other.bin_count
        self.bin_correct += other.bin_correct
        self.sums.merge(other.sums)
        return self

    def reliability(self) -> dict[str, np.ndarray]:
        """`reliability_bins` of the rows added."""
        count = self.bin_count
        confidence = np.array([self.sums.mean(_CONFIDENCE + b, int(c)) if c else np.nan for b, c in enumerate(count)])
        with np.errstate(invalid="ignore", divide="ignore"):
            accuracy = self.bin_correct / count
        return {"edges": np.linspace(0.0, 1.0, self.n_bins + 1), "count": count.copy(), "accuracy": accuracy,
                "confidence": confidence}

    def expected_calibration_error(self) -> float:
        bins = self.reliability()
        filled = bins["count"] > 0
        gaps = np.abs(bins["accuracy"][filled] - bins["confidence"][filled])
        return float(np.sum(bins["count"][filled] * gaps) / self.n_samples)

    def metrics(self, classes: Sequence[Any] | np.ndarray) -> dict[str, Any]:
        """The metrics of `classification_metrics` over every row added."""
        n, n_classes = self.n_samples, self.n_classes
        confusion = self.confusion
        hits = np.diag(confusion)
        support, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):  # zero_division=0, as scikit-learn's option
            precision = np.where(predicted > 0, hits / predicted, 0.0)
            recall = np.where(support > 0, hits / support, 0.0)
            f1 = np.where(support + predicted > 0, 2.0 * hits / (support + predicted), 0.0)
        present = (support > 0) | (predicted > 0)  # the macro averages run over classes in y or predicted
        return {
            "n_samples": int(n),
            "classes": [str(label) for label in classes],
            "accuracy": float(hits.sum() / n),
            "balanced_accuracy": float(np.mean(recall[support > 0])),
            "log_loss": self.sums.mean(_LOG_LOSS, n),
            # scikit-learn halves the multiclass sum for two classes: the binary Brier score
            "brier_score": self.sums.mean(_BRIER, n) * (0.5 if n_classes == 2 else 1.0),
            "top_k_accuracy": {str(k): float(self.top_k_hits[k] / n) for k in range(2, min(n_classes - 1, 5) + 1)},
            "ece": self.expected_calibration_error(),
            "macro_precision": float(np.mean(precision[present])),
            "macro_recall": float(np.mean(recall[present])),
            "macro_f1": float(np.mean(f1[present])),
            "per_class": {
                str(label): {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                for label, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
            },
            "confusion_matrix": confusion.tolist(),
        }


ChunkCallback = Callable[["Matrix", np.ndarray, np.ndarray], None]  # (X, y, proba) of each chunk


def model_metrics(
    model: Model,
    chunks: Iterable[tuple[Matrix, np.ndarray]],
    *,
    standardized: bool = False,
    center: np.ndarray | None = None,
    on_chunk: ChunkCallback | None = None,
) -> MetricSums:
    """The metric sums of a model on labelled rows, from the model's own prediction: the one
    path by which ``train``, ``evaluate``, ``sweep`` and the estimator's ``score`` measure a
    model, so that a normalizer or a temperature (`Model.proba_of_logits`) is never left out.

    Parameters
    ----------
    model : the `softreg.model.Model` (its normalizer and temperature give the probabilities;
        the loss it was trained with does not change them)
    chunks : pairs ``(X, y)``: features (n, n_features), raw unless ``standardized``, and
        class indices (n,)
    standardized : whether X is already in the model's standardized space (rows ``X - center``)
    on_chunk : called with ``(X, y, proba)`` of every chunk, proba (n, n_classes)

    Returns
    -------
    `MetricSums` over every row; ``.metrics(model.classes)`` is ``metrics.json``'s content.
    """
    sums = MetricSums(model.n_classes)
    for X, y in chunks:
        proba = model.predict_proba_standardized(X, center) if standardized else model.predict_proba(X)
        sums.add(y, proba)
        if on_chunk is not None:
            on_chunk(X, y, proba)
    return sums


def reliability_bins(y: np.ndarray, proba: NDArray[np.float64], n_bins: int = N_BINS) -> dict[str, np.ndarray]:
    """Equal-width bins of the top-class probability.

    Parameters
    ----------
    y : ndarray of shape (n_samples,), class indices
    proba : ndarray of shape (n_samples, n_classes)

    Returns
    -------
    dict with ``edges`` (n_bins + 1,), ``count``, ``accuracy``, ``confidence`` (n_bins,);
    accuracy and confidence are NaN in empty bins.
    """
    return MetricSums(proba.shape[1], n_bins).add(y, proba).reliability()


def expected_calibration_error(y: np.ndarray, proba: NDArray[np.float64], n_bins: int = N_BINS) -> float:
    """ECE = sum_b (n_b / n) |accuracy_b - confidence_b| over equal-width bins of the top-class probability."""
    return MetricSums(proba.shape[1], n_bins).add(y, proba).expected_calibration_error()


def classification_metrics(
    y: np.ndarray, proba: NDArray[np.float64], classes: Sequence[Any] | np.ndarray
) -> dict[str, Any]:
    """All metrics of ``metrics.json`` for class indices ``y`` (n,) and ``proba`` (n, K).

    Classes the data lack get zero support in ``per_class``; the macro averages and
    balanced accuracy run over the classes present in ``y`` or predicted (balanced accuracy:
    in ``y``), as scikit-learn's do. The same as `MetricSums` over any chunks of the rows.
    """
    return MetricSums(len(classes)).add(y, proba).metrics(classes)


def most_confused(
    confusion: ArrayLike, classes: Sequence[Any] | np.ndarray, top: int = 10
) -> list[tuple[str, str, int]]:
    """The ``top`` off-diagonal cells (true, predicted, count), largest first.

    ``confusion`` is (n_classes, n_classes), rows true, columns predicted; ``classes`` (n_classes,).
    """
    matrix = np.array(confusion)
    np.fill_diagonal(matrix, 0)
    order = np.argsort(matrix, axis=None, kind="stable")[::-1][:top]
    pairs: list[tuple[str, str, int]] = []
    for flat in order:
        true_index, predicted_index = np.unravel_index(flat, matrix.shape)
        count = int(matrix[true_index, predicted_index])
        if count == 0:
            break
        pairs.append((str(classes[true_index]), str(classes[predicted_index]), count))
    return pairs
