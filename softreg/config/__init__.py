"""The training configuration: defaults and rules declared once, checked as a whole.

A config is a YAML mapping with the sections ``data``, ``model``, ``optim``,
``output``, ``engine`` and the top-level ``seed``. Every key has a default (except
``data.source``) and a rule; `load_config` rejects unknown keys with a
"did you mean" suggestion and names the file and key of every bad value before
any work starts. ``--set section.key=value`` overrides are YAML-typed and go
through the same rules.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from softreg.config.rules import (
    EARLY_STOPPING_RULES,
    PLOT_NAMES,
    REQUIRED,
    Rule,
    Spec,
    _describe,
    _suggestion,
    boolean,
    byte_size,
    categorical,
    choice,
    class_list,
    column_list,
    column_ref,
    delimiter,
    early_stopping,
    encoding,
    fraction_or_path,
    key_suggestion,
    learning_rate,
    normalizer,
    number,
    optional,
    plots,
    scheduler_address,
    shorten,
    text,
)
from softreg.config.sections import ENGINES, Config, DataConfig, EngineConfig, ModelConfig, OptimConfig, OutputConfig
from softreg.config.yaml_io import apply_overrides, parse_override, read_yaml
from softreg.errors import ConfigError
from softreg.io.kinds import BUILTIN_PREFIX, BUILTINS
from softreg.losses import LOSSES, SPHERICAL_START
from softreg.optim import SCHEDULES, VARIANCE_REDUCTION

__all__ = [
    "EARLY_STOPPING_RULES",
    "PLOT_NAMES",
    "REQUIRED",
    "SCHEMA",
    "Config",
    "ConfigError",
    "DataConfig",
    "EngineConfig",
    "ModelConfig",
    "OptimConfig",
    "OutputConfig",
    "Rule",
    "Spec",
    "apply_overrides",
    "dump_config",
    "key_spec",
    "load_config",
    "parse_override",
    "read_yaml",
    "resolve",
    "shorten",
]

# -- the schema: section -> key -> (default, rule, help)

SCHEMA: dict[str, Spec | dict[str, Spec]] = {
    "data": {
        "source": (REQUIRED, text, "builtin:iris|digits|wine|breast_cancer, or a .csv/.tsv/.npz/svmlight path"),
        "label": (None, optional(column_ref), "label column name or 0-based index (default: the last column)"),
        "test": (0.2, fraction_or_path, "test fraction in [0, 1), or a path to a separate labelled file"),
        "val": (0.1, number(0.0, 1.0, max_open=True), "validation fraction of the training part (0 disables)"),
        "split": (
            "random",
            choice("random", "ordered"),
            "random (stratified if data.stratify) or ordered (test = last rows, val = last rows before)",
        ),
        "stratify": (True, boolean, "keep class proportions in the random splits"),
        "standardize": (True, boolean, "scale features by the training part's mean and standard deviation"),
        "classes": (None, optional(class_list), "train on this subset of labels only"),
        "delimiter": (None, delimiter, "field delimiter of delimited text (null: detect)"),
        "header": (
            None,
            optional(boolean),
            "whether delimited text starts with a header row (null: yes when a text cell of the first row sits "
            "over a numeric column, or over text of another length)",
        ),
        "features": (None, optional(column_list), "the feature columns, by name or index (default: all the others)"),
        "exclude": (None, optional(column_list), "columns that are not features (e.g. notes), by name or index"),
        "id": (None, optional(column_ref), "a row identifier: not a feature; predict copies it to its output"),
        "missing": (
            "error",
            choice("error", "drop", "mean", "median", "most_frequent"),
            "missing cells (empty, NA, NaN, ?): error, drop the row, or fill with the training part's statistic",
        ),
        "categorical": (
            "auto",
            categorical,
            "one-hot encoded columns: auto (the text columns), none, or a list; categories from the training part",
        ),
        "encoding": ("utf-8", encoding, "text encoding of delimited files (e.g. latin-1)"),
        "cache": (
            None,
            optional(text),
            "a directory for a shuffled on-disk copy of the data (softreg ingest builds it; train builds it when "
            "missing and rebuilds it when the source or data options change) that training streams from",
        ),
        "memory_budget": (
            None,
            optional(byte_size),
            "bytes of memory for the data, an integer or a size such as 512MB (null: half the available memory); "
            "train goes through a cache beside the run when the data do not fit, evaluate and predict read chunks "
            "that fit",
        ),
        "shards": (
            1,
            number(1, integer=True),
            "row ranges of the cache's training part that each step takes batch_size / shards rows from; it fixes "
            "the batch plan, so the same shards give the same model on any engine and any number of workers "
            "(more than 1 needs data.cache)",
        ),
    },
    "model": {
        "weight_decay": (1e-4, number(0.0), "lambda in (lambda/2)*||W||^2; the intercept is not decayed"),
        "fit_intercept": (True, boolean, "learn one intercept per class"),
        "dtype": ("float64", choice("float64", "float32"), "floating-point precision of training"),
        "loss": (
            "cross_entropy",
            choice(*LOSSES),
            "cross_entropy (-log p_y), or squared_error (sum_k (p_k - [k = y])^2, the Brier score)",
        ),
        "normalizer": (
            "softmax",
            normalizer,
            "softmax, taylor ((1 + z + z^2/2) normalized) or spherical ((z^2 + eps) normalized)",
        ),
        "temperature": (1.0, number(0.0, min_open=True), "T > 0 in p = normalizer(z / T)"),
    },
    "optim": {
        "lr": (
            0.1,
            learning_rate,
            "base learning rate, or auto: from a curvature bound of the training data, the batch size and the "
            "momentum (the chosen number is printed and saved in the run's config.yaml)",
        ),
        "batch_size": (64, number(1, integer=True), "minibatch size"),
        "epochs": (20, number(1, integer=True), "passes over the training part"),
        "momentum": (0.9, number(0.0, 1.0, max_open=True), "heavy-ball momentum (0 disables)"),
        "nesterov": (False, boolean, "use Nesterov momentum"),
        "schedule": ("constant", choice(*SCHEDULES), "learning-rate schedule"),
        "step_size": (10, number(1, integer=True), "schedule=step: epochs between decays"),
        "gamma": (0.1, number(0.0, 1.0, min_open=True), "schedule=step: decay factor"),
        "decay": (1.0, number(0.0), "schedule=inverse_time: lr / (1 + decay * epoch)"),
        "early_stopping": (None, early_stopping, "false, or {patience, min_delta} on the validation loss"),
        "tol": (
            1e-4,
            optional(number(0.0, min_open=True)),
            "stop at the first epoch whose certified relative gap (J - J*) / J* is <= tol (optim.epochs is then "
            "the most); null: run all optim.epochs",
        ),
        "variance_reduction": (
            "none",
            choice(*VARIANCE_REDUCTION),
            "none, or svrg: after a first plain epoch, each epoch ends with a full-data gradient "
            "that removes the next epoch's batch noise, so a constant lr converges (Johnson & Zhang 2013)",
        ),
    },
    "output": {
        "dir": (None, optional(text), "run directory (default: a fresh runs/NAME-TIMESTAMP)"),
        "plots": (True, plots, "true, false, or a list of plot names"),
        "eval_every": (
            None,
            optional(number(1, integer=True)),
            "epochs between full-data objective evaluations (null: adaptive, <10% of training time)",
        ),
        "checkpoint_every": (1, number(1, integer=True), "epochs between checkpoints that --resume continues from"),
    },
    "engine": {
        "kind": (
            "numpy",
            choice(*ENGINES),
            "numpy (this process) or dask: the shards' gradient sums computed by workers of a Dask cluster "
            "(pip install 'softreg[dask]')",
        ),
        "scheduler": (
            None,
            optional(scheduler_address),
            "engine.kind=dask: a scheduler address (tcp://host:8786), local (a cluster of engine.workers processes "
            "on this machine), or null (dask's scheduler-address config, e.g. DASK_SCHEDULER_ADDRESS)",
        ),
        "workers": (2, number(1, integer=True), "engine.kind=dask: the workers that hold the shards"),
    },
    "seed": (0, number(0, integer=True), "fixes the split, the initialization and the batch order"),
}


def _resolve_path(value: str | None, base_dir: str | os.PathLike[str]) -> str | None:
    if value is None or value.startswith(BUILTIN_PREFIX):
        return value
    expanded = Path(os.path.expanduser(value))
    return str(expanded if expanded.is_absolute() else (Path(base_dir) / expanded).resolve())


def resolve(
    document: Mapping[str, Any],
    origin: str = "config",
    base_dir: str | os.PathLike[str] = ".",
    from_command_line: Collection[str] = (),
) -> Config:
    """Validate a whole config mapping and fill in defaults.

    Parameters
    ----------
    document : dict
        Parsed YAML (after overrides).
    origin : str
        Named in every message (the config file's path).
    base_dir : path
        Relative data paths resolve against it (the config file's folder).
    from_command_line : set of str
        Dotted keys given with ``--set``; their relative paths resolve against the
        current directory instead.

    Returns
    -------
    Config
    """
    resolved: dict[str, Any] = {}
    for key in document:
        if key not in SCHEMA:
            hint = key_suggestion(None, str(key), SCHEMA)
            given = any(name == key or name.startswith(f"{key}.") for name in from_command_line)
            where = "--set" if given else origin
            raise ConfigError(f"{where}: unknown key {key!r}{hint}; expected one of {', '.join(SCHEMA)}")
    for name, spec in SCHEMA.items():
        if isinstance(spec, tuple):
            where = "--set" if name in from_command_line else origin
            resolved[name] = _check(where, name, document.get(name, spec[0]), spec)
            continue
        section = document.get(name, {})
        if section is None:
            section = {}
        if not isinstance(section, dict):
            raise ConfigError(f"{origin}: {name} must be a mapping of keys, got {_describe(section)}")
        for key in section:
            if key not in spec:
                hint = key_suggestion(name, str(key), SCHEMA)
                where = "--set" if f"{name}.{key}" in from_command_line else origin
                raise ConfigError(f"{where}: unknown key {name}.{key}{hint}")
        resolved[name] = {
            key: _check(
                "--set" if f"{name}.{key}" in from_command_line else origin,
                f"{name}.{key}",
                section.get(key, rule[0]),
                rule,
            )
            for key, rule in spec.items()
        }
    data = resolved["data"]
    for key in ("source", "test", "cache"):
        if isinstance(data[key], str):
            base = "." if f"data.{key}" in from_command_line else base_dir
            data[key] = _resolve_path(data[key], base)
    _check_builtin(origin, data["source"])
    if resolved["model"]["normalizer"] == "spherical" and not resolved["model"]["fit_intercept"]:
        raise ConfigError(f"{origin}: model.normalizer: spherical needs model.fit_intercept: true ({SPHERICAL_START})")
    if resolved["optim"]["early_stopping"] and data["val"] == 0:
        raise ConfigError(f"{origin}: optim.early_stopping needs a validation split: set data.val > 0 (e.g. 0.1)")
    _check_engine(origin, resolved)
    return Config(
        data=DataConfig(**data),
        model=ModelConfig(**resolved["model"]),
        optim=OptimConfig(**resolved["optim"]),
        output=OutputConfig(**resolved["output"]),
        seed=resolved["seed"],
        engine=EngineConfig(**resolved["engine"]),
        path=None if origin == "config" else origin,
    )


# what the sharded engine computes: plain minibatch sums of the cross-entropy of softmax; the
# options that need more (a snapshot's full gradient, another loss) are refused by name
SHARDED_SUPPORT = {
    ("optim", "variance_reduction"): "none",
    ("model", "loss"): "cross_entropy",
    ("model", "normalizer"): "softmax",
    ("model", "temperature"): 1.0,
}


def _check_engine(origin: str, resolved: dict[str, Any]) -> None:
    """The sharded engine (data.shards > 1 or engine.kind: dask): what it needs and what it supports."""
    data, engine, optim = resolved["data"], resolved["engine"], resolved["optim"]
    shards = data["shards"]
    if shards == 1 and engine["kind"] == "numpy":
        return  # the default path: rows from one TrainingData, as always
    why = f"data.shards: {shards}" if engine["kind"] == "numpy" else "engine.kind: dask"
    if data["cache"] is None:
        raise ConfigError(
            f"{origin}: {why} needs data.cache: the shards are row ranges of the cache's training part, "
            "opened by path (set data.cache: DIR)"
        )
    for (section, key), supported in SHARDED_SUPPORT.items():
        if resolved[section][key] != supported:
            raise ConfigError(
                f"{origin}: {section}.{key}: {resolved[section][key]} is not supported with {why}, which sums plain "
                f"minibatch gradients of the softmax cross-entropy; use {section}.{key}: {supported}"
            )
    if optim["batch_size"] % shards:
        raise ConfigError(
            f"{origin}: optim.batch_size {optim['batch_size']} must be a multiple of data.shards {shards}: "
            f"each step takes batch_size / shards rows from every shard (e.g. optim.batch_size: "
            f"{max(shards, round(optim['batch_size'] / shards) * shards)})"
        )
    if engine["kind"] == "dask" and shards < engine["workers"]:
        raise ConfigError(
            f"{origin}: data.shards {shards} must be at least engine.workers {engine['workers']}: each worker "
            f"holds one or more shards (set data.shards: {engine['workers']} or more)"
        )


def key_spec(section: str, key: str) -> Spec:
    """``(default, rule, help)`` of the config key ``section.key`` (a KeyError if there is none)."""
    spec = SCHEMA[section]
    if not isinstance(spec, dict):
        raise KeyError(f"{section} is a top-level key, not a section")
    return spec[key]


def _check(origin: str, dotted: str, value: object, spec: Spec) -> Any:
    default, rule, _help = spec
    if value is REQUIRED:
        raise ConfigError(f"{origin}: {dotted} is required ({_help})")
    try:
        return rule(value)
    except ValueError as error:
        raise ConfigError(f"{origin}: {dotted} {error}") from None


def _check_builtin(origin: str, source: str) -> None:
    if source.startswith(BUILTIN_PREFIX):
        name = source[len(BUILTIN_PREFIX):]
        if name not in BUILTINS:
            hint = _suggestion(name, BUILTINS)
            raise ConfigError(
                f"{origin}: data.source {source!r} is not a bundled dataset; "
                f"expected builtin:{'|'.join(BUILTINS)}{hint}"
            )


def load_config(path: str | os.PathLike[str], overrides: Iterable[str] = ()) -> Config:
    """Read, override and validate a config file; return a `Config`."""
    document = read_yaml(path)
    document, from_command_line = apply_overrides(document, overrides)
    base_dir = Path(path).resolve().parent
    return resolve(document, origin=str(path), base_dir=base_dir, from_command_line=from_command_line)


def dump_config(config: Config) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=False)
