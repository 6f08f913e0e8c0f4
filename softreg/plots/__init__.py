"""Figures: one function per figure, arrays in, PNG path out (matplotlib, Agg backend).

The only part of softreg that imports matplotlib. The figures of a run directory are
in `training`, `predictions` and `model`; compare-logistic's in `compare`; sweep's in
`sweep`; the why-softmax demo's in `why`.
"""

from softreg.plots.compare import coefficient_paths, decision_boundaries, trajectory_gaps
from softreg.plots.model import decision_regions, image_side, weights
from softreg.plots.predictions import class_probabilities, confusion_matrix, reliability
from softreg.plots.sweep import sweep_accuracy, sweep_curves, varying
from softreg.plots.training import learning_curves
from softreg.plots.why import (
    learning_by_loss,
    norm_by_epoch,
    normalizer_comparison,
    true_class_gradient,
    weight_decay_effect,
)

__all__ = [
    "class_probabilities",
    "coefficient_paths",
    "confusion_matrix",
    "decision_boundaries",
    "decision_regions",
    "image_side",
    "learning_by_loss",
    "learning_curves",
    "norm_by_epoch",
    "normalizer_comparison",
    "reliability",
    "sweep_accuracy",
    "sweep_curves",
    "varying",
    "trajectory_gaps",
    "true_class_gradient",
    "weight_decay_effect",
    "weights",
]
