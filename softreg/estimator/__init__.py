"""The Python API: `SoftmaxRegression`, the trainer of ``softreg train`` as a scikit-learn
classifier, and its run directories.

- `classifier`: `SoftmaxRegression` (its parameters, `fit`, `partial_fit`, `save_run`, `to_onnx`);
- `fitting`: what `fit` decides before it calls the core (settings, seed, standardizer, warm start);
- `predicting`: its predictions (a scikit-learn mixin);
- `saving`: a fitted estimator as a `Model`, a config and a run directory (`save_run`);
- `loading`: `load_run` (a fitted estimator from a run directory) and `fit_config` (what
  ``softreg train --config`` does, returning the estimator and the run directory).
"""

from softreg.estimator.classifier import SoftmaxRegression
from softreg.estimator.fitting import PARAMETERS
from softreg.estimator.loading import fit_config, load_run
from softreg.estimator.saving import config_text, estimator_model, run_config, save_run

__all__ = [
    "PARAMETERS",
    "SoftmaxRegression",
    "config_text",
    "estimator_model",
    "fit_config",
    "load_run",
    "run_config",
    "save_run",
]
