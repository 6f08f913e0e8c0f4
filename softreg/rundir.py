"""The run directory: atomic writes, a staging directory committed by one rename,
and saving/loading the model with everything it needs (classes, feature names,
the standardizer).

A run directory is built in a hidden sibling ``.NAME.staging-*`` and renamed onto
``NAME`` only when complete, so an interrupted run never leaves a model that loads.
Nothing is ever unpickled: arrays load with ``allow_pickle=False``.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import IO, Any, cast

import numpy as np

from softreg import __version__
from softreg.columns import Columns
from softreg.errors import OutputError, OutputExistsError, RunDirError
from softreg.kernels import Matrix
from softreg.model import Model
from softreg.train import EpochRecord, TrainingState

FORMAT_VERSION = 1
# A model.json whose loss, normalizer or temperature is not the default is written as format 2:
# a softreg that predates them would otherwise read it and predict with plain softmax.
OUTPUT_FORMAT_VERSION = 2
MODEL_ARRAYS = ("coef", "intercept", "classes", "feature_mean", "feature_scale")


# -- atomic writes


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path``, then rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(descriptor, 0o666 & ~_umask())  # mkstemp's 0600 would hide results from other users
    except OSError as error:
        raise OutputError(f"{path}: cannot write ({error.strerror or error})") from None
    try:
        with os.fdopen(descriptor, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise OutputError(f"{path}: cannot write ({error.strerror or error})") from None
        raise


def write_text(path: str | os.PathLike[str], content: str) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(content)


def write_json(path: str | os.PathLike[str], document: object) -> None:
    write_text(path, json_text(document) + "\n")


def json_text(document: object, indent: int | None = 2) -> str:
    """Strict JSON: numpy values as plain ones, and NaN or infinite numbers as null (JSON has neither)."""
    return json.dumps(finite(document), indent=indent, allow_nan=False)


def finite(value: Any) -> Any:
    """``value`` with numpy scalars and arrays made plain, and non-finite floats replaced by None."""
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    if isinstance(value, np.ndarray):
        return finite(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def write_npz(path: str | os.PathLike[str], **arrays: Any) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with atomic_open(path, "wb") as handle:
        handle.write(buffer.getvalue())


# -- the run directory as a whole


def default_run_dir(name: str, root: str | os.PathLike[str] = "runs") -> Path:
    """A fresh ``runs/NAME-YYYYmmdd-HHMMSS`` (with ``-2``, ``-3``... if taken)."""
    base = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, counter = base, 1
    while candidate.exists():
        counter += 1
        candidate = base.with_name(f"{base.name}-{counter}")
    return candidate


RUN_MARKERS = ("config.yaml", "model.npz", "metrics.json")


def check_output_dir(path: str | os.PathLike[str], force: bool) -> None:
    """Refuse an existing non-empty directory (or a file) unless ``force``; even with
    ``force``, replace only a directory that softreg wrote (never a user's folder or the
    current directory)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{path}: exists and is not a directory; choose another --out")
    if not path.is_dir() or not any(path.iterdir()):
        return
    if not force:
        raise OutputExistsError(f"{path}: run directory already exists and is not empty; use --force to replace it")
    if Path.cwd().resolve().is_relative_to(path.resolve()):
        raise OutputExistsError(
            f"{path}: is the current directory or contains it; refusing to replace it even with --force"
        )
    if not any((path / name).exists() for name in RUN_MARKERS):
        raise OutputExistsError(
            f"{path}: is not a softreg output directory (no {', '.join(RUN_MARKERS)}); "
            "refusing to replace it even with --force"
        )


