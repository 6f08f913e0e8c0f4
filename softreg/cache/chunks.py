"""The two passes of an ingest as functions of their rows, wherever the rows are read.

Pass 1 (`ChunkPass`) takes consecutive chunks of a source: each row gets its part and bucket
from a seeded hash of its index among the source's labelled rows, and the training rows' moments,
categories and labels are counted. Pass 2 (`bucket_parts`) takes one bucket's records, in the
order of the rows' indices, permutes them with the bucket's own generator and encodes and
standardizes each part's rows. A row's part, bucket and place in its bucket depend only on the
seed and its index, so one process reading the whole source (`softreg.cache.build`) and Dask
workers each reading some of it (`softreg.engine.ingest`) write the same bytes, provided the
moments of each chunk are merged in the chunks' order (`NanMoments.merge`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from softreg.cache.cells import (
    CategoryCounts,
    CellChunk,
    ColumnKinds,
    NanMoments,
    encode_records,
    present_rows,
    unseen_counts,
)
from softreg.cache.rows import assign_parts, row_hash
from softreg.prepare.columns import Columns

if TYPE_CHECKING:
    from softreg.config import Config


def record_dtype(layout: ColumnKinds) -> np.dtype:
    """A bucket record: the numeric cells, the category codes, the label id, the part, the source row."""
    return np.dtype([("x", np.float64, (len(layout.numeric_positions),)),
                     ("codes", np.int32, (len(layout.categorical_positions),)),
                     ("label", np.int64), ("part", np.int8), ("source_row", np.int64)])


@dataclass
class ChunkPass:
    """Pass 1 over consecutive chunks, the first row being the source's ``start``-th labelled row.

    ``fold``: the chunks' moments merged as they come (one process reading the whole source);
    else kept per chunk in ``chunk_moments``, for the driver to merge in the chunks' order.
    """

    config: Config
    layout: ColumnKinds
    n_buckets: int
    start: int = 0
    fold: bool = True
    labels: dict[str, int] = field(default_factory=dict)  # label text -> id, in order of first appearance
    categories: CategoryCounts = field(init=False)
    moments: NanMoments = field(init=False)
    chunk_moments: list[NanMoments] = field(default_factory=list)
    counts: np.ndarray = field(init=False)  # (n_buckets, 3): rows of each part in each bucket
    n_rows: int = 0  # rows kept
    n_read: int = 0  # labelled rows read
    unlabelled: int = 0

    def __post_init__(self) -> None:
        self.categories = CategoryCounts.empty(len(self.layout.categorical_positions))
        self.moments = NanMoments.empty(len(self.layout.numeric_positions))
        self.counts = np.zeros((self.n_buckets, 3), dtype=np.int64)

    def add(self, chunk: CellChunk) -> tuple[np.ndarray, np.ndarray]:
        """The chunk's records (`record_dtype`) and the bucket of each."""
        data, seed = self.config.data, self.config.seed
        rows = np.arange(self.start + self.n_read, self.start + self.n_read + len(chunk.labels), dtype=np.int64)
        self.n_read += len(chunk.labels)
        self.unlabelled += chunk.unlabelled
        if data.missing == "drop":
            keep = present_rows(chunk)
            rows = rows[keep]
            chunk = CellChunk(chunk.numbers[keep], chunk.text[keep], np.asarray(chunk.labels)[keep].tolist(),
                              None if chunk.lines is None else np.asarray(chunk.lines)[keep].tolist())
        self.n_rows += len(rows)
        part = assign_parts(seed, rows, float(data.test), data.val)
        moments = NanMoments.of(chunk.numbers[part == 0])
        if self.fold:
            self.moments.merge(moments)
        else:
            self.chunk_moments.append(moments)
        records = np.empty(len(rows), dtype=record_dtype(self.layout))
        records["x"] = chunk.numbers
        records["codes"] = self.categories.encode(chunk.text, part == 0)
        texts, inverse = np.unique(np.asarray(chunk.labels, dtype=str), return_inverse=True)
        label_ids = np.array([self.labels.setdefault(text, len(self.labels)) for text in texts.tolist()],
                             dtype=np.int64)
        records["label"] = label_ids[inverse.ravel()]
        records["part"] = part
        records["source_row"] = rows
        bucket = (row_hash(seed, 2, rows) * self.n_buckets).astype(np.int64)
        self.counts += np.bincount(bucket * 3 + part, minlength=3 * self.n_buckets).reshape(self.n_buckets, 3)
        return records, bucket


def by_bucket(records: np.ndarray, bucket: np.ndarray, n_buckets: int) -> list[tuple[int, np.ndarray]]:
    """The records of each bucket met, in their order: ``(bucket, records)``."""
    order = np.argsort(bucket, kind="stable")
    bounds = np.searchsorted(bucket[order], np.arange(n_buckets + 1))
    met = np.flatnonzero(np.diff(bounds)).tolist()
    return [(index, records[order[bounds[index]:bounds[index + 1]]]) for index in met]


