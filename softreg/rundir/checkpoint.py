"""checkpoint.npz (what --resume continues from) and history.csv."""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from softreg.errors import RunDirError
from softreg.rundir.artifacts import FORMAT_VERSION
from softreg.rundir.files import json_text, read_json_object, write_json, write_npz, write_text
from softreg.rundir.names import CHECKPOINT, CHECKPOINT_SECONDS, HISTORY
from softreg.train import EpochRecord, TrainingState

CHECKPOINT_KEYS = ("epoch", "n_classes", "n_features", "n_velocity", "n_best", "rng_state", "history", "finished")

def save_checkpoint(
    directory: str | os.PathLike[str], state: TrainingState, extra: Mapping[str, Any] | None = None
) -> None:
    """Write ``checkpoint.npz`` atomically: the state's arrays plus its metadata as JSON text
    (and ``extra``, e.g. the data fingerprint). A reader sees the previous checkpoint or
    this one, never a mixture.

    The epochs' wall-clock seconds go to ``checkpoint-seconds.json`` first, so that the
    checkpoint itself is the same bytes for the same config and seed on any machine and load.
    """
    write_json(Path(directory) / CHECKPOINT_SECONDS, {
        "epoch_seconds": [record.seconds for record in state.history],
        "epoch_comm_seconds": [record.comm_seconds for record in state.history],
        "seconds": None if state.summary is None else state.summary.get("seconds"),
    })
    arrays = {"weights": state.weights}
    arrays.update({f"velocity_{index}": array for index, array in enumerate(state.velocity)})
    arrays.update({f"best_{index}": array for index, array in enumerate(state.best_params)})
    meta = {
        "epoch": state.epoch,
        "n_classes": state.n_classes,
        "n_features": state.n_features,
        "n_velocity": len(state.velocity),
        "n_best": len(state.best_params),
        "rng_state": state.rng_state,
        "history": [_timing_zeroed(record) for record in state.history],
        "early_stopping": state.early_stopping,
        **({} if state.full_batch is None else {"full_batch": state.full_batch}),
        "finished": state.finished,
        "summary": None if state.summary is None else {**state.summary, "seconds": 0.0},
        **(extra or {}),
        "format_version": FORMAT_VERSION,
    }
    write_npz(Path(directory) / CHECKPOINT, meta=np.array(json_text(meta, indent=None)), **arrays)

def _timing_zeroed(record: EpochRecord) -> dict[str, Any]:
    """A history record as a checkpoint holds it: its timings zero (a missing one stays None)."""
    return {**asdict(record), "seconds": 0.0, "comm_seconds": None if record.comm_seconds is None else 0.0}

def load_checkpoint(directory: str | os.PathLike[str]) -> tuple[TrainingState, dict[str, Any]] | None:
    """The run's checkpoint as ``(state, meta)``, or None when there is none."""
    path = Path(directory) / CHECKPOINT
    if not path.exists():
        return None
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files if name != "meta"}
            meta = json.loads(str(archive["meta"]))
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise RunDirError(f"{path}: corrupted or truncated ({error.__class__.__name__}: {error})") from None
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        version = meta.get("format_version") if isinstance(meta, dict) else None
        raise RunDirError(f"{path}: written by an incompatible softreg (format {version!r})")
    missing = [key for key in CHECKPOINT_KEYS if key not in meta]
    if missing:
        raise RunDirError(f"{path}: incomplete checkpoint (no {', '.join(missing)})")
    _check_checkpoint(path, meta, arrays)
    try:
        state = TrainingState(
            epoch=meta["epoch"],
            n_classes=meta["n_classes"],
            n_features=meta["n_features"],
            weights=arrays["weights"],
            velocity=[arrays[f"velocity_{index}"] for index in range(meta["n_velocity"])],
            rng_state=meta["rng_state"],
            history=[EpochRecord(**record) for record in meta["history"]],
            early_stopping=meta.get("early_stopping"),
            full_batch=meta.get("full_batch"),
            best_params=[arrays[f"best_{index}"] for index in range(meta["n_best"])],
            finished=meta["finished"],
            summary=meta.get("summary"),
        )
    except (KeyError, TypeError) as error:
        raise RunDirError(f"{path}: inconsistent checkpoint ({error.__class__.__name__}: {error})") from None
    _restore_seconds(Path(directory), state)
    return state, meta