@contextmanager
def staging_dir(target: str | os.PathLike[str], force: bool = False, lock: bool = False) -> Iterator[Path]:
    """Yield a fresh hidden directory beside ``target``; on success rename it onto ``target``.

    The rename claims ``target`` atomically: when another process created it meanwhile,
    this one fails (`OutputExistsError`) and the other's directory is untouched. With
    ``lock``, the directory carries a lock held until `release` (or the process ends), so
    that ``--force`` or ``--resume`` elsewhere cannot replace or continue a running run.
    On failure the staging directory is removed and ``target`` is untouched.
    """
    target = Path(target).resolve()  # "." and "runs/.." have no name to stage beside
    check_output_dir(target, force)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
        os.chmod(staging, 0o777 & ~_umask())
    except OSError as error:
        raise OutputError(f"{target}: cannot create the run directory ({error.strerror or error})") from None
    try:
        if lock:
            _LOCKS[str(target)] = _lock(staging, target)
        yield staging
        _commit(staging, target, force)
    except BaseException:
        _unlock(str(target))
        shutil.rmtree(staging, ignore_errors=True)
        raise


LOCK_FILE = ".softreg-lock"
_LOCKS: dict[str, int] = {}  # run directory -> the descriptor holding its lock


def _lock(directory: Path, name: Path) -> int:
    """An exclusive lock on ``directory``'s lock file (it follows the directory through renames)."""
    import fcntl

    descriptor = os.open(directory / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        raise OutputExistsError(
            f"{name}: in use by another softreg process; wait for it or choose another --out"
        ) from None
    return descriptor


def claim(run_dir: str | os.PathLike[str]) -> None:
    """Lock an existing run directory for this process (``--resume``), or refuse if another holds it."""
    path = Path(run_dir).resolve()
    _LOCKS[str(path)] = _lock(path, Path(run_dir))


def release(run_dir: str | os.PathLike[str]) -> None:
    """Give up this process's lock on ``run_dir`` and remove the lock file."""
    key = str(Path(run_dir).resolve())
    if key in _LOCKS:
        Path(key, LOCK_FILE).unlink(missing_ok=True)
    _unlock(key)


def _unlock(key: str) -> None:
    descriptor = _LOCKS.pop(key, None)
    if descriptor is not None:
        os.close(descriptor)


def _commit(staging: Path, target: Path, force: bool) -> None:
    """Move ``staging`` onto ``target``: a new name, an empty directory of the user's (if
    writable), or, with ``force``, a run directory of softreg's not in use (removed last)."""
    retired = None
    try:
        if target.is_dir() and not any(target.iterdir()):
            mode = target.stat().st_mode
            if not os.access(target, os.W_OK) or not mode & 0o200:
                raise OutputExistsError(f"{target}: exists and is not writable; choose another --out")
            target.rmdir()  # an empty directory of the user's gives way to the run directory
        elif target.exists() and force:
            if (target / LOCK_FILE).exists():
                os.close(_lock(target, target))  # refuses a directory in use
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, retired)
        os.rename(staging, target)
    except OSError as error:
        if retired is not None and not target.exists():
            os.rename(retired, target)
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise OutputExistsError(
                f"{target}: was created by another process meanwhile; choose another --out"
            ) from None
        raise OutputError(f"{target}: cannot create the run directory ({error.strerror or error})") from None
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


# -- the model


def save_model(
    directory: str | os.PathLike[str], model: Model, training_summary: Mapping[str, Any] | None = None
) -> None:
    """Write ``model.npz`` and ``model.json`` atomically into ``directory``."""
    directory = Path(directory)
    default_output = (model.loss, model.normalizer, model.temperature) == ("cross_entropy", "softmax", 1.0)
    write_json(
        directory / "model.json",
        {
            "softreg_version": __version__,
            "format_version": FORMAT_VERSION if default_output else OUTPUT_FORMAT_VERSION,
            "n_features": model.n_features,
            "n_classes": len(model.classes),
            "classes": [str(label) for label in model.classes],
            "feature_names": list(model.feature_names),
            "label_name": model.label_name,
            "dtype": model.dtype,
            "input": model.input_json(),
            "loss": model.loss,
            "normalizer": model.normalizer,
            "temperature": model.temperature,
            "training": training_summary or {},
        },
    )
    # model.npz last: its presence marks a complete model
    write_npz(
        directory / "model.npz",
        coef=model.coef,
        intercept=model.intercept,
        classes=np.asarray(model.classes),
        feature_mean=model.feature_mean,
        feature_scale=model.feature_scale,
    )


