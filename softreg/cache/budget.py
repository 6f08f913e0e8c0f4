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

import csv
import dataclasses
import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from softreg.delimited import sniff_delimiter
from softreg.sources import BUILTIN_PREFIX, DELIMITED_SUFFIXES, looks_like_svmlight, source_kind

if TYPE_CHECKING:
    from softreg.config import Config

BUDGET_FRACTION = 0.5  # of the available memory, when data.memory_budget is unset
FALLBACK_AVAILABLE = 2**30  # bytes assumed available where the system does not say
IN_MEMORY_COPIES = 4
SNIFF_BYTES = 2**16  # the start of a delimited file read to estimate its rows
CACHE_FOLDER = "softreg-cache"  # beside the run directory: where train puts a cache it chose itself

# rows x features of the builtin sets (scikit-learn's; tests/test_cache.py checks them)
BUILTIN_SHAPES = {"iris": (150, 4), "digits": (1797, 64), "wine": (178, 13), "breast_cancer": (569, 30)}

# bytes a row of delimited text takes per column while a chunk is parsed: the cells as Python
# strings in lists and as a numpy string array, then the float64 values (measured: about 200)
TEXT_BYTES_PER_CELL = 256
MIN_CHUNK_ROWS = 64


def available_memory(meminfo: str | os.PathLike[str] = "/proc/meminfo",
                     cgroup: str | os.PathLike[str] = "/sys/fs/cgroup") -> int:
    """Bytes of memory available now: MemAvailable, capped by the cgroup v2 limit less its usage."""
    available = None
    try:
        for line in Path(meminfo).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            available = FALLBACK_AVAILABLE
    try:
        limit = (Path(cgroup) / "memory.max").read_text().strip()
        if limit != "max":
            used = int((Path(cgroup) / "memory.current").read_text())
            available = min(available, max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return int(available)


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


def estimated_rows(file_bytes: int, header_bytes: int, sample_bytes: int, sample_rows: int) -> int:
    """Data rows of a delimited file of ``file_bytes``, from ``sample_rows`` whole rows that take
    ``sample_bytes`` after a header of ``header_bytes``: the rest of the file at the same bytes per row."""
    if sample_rows == 0 or sample_bytes == 0:
        return 0
    return max(sample_rows, round((file_bytes - header_bytes) * sample_rows / sample_bytes))


def chunk_rows(budget: int, n_columns: int, at_most: int) -> int:
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
    kind = source_kind(source)
    if kind == "builtin":
        shape = BUILTIN_SHAPES.get(source[len(BUILTIN_PREFIX):])
        return None if shape is None else Footprint(*shape, estimated=False)
    path = Path(source)
    if source == "-" or kind == "svmlight" or not path.is_file():
        return None
    try:
        if kind == "npz":
            return _npz_footprint(path)
        if path.suffix.lower() not in DELIMITED_SUFFIXES and looks_like_svmlight(path):
            return None
        return _delimited_footprint(path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, csv.Error):  # the loader will say
        return None


def _npz_footprint(path: Path) -> Footprint | None:
    import numpy as np

    with zipfile.ZipFile(path) as archive, archive.open("X.npy") as member:  # its header alone, not the data
        version = np.lib.format.read_magic(member)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, _ = read_header(member)
    if len(shape) != 2:
        return None
    return Footprint(int(shape[0]), int(shape[1]), estimated=False)


def _delimited_footprint(path: Path) -> Footprint | None:
    """Rows from the file's size and its first `SNIFF_BYTES`; features: the columns but the label."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        start = handle.read(SNIFF_BYTES)
    lines = start.splitlines(keepends=True)
    if len(start) == size:  # the whole file: count, do not estimate
        whole = [line for line in lines if line.strip()]
        if not whole:
            return None
        return Footprint(len(whole) - 1, max(1, _columns(whole[0]) - 1), estimated=True)
    complete = [line for line in lines[:-1] if line.strip()]  # the last line read may be cut short
    if len(complete) < 2:
        return None
    header, rows = complete[0], complete[1:]
    n_rows = estimated_rows(size, len(header), sum(map(len, rows)), len(rows))
    return Footprint(n_rows, max(1, _columns(header) - 1), estimated=True)


def _columns(line: bytes) -> int:
    text = line.decode("utf-8", errors="replace").lstrip("\ufeff")
    delimiter = sniff_delimiter(text)
    return len(next(csv.reader([text.rstrip("\r\n")], delimiter=delimiter)))


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
