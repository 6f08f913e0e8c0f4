"""``softreg ingest`` with ``engine.kind: dask``: the workers read the source and each keeps its
own shards; the process that asks reads no row and keeps only the manifest.

1. **Pieces.** A Parquet source is cut into pieces of whole chunks (`READ_ROWS` labelled rows; the
   driver reads the files' footers, and where rows may lack a label the workers count each row
   group's labelled rows); a delimited file into byte ranges of whole chunks of data rows, which
   the workers find in its bytes (`softreg.engine.text_pieces`).
2. **Pass 1** (`softreg.cache.pieces.read_piece`), a piece per task: each row gets its part and
   bucket from its index, and its record goes to the worker's scratch folder. Only counts travel
   back: the moments of each chunk's training rows, the labels, the categories, the rows of each
   part in each bucket. The driver merges the moments in the chunks' order (Chan's formula), as
   one process reading the whole source does, and learns the classes, columns and standardizer.
3. **Pass 2**, a bucket at a time: its records are gathered from the workers that read them (in
   the pieces' order), permuted, encoded and standardized (`bucket_slices`), and each shard's rows
   appended to the shard's files on the worker that holds it (shard s on worker s mod W).

A row's shard and its place there depend only on the seed and its index, so the shards hold the
same bytes for any number of workers, and shard s the rows ``plan.shard_ranges`` gives it of a
one-machine `softreg.cache.ingest` of the same config. The manifest lists, per part and shard,
the worker, the rows and each file's path there, size and fingerprint.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from softreg.cache import pieces
from softreg.cache.build import bucket_count, cache_target, described, learn, staged_cache, warn_unseen
from softreg.cache.chunks import merged_pass, record_dtype
from softreg.cache.rows import PARTS, Manifest, check_cacheable
from softreg.cache.sparse import write_manifest
from softreg.engine import plan, text_pieces
from softreg.errors import ClusterError, DataError, warn
from softreg.io.cells import label_policy, unlabelled_note
from softreg.io.fingerprint import fingerprint
from softreg.io.kinds import source_kind
from softreg.io.remote import storage_options
from softreg.io.selection import Selection

if TYPE_CHECKING:
    from softreg.config import Config
    from softreg.engine.joined import Joined

POLL_SECONDS = 1.0  # between looks at whether the ingest's workers are still there
PIECES_PER_WORKER = 4  # pieces of a Parquet source per worker (at least a chunk each): a worker's share in turns
BUCKETS_IN_FLIGHT = 2  # buckets whose rows may be on their way to the shards at once (the memory pass 2 holds)


def cache_name(config: Config, source_print: dict[str, Any]) -> str:
    """The folder of a cache's shards on every worker: a digest of what decides their bytes."""
    from softreg.cache.rows import cache_options

    what = {"options": cache_options(config), "fingerprint": source_print, "shards": config.data.shards}
    return "softreg-cache-" + hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def distributed_ingest(
    config: Config, cache_dir: str | os.PathLike[str], joined: Joined,
    on_rows: Callable[[int, int | None], None] | None = None,
) -> Manifest:
    """Build ``config``'s cache with the workers of ``joined`` (module docstring): the shards on the
    workers, the manifest in ``cache_dir``. Raises DataError for the data, ClusterError for the cluster."""
    check_cacheable(config)
    if source_kind(config.data.source) not in ("delimited", "parquet"):
        raise DataError(f"{config.data.source}: engine.kind: dask ingests delimited text or Parquet; "
                        "ingest this source with engine.kind: numpy")
    target = cache_target(cache_dir)
    source_print = fingerprint(config.data.source)
    document = _Ingest(config, joined, source_print, on_rows).run()
    if fingerprint(config.data.source) != source_print:
        raise DataError(f"{config.data.source}: changed while it was being read; ingest again")
    return _write(config, target, source_print, document)