def _restore_seconds(directory: Path, state: TrainingState) -> None:
    """Put the checkpointed epochs' seconds back (zeros where the timing file is missing or damaged)."""
    try:
        timing = read_json_object(directory / CHECKPOINT_SECONDS)
        seconds = [float(value) for value in timing.get("epoch_seconds", [])][: len(state.history)]
        comm = [None if value is None else float(value) for value in timing.get("epoch_comm_seconds", [])]
        total = timing.get("seconds")
    except (RunDirError, TypeError, ValueError):
        return
    for record, value in zip(state.history, seconds, strict=False):  # a newer timing file may be longer
        record.seconds = value
    for record, comm_value in zip(state.history, comm, strict=False):
        record.comm_seconds = comm_value
    if state.summary is not None and isinstance(total, (int, float)):
        state.summary["seconds"] = float(total)

def _check_checkpoint(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Refuse a checkpoint whose fields do not fit together (types, counts, shapes)."""

    def whole(key: str, minimum: int = 0) -> int:
        value = meta[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise RunDirError(f"{path}: {key} must be an integer >= {minimum}, got {value!r}"[:200])
        return value

    epoch, n_classes, n_features = whole("epoch"), whole("n_classes", 2), whole("n_features", 1)
    n_velocity, n_best = whole("n_velocity"), whole("n_best")
    size = n_classes * n_features
    shapes = {(size + n_classes,), (n_classes, n_features)}  # all the weights, or the coef alone
    weights = arrays.get("weights")
    if weights is None or weights.shape != (size + n_classes,) or not np.all(np.isfinite(weights)):
        raise RunDirError(f"{path}: weights must be {size + n_classes} finite numbers")
    for name in [f"velocity_{index}" for index in range(n_velocity)] + [f"best_{index}" for index in range(n_best)]:
        array = arrays.get(name)
        if array is None or array.shape not in shapes or array.dtype != weights.dtype:
            raise RunDirError(f"{path}: {name} is missing or does not fit the weights")
    if n_velocity > 1 or n_best > 1 or len(arrays) != 1 + n_velocity + n_best:
        raise RunDirError(f"{path}: holds {len(arrays)} arrays for {n_velocity} velocities and {n_best} best weights")
    history = meta["history"]
    if not isinstance(history, list) or len(history) != epoch or not all(isinstance(row, dict) for row in history):
        raise RunDirError(f"{path}: its history must list one record per epoch ({epoch})")
    for row in history:
        numbers = all(value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
                      for value in row.values())
        if not set(HISTORY_FIELDS) - set(ADDED_FIELDS) <= set(row) <= set(HISTORY_FIELDS) or not numbers:
            raise RunDirError(f"{path}: a history record must hold the numbers {', '.join(HISTORY_FIELDS)}")
    if not isinstance(meta["rng_state"], dict) or not isinstance(meta["finished"], bool):
        raise RunDirError(f"{path}: rng_state must be a mapping and finished true or false")

HISTORY_FIELDS = tuple(field.name for field in fields(EpochRecord))
ADDED_FIELDS = ("comm_seconds", "gap_bound")  # the last columns, absent from histories of earlier versions (empty)
# the headers of this version's history and of earlier ones, each a prefix of the next
KNOWN_HEADERS = tuple(HISTORY_FIELDS[: len(HISTORY_FIELDS) - dropped] for dropped in range(len(ADDED_FIELDS) + 1))

def write_history(directory: str | os.PathLike[str], history: list[EpochRecord]) -> None:
    """``history.csv``: one row per epoch, the columns of `EpochRecord`, empty where not computed."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in history:
        writer.writerow({key: "" if value is None else value for key, value in asdict(record).items()})
    write_text(Path(directory) / HISTORY, buffer.getvalue())

def read_history(run_dir: str | os.PathLike[str]) -> list[dict[str, float | None]]:
    """history.csv as a list of dicts with floats (None for empty cells)."""
    path = Path(run_dir) / HISTORY
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or tuple(header) not in KNOWN_HEADERS:
                raise RunDirError(f"{path}: not a history.csv of this softreg (its header differs)")
            rows = []
            for row in reader:
                if len(row) != len(header):
                    raise RunDirError(f"{path}: line {reader.line_num} has {len(row)} fields, expected {len(header)}")
                cells = zip(header, row, strict=True)
                record = {key: (None if value == "" else float(value)) for key, value in cells}
                rows.append({key: record.get(key) for key in HISTORY_FIELDS})
            return rows
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing; the run directory is incomplete") from None
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as error:
        raise RunDirError(f"{path}: unreadable ({error.__class__.__name__}: {error})") from None