def load_model(directory: str | os.PathLike[str]) -> Model:
    """Load and check a run directory's model; every problem is a RunDirError naming the file."""
    directory = Path(directory)
    if not directory.is_dir():
        raise RunDirError(f"{directory}: run directory not found")
    npz_path, json_path = directory / "model.npz", directory / "model.json"
    if not npz_path.exists():
        raise RunDirError(f"{directory}: no model.npz (the run did not finish, or this is not a softreg run directory)")
    meta = read_model_json(json_path)
    arrays = _read_arrays(npz_path)
    n_classes, n_features = arrays["coef"].shape
    expected = {
        "intercept": (n_classes,),
        "classes": (n_classes,),
        "feature_mean": (n_features,),
        "feature_scale": (n_features,),
    }
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise RunDirError(
                f"{npz_path}: {name} has shape {arrays[name].shape}, expected {shape} "
                f"to match coef {arrays['coef'].shape}"
            )
    for name in ("coef", "intercept", "feature_mean", "feature_scale"):
        if not np.all(np.isfinite(arrays[name])):
            raise RunDirError(f"{npz_path}: {name} contains NaN or inf; the model is not usable")
    if len(meta.get("feature_names", [])) != n_features:
        raise RunDirError(
            f"{json_path}: lists {len(meta.get('feature_names', []))} feature names, "
            f"but model.npz has {n_features} features"
        )
    if [str(label) for label in arrays["classes"]] != meta.get("classes", [str(label) for label in arrays["classes"]]):
        raise RunDirError(f"{json_path}: its classes disagree with model.npz")
    return Model(
        coef=arrays["coef"],
        intercept=arrays["intercept"],
        classes=arrays["classes"],
        feature_mean=arrays["feature_mean"],
        feature_scale=arrays["feature_scale"],
        feature_names=[str(name) for name in meta["feature_names"]],
        label_name=str(meta.get("label_name", "label")),
        dtype=str(meta.get("dtype", "float64")),
        **_input_fields(json_path, meta.get("input"), n_features),
        **_output_options(json_path, meta),
    )


def _input_fields(path: Path, document: Any, n_features: int) -> dict[str, Any]:
    """The ``input`` section of model.json as Model fields (absent in older runs: plain numeric columns)."""
    if document is None:
        return {}
    try:
        columns = Columns.from_json(document["columns"]) if document.get("columns") is not None else None
        header = document.get("header")
        id_name = document.get("id")
        file_columns = document.get("file_columns")
        if file_columns is not None:
            file_columns = [str(name) for name in file_columns]
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise RunDirError(f"{path}: malformed input section ({error.__class__.__name__}: {error})") from None
    if columns is not None and len(columns.feature_names) != n_features:
        raise RunDirError(
            f"{path}: its input columns give {len(columns.feature_names)} features, model.npz has {n_features}"
        )
    if header is not None and not isinstance(header, bool) or id_name is not None and not isinstance(id_name, str):
        raise RunDirError(f"{path}: malformed input section (header must be true/false/null, id a name)")
    return {"columns": columns, "header": header, "id_name": id_name, "file_columns": file_columns}


def _output_options(json_path: Path, meta: Mapping[str, Any]) -> dict[str, Any]:
    """model.json's loss, normalizer and temperature (the defaults when it predates them), checked."""
    from softreg.losses import DEFAULTS, check_options

    options = {key: meta.get(key, default) for key, default in DEFAULTS.items()}
    if isinstance(options["temperature"], int) and not isinstance(options["temperature"], bool):
        options["temperature"] = float(options["temperature"])
    try:
        check_options(options["loss"], options["normalizer"], options["temperature"])
    except ValueError as error:
        raise RunDirError(f"{json_path}: {error}") from None
    return options


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run directory's JSON file as a dict; a missing or broken one is a RunDirError."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing; the run directory is incomplete") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunDirError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise RunDirError(f"{path}: expected a JSON object")
    return document


