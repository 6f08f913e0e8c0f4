"""``softreg ingest``: a config's data into a shuffled on-disk cache (`softreg.cache`)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from softreg.cache import Manifest, ingest, read_manifest, stale_reason
from softreg.cache.manifest import problem
from softreg.cache.staging import remove_abandoned
from softreg.config import Config
from softreg.errors import UsageError
from softreg.io.remote import storage_options


@dataclass
class IngestOutcome:
    manifest: Manifest
    rebuilt: bool  # False: the cache was already up to date
    reason: str | None  # why an existing cache was rebuilt
    seconds: float


def ingest_run(
    config: Config, cache_dir: str | PathLike[str] | None = None,
    on_rows: Callable[[int, int | None], None] | None = None,
) -> IngestOutcome:
    """Build ``config``'s cache in ``cache_dir`` (else ``data.cache``), unless it is up to date;
    ``on_rows(rows, offset)`` hears of the rows and bytes read so far (see `softreg.cache.ingest`)."""
    directory = cache_dir if cache_dir is not None else config.data.cache
    if directory is None:
        raise UsageError("give --cache DIR, or set data.cache in the config")
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, cache=str(Path(directory))))
    with storage_options(config.data.storage_options):
        return _ingest(config, directory, on_rows)


def _ingest(
    config: Config, directory: str | PathLike[str], on_rows: Callable[[int, int | None], None] | None
) -> IngestOutcome:
    start = time.perf_counter()
    remove_abandoned(Path(directory).resolve().parent)  # what killed ingests left there, up to date or not
    existing = read_manifest(directory)
    on_workers = config.engine.kind == "dask"
    reason = None if existing is None else problem(existing) or stale_reason(existing, config, on_workers)
    if not on_workers:
        if existing is not None and reason is None:
            return IngestOutcome(existing, rebuilt=False, reason=None, seconds=time.perf_counter() - start)
        manifest = ingest(config, directory, on_rows)
        return IngestOutcome(manifest, rebuilt=True, reason=reason, seconds=time.perf_counter() - start)
    from softreg.engine.cluster import join
    from softreg.engine.ingest import distributed_ingest
    from softreg.engine.placement import locate, lost

    joined = join(config.engine)
    try:
        if existing is not None and reason is None:
            reason = lost(locate(existing, joined), existing)  # the shards a worker no longer holds
            if reason is None:
                return IngestOutcome(existing, rebuilt=False, reason=None, seconds=time.perf_counter() - start)
        manifest = distributed_ingest(config, directory, joined, on_rows)
    finally:
        joined.close()
    return IngestOutcome(manifest, rebuilt=True, reason=reason, seconds=time.perf_counter() - start)


def ingest_summary(outcome: IngestOutcome) -> str:
    """One line per fact: where, what, how long."""
    document = outcome.manifest.document
    counts = document["n"]
    state = "wrote" if outcome.rebuilt else "up to date:"
    lines = [
        f"{state} {outcome.manifest.directory} ({document['dtype']}, shuffled with seed {document['seed']})",
        f"rows: {counts['train']} train, {counts['val']} val, {counts['test']} test; "
        f"{document['n_features']} features, {len(document['classes'])} classes",
    ]
    if document.get("placement"):  # a cache on the workers
        workers = len({entry["worker"] for entries in document["placement"].values() for entry in entries})
        read = f", the source read in {document['pieces']} pieces" if document.get("pieces", 1) > 1 else ""
        lines.append(f"shards on {workers} worker{'s' if workers > 1 else ''}{read}")
    if outcome.reason is not None:
        lines.append(f"rebuilt because {outcome.reason}")
    if outcome.rebuilt:
        lines.append(f"took {outcome.seconds:.1f} s")
    return "\n".join(lines)


class RowProgress:
    """``on_rows`` for the command line: at most one line every ``every`` seconds, through ``echo``:
    ``ingest: N rows read (R rows/s)``, and where the reader knows its place in a source of
    ``total_bytes``, the megabytes read of the total, the share and the time left at this rate."""

    def __init__(self, echo: Callable[[str], None], every: float = 5.0, total_bytes: int | None = None) -> None:
        self.echo, self.every, self.total_bytes = echo, every, total_bytes
        self.start = self.last = time.perf_counter()

    def __call__(self, n_rows: int, offset: int | None = None) -> None:
        now = time.perf_counter()
        if now - self.last < self.every:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        line = f"ingest: {n_rows:,} rows read ({n_rows / elapsed:,.0f} rows/s)"
        total = self.total_bytes
        if offset is not None and total:
            done = min(offset, total)
            left = elapsed * (total - done) / max(done, 1)
            line += (f", {done / 1e6:,.0f} of {total / 1e6:,.0f} MB ({100 * done / total:.0f}%), "
                     f"about {_duration(left)} left to read")
        self.echo(line)


def _duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``2 h 4 min``."""
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"
