"""The step of `softreg.cache.build.ingest` for a sparse (svmlight) source, held whole, and
what every ingest ends with: the classes of the labels read, and the manifest written last."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from softreg.cache.manifest import digest, shard_ends
from softreg.cache.rows import FORMAT, PARTS, VERSION, assign_parts, cache_options
from softreg.errors import DataError
from softreg.rundir.files import write_json

if TYPE_CHECKING:
    from softreg.config import Config


def build_sparse(config: Config, staging: Path, source_print: dict[str, Any], reader: Any) -> dict[str, Any]:
    """A sparse (svmlight) source, held whole: each part a seeded permutation of its rows,
    scaled (not centred: the mean is subtracted implicitly, as in memory) and stored as CSR
    arrays ``X.data.npy``, ``X.indices.npy``, ``X.indptr.npy`` beside ``y.npy``."""
    import scipy.sparse as sp

    from softreg.model import standardize
    from softreg.prepare.data import fit_standardizer

    data, seed = config.data, config.seed
    X, texts = reader.sparse.X, np.asarray(reader.sparse.labels, dtype=str)
    n_rows, d = X.shape
    part = assign_parts(seed, np.arange(n_rows), float(data.test), data.val)
    unique, inverse = np.unique(texts, return_inverse=True)
    classes, relabel = classes_of(data.source, {str(text): index for index, text in enumerate(unique.tolist())})
    label_of = relabel[inverse.ravel()]
    counts = [int(np.count_nonzero(part == index)) for index in range(3)]
    if counts[0] == 0:
        raise DataError(f"{data.source}: the split leaves no training rows out of {n_rows}")
    mean, scale = fit_standardizer(X[part == 0], data.standardize)
    shards: dict[str, Any] = {}
    for index, name in enumerate(PARTS):
        if counts[index] == 0:
            continue
        rows = np.flatnonzero(part == index)
        rows = rows[np.random.default_rng([seed, index, 0x5EED]).permutation(len(rows))]
        stored = sp.csr_matrix(standardize(X[rows], mean, scale, config.model.dtype))
        index_dtype = np.int32 if stored.nnz < 2**31 else np.int64
        (staging / name).mkdir()
        arrays = {"X.data": stored.data, "X.indices": stored.indices.astype(index_dtype),
                  "X.indptr": stored.indptr.astype(index_dtype), "y": label_of[rows]}
        shards[name] = {}
        for key, array in arrays.items():
            path = staging / name / f"{key}.npy"
            with open(path, "wb") as handle:
                np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
                handle.flush()
                os.fsync(handle.fileno())
            shards[name][key.replace("X.", "X_") if key != "y" else "y"] = {
                "file": f"{name}/{key}.npy", "bytes": path.stat().st_size}
    info = reader.info
    return write_manifest(staging, config, source_print, counts, classes, mean, scale, shards, {
        "feature_names": info.feature_names,
        "label_name": info.label_name,
        "header": None,
        "file_columns": None,
        "id_name": None,
        "columns": None,
        "sparse": True,  # the shards hold x / feature_scale; rows are centred by feature_mean / feature_scale
        "index_base": info.index_base,
        "buckets": 0,
    })


def classes_of(source: str, labels: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted classes (integers when every label is one, else text, as in-memory loading types them)
    and, per provisional label id (order of first appearance), its class index."""
    texts = np.array(list(labels), dtype=str)
    try:
        typed: np.ndarray = texts.astype(np.int64)
    except (ValueError, OverflowError):
        typed = texts
    classes, relabel = np.unique(typed, return_inverse=True)
    if len(classes) < 2:
        shown = "none" if len(classes) == 0 else repr(str(classes[0]))
        raise DataError(f"{source}: only one class ({shown}) in the labels; need at least two")
    return classes, relabel.astype(np.int64)


def write_manifest(
    staging: Path, config: Config, source_print: dict[str, Any], counts: list[int], classes: np.ndarray,
    mean: np.ndarray, scale: np.ndarray, shards: dict[str, Any], described: dict[str, Any],
) -> dict[str, Any]:
    """Write ``manifest.json`` (last: a cache without it is incomplete) and return it: the counts,
    classes, standardizer, dtype, seed, source fingerprint, options and shards, and ``described``
    (the columns and how the parts are stored)."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "n": dict(zip(PARTS, counts, strict=True)),
        "n_features": len(mean),
        **described,
        "classes": classes.tolist(),
        "dtype": config.model.dtype,
        "standardized": True,  # the shards hold (x - feature_mean) / feature_scale (sparse: see "sparse")
        "feature_mean": mean.tolist(),
        "feature_scale": scale.tolist(),
        "seed": config.seed,
        "source": config.data.source,
        "fingerprint": source_print,
        "options": cache_options(config),
        "shards": shards,
    }
    for files in shards.values():  # every shard's size and ends, so that a shard swapped later is seen
        for entry in files.values():
            entry["ends"] = shard_ends(staging / entry["file"])
    document["digest"] = digest(document)  # last: any later edit of the manifest is seen
    write_json(staging / "manifest.json", document)
    return document
