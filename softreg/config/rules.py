"""Value rules of the config: each takes a YAML value and returns it normalized, or raises
ValueError("must be ..., got ...") that the schema turns into a message naming the key."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeAlias

from softreg.config.suggest import did_you_mean
from softreg.io.cells import is_number
from softreg.io.remote import check_options
from softreg.losses import NORMALIZERS, SUM_REFUSED
from softreg.train import AUTO

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


def plain(value: Any) -> Any:
    """A NumPy scalar (``np.int64(5)`` from ``np.arange``, ``np.float32``, ``np.bool_``) or 0-d
    array as the Python number or bool it holds; anything else unchanged.

    scikit-learn's searches hand estimator parameters over as NumPy scalars: they are the
    numbers a user wrote, so every rule reads them as such.
    """
    if getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
        item = value.item()
        if isinstance(item, (bool, int, float)):
            return item
    return value


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
        value = plain(value)
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


def _or_auto(value: object, rule: Rule, expected: str) -> Any:
    """``value`` checked by ``rule``, or "auto"; other text is refused naming ``expected``."""
    if isinstance(value, str) and not is_number(value):
        if value == AUTO:
            return AUTO
        raise ValueError(f"must be {expected} or {AUTO}, got {value!r}{did_you_mean(value, [AUTO])}")
    return rule(value)


def learning_rate(value: object) -> float | str:
    """A number > 0, or "auto" (chosen from the training data when training starts)."""
    return _or_auto(value, number(0.0, min_open=True), "a number > 0")


def count_or_auto(value: object) -> int | str:
    """A whole number >= 1, or "auto" (optim.epochs, output.checkpoint_every: chosen from the run)."""
    return _or_auto(value, number(1, integer=True), "a whole number >= 1")


def boolean(value: object) -> bool:
    value = plain(value)
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


def scheduler_address(value: object) -> str:
    """``local``, or a Dask scheduler address: ``tcp://host:port`` (or another protocol, or host:port)."""
    import re

    if value == "local":
        return "local"
    address = r"([a-z][a-z0-9+]*://)?(\[[0-9a-fA-F:.]+\]|[^\s/:\[\]]+)(:[0-9]{1,5})?/?"  # [::1] for IPv6
    if not isinstance(value, str) or not re.fullmatch(address, value):
        raise ValueError(f"must be local or a scheduler address such as tcp://host:8786, got {_describe(value)}")
    return value


def choice(*options: str) -> Rule:
    def check(value: Any) -> str:
        if value not in options:
            hint = did_you_mean(str(value), options)
            raise ValueError(f"must be one of {', '.join(options)}, got {_describe(value)}{hint}")
        return value

    return check


def optional(rule: Rule) -> Rule:
    def check(value: object) -> Any:
        return None if value is None else rule(value)

    return check


def column_ref(value: object) -> str | int:
    """A column name (string) or a 0-based index (negative counts from the end)."""
    value = plain(value)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"must be a column name or index, got {_describe(value)}")
    return value


def column_list(value: object) -> list[str | int]:
    """A list of column names or 0-based indices."""
    value = [plain(v) for v in value] if isinstance(value, list) else value
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


_BYTE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


_BYTES_EXPECTED = 'must be bytes as an integer or a size such as "512MB" or "2GiB", got '


def byte_size(value: object) -> int:
    """Bytes: a positive integer, or a string such as "512MB", "1.5GiB" (decimal or binary units)."""
    import re

    value = plain(value)

    if isinstance(value, int) and not isinstance(value, bool):
        amount = float(value)
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([A-Za-z]*)\s*", value)
        unit = match.group(2).upper() if match else ""
        if match is None or unit not in _BYTE_UNITS:
            raise ValueError(_BYTES_EXPECTED + _describe(value))
        amount = float(match.group(1)) * _BYTE_UNITS[unit]
    else:
        raise ValueError(_BYTES_EXPECTED + _describe(value))
    if not 2**20 <= amount <= 2**60:
        raise ValueError(f"must be between 1 MiB and 1 EiB, got {_describe(value)}")
    return int(amount)


def delimiter(value: Any) -> str | None:
    if value not in (None, ",", ";", "\t", "|", " "):
        raise ValueError(f"must be one of ',', ';', '\\t', '|', ' ' (or null to detect), got {value!r}")
    return value


def normalizer(value: Any) -> str:
    """One of `losses.NORMALIZERS`; ``sum`` is refused with the reason, not just as unknown."""
    if value == "sum":
        raise ValueError(SUM_REFUSED)
    return choice(*NORMALIZERS)(value)


def storage_options(value: object) -> dict[str, Any] | None:
    """``null``, or a mapping of fsspec storage options with text keys and none that holds a credential."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(key, str) and key for key in value):
        raise ValueError(f"must be a mapping of option names to values, got {_describe(value)}")
    check_options(value)
    return dict(value)


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
            hint = did_you_mean(str(key), EARLY_STOPPING_RULES)
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