def read_metrics(path: str | os.PathLike[str]) -> dict[str, Any]:
    """metrics.json, checked where readers index into it: the classes and a square confusion matrix."""
    metrics = read_json_object(path)
    classes = metrics.get("classes")
    if not isinstance(classes, list) or not classes:
        raise RunDirError(f"{path}: classes is missing; the run directory is incomplete")
    confusion = metrics.get("confusion_matrix")
    if confusion is not None:
        square = isinstance(confusion, list) and len(confusion) == len(classes) and all(
            isinstance(row, list) and len(row) == len(classes)
            and all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in row)
            for row in confusion
        )
        if not square:
            raise RunDirError(f"{path}: confusion_matrix must be {len(classes)} x {len(classes)} numbers")
    return metrics


def read_model_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """model.json, checked for a format this softreg reads."""
    meta = read_json_object(path)
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise RunDirError(f"{path}: no format_version; not a softreg model")
    if version > OUTPUT_FORMAT_VERSION:
        raise RunDirError(
            f"{path}: model format version {version} is newer than this softreg "
            f"({__version__}) reads (up to {OUTPUT_FORMAT_VERSION}); upgrade softreg"
        )
    if not isinstance(meta.get("feature_names"), list):
        raise RunDirError(f"{path}: feature_names is missing")
    if not isinstance(meta.get("training", {}), dict):
        raise RunDirError(f"{path}: training must be a mapping of the training summary")
    return meta


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            missing = [name for name in MODEL_ARRAYS if name not in archive.files]
            if missing:
                raise RunDirError(f"{path}: missing array(s) {', '.join(missing)}")
            arrays = {name: archive[name] for name in MODEL_ARRAYS}
    except RunDirError:
        raise
    except ValueError as error:
        raise RunDirError(f"{path}: holds object arrays or is corrupted ({error}); refusing to unpickle") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise RunDirError(f"{path}: corrupted or truncated ({error.__class__.__name__}: {error})") from None
    for name in ("coef", "intercept", "feature_mean", "feature_scale"):
        if arrays[name].dtype.kind != "f":
            raise RunDirError(f"{path}: {name} must be a floating-point array, got dtype {arrays[name].dtype}")
    if arrays["coef"].ndim != 2:
        raise RunDirError(f"{path}: coef must be 2-D (n_classes, n_features), got shape {arrays['coef'].shape}")
    return arrays


def save_test_split(directory: Path, X_raw: Matrix, y: np.ndarray) -> None:
    """The test rows (raw features, class indices) so that `evaluate` needs nothing else."""
    import scipy.sparse as sp

    if sp.issparse(X_raw):
        X_csr = cast("sp.csr_matrix", X_raw).tocsr()  # issparse does not narrow the type
        write_npz(
            directory / "test.npz",
            data=X_csr.data,
            indices=X_csr.indices,
            indptr=X_csr.indptr,
            shape=np.array(X_csr.shape),
            y=y,
        )
    else:
        write_npz(directory / "test.npz", X=X_raw, y=y)


