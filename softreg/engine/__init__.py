"""Sharded training: the same minibatch SGD with the exact summed gradient, the rows in shards.

``data.shards: S`` cuts the cache's training part into S row ranges and fixes the batch plan
(`plan`): every step takes ``batch_size / S`` rows from each shard. An engine holds the
shards and answers each step with one `softreg.train.PartialSums` per shard, which the
training loop adds in shard order: ``engine.kind: numpy`` computes them in this process
(`shards.NumpyEngine`), ``engine.kind: dask`` on the workers of a Dask cluster
(`dask.DaskEngine`: on each worker one actor that opens its shards by path). Both call one
function, `shards.shard_partial_sums`, on the same rows, so the weights are the same bits
on either engine and for any number of workers. With ``data.shards: 1`` and the numpy engine (the
defaults) training does not come here at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from softreg.engine import plan
from softreg.engine.shards import CacheShard, NumpyEngine, ShardGroup, ShardSpec, shard_partial_sums
from softreg.engine.source import ShardedData, ShardEngine
from softreg.errors import DataError
from softreg.train import TrainingData

if TYPE_CHECKING:
    from softreg.config import Config

__all__ = [
    "CacheShard",
    "NumpyEngine",
    "ShardEngine",
    "ShardGroup",
    "ShardSpec",
    "ShardedData",
    "ShardedParts",
    "open_engine",
    "plan",
    "shard_partial_sums",
    "shard_specs",
    "sharded",
]


class ShardedParts(NamedTuple):
    """The parts on an engine: training, validation (None without), test (on the workers only)."""

    train: ShardedData
    val: ShardedData | None
    test: ShardedData | None = None


def sharded(config: Config) -> bool:
    """Whether ``config`` trains through an engine (more than one shard, or Dask)."""
    return config.data.shards > 1 or config.engine.kind == "dask"


def shard_specs(cache_dir: str | Path, part: str, n_shards: int) -> list[ShardSpec] | None:
    """The ``n_shards`` shards of the cache part ``part`` (None when the part is empty)."""
    from softreg.cache import load_part, part_files, read_manifest
    from softreg.cache.manifest import problem

    manifest = read_manifest(cache_dir)
    if manifest is None:
        raise DataError(f"{cache_dir}: no complete data cache; ingest it first (softreg ingest)")
    reason = problem(manifest)
    if reason is not None:
        raise DataError(f"{cache_dir}: {reason}; ingest it again (softreg ingest)")
    if manifest.document.get("sparse"):
        raise DataError(f"{cache_dir}: a sparse (svmlight) cache trains in one process; "
                        "set data.shards: 1 and engine.kind: numpy")
    files = part_files(manifest, part)
    if files is None or load_part(manifest, part) is None:  # load_part checks the files' sizes and shapes
        return None
    X_path, y_path = (str(Path(path).resolve()) for path in files)
    ranges = plan.shard_ranges(manifest.count(part), n_shards)
    return [ShardSpec(X_path, y_path, start, stop, shard) for shard, (start, stop) in enumerate(ranges)]


@contextmanager
def open_engine(
    config: Config,
    train: TrainingData,
    val: TrainingData | None,
    on_engine: Callable[[Any], None] | None = None,
    test: TrainingData | None = None,
) -> Iterator[ShardedParts]:
    """The training and validation parts of ``config``'s cache as `ShardedData` on its engine, and
    for a cache on the workers (`softreg.engine.placed`) the test part too.

    ``train``, ``val`` and ``test`` are the same parts as this process knows them: readable here
    (``prepare_cached``'s), or `PlacedPart` (``prepare_placed``'s: sizes only).
    With Dask, ``on_engine`` hears the `softreg.engine.cluster.EngineInfo` (scheduler, dashboard,
    workers) before training starts. The engine is closed (a local cluster stopped) on exit.
    """
    from softreg.engine.placed import PlacedPart

    cache_dir, n_shards = config.data.cache, config.data.shards
    if cache_dir is None:
        raise ValueError("the sharded engine needs data.cache (the config checks it)")
    if train.n_samples < n_shards:
        raise DataError(f"{cache_dir}: data.shards {n_shards} is more than the {train.n_samples} training rows")
    placed = isinstance(train, PlacedPart)
    if placed:
        from softreg.cache import read_manifest
        from softreg.engine.placed import placed_specs

        manifest = read_manifest(cache_dir)
        assert manifest is not None, "prepare_placed read it"
        specs = placed_specs(manifest)
    else:
        manifest = None
        specs = {"train": shard_specs(cache_dir, "train", n_shards) or []}
        val_specs = shard_specs(cache_dir, "val", n_shards) if val is not None else None
        if val_specs is not None:
            specs["val"] = val_specs
    engine: ShardEngine
    if config.engine.kind == "dask":
        from softreg.engine.cluster import connect

        engine, info = connect(config.engine, specs, manifest, config)
        if on_engine is not None:
            on_engine(info)
    else:
        engine = NumpyEngine(specs)
    try:
        yield ShardedParts(
            ShardedData("train", engine, train, n_shards),
            None if val is None or "val" not in specs else ShardedData("val", engine, val, n_shards),
            ShardedData("test", engine, test, n_shards) if placed and test is not None and "test" in specs else None,
        )
    finally:
        engine.close()
