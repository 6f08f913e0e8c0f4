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
    shorten,
)
from softreg.config.schema import SCHEMA, key_spec
from softreg.config.sections import Config, DataConfig, EngineConfig, ModelConfig, OptimConfig, OutputConfig
from softreg.config.suggest import did_you_mean, key_suggestion
from softreg.config.yaml_io import apply_overrides, parse_override, read_yaml
from softreg.errors import ConfigError
from softreg.io.kinds import BUILTIN_PREFIX, BUILTINS
from softreg.io.remote import check_url, is_url
from softreg.losses import SPHERICAL_START
from softreg.train.settings import automatic_choices

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


def _resolve_path(value: str | None, base_dir: str | os.PathLike[str]) -> str | None:
    if value is None or value.startswith(BUILTIN_PREFIX) or is_url(value):
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
            _check_url(origin, f"data.{key}", data[key])
            base = "." if f"data.{key}" in from_command_line else base_dir
            data[key] = _resolve_path(data[key], base)
    engine = resolved["engine"]
    if engine["worker_cache"] is not None:  # a path on the workers; relative, as data paths are here
        base = "." if "engine.worker_cache" in from_command_line else base_dir
        engine["worker_cache"] = _resolve_path(engine["worker_cache"], base)
    _check_builtin(origin, data["source"])
    if resolved["model"]["normalizer"] == "spherical" and not resolved["model"]["fit_intercept"]:
        raise ConfigError(f"{origin}: model.normalizer: spherical needs model.fit_intercept: true ({SPHERICAL_START})")
    if resolved["optim"]["early_stopping"] and data["val"] == 0:
        raise ConfigError(f"{origin}: optim.early_stopping needs a validation split: set data.val > 0 (e.g. 0.1)")
    sharded = data["shards"] > 1 or resolved["engine"]["kind"] != "numpy"
    chosen = automatic_choices({**resolved["model"], **resolved["optim"]}, sharded)
    for key in ("variance_reduction", "epochs"):
        resolved["optim"][key] = chosen[key]
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


def _check(origin: str, dotted: str, value: object, spec: Spec) -> Any:
    default, rule, _help = spec
    if value is REQUIRED:
        raise ConfigError(f"{origin}: {dotted} is required ({_help})")
    try:
        return rule(value)
    except ValueError as error:
        raise ConfigError(f"{origin}: {dotted} {error}") from None


def _check_url(origin: str, key: str, value: str) -> None:
    """A URL with a password is refused (without repeating it): it would be saved with the run."""
    try:
        check_url(value)
    except ValueError as error:
        raise ConfigError(f"{origin}: {key} {error}") from None


def _check_builtin(origin: str, source: str) -> None:
    if source.startswith(BUILTIN_PREFIX):
        name = source[len(BUILTIN_PREFIX):]
        if name not in BUILTINS:
            hint = did_you_mean(name, BUILTINS)
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
