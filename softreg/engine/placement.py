"""Where the shards of a cache that `softreg.engine.ingest` left on the workers are now.

The manifest names the worker that wrote each shard, and the shard's files there (paths, sizes,
fingerprints). Workers come and go: a worker restarted on the same machine has another address
and the same disk. So each live worker is asked which shards it holds (the files at their paths,
of their sizes and fingerprints), and a shard is found where it is, its writer first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from softreg.cache.manifest import PLACED, shard_ends

if TYPE_CHECKING:
    from softreg.cache.rows import Manifest
    from softreg.engine.joined import Joined


def held_shards(placement: dict[str, list[dict[str, Any]]]) -> list[tuple[str, int]]:
    """On a worker: the ``(part, shard)`` of ``placement`` whose files it holds, as ingest wrote them."""
    held = []
    for part, shards in placement.items():
        for index, shard in enumerate(shards):
            if all(_intact(shard["files"][name]) for name in PLACED):
                held.append((part, index))
    return held


def _intact(entry: dict[str, Any]) -> bool:
    path = Path(entry["file"])
    try:
        return os.stat(path).st_size == entry["bytes"] and shard_ends(path) == entry["ends"]
    except OSError:
        return False


def locate(manifest: Manifest, joined: Joined) -> dict[str, list[str | None]]:
    """Per part, the live worker holding each shard (its writer if it still does; None: no worker)."""
    placement = manifest.document["placement"]
    answers = joined.client.run(held_shards, placement, workers=joined.workers)
    found: dict[str, list[str | None]] = {}
    for part, shards in placement.items():
        found[part] = []
        for index, shard in enumerate(shards):
            holders = [worker for worker in joined.workers if (part, index) in map(tuple, answers.get(worker, []))]
            found[part].append(shard["worker"] if shard["worker"] in holders else (holders[0] if holders else None))
    return found


def lost(found: dict[str, list[str | None]], manifest: Manifest) -> str | None:
    """One sentence naming the shards no live worker holds, and the workers that wrote them (None: none lost)."""
    placement = manifest.document["placement"]
    gone = [(part, index) for part, workers in found.items() for index, worker in enumerate(workers) if worker is None]
    if not gone:
        return None
    writers = sorted({placement[part][index]["worker"] for part, index in gone})
    shown = ", ".join(f"{part} {index}" for part, index in gone[:6]) + (" ..." if len(gone) > 6 else "")
    return f"no live worker holds shard(s) {shown} (written by {', '.join(writers)})"




def record(manifest: Manifest, part: str, shard: int, entry: dict[str, Any]) -> None:
    """Record that shard ``shard`` of ``part`` is now ``entry`` (written again elsewhere), in the
    manifest and its file (its digest renewed, written atomically)."""
    from softreg.cache.manifest import digest
    from softreg.rundir.files import write_json

    manifest.document["placement"][part][shard] = entry
    manifest.document["digest"] = digest(manifest.document)
    write_json(manifest.directory / "manifest.json", manifest.document)
