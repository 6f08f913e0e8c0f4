"""``softreg demo why-softmax``: the figures and numbers of the README's "Why softmax and
cross-entropy", made from real runs (``softreg sweep``) and the training core.

OUT/figures/*.png and OUT/numbers.json, OUT/numbers.md are the results; OUT/configs/ holds
the base configs and OUT/sweeps/ the sweeps' run directories, so every number can be
traced to a run directory and recomputed with ``softreg sweep``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from softreg import rundir
from softreg.commands.demo.core import norm_growth, true_class_gradients, uniqueness
from softreg.commands.demo.numbers import numbers_markdown
from softreg.commands.demo.scale import QUICK, Progress, Scale
from softreg.commands.demo.sweeps import decay_sweep, loss_sweep, normalizer_sweep
from softreg.errors import DataError


def why_softmax(
    out: str | os.PathLike[str], letters: str | os.PathLike[str], jobs: int = 1, quick: bool = False,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """Run every part of the demonstration into ``out``; return the numbers (also in numbers.json)."""
    letters = Path(letters)
    if not letters.is_file():
        raise DataError(f"{letters}: not found; the demo needs the UCI letters file (run from the repository "
                        "root, or give --letters PATH)")
    out = Path(out)
    scale = QUICK if quick else Scale()
    say = on_progress or (lambda message: None)
    figures, configs = out / "figures", out / "configs"
    for folder in (figures, configs):
        folder.mkdir(parents=True, exist_ok=True)
    digits_config, letters_config = write_configs(configs, letters.resolve(), scale)
    from softreg import plots

    numbers: dict[str, Any] = {"quick": quick}
    say("gradient of the true-class logit as p_y -> 0")
    numbers["gradient"] = true_class_gradients(figures / "gradient_vs_p.png")
    say("letters: cross-entropy vs squared error from the same start")
    numbers["loss"] = loss_sweep(out, letters_config, scale, jobs, say, figures / "loss_learning.png")
    say("digits and letters: softmax vs taylor vs spherical")
    table = {name: normalizer_sweep(out, name, config, jobs, say)
             for name, config in (("digits", digits_config), ("letters", letters_config))}
    numbers["normalizers"] = table
    plots.normalizer_comparison(table, figures / "normalizers.png")
    say("digits: the effect of the weight decay")
    numbers["weight_decay"] = decay_sweep(out, digits_config, scale, jobs, say, figures / "weight_decay.png")
    say("digits: one optimum for lambda > 0, growing weights for lambda = 0")
    numbers["uniqueness"] = uniqueness(digits_config, scale)
    numbers["norm_growth"] = norm_growth(digits_config, scale, figures / "norm_vs_epoch.png")
    rundir.write_json(out / "numbers.json", numbers)
    rundir.write_text(out / "numbers.md", numbers_markdown(numbers))
    return numbers


def write_configs(directory: Path, letters: Path, scale: Scale) -> tuple[Path, Path]:
    """The two base configs: configs/digits.yaml's settings and configs/letters.yaml's with a validation part."""
    common = {"output": {"plots": False}, "seed": 0}
    digits = {
        "data": {"source": "builtin:digits", "test": 0.2, "val": 0.1},
        "model": {"weight_decay": 1e-3},
        "optim": {"lr": 0.2, "batch_size": 32, "epochs": scale.digits_epochs, "momentum": 0.9, "schedule": "cosine",
                  "variance_reduction": "none"},  # textbook SGD: the losses compared at equal footing
        **common,
    }
    source = os.path.relpath(letters, directory.resolve())  # relative: the config moves with OUT
    letters_document = {
        "data": {"source": source, "label": "Letter", "split": "ordered", "test": 0.2, "val": 0.1},
        "model": {"weight_decay": 1e-4},
        "optim": {"lr": 0.1, "batch_size": 64, "epochs": scale.letters_epochs, "momentum": 0.9,
                  "schedule": "cosine", "variance_reduction": "none"},
        **common,
    }
    paths = directory / "digits.yaml", directory / "letters.yaml"
    for path, document in zip(paths, (digits, letters_document), strict=True):
        rundir.write_text(path, yaml.safe_dump(document, sort_keys=False))
    return paths


DEMOS = {"why-softmax": why_softmax}

__all__ = ["DEMOS", "QUICK", "Scale", "numbers_markdown", "why_softmax", "write_configs"]