def _write(config: Config, target: Path, source_print: dict[str, Any], document: dict[str, Any]) -> Manifest:
    with staged_cache(target) as staging:
        written = write_manifest(staging, config, source_print, document["counts"], document["classes"],
                                 document["mean"], document["scale"], {}, document["described"])
    return Manifest(written, target)


@dataclass
class _Plan:
    """Pass 2's plan: rows of each part per bucket, where each bucket's rows start in their part."""

    counts: np.ndarray  # (n_buckets, 3)
    starts: np.ndarray  # (n_buckets, 3): a bucket's first row's place in its part
    ranges: list[list[tuple[int, int]]]  # per part, each shard's rows

    def cuts(self, bucket: int) -> list[list[tuple[int, int, int]]]:
        """Per part, ``(shard, start, stop)`` of the shards that bucket's rows of the part fall in."""
        cuts = []
        for part, shard_ranges in enumerate(self.ranges):
            low, high = int(self.starts[bucket, part]), int(self.starts[bucket, part] + self.counts[bucket, part])
            cuts.append([(shard, max(start, low) - low, min(stop, high) - low)
                         for shard, (start, stop) in enumerate(shard_ranges) if start < high and low < stop])
        return cuts


class _Ingest:
    """One distributed ingest on a joined cluster (`distributed_ingest`)."""

    def __init__(self, config: Config, joined: Joined, source_print: dict[str, Any],
                 on_rows: Callable[[int, int | None], None] | None) -> None:
        self.config, self.joined, self.client, self.workers = config, joined, joined.client, joined.workers
        self.source_print, self.on_rows = source_print, on_rows
        self.n_buckets = bucket_count(config)
        self.scratch: dict[str, str] = {}
        self.unlabelled = 0  # a Parquet source's rows without a label (its windows' pieces do not count them)
        self.wanted: dict[tuple[int, int], str] | None = None  # (part, shard) -> worker: rebuild only these

    def submit(self, function: Callable[..., Any], *args: Any, worker: str | None = None) -> Any:
        where = {} if worker is None else {"workers": [worker], "allow_other_workers": False}
        return self.client.submit(function, *args, pure=False, **where)

    def run(self) -> dict[str, Any]:
        name = cache_name(self.config, self.source_print)
        shard_dirs = self._directories(name)
        self.scratch = self._directories(f".softreg-ingest-{uuid.uuid4().hex[:12]}")
        try:
            piece_list = self._pieces()
            owners = [self.workers[index % len(self.workers)] for index in range(len(piece_list))]
            summaries = self._pass_one(piece_list, owners)
            if not text_pieces.check_counts(piece_list, summaries):  # a cut the readers disagree with
                warn(f"{self.config.data.source}: its byte ranges did not hold the rows planned; "
                     "one worker reads it whole")
                owners = self.workers[:1]
                summaries = self._pass_one([pieces.Piece(0, 0, None)], owners)
            return self._pass_two(summaries, owners, shard_dirs)
        finally:
            for worker, path in self.scratch.items():
                with contextlib.suppress(ClusterError):  # a worker gone has no folder left to remove
                    self.wait(self.submit(pieces.remove_directory, path, worker=worker))

    def _directories(self, name: str) -> dict[str, str]:
        """Per worker, the folder ``name`` in its ``engine.worker_cache``, made; a worker that cannot is exit 2."""
        cache = self.config.engine.worker_cache
        futures = {worker: self.submit(pieces.prepare_directory, cache, name, worker=worker) for worker in self.workers}
        found = {}
        for worker, future in futures.items():
            try:
                found[worker] = self.wait(future)
            except OSError as error:
                where = cache if cache is not None else "its dask local directory"
                raise ClusterError(
                    f"worker {worker} cannot write its cache directory {where} ({error.strerror or error}); "
                    "set engine.worker_cache to a folder every worker can write"
                ) from None
        return found

    def _pieces(self) -> list[pieces.Piece]:
        """The source's pieces: delimited text in byte ranges of whole chunks of data rows
        (`softreg.engine.text_pieces`); Parquet in runs of whole chunks of labelled rows."""
        data = self.config.data
        if source_kind(data.source) != "parquet":
            return text_pieces.delimited_pieces(self.config, int(self.source_print.get("size", 0)),
                                                PIECES_PER_WORKER * len(self.workers), self.workers, self.submit,
                                                self.wait)
        from softreg.io.parquet import read_parquet_layout

        selection = Selection(label=data.label, id=data.id, features=data.features, exclude=data.exclude or ())
        layout = read_parquet_layout(data.source, selection)  # the files' footers: no rows
        policy = label_policy(data.missing)
        futures = [self.submit(pieces.labelled_rows, replace(layout, files=[path], rows=[rows]), policy,
                               data.storage_options)
                   for path, rows in zip(layout.files, layout.rows, strict=True)]
        groups = [self.wait(future)[0] for future in futures]
        self.unlabelled = sum(layout.rows) - sum(sum(counts) for counts in groups)
        return pieces.parquet_pieces(groups, PIECES_PER_WORKER * len(self.workers))

    def _pass_one(self, piece_list: list[pieces.Piece], owners: list[str]) -> list[dict[str, Any]]:
        futures = [self.submit(pieces.read_piece, self.config, piece, self.n_buckets, self.scratch[owner],
                               worker=owner) for piece, owner in zip(piece_list, owners, strict=True)]
        summaries, read = [], 0
        for future in futures:
            summary = self.wait(future)
            read += summary["n_read"]
            if self.on_rows is not None:
                self.on_rows(read, None)
            summaries.append(summary)
        for message in dict.fromkeys(message for summary in summaries for message in summary["warnings"]):
            warn(message)
        return summaries

    def _pass_two(self, summaries: list[dict[str, Any]], owners: list[str],
                  shard_dirs: dict[str, str]) -> dict[str, Any]:
        config = self.config
        merged, label_maps, code_maps = merged_pass(self.config, summaries, self.n_buckets)
        merged.unlabelled += self.unlabelled  # a Parquet source's pieces are windows of its labelled rows
        if merged.unlabelled:  # said here once, for every piece
            warn(unlabelled_note(config.data.source, merged.unlabelled))
        counts = merged.counts.sum(axis=0).tolist()
        info = summaries[0]["info"]
        learnt = learn(config, info, merged.layout, merged, counts)
        n_shards = config.data.shards
        ranges = [plan.shard_ranges(count, n_shards) for count in counts]
        starts = np.vstack([np.zeros((1, 3), dtype=np.int64), np.cumsum(merged.counts, axis=0)[:-1]])
        the_plan = _Plan(merged.counts, starts, ranges)
        placed = {(part, shard): self.workers[shard % len(self.workers)]
                  for part in range(len(PARTS)) for shard in range(n_shards) if counts[part]}
        if self.wanted is not None:
            placed = self.wanted
        d = len(learnt.how.mean)
        last: dict[tuple[int, int], Any] = {}
        for (part, shard), worker in placed.items():
            start, stop = ranges[part][shard]
            last[(part, shard)] = self.submit(pieces.open_shard, shard_dirs[worker], PARTS[part], shard,
                                              stop - start, d, config.model.dtype, worker=worker)
        record = record_dtype(merged.layout)
        unseen: dict[str, int] = {}
        waves: list[tuple[Any, list[Any]]] = []
        for bucket in range(self.n_buckets):
            if len(waves) >= BUCKETS_IN_FLIGHT:
                self._settle(waves.pop(0), unseen)
            fragments = [
                self.submit(pieces.read_fragment, self.scratch[owner], index, bucket, record, label_maps[index],
                            code_maps[index], worker=owner)
                for index, owner in enumerate(owners)
            ]
            slices = self.submit(pieces.bucket_slices, fragments, bucket, config.seed, learnt.how,
                                 the_plan.cuts(bucket))
            appends = []
            for part, part_cuts in enumerate(the_plan.cuts(bucket)):
                for shard, _, _ in part_cuts:
                    holder = placed.get((part, shard))
                    if holder is None:
                        continue
                    rows = self.submit(pieces.pick, slices, (part, shard))
                    last[(part, shard)] = self.submit(pieces.append_shard, shard_dirs[holder], PARTS[part],
                                                      shard, rows, last[(part, shard)], worker=holder)
                    appends.append(last[(part, shard)])
            waves.append((self.submit(pieces.unseen_of, slices), appends))
        for wave in waves:
            self._settle(wave, unseen)
        warn_unseen(config.data.source, unseen)
        closing = {
            (part, shard): self.submit(pieces.close_shard, shard_dirs[worker], PARTS[part], shard,
                                       ranges[part][shard][1] - ranges[part][shard][0], len(learnt.classes),
                                       last[(part, shard)], worker=worker)
            for (part, shard), worker in placed.items()
        }
        placement: dict[str, list[dict[str, Any]]] = {}
        for (part, shard), future in closing.items():
            files, per_class = self.wait(future)
            start, stop = ranges[part][shard]
            placement.setdefault(PARTS[part], []).append(
                {"worker": placed[(part, shard)], "rows": stop - start, "files": files, "class_counts": per_class})
        document_fields = described(config, info, learnt, merged.unlabelled, self.n_buckets)
        document_fields.update(placement=placement, worker_shards=n_shards, pieces=len(owners),
                               worker_folders=sorted(set(shard_dirs.values())))
        return {"counts": counts, "classes": learnt.classes, "mean": learnt.how.mean, "scale": learnt.how.scale,
                "described": document_fields}

    def _settle(self, wave: tuple[Any, list[Any]], unseen: dict[str, int]) -> None:
        """Wait for a bucket's appends; count its unseen categories."""
        counted, appends = wave
        for future in appends:
            self.wait(future)
        for name, count in self.wait(counted).items():
            unseen[name] = unseen.get(name, 0) + count

    def wait(self, future: Any) -> Any:
        """The future's result. Tasks are pinned to the worker holding their files, and dask waits
        forever for a worker that left: every POLL_SECONDS the ingest's workers are looked up, and
        one the scheduler no longer has stops the ingest (nothing is written: it starts over)."""
        while True:
            try:
                return future.result(timeout=POLL_SECONDS)
            except TimeoutError:
                live = set(self.client.scheduler_info()["workers"])
                gone = [worker for worker in self.workers if worker not in live]
                if gone:
                    raise ClusterError(
                        f"worker {gone[0]} left the cluster during the ingest, with its part of the rows; "
                        "run softreg ingest again (it starts over: nothing was written)"
                    ) from None


