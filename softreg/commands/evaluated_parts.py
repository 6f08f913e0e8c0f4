"""What ``softreg evaluate`` adds up over the evaluated rows (`Tally`), and where it is added up:
one pass over chunks in this process (`ChunkSource`), or one task per part of Parquet ``--data``
(`PartSource`) on an engine (`softreg.engine.score.map_parts`).

Every part, on either engine, goes through the same function (`score_part`): it reads its part and
returns its `Tally`, counts and exact sums (`softreg.evaluate.MetricSums`) only, plus the few rows
the plots draw when ``--out`` asks for them; the process that asks adds the tallies in part order.
The sums are exact, so the metrics are those of the rows read in one pass, bit for bit, on either
engine and for any number of workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np

from softreg.commands.common import saved_storage_options
from softreg.commands.evaluated_data import (
    EvaluatedChunks,
    EvaluatedReading,
    ReadNotes,
    check_part_columns,
    evaluated_chunks,
    evaluated_reading,
    open_evaluated,
    raw_features,
)
from softreg.config import EngineConfig
from softreg.engine.score import map_parts, parquet_parts, part_rows, saved_engine
from softreg.errors import DataError, UsageError
from softreg.evaluate import MetricSums, model_metrics
from softreg.io.kinds import source_kind
from softreg.io.remote import storage_options
from softreg.kernels import Matrix
from softreg.model import Model, raw_logits

PLOT_ROWS = 100_000  # rows of streamed data kept for the plots that draw rows (the first chunk always whole)


class PlotRows:
    """The first rows of the evaluated data, for the plots that draw rows: class indices,
    probabilities and (with two features) the raw features."""

    def __init__(self, with_features: bool) -> None:
        self.with_features = with_features
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        self.rows = 0

    def add(self, X_raw: Matrix, y: np.ndarray, proba: np.ndarray) -> None:
        if self.parts and self.rows >= PLOT_ROWS:
            return
        take = len(y) if not self.parts else min(len(y), PLOT_ROWS - self.rows)
        features = raw_features(X_raw[:take], 2) if self.with_features else None
        self.parts.append((y[:take], proba[:take], features))
        self.rows += take

    def merge(self, other: PlotRows) -> None:
        """Keep ``other``'s rows after these, as `add` would have kept them had they come here."""
        if not other.parts:
            return
        y, proba, features = other.arrays()
        self.add(features if features is not None else np.empty((len(y), 0)), y, proba)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        if len(self.parts) == 1:
            return self.parts[0]
        y = np.concatenate([part[0] for part in self.parts])
        proba = np.concatenate([part[1] for part in self.parts])
        features = [part[2] for part in self.parts if part[2] is not None]
        return y, proba, np.concatenate(features) if self.with_features else None


@dataclass
class Tally:
    """What evaluate adds up over rows: the metric sums of the scored model (the calibrated one, or
    the model itself) and, when calibrated, of the model itself (``before``); the rows the exact
    optimum classifies right; the rows kept for the plots (None: no plots); the reading's notes."""

    sums: MetricSums
    before: MetricSums
    optimum_hits: int = 0
    kept: PlotRows | None = None
    notes: ReadNotes = field(default_factory=ReadNotes)

    def merge(self, other: Tally) -> Tally:
        """Add the tally of the rows after these. Returns self."""
        self.sums.merge(other.sums)
        self.before.merge(other.before)
        self.optimum_hits += other.optimum_hits
        if self.kept is not None and other.kept is not None:
            self.kept.merge(other.kept)
        self.notes.merge(other.notes)
        return self


