"""``optim.lr: auto``: a learning rate from the data's curvature, before the first step.

The rate is the smaller of two limits, each from a bound that holds for any weights:

- **curvature.** The cross-entropy's Hessian in the logits, diag(p) - pp^T, has norm at
  most 1/2, so J is L-smooth with ``L = lambda_max(X~^T S X~ / n) / 2 + weight_decay``
  (``X~`` is X with a column of ones when the intercept is fitted, ``S`` the sample
  weights). Heavy-ball momentum beta is stable on a quadratic of curvature h while
  ``lr h < 2 (1 + beta)``; Nesterov's while ``lr h < 2 (1 + beta) / (1 + 2 beta)``.
  The rate is CURVATURE_SHARE of that bound at h = L.
- **batch noise.** Sample i alone is L_i-smooth with ``L_i = s_i ||x~_i||^2 / 2``; a batch of
  B of n rows drawn without replacement averages away all but a share
  ``(n - B) / (B (n - 1))`` of their spread. Momentum sums the noise of about
  ``1 / (1 - beta)`` steps, so the rate is ``NOISE_SHARE (1 - beta) / noise`` with
  ``noise = (n - B) / (B (n - 1)) * mean_i L_i``. A full batch has no noise limit. SVRG
  cancels most of the noise and averages what remains (`softreg.train.gradients.VarianceReducedGradient`),
  so it takes a larger share.

The shares were measured (benchmarks/RESULTS.md): at them, SVRG reaches a relative gap of
1e-4 within a few epochs on letters and on the synthetic sets, plain SGD ends within a
factor of about two of the best constant rate on the builtin sets, and no run diverged.

lambda_max comes from a power iteration over all rows of small data, else over a uniformly
random sample (one batch of `minibatches` drawn with a fixed seed, so the rate is a function
of the data and the settings alone and draws nothing from the training generator). A
sample's lambda_max is at least the whole data's in expectation (lambda_max is convex in
the sample's matrix), so a sample errs towards a smaller rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from softreg.errors import DataError
from softreg.train.settings import AUTO as AUTO  # "auto", re-exported where the rate is chosen

if TYPE_CHECKING:
    from softreg.kernels import Batch, Matrix
    from softreg.train.data import TrainingData
    from softreg.train.settings import Settings

CURVATURE_SHARE = 1.0  # of the worst-case stability bound (the softmax's curvature rarely reaches 1/2)
NOISE_SHARE = {"none": 0.5, "svrg": 0.75}  # by optim.variance_reduction
SAMPLE_VALUES = 2**19  # rows x features of the sample: 4 MiB in float64, a fraction of a millisecond per pass
MIN_SAMPLE_ROWS = 1024
WHOLE_DATA_SHARE = 0.6  # a sample this large a share of the rows would copy most of X: read all rows in place
CHUNK_ROWS = 8192
MAX_ITERATIONS = 50
TOLERANCE = 1e-4  # relative change of the Rayleigh quotient that ends the power iteration
SEED = 0  # of the sample and the start vector: no draw from the training generator
FLAT_OBJECTIVE_RATE = 1.0


def auto_learning_rate(data: TrainingData, settings: Settings) -> float:
    """The learning rate ``optim.lr: auto`` chooses for ``data`` under ``settings``.

    Parameters
    ----------
    data : TrainingData
        The standardized training part (``n_samples`` rows of ``n_features``).
    settings : Settings
        Its ``weight_decay``, ``fit_intercept``, ``batch_size``, ``momentum``, ``nesterov``
        and ``variance_reduction`` enter the rate (``lr`` itself is ignored).

    Returns
    -------
    float
        ``min(CURVATURE_SHARE * stable(L), NOISE_SHARE * (1 - momentum) / noise)``, see the
        module docstring.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if isinstance(data, SampledSource):
            largest, mean_square = sharded_curvature(data, settings.fit_intercept)
        else:
            largest, mean_square = sample_curvature(data, settings.fit_intercept)
    if not (math.isfinite(largest) and math.isfinite(mean_square)):
        raise DataError(
            "optim.lr: auto finds no stable rate: the squares of the features overflow; standardize them "
            "(data.standardize: true) or rescale them"
        )
    smoothness = 0.5 * largest + settings.weight_decay
    beta = settings.momentum
    stable = 2.0 * (1.0 + beta) / (1.0 + 2.0 * beta) if settings.nesterov else 2.0 * (1.0 + beta)
    limits = [CURVATURE_SHARE * stable / smoothness] if smoothness > 0 else []
    n_samples, batch_size = data.n_samples, min(settings.batch_size, data.n_samples)
    if batch_size < n_samples:
        share = (n_samples - batch_size) / (batch_size * (n_samples - 1))
        noise = share * (0.5 * mean_square + settings.weight_decay)
        if noise > 0:
            limits.append(NOISE_SHARE[settings.variance_reduction] * (1.0 - beta) / noise)
    # all-zero features without intercept or decay: J is constant and any rate is stable
    return float(min(limits, default=FLAT_OBJECTIVE_RATE))


