"""A `Model` as an ONNX graph that computes what ``softreg predict`` computes, from raw columns.

The graph, for features ``F`` (n_samples, n_features) assembled from the inputs::

    F = concat(numeric columns, one-hot indicators of text columns)   in the model's feature order
    F = where(isnan(F), fill, F)                 the imputation learnt in training (NaN where none)
    S = (F - feature_mean) / feature_scale       the standardizer (left out when it is the identity)
    z = S coef^T + intercept                     logits (n_samples, n_classes), Gemm
    p = softmax(log f(z / T))                    the normalizer at temperature T (`softreg.losses`):
        softmax   log f(u) = u
        taylor    log f(u) = 2 log hypot(u + 1, 1)        (- log 2, a shift softmax ignores)
        spherical log f(u) = 2 log hypot(u, sqrt(eps))
    label = classes[argmax p]                    the first of equal maxima, as numpy's argmax

``log hypot(x, c)`` is written ``log m + log(1 + (n/m)^2) / 2`` with ``m = max(|x|, c)``,
``n = min(|x|, c)``, so that no finite logit overflows (as `numpy.hypot` does not).

A text column is one-hot encoded by ``ai.onnx.ml.OneHotEncoder`` with ``zeros=1``: a category
unseen in training gives all-zero indicators, as in ``predict``. Its missing cells, the
tokens of `softreg.prepare.columns.MISSING_TOKENS` in any case with surrounding white space (``""``,
``NA``, ``null``, ...), are matched by ``RegexFullMatch`` (opset 20) and replaced by the
column's fill category. Graphs without text columns use opset 13.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from softreg.io.cells import MISSING_TOKENS
from softreg.losses import SPHERICAL_EPSILON
from softreg.model import Model
from softreg.prepare.columns import Columns

NUMERIC_OPSET = 13  # Softmax over one axis, Squeeze with axes as an input
TEXT_OPSET = 20  # RegexFullMatch
ML_OPSET = 1  # ai.onnx.ml: OneHotEncoder
OUTPUTS = ("label", "probabilities")
# str.strip()'s white space (str.isspace), for RE2: what `softreg.prepare.columns.missing_mask` strips
_SPACE = r"[\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]*"
MISSING_PATTERN = "(?i)" + _SPACE + "(" + "|".join(re.escape(token) for token in MISSING_TOKENS) + ")" + _SPACE


@dataclass
class _Builder:
    """Nodes and constants of a graph under construction; every name it makes starts with ``softreg_``."""

    dtype: np.dtype
    nodes: list[Any] = field(default_factory=list)
    constants: list[Any] = field(default_factory=list)
    count: int = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"softreg_{hint}_{self.count}"

    def constant(self, hint: str, value: Any, dtype: Any = None) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        self.constants.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, domain: str = "", **attributes: Any) -> str:
        from onnx import helper

        output = self.name(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, domain=domain, **attributes))
        return output


@dataclass(frozen=True)
class GraphInput:
    """One input of the graph: its name, whether it holds text, and its width (1 for a column)."""

    name: str
    text: bool
    width: int


def graph_inputs(model: Model, matrix: bool) -> list[GraphInput]:
    """The graph's inputs: one ``X`` (n_samples, n_features) when ``matrix``, else one per input column."""
    if matrix:
        return [GraphInput("X", False, model.n_features)]
    columns = model.columns or Columns.numeric(model.feature_names)
    return [GraphInput(column.name, column.categories is not None, 1) for column in columns.columns]


def is_unnamed(model: Model) -> bool:
    """Whether the model was trained on a matrix without column names (an .npz without
    feature_names or svmlight: x0, x1, ...; a delimited file without a header) with numeric
    columns only: its graph takes one input ``X``."""
    columns = model.columns or Columns.numeric(model.feature_names)
    generated = model.header is False or (
        model.header is None and columns.names == [f"x{index}" for index in range(len(columns.names))]
    )
    return generated and all(column.categories is None for column in columns.columns)


def build_model(model: Model, dtype: str, matrix: bool, metadata: dict[str, str]) -> Any:
    """The ONNX ModelProto of ``model`` computing in ``dtype`` (``float64`` or ``float32``).

    Inputs: `graph_inputs` (numeric ones ``dtype`` of shape (N, 1) or (N, n_features), text
    ones string of shape (N, 1)). Outputs: ``label`` (N,) and ``probabilities`` (N, n_classes).
    """
    from onnx import TensorProto, helper

    builder = _Builder(np.dtype(dtype))
    inputs = graph_inputs(model, matrix)
    features = _features(builder, model, inputs)
    logits = _logits(builder, model, features)
    probabilities = _normalize(builder, model, logits)
    builder.nodes.append(helper.make_node("Identity", [probabilities], ["probabilities"], name="probabilities"))
    index = builder.op("ArgMax", [probabilities], "argmax", axis=1, keepdims=0)
    classes, label_type = _classes(model.classes)
    constant = builder.constant("classes", classes, classes.dtype)
    builder.nodes.append(helper.make_node("Gather", [constant, index], ["label"], name="label"))
    float_type = _onnx_type(builder.dtype)
    declared = [
        helper.make_tensor_value_info(entry.name, TensorProto.STRING if entry.text else float_type, ["N", entry.width])
        for entry in inputs
    ]
    outputs = [
        helper.make_tensor_value_info("label", label_type, ["N"]),
        helper.make_tensor_value_info("probabilities", float_type, ["N", model.n_classes]),
    ]
    graph = helper.make_graph(
        builder.nodes, "softreg", declared, outputs, initializer=builder.constants,
        doc_string="softreg softmax regression: label and probabilities from the raw input columns",
    )
    text = any(entry.text for entry in inputs)
    opsets = [helper.make_opsetid("", TEXT_OPSET if text else NUMERIC_OPSET)]
    if text:
        opsets.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="softreg",
                              producer_version=metadata.get("softreg_version", ""))
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    helper.set_model_props(proto, metadata)
    return proto