def load_test_split(directory: str | os.PathLike[str]) -> tuple[Matrix, np.ndarray]:
    """``(X_raw, y)`` saved by `save_test_split`, or a RunDirError."""
    import scipy.sparse as sp

    path = Path(directory) / "test.npz"
    if not path.exists():
        raise RunDirError(f"{path}: missing; this run kept no test split (give --data SOURCE)")
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            y = archive["y"]
            if "X" in archive.files:
                X: Matrix = archive["X"]
            else:
                X = _checked_csr(path, archive["data"], archive["indices"], archive["indptr"], archive["shape"])
    except RunDirError:
        raise
    except (ValueError, TypeError, AttributeError, OSError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise RunDirError(f"{path}: corrupted or truncated ({error.__class__.__name__}: {error})") from None
    # a run directory is input like any other: check what is about to be computed on
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != len(y) or X.shape[0] == 0:
        raise RunDirError(f"{path}: X of shape {X.shape} and y of shape {y.shape} do not make a test split")
    if y.dtype.kind not in "iu" or y.min() < 0:
        raise RunDirError(f"{path}: y must hold class indices (non-negative integers), got dtype {y.dtype}")
    values = np.asarray(X.data) if sp.issparse(X) else np.asarray(X)
    if values.dtype.kind not in "biuf" or not np.all(np.isfinite(values)):
        raise RunDirError(f"{path}: X must hold finite numbers")
    return X, y


def _checked_csr(path: Path, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape: np.ndarray) -> Matrix:
    """A CSR matrix from saved parts, refused (never built) when they are inconsistent: scipy
    trusts its inputs, and out-of-range indices would read or write outside the arrays."""
    import scipy.sparse as sp

    if shape.shape != (2,) or shape.dtype.kind not in "iu" or np.any(shape < 0):
        raise RunDirError(f"{path}: the sparse shape must be two non-negative integers, got {shape!r}")
    n_rows, n_columns = (int(value) for value in shape)
    valid = (
        data.ndim == indices.ndim == indptr.ndim == 1
        and indices.dtype.kind in "iu" and indptr.dtype.kind in "iu"
        and len(indptr) == n_rows + 1 and len(data) == len(indices)
        and (len(indptr) == 0 or (indptr[0] == 0 and indptr[-1] == len(indices) and np.all(np.diff(indptr) >= 0)))
        and (len(indices) == 0 or (indices.min() >= 0 and indices.max() < n_columns))
    )
    if not valid:
        raise RunDirError(f"{path}: the sparse test split is inconsistent (indices out of range or rows misaligned)")
    return sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_columns))


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> None:
    """Delete temporary files that a killed process left behind (``.NAME.*.tmp``)."""
    for path in [*Path(directory).glob(".*.tmp"), *Path(directory).glob("plots/.*.tmp")]:
        path.unlink(missing_ok=True)


# -- checkpoints

CHECKPOINT = "checkpoint.npz"
CHECKPOINT_SECONDS = "checkpoint-seconds.json"
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
        "history": [{**asdict(record), "seconds": 0.0} for record in state.history],
        "early_stopping": state.early_stopping,
        "finished": state.finished,
        "summary": None if state.summary is None else {**state.summary, "seconds": 0.0},
        **(extra or {}),
        "format_version": FORMAT_VERSION,
    }
    write_npz(Path(directory) / CHECKPOINT, meta=np.array(json_text(meta, indent=None)), **arrays)


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
        total = timing.get("seconds")
    except (RunDirError, TypeError, ValueError):
        return
    for record, value in zip(state.history, seconds, strict=False):  # a newer timing file may be longer
        record.seconds = value
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
        if set(row) != set(HISTORY_FIELDS) or not numbers:
            raise RunDirError(f"{path}: a history record must hold the numbers {', '.join(HISTORY_FIELDS)}")
    if not isinstance(meta["rng_state"], dict) or not isinstance(meta["finished"], bool):
        raise RunDirError(f"{path}: rng_state must be a mapping and finished true or false")


# -- history.csv

HISTORY_FIELDS = tuple(field.name for field in fields(EpochRecord))


def write_history(directory: str | os.PathLike[str], history: list[EpochRecord]) -> None:
    """``history.csv``: one row per epoch, the columns of `EpochRecord`, empty where not computed."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in history:
        writer.writerow({key: "" if value is None else value for key, value in asdict(record).items()})
    write_text(Path(directory) / "history.csv", buffer.getvalue())


def read_history(run_dir: str | os.PathLike[str]) -> list[dict[str, float | None]]:
    """history.csv as a list of dicts with floats (None for empty cells)."""
    path = Path(run_dir) / "history.csv"
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or tuple(header) != HISTORY_FIELDS:
                raise RunDirError(f"{path}: not a history.csv of this softreg (its header differs)")
            rows = []
            for row in reader:
                if len(row) != len(HISTORY_FIELDS):
                    raise RunDirError(f"{path}: line {reader.line_num} has {len(row)} fields, expected {len(header)}")
                cells = zip(header, row, strict=True)
                rows.append({key: (None if value == "" else float(value)) for key, value in cells})
            return rows
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing; the run directory is incomplete") from None
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as error:
        raise RunDirError(f"{path}: unreadable ({error.__class__.__name__}: {error})") from None
