"""The "did you mean ...?" hints of config errors: for a misspelt key or value, the closest
name in spelling, or the key that another tool's name (scikit-learn's, PyTorch's, ...) stands for."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """The hint ``" (did you mean X?)"`` naming the candidate closest to ``word`` in spelling, or ""."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# names other tools give to softreg's keys (scikit-learn, PyTorch, Vowpal Wabbit, LIBLINEAR): too far
# from ours in spelling for a close match, so they are looked up first
SYNONYMS = {
    "learning_rate": "lr", "eta": "lr", "eta0": "lr", "step_length": "lr",
    "l2": "weight_decay", "lambda": "weight_decay", "lambda_": "weight_decay", "l2_reg": "weight_decay",
    "alpha": "weight_decay", "regularization": "weight_decay", "reg": "weight_decay",
    "n_epochs": "epochs", "num_epochs": "epochs", "max_epochs": "epochs", "max_iter": "epochs", "passes": "epochs",
    "minibatch": "batch_size", "mini_batch_size": "batch_size", "batch": "batch_size",
    "random_state": "seed", "random_seed": "seed", "rng": "seed",
    "intercept": "fit_intercept", "bias": "fit_intercept", "precision": "dtype",
    "lr_schedule": "schedule", "lr_scheduler": "schedule", "patience": "early_stopping",
    "path": "source", "file": "source", "dataset": "source", "target": "label", "y": "label",
    "test_size": "test", "val_size": "val", "validation": "val", "validation_fraction": "val",
    "output_dir": "dir", "out": "dir", "optimizer": "optim", "optimiser": "optim", "training": "optim",
}


def key_suggestion(section: str | None, key: str, schema: dict[str, Any], dotted_only: bool = False) -> str:
    """" (did you mean ...?)" for an unknown ``key`` of ``section`` (None: a top-level key), or "".

    In order: a close spelling in the same section (its short name, or its dotted name with
    ``dotted_only``), another tool's name for a key (`SYNONYMS`), the same or a close name in
    another section or at the top (its dotted name).
    """
    sections = {name: list(spec) for name, spec in schema.items() if isinstance(spec, dict)}
    here = sections.get(section, []) if section is not None else list(schema)
    prefix = f"{section}." if dotted_only and section in sections else ""
    close = difflib.get_close_matches(key, here, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {prefix + close[0]!r}?)"
    wanted = SYNONYMS.get(key.lower().replace("-", "_"), key)
    if wanted in here:
        return f" (did you mean {prefix + wanted!r}?)"
    dotted = [name for name, spec in schema.items() if not isinstance(spec, dict)]
    dotted += [f"{name}.{entry}" for name, entries in sections.items() for entry in entries]
    exact = [name for name in dotted if name.rpartition(".")[2] == wanted]
    if exact:
        return f" (did you mean {exact[0]!r}?)"
    close = difflib.get_close_matches(wanted, [name.rpartition(".")[2] for name in dotted], n=1, cutoff=0.75)
    if close:
        return f" (did you mean {next(name for name in dotted if name.rpartition('.')[2] == close[0])!r}?)"
    return ""
