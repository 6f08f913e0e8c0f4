"""The training configuration: defaults and rules declared once, checked as a whole.

A config is a YAML mapping with the sections ``data``, ``model``, ``optim``,
``output`` and the top-level ``seed``. Every key has a default (except
``data.source``) and a rule; `load_config` rejects unknown keys with a
"did you mean" suggestion and names the file and key of every bad value before
any work starts. ``--set section.key=value`` overrides are YAML-typed and go
through the same rules.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import yaml

from softreg.errors import ConfigError
from softreg.losses import LOSSES, NORMALIZERS, SPHERICAL_START, SUM_REFUSED
from softreg.optim import SCHEDULES, VARIANCE_REDUCTION
from softreg.sources import BUILTIN_PREFIX, BUILTINS
from softreg.train import AUTO, Settings

REQUIRED = object()
Rule: TypeAlias = Callable[[Any], Any]  # a YAML value -> the normalized value, or ValueError
Spec: TypeAlias = tuple[object, Rule, str]  # default (or REQUIRED), rule, help
PLOT_NAMES = (
    "learning_curves",
    "confusion_matrix",
    "reliability",
    "weights",
    "decision_regions",
    "class_probabilities",
)


# -- value rules: each returns the normalized value or raises ValueError("must be ..., got ...")


def _describe(value: object) -> str:
    """A value as messages show it: its repr, cut to 80 characters (a message stays one short line)."""
    if value is None:
        return "nothing"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"an integer of {len(str(abs(value)))} digits"
    return shorten(repr(value))


def shorten(text: str, limit: int = 80) -> str:
    """``text`` cut in the middle to at most ``limit`` characters, on one line."""
    text = text.replace("\n", " ").replace("\r", " ")
    return text if len(text) <= limit else f"{text[: limit // 2 - 2]}...{text[-(limit // 2 - 1):]}"


def number(
    minimum: float | None = None,
    maximum: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    integer: bool = False,
) -> Rule:
    """A real (or integer) in a range; strings such as "1e-4" (YAML 1.1 reads them as text) are accepted."""
    kind = "an integer" if integer else "a number"

    def check(value: Any) -> float | int:
        if isinstance(value, str) and not integer:
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"must be {kind}, got {_describe(value)}")
        if integer and not isinstance(value, int):
            if not float(value).is_integer():
                raise ValueError(f"must be {kind}, got {value!r}")
            value = int(value)
        if isinstance(value, int) and abs(value) > 2**53:  # beyond what a float holds exactly
            raise ValueError(f"must be at most {2**53:g}, got {_describe(value)}")
        if not integer:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"must be finite, got {value!r}")
        if minimum is not None and (value <= minimum if min_open else value < minimum):
            raise ValueError(f"must be {'>' if min_open else '>='} {minimum:g}, got {value!r}")
        if maximum is not None and (value >= maximum if max_open else value > maximum):
            raise ValueError(f"must be {'<' if max_open else '<='} {maximum:g}, got {value!r}")
        return value

    return check


def learning_rate(value: object) -> float | str:
    """A number > 0, or "auto" (chosen from the training data when training starts)."""
    if isinstance(value, str) and not _is_number(value):
        if value == AUTO:
            return AUTO
        hint = _suggestion(value, [AUTO])
        raise ValueError(f"must be a number > 0 or {AUTO}, got {value!r}{hint}")
    return number(0.0, min_open=True)(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {_describe(value)}")
    return value


def text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a non-empty string, got {_describe(value)}")
    if "\x00" in value:
        raise ValueError(f"must not contain a NUL character, got {_describe(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"must be valid text (it holds a lone surrogate), got {_describe(value)}") from None
    if len(value) > 4096:
        raise ValueError(f"must be at most 4096 characters, got {len(value)}")
    return value


def choice(*options: str) -> Rule:
    def check(value: Any) -> str:
        if value not in options:
            hint = _suggestion(str(value), options)
            raise ValueError(f"must be one of {', '.join(options)}, got {_describe(value)}{hint}")
        return value

    return check


def optional(rule: Rule) -> Rule:
    def check(value: object) -> Any:
        return None if value is None else rule(value)

    return check


def column_ref(value: object) -> str | int:
    """A column name (string) or a 0-based index (negative counts from the end)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"must be a column name or index, got {_describe(value)}")
    return value


def column_list(value: object) -> list[str | int]:
    """A list of column names or 0-based indices."""
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        raise ValueError(f"must be a list of column names or indices, got {_describe(value)}")
    if len(set(map(str, value))) != len(value):
        raise ValueError(f"must not repeat a column, got {value!r}")
    return value


def categorical(value: object) -> str | list[str | int]:
    """``auto`` (text columns), ``none``, or a list of columns."""
    if value in ("auto", "none"):
        return str(value)
    if isinstance(value, list):
        return column_list(value)
    raise ValueError(f"must be auto, none or a list of columns, got {_describe(value)}")


