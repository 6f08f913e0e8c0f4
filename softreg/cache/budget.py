"""``data.memory_budget``: how much memory the data may take, whether they fit it, and the
cache that ``train`` uses by itself when they do not.

The budget is ``data.memory_budget`` when set, else `BUDGET_FRACTION` of the memory available
now (``MemAvailable`` of /proc/meminfo, capped by a cgroup's limit; ``os.sysconf`` elsewhere).
Data that are not cached need about `in_memory_bytes` to train: rows x (features + 1) float64
values, `IN_MEMORY_COPIES` times (the raw values, the split and standardized parts, the
batches). The rows of a delimited file are estimated from its size and its first lines,
before anything is loaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from softreg.io.footprint import source_shape
from softreg.prepare.data import available_memory

if TYPE_CHECKING:
    from softreg.config import Config

BUDGET_FRACTION = 0.5  # of the available memory, when data.memory_budget is unset
IN_MEMORY_COPIES = 4
CACHE_FOLDER = "softreg-cache"  # beside the run directory: where train puts a cache it chose itself

# bytes a row of delimited text takes per column while a chunk is parsed: the cells as Python
# strings in lists and as a numpy string array, then the float64 values (measured: about 200)
TEXT_BYTES_PER_CELL = 256
MIN_CHUNK_ROWS = 64


def memory_budget(configured: int | None) -> int:
    """``data.memory_budget`` in bytes, else `BUDGET_FRACTION` of `available_memory`."""
    return configured if configured is not None else int(BUDGET_FRACTION * available_memory())


def run_budget(run_dir: str | os.PathLike[str]) -> int:
    """The memory budget of a run directory's commands: its config.yaml's ``data.memory_budget``
    (bytes), else the default (a run without a config, or one trained before the key existed)."""
    from softreg import rundir
    from softreg.config import read_yaml
    from softreg.errors import ConfigError

    try:
        data = read_yaml(Path(run_dir) / rundir.CONFIG).get("data")
    except ConfigError:
        data = None
    configured = data.get("memory_budget") if isinstance(data, dict) else None
    return memory_budget(configured if isinstance(configured, int) and not isinstance(configured, bool) else None)


def in_memory_bytes(n_rows: int, n_features: int) -> int:
    """What training ``n_rows`` x ``n_features`` in memory takes, about (see the module's note)."""
    return n_rows * (n_features + 1) * 8 * IN_MEMORY_COPIES


def needs_cache(n_rows: int, n_features: int, budget: int) -> bool:
    """Whether data of this size go through a cache: their in-memory footprint exceeds ``budget`` bytes."""
    return in_memory_bytes(n_rows, n_features) > budget


def read_chunk_rows(budget: int, n_columns: int, at_most: int) -> int:
    """Rows of delimited text to parse at a time so that a chunk takes about a quarter of ``budget``."""
    return max(MIN_CHUNK_ROWS, min(at_most, budget // (4 * TEXT_BYTES_PER_CELL * max(1, n_columns))))


@dataclass(frozen=True)
class Footprint:
    """The size of a source's data, known or estimated before loading it."""

    n_rows: int
    n_features: int
    estimated: bool  # delimited text: rows and columns estimated from the file's start and size

    @property
    def bytes(self) -> int:
        return in_memory_bytes(self.n_rows, self.n_features)


def footprint(source: str) -> Footprint | None:
    """The size of ``source``'s data (None when it cannot be told before reading it: standard
    input, svmlight, an unreadable file: then the loader says what is wrong)."""
    shape = source_shape(source)
    return None if shape is None else Footprint(*shape)


def default_cache_dir(config: Config, run_dir: str | os.PathLike[str]) -> Path:
    """Where ``train`` keeps a cache it chose itself: ``softreg-cache/<source name>-<hash>`` beside
    the run directory, one per source and data options, so that later runs of the same data reuse it."""
    from softreg.cache.rows import cache_options

    options = json.dumps(cache_options(config), sort_keys=True, default=str)
    digest = hashlib.sha256(options.encode()).hexdigest()[:10]
    name = Path(config.data.source.replace(":", "-")).stem or "data"
    return (Path(run_dir).resolve().parent / CACHE_FOLDER / f"{name}-{digest}").resolve()


def auto_cache(config: Config, run_dir: str | os.PathLike[str]) -> tuple[Config, str | None]:
    """``config`` with ``data.cache`` set to `default_cache_dir` when its data do not fit the memory
    budget (and a cache can hold them), with one line that says why; else ``config`` and None.

    A source too large for the budget that a cache cannot hold yet (svmlight, or data options a
    cache does not support) is loaded into memory, with a warning.
    """
    from softreg.cache.rows import unsupported_options
    from softreg.errors import warn

    data = config.data
    if data.cache is not None:
        return config, None
    size = footprint(data.source)
    budget = memory_budget(data.memory_budget)
    if size is None or not needs_cache(size.n_rows, size.n_features, budget):
        return config, None
    about = "about " if size.estimated else ""
    what = (
        f"{data.source}: {about}{size.n_rows:,} rows x {size.n_features} features take {about}"
        f"{_megabytes(size.bytes)} in memory, more than data.memory_budget ({_megabytes(budget)})"
    )
    unsupported = unsupported_options(config)
    if unsupported is not None:
        warn(f"{what}, but {unsupported} is not supported with a data cache yet; loading it into memory")
        return config, None
    target = default_cache_dir(config, run_dir)
    cached = dataclasses.replace(config, data=dataclasses.replace(data, cache=str(target)))
    return cached, f"{what}; training from a data cache in {target}"


def _megabytes(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:,.1f} MB"
