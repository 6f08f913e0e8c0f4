"""``softreg predict --output DIR/``: a Parquet folder of predictions, one part per input part.

An ``--output`` whose name ends in ``/`` or ``.parquet`` (`is_folder_output`) names a folder, as
Spark and Dask write a Parquet dataset: ``part-00000.parquet``, ``part-00001.parquet``... one per
file of the Parquet input (a file, or a folder's files in the order the Parquet reader lists
them), each with the columns of predict's CSV (the id when the model has one and the input too,
``label``, one ``prob_<class>`` per class) and its part's rows in order. Each part is one task of
`softreg.engine.score.map_parts` (`predict_part`): in this process with the numpy engine, on a
Dask worker with dask, which reads its part and writes its output part itself; only row counts
travel back. The same function writes the same bytes on either engine.

The folder is built in a hidden staging folder beside it, marked first (`MARKER`), and renamed
into place when every part is written: a failed or interrupted run leaves no folder that looks
complete, and an existing one as it was. ``--force`` replaces only a folder that holds nothing but
the marker and parts (`check_folder_output`): never a folder of the user's.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from softreg import rundir
from softreg.cache import budget
from softreg.commands.common import saved_storage_options
from softreg.commands.predict import PredictionStream, stream_predictions, warn_unknown
from softreg.config import EngineConfig
from softreg.engine.score import map_parts, parquet_parts, part_rows
from softreg.errors import DataError, OutputExistsError, OutputPathError, UsageError, cannot_write
from softreg.io.delimited import CHUNK_ROWS
from softreg.io.parquet import parquet_column_names
from softreg.io.remote import storage_options
from softreg.model import Model
from softreg.rundir.directory import check_name_length

MARKER = ".softreg-predictions"  # written first: softreg made this folder, and may replace it with --force
PART = re.compile(r"part-\d{5,}\.parquet")


def is_folder_output(output: str) -> bool:
    """Whether ``--output`` names a Parquet folder: its name ends in ``/`` or ``.parquet``."""
    return output.endswith(("/", os.sep)) or output.lower().rstrip("/").endswith(".parquet")


def part_name(index: int) -> str:
    """The file name of output part ``index`` (0-based): ``part-00000.parquet``."""
    return f"part-{index:05d}.parquet"


@dataclass(frozen=True)
class PartPrediction:
    """One task: predict the rows of ``part`` and write them to ``output``."""

    model: Model
    part: str  # the input part: a path or a URL
    output: str  # the output part: a path in the staging folder
    chunk_rows: int  # rows predicted at a time
    id_name: str | None  # the id column every part must carry and the output copies (None: none)
    storage: dict[str, Any] | None  # the run's data.storage_options, for a URL


@dataclass(frozen=True)
class PartAnswer:
    """What a task sends back: its row count and the unseen categories it met, per column."""

    rows: int
    unknown: dict[str, int]


@dataclass(frozen=True)
class FolderPredictions:
    """What ``predict`` wrote: the folder, its parts and rows."""

    output: Path
    parts: int
    rows: int


def predict_folder(
    run_dir: str | PathLike[str], input_path: str, output: str, engine: EngineConfig, force: bool = False,
    chunk_rows: int | None = None,
) -> FolderPredictions:
    """Write the predictions of the Parquet ``input_path`` into the folder ``output``, one part per
    input part, on ``engine`` (`softreg.engine.score.map_parts`). What can be refused before the
    work is: an output that exists (unless ``force``, and then only a predictions folder), input
    that is not Parquet, no part, the first part's missing model columns. A URL opens with the run's
    ``data.storage_options``."""
    target = _absolute(output)
    check_folder_output(target, force)
    model = rundir.load_model(run_dir)
    options = saved_storage_options(run_dir)
    with storage_options(options):
        parts = parquet_parts(input_path, "a Parquet folder --output (a name ending in / or .parquet)")
        id_name = _id_column(model, parts[0])
    if chunk_rows is None:
        chunk_rows = budget.read_chunk_rows(budget.run_budget(run_dir), len(model.input_names) + 2, CHUNK_ROWS)
    with staging_folder(target, force) as staging:
        tasks = [PartPrediction(model, part, str(staging / part_name(index)), chunk_rows, id_name, options)
                 for index, part in enumerate(parts)]
        answers = map_parts(engine, predict_part, tasks)
    unknown: dict[str, int] = {}
    for answer in answers:
        for name, count in answer.unknown.items():
            unknown[name] = unknown.get(name, 0) + count
    warn_unknown(input_path, unknown)
    return FolderPredictions(target, len(parts), sum(answer.rows for answer in answers))


def _id_column(model: Model, first_part: str) -> str | None:
    """The id column the output copies: the model's, when the first part has it; the first part's
    missing model columns are refused here, before any work."""
    names = parquet_column_names(first_part)
    model.input_positions(names, first_part)
    return model.id_name if model.id_position(names) is not None else None


def predict_part(task: PartPrediction) -> PartAnswer:
    """Predict one part and write it as Parquet (atomically): the task each engine runs."""
    folder = Path(task.output).parent
    if not folder.is_dir():
        raise OutputPathError(f"{folder}: this process cannot see the staging folder of --output; every Dask worker "
                              "must see --output at the same path (a shared file system)")
    with storage_options(task.storage):
        if part_rows(task.part) == 0:  # an empty part (the reader refuses one) gives an empty part
            return PartAnswer(_write_part(task.output, PredictionStream(task.model.classes, None, iter(())),
                                          task.id_name), {})
    with storage_options(task.storage), stream_predictions(
        task.model, task.part, task.part, task.chunk_rows, None
    ) as stream:
        if task.id_name is not None and stream.id_name is None:
            raise DataError(f"{task.part}: has no id column {task.id_name!r}, which the first part has; "
                            "every part needs the same columns")
        rows = _write_part(task.output, stream, task.id_name)
        unknown = dict(stream.unknown)
    return PartAnswer(rows, unknown)


def _write_part(path: str, stream: PredictionStream, id_name: str | None) -> int:
    """The stream's predictions as one Parquet file (a row group per chunk); returns the row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    label_type = pa.array(stream.classes).type
    fields = [pa.field(id_name, pa.string())] if id_name is not None else []
    fields.append(pa.field("label", label_type))
    fields += [pa.field(f"prob_{label}", pa.float64()) for label in stream.classes]
    schema = pa.schema(fields)
    count = 0
    with rundir.atomic_open(path, "wb") as handle, pq.ParquetWriter(handle, schema) as writer:
        for chunk in stream.chunks:
            columns = [chunk.ids] if id_name is not None else []
            columns.append(chunk.labels)
            columns += list(np.asarray(chunk.proba, dtype=np.float64).T)
            writer.write_table(pa.Table.from_arrays(
                [pa.array(column, type=field.type) for column, field in zip(columns, fields, strict=True)],
                schema=schema,
            ))
            count += len(chunk.labels)
    return count


