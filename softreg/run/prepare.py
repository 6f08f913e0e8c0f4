"""Before a run trains: where it goes, the data parts it trains on, and their fingerprint
(``--resume`` refuses other data)."""

from __future__ import annotations

import contextlib
import hashlib
from os import PathLike
from pathlib import Path

import numpy as np

from softreg import rundir
from softreg.config import Config
from softreg.errors import DataError
from softreg.io.remote import is_url, storage_options
from softreg.prepare.data import Prepared, prepare


def output_dir_for(config: Config, out: str | PathLike[str] | None = None) -> Path:
    """``--out``, else ``output.dir``, else a fresh ``runs/<config name>-<time>``."""
    if out is not None:
        return Path(out)
    if config.output.dir is not None:
        return Path(config.output.dir)
    name = Path(config.path).stem if config.path else "run"
    return rundir.default_run_dir(name)


def prepare_for(config: Config, split_rng: np.random.Generator) -> Prepared:
    """The parts to train on: from the data cache when ``data.cache`` is set, else loaded into
    memory (a source named by URL opened with ``data.storage_options``)."""
    with storage_options(config.data.storage_options):
        return _prepared(config, split_rng)


def _prepared(config: Config, split_rng: np.random.Generator) -> Prepared:
    if config.data.cache is not None:
        from softreg.cache import open_cache, prepare_cached
        from softreg.engine.placed import is_placed, prepare_placed

        manifest = open_cache(config)
        return prepare_placed(manifest) if is_placed(manifest) else prepare_cached(config, manifest=manifest)
    if config.data.source == "-":
        return prepare(config.data, np.dtype(config.model.dtype), split_rng)
    from softreg.cache import fingerprint

    before = None  # a file still being written would train on a part of it
    path = Path(config.data.source)
    if config.data.source.startswith("builtin:") or is_url(config.data.source) or path.is_dir() or path.is_file():
        with contextlib.suppress(DataError):  # unreadable: `prepare` says so in its own words
            before = fingerprint(config.data.source)
    prepared = prepare(config.data, np.dtype(config.model.dtype), split_rng)
    if before is not None and fingerprint(config.data.source) != before:
        raise DataError(f"{config.data.source}: changed while it was being read; train again once it is complete")
    return prepared


FINGERPRINT_ROWS = 65536


def data_fingerprint(prepared: Prepared) -> str:
    """SHA-256 of the standardized training part and its classes: resume refuses other data.

    Dense rows are hashed a block at a time, so that a memory-mapped part is never copied whole.
    """
    from softreg.engine.placed import PlacedPart

    if isinstance(prepared.train, PlacedPart):  # the rows are on the workers: the fingerprints of their shards
        return prepared.train.fingerprint
    digest = hashlib.sha256()
    X = prepared.train.X
    if isinstance(X, np.ndarray):
        release = getattr(prepared.train, "release", None)  # a cache part drops the pages it has read
        for start in range(0, X.shape[0], FINGERPRINT_ROWS):
            digest.update(np.ascontiguousarray(X[start:start + FINGERPRINT_ROWS]).tobytes())
            if release is not None:
                release()
    else:
        for array in (X.data, X.indices, X.indptr):
            digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(prepared.train.y.tobytes())
    digest.update("\x00".join(map(str, prepared.classes)).encode())
    return digest.hexdigest()