def encoding(value: object) -> str:
    import codecs

    if not isinstance(value, str):
        raise ValueError(f"must be a text encoding name such as utf-8 or latin-1, got {_describe(value)}")
    try:
        codecs.lookup(value)
    except LookupError:
        raise ValueError(f"must be a text encoding such as utf-8, latin-1 or cp1252, got {value!r}") from None
    return value


def fraction_or_path(value: object) -> str | float:
    if isinstance(value, str):
        return value
    return number(0.0, 1.0, max_open=True)(value)


def class_list(value: object) -> list[object]:
    if not isinstance(value, list) or len(value) < 2:
        raise ValueError(f"must be a list of at least two class labels, got {_describe(value)}")
    if len(set(map(str, value))) != len(value):
        raise ValueError(f"must not repeat a class, got {value!r}")
    return value


def delimiter(value: Any) -> str | None:
    if value not in (None, ",", ";", "\t", "|", " "):
        raise ValueError(f"must be one of ',', ';', '\\t', '|', ' ' (or null to detect), got {value!r}")
    return value


def normalizer(value: Any) -> str:
    """One of `losses.NORMALIZERS`; ``sum`` is refused with the reason, not just as unknown."""
    if value == "sum":
        raise ValueError(SUM_REFUSED)
    return choice(*NORMALIZERS)(value)


EARLY_STOPPING_RULES: dict[str, tuple[object, Rule]] = {
    "patience": (5, number(1, integer=True)),
    "min_delta": (0.0, number(0.0)),
}


def early_stopping(value: object) -> dict[str, Any] | None:
    """``null``/``false`` disables; ``true`` or a mapping with ``patience``/``min_delta`` enables."""
    if value is None or value is False:
        return None
    if value is True:
        value = {}
    if not isinstance(value, dict):
        raise ValueError(f"must be false or a mapping with patience and min_delta, got {_describe(value)}")
    resolved: dict[str, Any] = {}
    for key in value:
        if key not in EARLY_STOPPING_RULES:
            hint = _suggestion(str(key), EARLY_STOPPING_RULES)
            raise ValueError(f"has no key {key!r} (expected patience, min_delta){hint}")
    for key, (default, rule) in EARLY_STOPPING_RULES.items():
        try:
            resolved[key] = rule(value.get(key, default))
        except ValueError as error:
            raise ValueError(f".{key} {error}") from None
    return resolved


def plots(value: object) -> bool | list[str]:
    """``true`` (all), ``false`` (none), or a list of plot names."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, list):
        raise ValueError(f"must be true, false or a list of plot names, got {_describe(value)}")
    for name in value:
        choice(*PLOT_NAMES)(name)
    return value


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
    "seed": (0, number(0, integer=True), "fixes the split, the initialization and the batch order"),
}


@dataclass(frozen=True)
class DataConfig:
    source: str
    label: str | int | None
    test: float | str  # a fraction, or the path of a separate labelled file
    val: float
    split: str
    stratify: bool
    standardize: bool
    classes: list[object] | None
    delimiter: str | None
    header: bool | None = None
    features: list[str | int] | None = None
    exclude: list[str | int] | None = None
    id: str | int | None = None
    missing: str = "error"
    categorical: str | list[str | int] = "auto"
    encoding: str = "utf-8"


@dataclass(frozen=True)
class ModelConfig:
    weight_decay: float
    fit_intercept: bool
    dtype: str
    loss: str = "cross_entropy"
    normalizer: str = "softmax"
    temperature: float = 1.0


@dataclass(frozen=True)
class OptimConfig:
    lr: float | str  # a number, or "auto" until a run resolves it (`Config.with_learning_rate`)
    batch_size: int
    epochs: int
    momentum: float
    nesterov: bool
    schedule: str
    step_size: int
    gamma: float
    decay: float
    early_stopping: dict[str, Any] | None  # {"patience", "min_delta"}, or None: disabled
    variance_reduction: str = "none"


@dataclass(frozen=True)
class OutputConfig:
    dir: str | None
    plots: bool | list[str]
    eval_every: int | None
    checkpoint_every: int = 1


@dataclass(frozen=True)
class Config:
    data: DataConfig
    model: ModelConfig
    optim: OptimConfig
    output: OutputConfig
    seed: int
    path: str | None = None  # the file it came from, for messages and relative paths

    def training_settings(self) -> Settings:
        """The numbers `softreg.train.fit` needs, from the ``model`` and ``optim`` sections."""
        model, optim = self.model, self.optim
        stopping = optim.early_stopping or {}
        return Settings(
            weight_decay=model.weight_decay,
            fit_intercept=model.fit_intercept,
            loss=model.loss,
            normalizer=model.normalizer,
            temperature=model.temperature,
            lr=optim.lr,
            batch_size=optim.batch_size,
            epochs=optim.epochs,
            momentum=optim.momentum,
            nesterov=optim.nesterov,
            schedule=optim.schedule,
            step_size=optim.step_size,
            gamma=optim.gamma,
            decay=optim.decay,
            patience=stopping.get("patience"),
            min_delta=stopping.get("min_delta", 0.0),
            variance_reduction=optim.variance_reduction,
            eval_every=self.output.eval_every,
        )

    def with_learning_rate(self, lr: float) -> Config:
        """This config with ``optim.lr`` set to ``lr`` (what a run saves once "auto" has chosen it)."""
        return dataclasses.replace(self, optim=dataclasses.replace(self.optim, lr=lr))

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain YAML-able data (the form saved with a run)."""
        sections = {name: vars(getattr(self, name)).copy() for name in ("data", "model", "optim", "output")}
        return {**sections, "seed": self.seed}