def rebuild_shards(
    config: Config, joined: Joined, manifest: Manifest, lost: dict[str, list[int]], worker: str
) -> dict[str, list[dict[str, Any]]]:
    """Write the shards ``lost`` (per part, their numbers) of the cache ``manifest`` describes again,
    from the source, on ``worker``: the source read again by ``joined``'s workers, and only those
    shards' rows kept. Returns their placement entries (in the order of ``lost``), each checked to
    hold the bytes the manifest recorded (else the source changed: a SoftregError)."""
    import warnings

    from softreg.errors import SoftregError, SoftregWarning

    ingest = _Ingest(config, joined, manifest.document["fingerprint"], None)
    ingest.wanted = {(PARTS.index(part), shard): worker for part, shards in lost.items() for shard in shards}
    with warnings.catch_warnings(), storage_options(config.data.storage_options):
        warnings.simplefilter("ignore", SoftregWarning)  # what ingest said about the data, it said before
        rebuilt = ingest.run()["described"]["placement"]
    recorded = manifest.document["placement"]
    for part, entries in rebuilt.items():
        for entry, shard in zip(entries, lost[part], strict=True):
            for name, written in entry["files"].items():
                if written["ends"] != recorded[part][shard]["files"][name]["ends"]:
                    raise SoftregError(
                        f"{config.data.source}: shard {part} {shard} written again differs from the one ingest wrote "
                        "(the source changed?); ingest again: softreg ingest"
                    )
    return rebuilt
