"""The grids of `softreg sweep`: ``KEY=V1,V2,...`` read as YAML values, checked against the
config schema, and their Cartesian product as filesystem-safe run names."""

from __future__ import annotations

import difflib
import hashlib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from softreg.config import SCHEMA
from softreg.config.suggest import key_suggestion
from softreg.errors import ConfigError, UsageError

# the columns of sweep.csv after the grid keys; "seconds" is the only one that depends on timing


NOT_GRIDDED = {"output.dir": "each run's directory is OUT/NAME"}

@dataclass(frozen=True)
class Grid:
    """One ``--grid KEY=V1,V2,...``: the dotted key, the YAML-typed values and their text as given."""

    key: str
    values: tuple[Any, ...]
    texts: tuple[str, ...]

@dataclass(frozen=True)
class Combination:
    """One point of the grid: its run directory's name, its ``KEY=VALUE`` assignments and values."""

    index: int
    name: str
    assignments: tuple[str, ...]
    values: dict[str, Any]


def split_values(text: str) -> list[str]:
    """``"1e-4,[3, 8],'a,b'"`` -> ``["1e-4", "[3, 8]", "'a,b'"]``: commas inside brackets or quotes stay."""
    parts, depth, quote, start = [], 0, "", 0
    for position, character in enumerate(text):
        if quote:
            quote = "" if character == quote else quote
        elif character in "'\"":
            quote = character
        elif character in "[{":
            depth += 1
        elif character in "]}":
            depth -= 1
        elif character == "," and depth == 0:
            parts.append(text[start:position].strip())
            start = position + 1
    parts.append(text[start:].strip())
    return parts

def parse_grid(assignment: str) -> Grid:
    """``"model.weight_decay=1e-5,1e-4"`` -> Grid; values are read as YAML, as ``--set`` reads them."""
    key, sep, raw = assignment.partition("=")
    key = key.strip()
    if not sep or not key or not raw.strip():
        raise UsageError(f"--grid {assignment!r}: expected KEY=V1,V2,..., e.g. --grid model.weight_decay=1e-4,1e-3")
    texts = split_values(raw)
    if any(not text for text in texts):
        raise UsageError(f"--grid {key}: an empty value in {raw!r}")
    if len(set(texts)) != len(texts):
        raise UsageError(f"--grid {key}: repeats a value in {raw!r}")
    values = []
    for text in texts:
        try:
            values.append(yaml.safe_load(text))
        except yaml.YAMLError:
            values.append(text)
    return Grid(key, tuple(values), tuple(texts))

def check_grid(grid: Grid) -> Grid:
    """The key must be a config key (with "did you mean") and each value must pass its rule;
    returns the grid with the values as the rules normalize them ("1e-4" -> 0.0001)."""
    known = [
        name if isinstance(spec, tuple) else f"{name}.{key}"
        for name, spec in SCHEMA.items()
        for key in ((None,) if isinstance(spec, tuple) else spec)
    ]
    if grid.key not in known:
        section, _, name = grid.key.rpartition(".")
        hint = key_suggestion(section or None, name, SCHEMA, dotted_only=True)
        close = difflib.get_close_matches(grid.key, known, n=1, cutoff=0.6)
        hint = hint or (f" (did you mean {close[0]!r}?)" if close else "")
        raise ConfigError(f"--grid {grid.key}: unknown config key{hint}; keys look like model.weight_decay")
    if grid.key in NOT_GRIDDED:
        raise UsageError(f"--grid {grid.key}: cannot be a grid key ({NOT_GRIDDED[grid.key]})")
    section, _, name = grid.key.partition(".")
    spec = SCHEMA[section]
    rule = spec[1] if isinstance(spec, tuple) else spec[name][1]
    values = []
    for value in grid.values:
        try:
            values.append(rule(value))
        except ValueError as error:
            raise ConfigError(f"--grid {grid.key}: {error}") from None
    return Grid(grid.key, tuple(values), grid.texts)

def combinations(grids: Sequence[Grid]) -> list[Combination]:
    """The Cartesian product of the grids in the order given (the first grid varies slowest)."""
    short = [grid.key.rpartition(".")[2] for grid in grids]
    labels = [name if short.count(name) == 1 else grid.key for name, grid in zip(short, grids, strict=True)]
    points = itertools.product(*(range(len(grid.values)) for grid in grids))
    result = []
    for index, point in enumerate(points):
        chosen = [(grid, grid.texts[i], grid.values[i]) for grid, i in zip(grids, point, strict=True)]
        name = _short("__".join(f"{label}-{_safe(text)}" for label, (_, text, _) in zip(labels, chosen, strict=True)))
        result.append(Combination(
            index=index,
            name=name,
            assignments=tuple(f"{grid.key}={text}" for grid, text, _ in chosen),
            values={grid.key: value for grid, _, value in chosen},
        ))
    return result

def _safe(text: str) -> str:
    """A value's text as part of a file name: kept when it is letters, digits and ``._+-``,
    else those characters plus a short hash of the text (distinct texts, distinct names)."""
    safe = re.sub(r"[^A-Za-z0-9._+-]", "_", text)[:40]
    if safe == text:
        return text
    return f"{safe}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


NAME_LIMIT = 120  # characters of a run's name: its staging and lock names stay far below a file name's 255 bytes


def _short(name: str) -> str:
    """``name`` when at most `NAME_LIMIT` characters, else its first 100 and a hash of the whole
    (distinct names stay distinct; sweep.csv's grid columns say what each run is)."""
    if len(name) <= NAME_LIMIT:
        return name
    return f"{name[:100]}--{hashlib.sha1(name.encode()).hexdigest()[:12]}"