def _suggestion(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a mapping with the same key twice (the later would win silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}; each key may appear once", mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


MAX_CONFIG_BYTES = 1_000_000
MAX_NODES = 100_000  # values in a config once its aliases are expanded (a "billion laughs" has 10^9)


def _check_size(document: Any, where: str) -> None:
    """Refuse a document whose aliases expand to more than MAX_NODES values (counted with a memo,
    so the count itself is linear in the document's size)."""
    sizes: dict[int, int] = {}

    def size(value: Any, depth: int) -> int:
        if depth > 100:
            raise ConfigError(f"{where}: nested more than 100 levels deep")
        if not isinstance(value, (list, dict)):
            return 1
        if id(value) not in sizes:
            children = value.values() if isinstance(value, dict) else value
            sizes[id(value)] = min(MAX_NODES + 1, 1 + sum(size(child, depth + 1) for child in children))
        return sizes[id(value)]

    if size(document, 0) > MAX_NODES:
        raise ConfigError(f"{where}: expands to more than {MAX_NODES} values (aliases repeated?); refusing it")


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a YAML file with ``safe_load``; errors name the file."""
    path = Path(path)
    try:
        if path.exists() and not path.is_file():
            raise ConfigError(f"{path}: is not a regular file; give a YAML config file")
        if path.exists() and path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: is {path.stat().st_size} bytes; a config is at most {MAX_CONFIG_BYTES}")
        text_content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read config file ({error.__class__.__name__}: {error})") from None
    try:
        document = yaml.load(text_content, Loader=_UniqueKeyLoader)  # safe_load, plus duplicate keys refused
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    if document is None:
        document = {}
    _check_size(document, str(path))
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: a config must be a YAML mapping of sections, got {type(document).__name__}")
    return document


def parse_override(assignment: str) -> tuple[list[str], Any]:
    """``"optim.lr=0.05"`` -> (["optim", "lr"], 0.05), the value read as YAML."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. --set optim.lr=0.05")
    try:
        value = yaml.load(raw, Loader=_UniqueKeyLoader) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    except RecursionError:
        raise ConfigError(f"--set {shorten(key)}: the value is nested too deeply") from None
    _check_size(value, f"--set {shorten(key)}")
    return key.strip().split("."), value


def apply_overrides(document: Mapping[str, Any], assignments: Iterable[str]) -> tuple[dict[str, Any], set[str]]:
    """Return a copy of ``document`` with each ``--set`` assignment applied.

    Returns the new document and the set of dotted keys that came from the command line.
    """
    document = {key: (dict(value) if isinstance(value, dict) else value) for key, value in document.items()}
    from_command_line: set[str] = set()
    for assignment in assignments:
        keys, value = parse_override(assignment)
        dotted = ".".join(keys)
        if len(keys) == 1:
            document[keys[0]] = value
        elif len(keys) in (2, 3):
            section = document.get(keys[0])
            section = {} if section is None else section  # "optim:" with nothing under it
            if not isinstance(section, dict):
                raise ConfigError(f"--set {dotted}: {keys[0]} is not a section")
            document[keys[0]] = section
            if len(keys) == 2:
                section[keys[1]] = value
            else:
                inner = section.get(keys[1])
                inner = dict(inner) if isinstance(inner, dict) else {}
                inner[keys[2]] = value
                section[keys[1]] = inner
        else:
            raise ConfigError(f"--set {dotted}: keys have the form section.key")
        from_command_line.add(".".join(keys[:2]))
    return document, from_command_line


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
            hint = _suggestion(str(key), SCHEMA)
            where = "--set" if key in from_command_line else origin
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
                hint = _suggestion(str(key), spec)
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
    for key in ("source", "test"):
        if isinstance(data[key], str):
            base = "." if f"data.{key}" in from_command_line else base_dir
            data[key] = _resolve_path(data[key], base)
    _check_builtin(origin, data["source"])
    if resolved["model"]["normalizer"] == "spherical" and not resolved["model"]["fit_intercept"]:
        raise ConfigError(f"{origin}: model.normalizer: spherical needs model.fit_intercept: true ({SPHERICAL_START})")
    if resolved["optim"]["early_stopping"] and data["val"] == 0:
        raise ConfigError(f"{origin}: optim.early_stopping needs a validation split: set data.val > 0 (e.g. 0.1)")
    return Config(
        data=DataConfig(**data),
        model=ModelConfig(**resolved["model"]),
        optim=OptimConfig(**resolved["optim"]),
        output=OutputConfig(**resolved["output"]),
        seed=resolved["seed"],
        path=None if origin == "config" else origin,
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
