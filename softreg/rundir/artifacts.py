"""The model (model.npz, model.json), metrics.json and the saved test split: written and
read back with every array and field checked, since a run directory is input like any other."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np

from softreg._version import __version__
from softreg.errors import RunDirError
from softreg.kernels import Matrix
from softreg.model import Model
from softreg.prepare.columns import Columns
from softreg.rundir.files import read_json_object, write_json, write_npz
from softreg.rundir.names import MODEL, MODEL_JSON, TEST_SPLIT

FORMAT_VERSION = 1
# A model.json whose loss, normalizer or temperature is not the default is written as format 2:
# a softreg that predates them would otherwise read it and predict with plain softmax.

OUTPUT_FORMAT_VERSION = 2

MODEL_ARRAYS = ("coef", "intercept", "classes", "feature_mean", "feature_scale")

def save_model(
    directory: str | os.PathLike[str], model: Model, training_summary: Mapping[str, Any] | None = None
) -> None:
    """Write ``model.npz`` and ``model.json`` atomically into ``directory``."""
    directory = Path(directory)
    default_output = (model.loss, model.normalizer, model.temperature) == ("cross_entropy", "softmax", 1.0)
    write_json(
        directory / MODEL_JSON,
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
            "feature_scaling": model.scaling,
            "training": training_summary or {},
        },
    )
    # model.npz last: its presence marks a complete model
    write_npz(
        directory / MODEL,
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
    npz_path, json_path = directory / MODEL, directory / MODEL_JSON
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
        scaling=_scaling(json_path, meta.get("feature_scaling"), n_features),
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
        by_position = document.get("by_position", False)
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
    if not isinstance(by_position, bool):
        raise RunDirError(f"{path}: malformed input section (by_position must be true or false)")
    return {"columns": columns, "header": header, "id_name": id_name, "file_columns": file_columns,
            "by_position": by_position}

def _scaling(path: Path, scaling: Any, n_features: int) -> list[str] | None:
    """model.json's ``feature_scaling`` (None in runs that predate it: every feature standardized
    by the arrays of model.npz, which predictions apply whatever this says), checked."""
    if scaling is None:
        return None
    if not (isinstance(scaling, list) and len(scaling) == n_features and all(isinstance(s, str) for s in scaling)):
        raise RunDirError(f"{path}: feature_scaling must list one word per feature ({n_features})")
    return scaling


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

METRIC_NUMBERS = ("accuracy", "balanced_accuracy", "log_loss", "brier_score", "ece", "macro_precision",
                  "macro_recall", "macro_f1", "objective", "grad_norm")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_metrics(path: str | os.PathLike[str]) -> dict[str, Any]:
    """metrics.json, checked where readers index into it: the classes, a square confusion matrix,
    and every figure a number (null where a figure could not be computed)."""
    metrics = read_json_object(path)
    classes = metrics.get("classes")
    if not isinstance(classes, list) or not classes:
        raise RunDirError(f"{path}: classes is missing; the run directory is incomplete")
    for key in METRIC_NUMBERS:
        if metrics.get(key) is not None and not _is_number(metrics[key]):
            raise RunDirError(f"{path}: {key} must be a number, got {metrics[key]!r:.40}")
    if "n_samples" in metrics and not (isinstance(metrics["n_samples"], int) and _is_number(metrics["n_samples"])):
        raise RunDirError(f"{path}: n_samples must be a count of rows, got {metrics['n_samples']!r:.40}")
    for key in ("top_k_accuracy", "per_class"):
        table = metrics.get(key, {})
        values = [] if not isinstance(table, dict) else [
            value for row in table.values() for value in (row.values() if isinstance(row, dict) else [row])
        ]
        if not isinstance(table, dict) or not all(value is None or _is_number(value) for value in values):
            raise RunDirError(f"{path}: {key} must map names to numbers")
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
            directory / TEST_SPLIT,
            data=X_csr.data,
            indices=X_csr.indices,
            indptr=X_csr.indptr,
            shape=np.array(X_csr.shape),
            y=y,
        )
    else:
        write_npz(directory / TEST_SPLIT, X=X_raw, y=y)

def load_test_split(directory: str | os.PathLike[str]) -> tuple[Matrix, np.ndarray]:
    """``(X_raw, y)`` saved by `save_test_split`, or a RunDirError."""
    import scipy.sparse as sp

    path = Path(directory) / TEST_SPLIT
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
