"""Training from a cache whose shards are on the Dask workers (`softreg.engine.ingest`): the
process that trains holds no row.

`prepare_placed` turns the manifest into `softreg.prepare.data.Prepared` whose parts are
`PlacedPart`: their sizes and class counts, no rows. The engine opens each shard on the worker
that holds it (`placed_specs`, `softreg.engine.placement.locate`); the sample for
``optim.lr: auto``, the steps, validation and the test metrics are the workers' sums.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from softreg.cache.rows import Manifest
from softreg.engine.shards import ShardSpec
from softreg.errors import DataError
from softreg.kernels import Batch
from softreg.prepare.columns import Columns
from softreg.train import ArrayData

if TYPE_CHECKING:
    from softreg.prepare.data import Prepared


@dataclass
class PlacedPart(ArrayData):
    """A cache part on the workers: ``n_rows`` rows of ``X``'s width and dtype (``X`` holds none),
    ``class_counts`` (n_classes,) per class. Its rows are read only by the engine's shards."""

    n_rows: int = 0
    class_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    part: str = "train"
    fingerprint: str = ""  # of the cache's training shards (`placed_fingerprint`): what resume compares

    @property
    def n_samples(self) -> int:
        return self.n_rows

    def minibatches(self, batch_size: int, rng: np.random.Generator) -> Iterator[Batch]:
        raise DataError(f"the {self.part} part's rows are on the Dask workers; only the engine reads them")

    def chunks(self, rows: int) -> Iterator[Batch]:
        raise DataError(f"the {self.part} part's rows are on the Dask workers; only the engine reads them")


def is_placed(manifest: Manifest) -> bool:
    """Whether the manifest's shards are on Dask workers."""
    return "placement" in manifest.document


def placed_specs(manifest: Manifest) -> dict[str, list[ShardSpec]]:
    """Per part with rows, its shards as the workers open them: each a whole file there."""
    return {
        part: [ShardSpec(shard["files"]["X"]["file"], shard["files"]["y"]["file"], 0, shard["rows"], index)
               for index, shard in enumerate(shards)]
        for part, shards in manifest.document["placement"].items()
    }


def placed_fingerprint(manifest: Manifest) -> str:
    """What `softreg.run.prepare.data_fingerprint` is for a cache on the workers: a digest of its
    training shards' fingerprints (which cover their bytes' ends and sizes, not where they are)
    and its classes and standardizer."""
    document = manifest.document
    train = document["placement"]["train"]
    shards = [{name: entry["ends"] for name, entry in shard["files"].items()} for shard in train]
    what = [shards, document["classes"], document["feature_mean"], document["feature_scale"]]
    return hashlib.sha256(repr(what).encode()).hexdigest()


def prepare_placed(manifest: Manifest) -> Prepared:
    """`Prepared` of a cache on the workers: the parts' sizes and class counts, the columns and the
    standardizer, no rows (no ``test.npz`` and no ``split.npz`` are written from it)."""
    from softreg.prepare.data import Prepared

    document = manifest.document
    n_features, dtype = int(document["n_features"]), np.dtype(document["dtype"])
    n_classes = len(document["classes"])

    def part(name: str) -> PlacedPart | None:
        shards = document["placement"].get(name)
        if not shards:
            return None
        counts = np.zeros(n_classes, dtype=np.int64)
        for shard in shards:
            counts += np.asarray(shard.get("class_counts", np.zeros(n_classes)), dtype=np.int64)
        return PlacedPart(np.empty((0, n_features), dtype=dtype), np.empty(0, dtype=np.int64),
                          n_rows=int(document["n"][name]), class_counts=counts, part=name,
                          fingerprint=placed_fingerprint(manifest))

    train = part("train")
    if train is None:
        raise DataError(f"{manifest.directory}: the cache has no training rows; ingest again")
    columns = document["columns"]
    return Prepared(
        train=train, val=part("val"), test=part("test"), test_raw=np.empty((0, n_features)),
        classes=manifest.classes, feature_names=list(document["feature_names"]), label_name=document["label_name"],
        feature_mean=np.asarray(document["feature_mean"]), feature_scale=np.asarray(document["feature_scale"]),
        source=document["source"], columns=None if columns is None else Columns.from_json(columns),
        header=document["header"], file_columns=document["file_columns"], id_name=document["id_name"],
        index_base=None, scaling=document.get("feature_scaling"), split=None,
        unlabelled=int(document.get("unlabelled", 0)),
    )


def class_counts(part: Any, n_classes: int) -> np.ndarray:
    """Rows per class of a part: counted by the workers for a `PlacedPart`, else from its labels."""
    if isinstance(part, PlacedPart):
        return part.class_counts
    return np.bincount(part.y, minlength=n_classes)

