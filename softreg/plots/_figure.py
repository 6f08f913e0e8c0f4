"""What every figure shares: pyplot on the Agg backend, the PNG save, the class colours.

matplotlib is imported on first use, not with `softreg.plots`, so that commands that
draw nothing do not pay for it.
"""

from __future__ import annotations

import io
from os import PathLike
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from softreg.escape import visible

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the Agg backend: files only, never a window."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(figure: Figure, path: str | PathLike[str]) -> Path:
    """Write ``figure`` as a PNG to ``path`` atomically and close it."""
    from softreg.rundir.files import atomic_open

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(figure)
    with atomic_open(path, "wb") as handle:
        handle.write(buffer.getvalue())
    return Path(path)


def shown(name: object) -> str:
    """A name from the data (a class, a column) as a figure's text: control characters escaped, as on
    a terminal, and every ``$`` escaped, so that ``$``, ``$$`` or ``price_$$`` is drawn as written, not
    as mathtext (matplotlib parses text between dollar signs as TeX, and fails on some); the figure's
    own texts, such as a log axis's ``10^-3`` ticks, stay mathtext."""
    return visible(name).replace("$", r"\$")


def class_colors(n_classes: int) -> NDArray[np.float64]:
    """One RGBA colour per class, shape (n_classes, 4): tab10, tab20, then evenly spaced hues."""
    import matplotlib

    if n_classes <= 10:
        return matplotlib.colormaps["tab10"](np.arange(n_classes))
    if n_classes <= 20:
        return matplotlib.colormaps["tab20"](np.arange(n_classes))
    return matplotlib.colormaps["hsv"](np.linspace(0, 1, n_classes, endpoint=False))
