"""Reading a config: YAML with duplicate keys, oversized documents and deep or exploding
aliases refused, and ``--set KEY=VALUE`` overrides read as YAML."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from softreg.config.rules import shorten
from softreg.errors import ConfigError


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
