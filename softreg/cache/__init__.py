"""An on-disk, shuffled cache of a data set: ingest once, train many times.

`ingest` streams the source in chunks and writes, per part (train, val, test), an
``X.npy`` of standardized features in ``model.dtype`` and a ``y.npy`` of class indices,
plus ``manifest.json``. Two passes, in bounded memory:

1. every row is validated (errors name the line and column), assigned to a part by a
   seeded hash of (seed, row index) and to a bucket file by another, and the training
   rows' moments are merged chunk by chunk (Chan et al.) into the standardizer;
2. each bucket is read back, permuted with its own seeded generator, standardized and
   appended to its part's shards.

Rows spread uniformly over the buckets and each bucket uniformly permuted make the
shards a uniform random permutation of each part, deterministic for the seed.

The cache is built in a hidden staging directory beside the target, the manifest written
last, and renamed into place: an interrupted ingest leaves no cache that looks complete.

Categorical columns and missing cells are learnt in the same pass (`softreg.cache.cells`):
the categories, the ``mean`` fills and the standardizer of the encoded features come from
merged counts and moments; ``data.missing: median`` and ``most_frequent`` are refused.
Delimited text is streamed; other sources (.npz, builtin) are loaded whole.
`CacheData` is the `TrainingData` that reads the shards through memory maps.
"""

from __future__ import annotations

from softreg.cache.build import (
    ingest,
)
from softreg.cache.read import (
    TEST_SPLIT_BYTES,
    CacheData,
    load_part,
    open_cache,
    part_files,
    prepare_cached,
    stale_reason,
)
from softreg.cache.rows import (
    BLOCK_ROWS,
    BUCKET_BYTES,
    FORMAT,
    MAX_BUCKETS,
    PARTS,
    READ_ROWS,
    VERSION,
    Manifest,
    Moments,
    RowChunk,
    SourceInfo,
    assign_parts,
    cache_options,
    read_manifest,
    row_hash,
)
from softreg.io.fingerprint import FINGERPRINT_BYTES, fingerprint

__all__ = [
    "BLOCK_ROWS",
    "BUCKET_BYTES",
    "CacheData",
    "FINGERPRINT_BYTES",
    "FORMAT",
    "MAX_BUCKETS",
    "Manifest",
    "Moments",
    "PARTS",
    "READ_ROWS",
    "RowChunk",
    "SourceInfo",
    "TEST_SPLIT_BYTES",
    "VERSION",
    "assign_parts",
    "cache_options",
    "fingerprint",
    "ingest",
    "load_part",
    "open_cache",
    "part_files",
    "prepare_cached",
    "read_manifest",
    "row_hash",
    "stale_reason",
]