def check_folder_output(target: Path, force: bool) -> None:
    """Refuse (exit 2, one line) an ``--output`` folder that exists, unless ``force``; even with
    ``force``, replace only a real folder holding softreg's `MARKER` and nothing but parts."""
    check_name_length(target, "--output")
    if target.is_symlink():
        raise OutputExistsError(f"{target}: is a symbolic link; softreg does not write through links: "
                                "choose another --output")
    if target.exists() and not target.is_dir():
        raise OutputExistsError(f"{target}: exists and is not a folder; choose another --output")
    if not target.is_dir() or not any(target.iterdir()):
        return
    marker = target / MARKER
    if not marker.is_file() or marker.is_symlink():
        raise OutputExistsError(f"{target}: exists and is not a folder of softreg's predictions (no {MARKER} "
                                "marker); choose another --output (softreg replaces only folders it made)")
    foreign = sorted(
        entry.name + ("/" if entry.is_dir(follow_symlinks=False) else "") for entry in os.scandir(target)
        if not (entry.is_file(follow_symlinks=False) and (entry.name == MARKER or PART.fullmatch(entry.name)))
    )
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise OutputExistsError(f"{target}: holds entries softreg did not write ({shown}); "
                                "refusing to replace it even with --force")
    if not force:
        raise OutputExistsError(f"{target}: exists; use --force to replace it")
    if Path.cwd().resolve().is_relative_to(target.resolve()):
        raise OutputExistsError(f"{target}: is the current directory or contains it; "
                                "refusing to replace it even with --force")


@contextmanager
def staging_folder(target: Path, force: bool) -> Iterator[Path]:
    """A fresh hidden folder beside ``target``, marked; renamed onto ``target`` when the block
    succeeds, removed when it fails (``target`` then left as it was)."""
    check_folder_output(target, force)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        short = os.fsencode(target.name)[:200].decode("utf-8", "ignore") or "predictions"
        staging = Path(tempfile.mkdtemp(prefix=f".{short}.staging-", dir=target.parent))
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(staging, 0o777 & ~mask)  # mkdtemp's 0700 would keep out workers running as another user
    except FileExistsError:
        raise OutputPathError(f"{target}: a file is in the way of its folder; choose another --output") from None
    except OSError as error:
        raise cannot_write(target, error, "cannot create the predictions folder") from None
    try:
        rundir.write_json(staging / MARKER, {"softreg": "predictions", "format_version": 1})
        yield staging
        _commit(staging, target, force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _commit(staging: Path, target: Path, force: bool) -> None:
    """Rename ``staging`` onto ``target``: a new name, an empty folder, or with ``force`` a
    predictions folder of softreg's (checked again, then removed last)."""

    def make_way(target: Path) -> bool:
        if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
            target.rmdir()
            return False
        check_folder_output(target, force)  # again: files may have appeared while the parts were written
        return True

    rundir.swap_into(staging, target, make_way, "--output", "the predictions folder")


def _absolute(output: str) -> Path:
    """``output`` as an absolute path, its trailing ``/`` dropped, a link in its last part not followed."""
    path = Path(output)
    if path.name in ("", ".", ".."):
        raise UsageError(f"--output {output}: name a new folder for the predictions, such as predictions/")
    return path.parent.resolve() / path.name