@dataclass(frozen=True)
class Scoring:
    """What each row is scored with: the ``model``, the ``calibrated`` one (None: not calibrated),
    the exact optimum's coef and intercept (None: not asked), whether rows are kept for the plots."""

    model: Model
    calibrated: Model | None = None
    optimum: tuple[np.ndarray, np.ndarray] | None = None
    plots: bool = False

    def tally(self, chunks: EvaluatedChunks) -> Tally:
        """One pass over ``chunks``, raw features (n, d) and class indices (n,)."""
        model = self.model
        scored = self.calibrated or model
        tally = Tally(MetricSums(model.n_classes), MetricSums(model.n_classes),
                      kept=PlotRows(model.n_features == 2) if self.plots else None)

        def also(X_raw: Matrix, y: np.ndarray, proba: np.ndarray) -> None:
            if self.calibrated is not None:
                tally.before.add(y, model.predict_proba(X_raw))
            if self.optimum is not None:
                coef, intercept = self.optimum
                logits = raw_logits(coef, intercept, model.feature_mean, model.feature_scale, X_raw)
                tally.optimum_hits += int(np.count_nonzero(logits.argmax(axis=1) == y))
            if tally.kept is not None:
                tally.kept.add(X_raw, y, proba)

        tally.sums = model_metrics(scored, chunks, on_chunk=also)
        return tally


@dataclass(frozen=True)
class PartScoring:
    """One task: the `Tally` of one part of Parquet ``--data``."""

    scoring: Scoring
    part: str  # a path or a URL
    reading: EvaluatedReading
    storage: dict[str, Any] | None  # the run's data.storage_options, for a URL


def score_part(task: PartScoring) -> Tally:
    """Read one part and tally it: the task each engine runs (its notes travel back, unwarned)."""
    notes = ReadNotes()
    with storage_options(task.storage):
        if part_rows(task.part) == 0:  # an empty part (the reader refuses one) adds nothing
            return task.scoring.tally(iter(()))
    with storage_options(task.storage), open_evaluated(task.scoring.model, task.part, task.reading, notes) as chunks:
        tally = task.scoring.tally(chunks)
    tally.notes = notes
    return tally


@dataclass
class ChunkSource:
    """Evaluated rows read in this process, in chunks; ``name`` describes them."""

    chunks: EvaluatedChunks
    name: str

    def tally(self, scoring: Scoring) -> Tally:
        return scoring.tally(self.chunks)


@dataclass
class PartSource:
    """Parquet ``--data`` in parts, each tallied by `score_part` on ``engine``."""

    name: str
    parts: list[str]
    reading: EvaluatedReading
    storage: dict[str, Any] | None
    engine: EngineConfig

    def tally(self, scoring: Scoring) -> Tally:
        """The parts' tallies added in part order; the reading's notes warned once, naming ``--data``."""
        tasks = [PartScoring(scoring, part, self.reading, self.storage) for part in self.parts]
        tallies = map_parts(self.engine, score_part, tasks)
        total = tallies[0]
        for tally in tallies[1:]:
            total.merge(tally)
        total.notes.warn(self.name)
        if total.sums.n_samples == 0:
            raise DataError(f"{self.name}: has no rows")
        return total


@contextmanager
def evaluated_source(
    run_dir: str | PathLike[str], model: Model, data: str | None, label: str | int | None, header: bool | None,
    chunk_rows: int | None, engine: str | None = None, scheduler: str | None = None,
) -> Iterator[ChunkSource | PartSource]:
    """The evaluated rows: Parquet ``data`` as parts on the ``engine`` (None: the run's
    ``engine.kind``) and ``scheduler`` (None: the run's), anything else as chunks read here
    (`evaluated_chunks`). What can be refused before the first row is refused on entry: a
    missing file, the first part's missing columns, ``engine: dask`` for data that is not Parquet."""
    storage = saved_storage_options(run_dir)
    with storage_options(storage):
        parquet = data is not None and data != "-" and source_kind(data) == "parquet"
    if data is None or not parquet:
        if engine == "dask" or scheduler is not None:
            raise UsageError("--engine dask and --scheduler apply to Parquet --data (a file or a folder of parts); "
                             "other data is read by this process")
        with evaluated_chunks(run_dir, model, data, label, header, chunk_rows) as (chunks, name):
            yield ChunkSource(chunks, name)
        return
    with storage_options(storage):
        parts = parquet_parts(data, "evaluate by parts")
        reading = evaluated_reading(run_dir, model, data, label, header, chunk_rows)
        check_part_columns(model, reading, parts[0])
    yield PartSource(data, parts, reading, storage, saved_engine(run_dir, engine, scheduler))