@dataclass
class Encoding:
    """How pass 2 turns bucket records into features (see `softreg.cache.cells`)."""

    layout: ColumnKinds
    columns: Columns
    maps: list[np.ndarray]

    def features(self, records: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(len(rows), n_features) float64 of ``records[rows]``, in new memory."""
        if not self.layout.categorical and self.columns.plain:
            return records["x"][rows]
        return encode_records(self.layout, self.columns, self.maps, records["x"][rows], records["codes"][rows])


@dataclass
class Standardized:
    """What pass 2 needs besides the records: the class of each label id, the standardizer, the dtype."""

    relabel: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    encoding: Encoding
    dtype: str


def bucket_parts(
    records: np.ndarray, bucket: int, seed: int, how: Standardized, unseen: dict[str, int]
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Pass 2 of one bucket: per part (train, val, test), its rows' features (n, n_features) in
    ``how.dtype``, standardized, their classes (n,) int64 and source rows (n,) int64, in the order
    of the bucket's permutation. Categories unseen in training are counted into ``unseen``."""
    rng = np.random.default_rng([seed, bucket, 0x5EED])
    order = rng.permutation(len(records))  # the bucket's rows in a random order, gathered per part
    part_of = records["part"][order]
    parts = []
    for index in range(3):
        rows = order[part_of == index]
        X = how.encoding.features(records, rows)  # (n_rows, d) float64, a fresh array
        X -= how.mean
        X /= how.scale
        if index > 0:
            for name, count in unseen_counts(how.encoding.columns, how.encoding.maps, records["codes"][rows]):
                unseen[name] = unseen.get(name, 0) + count
        parts.append((np.ascontiguousarray(X.astype(how.dtype, copy=False)),
                      how.relabel[records["label"][rows]].astype(np.int64),
                      np.ascontiguousarray(records["source_row"][rows])))
    return parts


def merged_labels(pieces: list[dict[str, int]]) -> tuple[dict[str, int], list[np.ndarray]]:
    """The labels of consecutive pieces as one reading would number them (first appearance), and
    per piece the map from its own ids to those."""
    merged: dict[str, int] = {}
    maps = []
    for labels in pieces:
        maps.append(np.array([merged.setdefault(text, len(merged)) for text in labels], dtype=np.int64))
    return merged, maps


def merged_categories(pieces: list[CategoryCounts], n_columns: int) -> tuple[CategoryCounts, list[list[np.ndarray]]]:
    """The categories of consecutive pieces as one reading would code them, and per piece and
    column the map from its own codes to those."""
    merged = CategoryCounts.empty(n_columns)
    maps: list[list[np.ndarray]] = []
    for piece in pieces:
        piece_maps = []
        for column in range(n_columns):
            codes = merged.codes[column]
            piece_maps.append(np.array([codes.setdefault(value, len(codes)) for value in piece.codes[column]],
                                       dtype=np.int32))
            for value, count in piece.counts[column].items():
                merged.counts[column][value] = merged.counts[column].get(value, 0) + count
        maps.append(piece_maps)
    return merged, maps


def renumbered(records: np.ndarray, labels: np.ndarray, codes: list[np.ndarray]) -> np.ndarray:
    """A piece's records with its label ids and category codes as the merged ones (`merged_labels`,
    `merged_categories`); a missing cell's code stays negative."""
    out = records.copy()
    out["label"] = labels[records["label"]]
    for column, mapping in enumerate(codes):
        own = records["codes"][:, column]
        out["codes"][:, column] = np.where(own >= 0, mapping[np.maximum(own, 0)] if len(mapping) else own, own)
    return out


def piece_summary(chunk_pass: ChunkPass) -> dict[str, Any]:
    """What a piece's pass 1 sends back to the driver: counts and moments, never rows."""
    return {
        "labels": list(chunk_pass.labels),
        "categories": chunk_pass.categories,
        "moments": chunk_pass.chunk_moments,
        "counts": chunk_pass.counts,
        "n_rows": chunk_pass.n_rows,
        "n_read": chunk_pass.n_read,
        "unlabelled": chunk_pass.unlabelled,
    }


def merged_pass(
    config: Config, summaries: list[dict[str, Any]], n_buckets: int
) -> tuple[ChunkPass, list[np.ndarray], list[list[np.ndarray]]]:
    """The pieces' pass 1 as one `ChunkPass` over the whole source, and per piece the maps of its
    label ids and category codes to the merged ones."""
    layout: ColumnKinds = summaries[0]["layout"]
    merged = ChunkPass(config, layout, n_buckets)
    n_categorical = len(layout.categorical_positions)
    labels, label_maps = merged_labels([summary["labels"] for summary in summaries])
    categories, code_maps = merged_categories([summary["categories"] for summary in summaries], n_categorical)
    merged.labels, merged.categories = labels, categories
    moments = NanMoments.empty(len(layout.numeric_positions))
    for summary in summaries:
        for chunk_moments in summary["moments"]:
            moments.merge(chunk_moments)
        merged.counts += summary["counts"]
        merged.n_rows += summary["n_rows"]
        merged.n_read += summary["n_read"]
        merged.unlabelled += summary["unlabelled"]
    merged.moments = moments
    return merged, label_maps, code_maps
