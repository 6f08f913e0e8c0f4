"""How much the demo trains (`Scale`: the full demo, or `QUICK`) and its fixed settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Scale:
    """Epochs of each part: the full demo, or a quick smoke test."""

    loss_epochs: int = 15
    digits_epochs: int = 100
    letters_epochs: int = 40
    norm_epochs: int = 300
    unique_epochs: int = 300
    decays: tuple[float, ...] = (0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


QUICK = Scale(loss_epochs=2, digits_epochs=3, letters_epochs=2, norm_epochs=6, unique_epochs=6, decays=(0.0, 1e-2))


LOSS_RATES = (0.03, 0.1, 0.3)


NORM_DECAYS = (0.0, 1e-4, 1e-3, 1e-2)


NORM_RATE = 0.05  # small enough that the weights' SGD noise does not hide where they level off


UNIQUE_DECAY = 1e-2