def _features(builder: _Builder, model: Model, inputs: list[GraphInput]) -> str:
    """The standardized features (N, n_features) in the builder's dtype."""
    columns = model.columns or Columns.numeric(model.feature_names)
    if len(inputs) == 1 and not inputs[0].text and inputs[0].width == model.n_features:
        features = inputs[0].name
    else:
        blocks = [
            _one_hot(builder, entry.name, column.categories, column.fill) if column.categories is not None
            else entry.name
            for entry, column in zip(inputs, columns.columns, strict=True)
        ]
        features = blocks[0] if len(blocks) == 1 else builder.op("Concat", blocks, "features", axis=1)
    fills = np.array([
        float(column.fill) if column.categories is None and column.fill is not None else np.nan
        for column in columns.columns for _ in column.feature_names
    ])
    if not np.isnan(fills).all():  # columns without a fill keep their NaN (predict refuses them)
        missing = builder.op("IsNaN", [features], "missing")
        features = builder.op("Where", [missing, builder.constant("fill", fills), features], "filled")
    mean = np.asarray(model.feature_mean, dtype=np.float64)
    scale = np.asarray(model.feature_scale, dtype=np.float64)
    if np.any(mean != 0.0):
        features = builder.op("Sub", [features, builder.constant("feature_mean", mean)], "centred")
    if np.any(scale != 1.0):
        features = builder.op("Div", [features, builder.constant("feature_scale", scale)], "standardized")
    return features


def _one_hot(builder: _Builder, name: str, categories: list[str], fill: float | str | None) -> str:
    """Indicators (N, n_categories) of the text column ``name`` (N, 1); missing cells take ``fill``."""
    text = name
    if fill is not None:
        missing = builder.op("RegexFullMatch", [name], "missing_text", pattern=MISSING_PATTERN)
        text = builder.op("Where", [missing, builder.constant("fill_text", [str(fill)], object), name], "filled_text")
    indicators = builder.op(
        "OneHotEncoder", [text], "one_hot", domain="ai.onnx.ml", cats_strings=[str(c) for c in categories], zeros=1
    )  # (N, 1, n_categories), float
    squeezed = builder.op("Squeeze", [indicators, builder.constant("axis", [1], np.int64)], "indicators")
    return builder.op("Cast", [squeezed], "indicators", to=_onnx_type(builder.dtype))


def _logits(builder: _Builder, model: Model, features: str) -> str:
    coef = np.asarray(model.coef, dtype=np.float64)
    intercept = np.asarray(model.intercept, dtype=np.float64)
    return builder.op(
        "Gemm", [features, builder.constant("coef", coef), builder.constant("intercept", intercept)], "logits", transB=1
    )


def _normalize(builder: _Builder, model: Model, logits: str) -> str:
    """Probabilities (N, n_classes): the model's normalizer at its temperature."""
    scaled = logits
    if model.temperature != 1.0:
        scaled = builder.op("Div", [logits, builder.constant("temperature", model.temperature)], "scaled")
    if model.normalizer == "taylor":
        shifted = builder.op("Add", [scaled, builder.constant("one", 1.0)], "shifted")
        scaled = _twice_log_hypot(builder, shifted, 1.0)
    elif model.normalizer == "spherical":
        scaled = _twice_log_hypot(builder, scaled, math.sqrt(SPHERICAL_EPSILON))
    return builder.op("Softmax", [scaled], "softmax", axis=1)


def _twice_log_hypot(builder: _Builder, x: str, c: float) -> str:
    """``2 log hypot(x, c) = 2 log m + log(1 + (n/m)^2)``, ``m = max(|x|, c)``, ``n = min(|x|, c)``."""
    size = builder.op("Abs", [x], "abs")
    constant = builder.constant("c", c)
    large = builder.op("Max", [size, constant], "large")
    ratio = builder.op("Div", [builder.op("Min", [size, constant], "small"), large], "ratio")
    one_plus = builder.op("Add", [builder.constant("one", 1.0), builder.op("Mul", [ratio, ratio], "square")], "sum")
    twice = builder.op("Mul", [builder.constant("two", 2.0), builder.op("Log", [large], "log_large")], "twice")
    return builder.op("Add", [twice, builder.op("Log", [one_plus], "log_sum")], "log_f")


def _classes(classes: np.ndarray) -> tuple[np.ndarray, int]:
    """The class labels as an ONNX constant (strings, int64 or double) and its element type."""
    from onnx import TensorProto

    classes = np.asarray(classes)
    if classes.dtype.kind in "iub":
        return classes.astype(np.int64), TensorProto.INT64
    if classes.dtype.kind == "f":
        return classes.astype(np.float64), TensorProto.DOUBLE
    return np.array([str(label) for label in classes.tolist()], dtype=object), TensorProto.STRING


def _onnx_type(dtype: np.dtype) -> int:
    from onnx import TensorProto

    return TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
