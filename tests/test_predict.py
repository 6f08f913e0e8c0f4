"""Streaming prediction: chunks give the one-shot result; bad input is refused up front."""

import io

import numpy as np
import pytest

from softreg import rundir
from softreg.commands import predict
from softreg.errors import DataError
from softreg.model import Model


@pytest.fixture
def model_dir(tmp_path):
    rng = np.random.default_rng(0)
    model = Model(
        coef=rng.normal(size=(3, 2)),
        intercept=rng.normal(size=3),
        classes=np.array(["ant", "bee", "cat"]),
        feature_mean=np.array([1.0, -2.0]),
        feature_scale=np.array([2.0, 0.5]),
        feature_names=["u", "v"],
        label_name="kind",
    )
    rundir.save_model(tmp_path, model)
    return tmp_path, model


def write_input(tmp_path, X, extra_label=True):
    lines = ["v,kind,u" if extra_label else "v,u"]
    for i, (u, v) in enumerate(X):
        lines.append(f"{float(v)!r},x{i},{float(u)!r}" if extra_label else f"{float(v)!r},{float(u)!r}")
    path = tmp_path / "in.csv"
    path.write_text("\r\n".join(lines) + "\r\n\r\n")
    return path


@pytest.mark.parametrize("chunk_rows", [1, 7, 1000])
def test_chunked_predictions_equal_one_shot(model_dir, tmp_path, chunk_rows):
    """Any chunk size gives the same CSV, chunks never exceed chunk_rows, the label column is ignored."""
    run_dir, model = model_dir
    X = np.random.default_rng(1).normal(size=(50, 2)) * 3
    path = write_input(tmp_path, X)
    with predict.prediction_stream(run_dir, path, chunk_rows=chunk_rows) as stream:
        chunks = list(stream.chunks)
    assert all(len(chunk.labels) <= chunk_rows for chunk in chunks)
    proba = np.concatenate([chunk.proba for chunk in chunks])
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=1e-12)
    labels = np.concatenate([chunk.labels for chunk in chunks])
    assert labels.tolist() == model.classes[proba.argmax(axis=1)].tolist()
    buffer = io.StringIO()
    with predict.prediction_stream(run_dir, path, chunk_rows=chunk_rows) as stream:
        assert predict.write_predictions(buffer, stream) == 50
    assert buffer.getvalue().splitlines()[0] == "label,prob_ant,prob_bee,prob_cat"


def test_bad_cell_deep_in_the_file_names_its_line(model_dir, tmp_path):
    """A non-numeric cell in a later chunk is reported with its file line."""
    run_dir, _ = model_dir
    rows = ["u,v"] + [f"{i},{i}" for i in range(30)] + ["1,zz"]
    path = tmp_path / "in.csv"
    path.write_text("\n".join(rows))
    with pytest.raises(DataError, match=r"in.csv: line 32, column 'v': 'zz' is not a number"):
        with predict.prediction_stream(run_dir, path, chunk_rows=4) as stream:
            list(stream.chunks)


def test_missing_columns_and_missing_file_are_refused_before_any_output(model_dir, tmp_path):
    """Missing feature columns and a missing input are refused before the first chunk."""
    run_dir, _ = model_dir
    path = tmp_path / "in.csv"
    path.write_text("u,w\n1,2\n")
    with pytest.raises(DataError, match=r"in.csv: missing feature column\(s\) 'v' that the model needs"):
        with predict.prediction_stream(run_dir, path):
            pass
    with pytest.raises(DataError, match=r"nope.csv: input file not found"):
        with predict.prediction_stream(run_dir, tmp_path / "nope.csv"):
            pass


def test_chunks_follow_the_runs_memory_budget(model_dir, tmp_path):
    """Without chunk_rows, a run whose config says data.memory_budget: 1MiB is read budget.chunk_rows rows at a time."""
    from softreg.cache import budget

    run_dir, model = model_dir
    (run_dir / "config.yaml").write_text("data:\n  memory_budget: 1048576\n")
    X = np.random.default_rng(2).normal(size=(1000, 2))
    path = write_input(tmp_path, X)
    rows = budget.chunk_rows(2**20, 4, predict.CHUNK_ROWS)
    with predict.prediction_stream(run_dir, path) as stream:
        sizes = [len(chunk.labels) for chunk in stream.chunks]
    assert rows == 256 and sizes == [rows] * 3 + [1000 - 3 * rows]