def sample_curvature(data: TrainingData, fit_intercept: bool = True) -> tuple[float, float]:
    """``(lambda_max(X~^T S X~ / m), mean_i s_i ||x~_i||^2)`` over m rows of ``data``.

    ``X~`` is X with a column of ones when ``fit_intercept``; ``s`` the sample weights (1
    without). The rows are a uniformly random sample of about SAMPLE_VALUES numbers, or all
    of them, read in place, when such a sample would hold most of the data.
    """
    rng = np.random.default_rng(SEED)
    rows = max(MIN_SAMPLE_ROWS, SAMPLE_VALUES // max(1, data.n_features))
    if rows >= WHOLE_DATA_SHARE * data.n_samples:
        blocks: Callable[[], Iterable[Batch]] = lambda: data.chunks(CHUNK_ROWS)  # noqa: E731
    else:
        sample = [next(iter(data.minibatches(rows, rng)))]
        blocks = lambda: sample  # noqa: E731
    intercept = 1.0 if fit_intercept else 0.0
    n_rows, weighted_squares = 0, 0.0
    for X, _, weight in blocks():
        weighted_squares += block_squares(X, weight, intercept)
        n_rows += X.shape[0]

    def gram_times(vector: np.ndarray) -> np.ndarray:
        """``X~^T S X~ v / m`` for ``v = (coefficients, intercept)``, one block at a time."""
        result = np.zeros_like(vector)
        for X, _, weight in blocks():
            result += block_gram(X, weight, vector, intercept)
        return result / n_rows

    return largest_eigenvalue(gram_times, data.n_features, rng), weighted_squares / n_rows


@runtime_checkable
class SampledSource(Protocol):
    """Training data whose shards compute ``lr: auto``'s sums themselves (`softreg.train.ShardedSource`)."""

    @property
    def n_samples(self) -> int: ...

    @property
    def n_features(self) -> int: ...

    def sample_sums(self, rows: int, whole: bool, intercept: float) -> tuple[int, float]:
        """Choose the sample of about ``rows`` rows (``whole``: every row), each shard its share;
        the sample's rows and ``sum_i ||x~_i||^2`` (`block_squares`)."""
        ...

    def gram_sums(self, vector: np.ndarray, intercept: float) -> np.ndarray:
        """``X~^T X~ v`` (n_features + 1,) over the sample `sample_sums` chose, not divided."""
        ...


def sharded_curvature(data: SampledSource, fit_intercept: bool = True) -> tuple[float, float]:
    """`sample_curvature` of a `SampledSource`, whose shards compute the sums over their share of
    the sample wherever they are: no row comes here."""
    rows = max(MIN_SAMPLE_ROWS, SAMPLE_VALUES // max(1, data.n_features))
    intercept = 1.0 if fit_intercept else 0.0
    n_rows, weighted_squares = data.sample_sums(rows, rows >= WHOLE_DATA_SHARE * data.n_samples, intercept)
    rng = np.random.default_rng(SEED)
    largest = largest_eigenvalue(lambda vector: data.gram_sums(vector, intercept) / n_rows, data.n_features, rng)
    return largest, weighted_squares / n_rows


def block_squares(X: Matrix, weight: np.ndarray | None, intercept: float) -> float:
    """``sum_i s_i ||x~_i||^2`` over the rows of ``X`` (n, n_features), ``x~`` with ``intercept`` appended."""
    if isinstance(X, np.ndarray):
        squares = np.einsum("ij,ij->i", X, X).astype(np.float64)
    else:
        squares = np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel()
    squares += intercept
    return float(squares.sum() if weight is None else np.dot(weight, squares))


def block_gram(X: Matrix, weight: np.ndarray | None, vector: np.ndarray, intercept: float) -> np.ndarray:
    """``X~^T S X~ v`` (n_features + 1,) over the rows of ``X`` (n, n_features), not divided."""
    result = np.zeros_like(vector)
    projected = np.asarray(X @ vector[:-1].astype(X.dtype), dtype=np.float64).ravel()
    projected += intercept * vector[-1]
    if weight is not None:
        projected *= weight
    result[:-1] += np.asarray(X.T @ projected.astype(X.dtype), dtype=np.float64).ravel()
    result[-1] += intercept * projected.sum()
    return result


def largest_eigenvalue(gram_times: Callable[[np.ndarray], np.ndarray], n_features: int,
                       rng: np.random.Generator) -> float:
    """lambda_max of the symmetric positive semi-definite map ``gram_times`` on (n_features + 1,)
    vectors, by a power iteration from a random start."""
    vector = rng.standard_normal(n_features + 1)
    vector /= np.linalg.norm(vector)
    largest = 0.0
    for _ in range(MAX_ITERATIONS):
        image = gram_times(vector)
        quotient = float(np.dot(vector, image))  # the Rayleigh quotient: rises towards lambda_max
        norm = float(np.linalg.norm(image))
        if not norm > 0.0 or not math.isfinite(norm):
            break
        vector = image / norm
        converged = quotient - largest <= TOLERANCE * quotient
        largest = max(largest, quotient)
        if converged:
            break
    return largest
