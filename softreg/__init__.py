"""softreg: multinomial logistic (softmax) regression with weight decay, by minibatch SGD.

The public Python API (imported on first use, so that ``import softreg.train`` stays light):

- `SoftmaxRegression`: the trainer as a scikit-learn classifier;
- `load_run`: a fitted `SoftmaxRegression` from a run directory of ``softreg train``;
- `fit_config`: what ``softreg train --config`` does, returning the estimator and the run directory.

The training core itself is `softreg.train.fit` (arrays or batches and plain `Settings`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from softreg._version import __version__

__all__ = ["SoftmaxRegression", "__version__", "fit_config", "load_run"]

if TYPE_CHECKING:
    from softreg.estimator import SoftmaxRegression, fit_config, load_run


def __getattr__(name: str) -> Any:
    if name in ("SoftmaxRegression", "fit_config", "load_run"):
        from softreg import estimator

        return getattr(estimator, name)
    raise AttributeError(f"module 'softreg' has no attribute {name!r}")
