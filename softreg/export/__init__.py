"""Models that leave softreg: a run directory or a fitted estimator as an ONNX graph.

``softreg export --run DIR --format onnx --output model.onnx`` writes a graph that any ONNX
runtime (onnxruntime in Python, Java, C#, Go, JavaScript, ...) evaluates to the labels and
probabilities ``softreg predict`` gives, from the same raw columns (`softreg.export.graph`
says what it computes). Building it needs the ``onnx`` package (``softreg[onnx]``).

The graph's metadata (``metadata_props``) lists ``classes`` (a JSON array, in the order of
the probabilities' columns), ``softreg_version``, ``config_digest`` (``sha256:`` of the run's
``config.yaml``; absent when the run has none), ``normalizer``, ``temperature``,
``label_name`` and ``inputs`` (a JSON array of the input names).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from softreg._version import __version__
from softreg.errors import DataError, OutputExistsError, UsageError
from softreg.export.graph import OUTPUTS, build_model, graph_inputs, is_unnamed
from softreg.model import Model

if TYPE_CHECKING:
    from softreg.estimator.saving import Fitted

FORMATS = ("onnx",)
DTYPES = ("float64", "float32")
INSTALL_HINT = "pip install 'softreg[onnx]' (from a clone of the repository: pip install '.[onnx]')"


@dataclass(frozen=True)
class Exported:
    """What `export_run` and `export_model` wrote: the file, its opset, dtype, inputs and classes."""

    path: Path
    opset: int
    dtype: str
    inputs: list[str]
    n_classes: int


def require_onnx() -> ModuleType:
    """The ``onnx`` package, or a UsageError saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise UsageError(f"exporting to ONNX needs the onnx package: {INSTALL_HINT}") from None
    return onnx


def export_run(
    run_dir: str | os.PathLike[str], output: str | os.PathLike[str], dtype: str | None = None, force: bool = False
) -> Exported:
    """Write the ONNX graph of the run directory ``run_dir``'s model to ``output``.

    ``dtype`` None keeps the model's; an existing ``output`` is refused unless ``force``.
    """
    from softreg import rundir

    require_onnx()
    _check_output(output, force)
    model = rundir.load_model(run_dir)
    config = Path(run_dir) / rundir.CONFIG
    digest = _digest(config.read_bytes()) if config.is_file() else None
    return export_model(model, output, dtype, config_digest=digest, force=force)


def export_estimator(
    estimator: Fitted, output: str | os.PathLike[str], dtype: str | None = None, force: bool = False
) -> Exported:
    """`SoftmaxRegression.to_onnx`: the fitted estimator's graph, with one input ``X`` (N, n_features).

    Its config digest is that of the ``config.yaml`` its `save_run` writes.
    """
    from softreg.estimator.saving import config_text, estimator_model

    require_onnx()
    _check_output(output, force)
    model = estimator_model(estimator)
    digest = _digest(config_text(estimator).encode("utf-8"))
    return export_model(model, output, dtype, matrix=True, config_digest=digest, force=force)


def export_model(
    model: Model,
    output: str | os.PathLike[str],
    dtype: str | None = None,
    matrix: bool | None = None,
    config_digest: str | None = None,
    force: bool = False,
) -> Exported:
    """Write ``model``'s graph to ``output`` atomically; the same model gives the same bytes.

    One input ``X`` when ``matrix`` (None: when the model was trained on a matrix without column
    names, `softreg.export.graph.is_unnamed`), else one input per input column.
    """
    from softreg.rundir import atomic_open

    matrix = is_unnamed(model) if matrix is None else matrix
    proto = onnx_model(model, dtype, matrix, config_digest)
    _check_output(output, force)
    with atomic_open(output, "wb") as handle:
        handle.write(proto.SerializeToString(deterministic=True))
    return Exported(
        Path(output), int(proto.opset_import[0].version), _dtype(model, dtype),
        [entry.name for entry in graph_inputs(model, matrix)], model.n_classes,
    )


def onnx_model(
    model: Model, dtype: str | None = None, matrix: bool | None = None, config_digest: str | None = None
) -> Any:
    """The checked ONNX ModelProto of ``model`` (see `softreg.export.graph`; ``matrix`` as in `export_model`)."""
    onnx = require_onnx()
    matrix = is_unnamed(model) if matrix is None else matrix
    inputs = [entry.name for entry in graph_inputs(model, matrix)]
    clashes = [name for name in inputs if name in OUTPUTS or name.startswith("softreg_")]
    if clashes:
        raise DataError(
            f"input column {clashes[0]!r} has a name the ONNX graph keeps for itself "
            f"(its outputs {', '.join(OUTPUTS)}, or names starting softreg_); rename the column and train again"
        )
    metadata = {
        "classes": json.dumps(np.asarray(model.classes).tolist()),
        "softreg_version": __version__,
        "normalizer": model.normalizer,
        "temperature": repr(float(model.temperature)),
        "label_name": model.label_name,
        "inputs": json.dumps(inputs),
    }
    if config_digest is not None:
        metadata["config_digest"] = config_digest
    proto = build_model(model, _dtype(model, dtype), matrix, metadata)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _dtype(model: Model, dtype: str | None) -> str:
    if dtype is None:
        return "float32" if np.asarray(model.coef).dtype == np.float32 else "float64"
    if dtype not in DTYPES:
        raise UsageError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return dtype


def _digest(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def _check_output(output: str | os.PathLike[str], force: bool) -> None:
    path = Path(output)
    if path.is_dir():
        raise UsageError(f"{path}: is a directory; give a file name for the ONNX model")
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: exists; use --force to overwrite it")
    if not path.parent.is_dir():
        raise UsageError(f"{path}: its folder {path.parent} does not exist")
