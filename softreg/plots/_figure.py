"""What every figure shares: pyplot on the Agg backend, the PNG save, the class colours.

matplotlib is imported on first use, not with `softreg.plots`, so that commands that
draw nothing do not pay for it.
"""

import io
from pathlib import Path

import numpy as np


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(figure, path):
    from softreg.rundir import atomic_open

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(figure)
    with atomic_open(path, "wb") as handle:
        handle.write(buffer.getvalue())
    return Path(path)


def class_colors(n_classes):
    import matplotlib

    if n_classes <= 10:
        return matplotlib.colormaps["tab10"](np.arange(n_classes))
    if n_classes <= 20:
        return matplotlib.colormaps["tab20"](np.arange(n_classes))
    return matplotlib.colormaps["hsv"](np.linspace(0, 1, n_classes, endpoint=False))
