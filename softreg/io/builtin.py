"""scikit-learn's bundled data sets (``builtin:NAME``): no download."""

from __future__ import annotations

import numpy as np

from softreg.io.dataset import Dataset
from softreg.io.kinds import BUILTIN_PREFIX


def load_builtin(name: str) -> Dataset:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    target_names = np.asarray(bunch.target_names)
    labels = target_names[bunch.target] if target_names.dtype.kind == "U" else bunch.target.astype(np.int64)
    return Dataset(
        X=np.asarray(bunch.data, dtype=np.float64),
        labels=labels,
        feature_names=[str(name) for name in bunch.feature_names],
        label_name="target",
        source=f"{BUILTIN_PREFIX}{name}",
    )
