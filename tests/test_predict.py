"""Streaming prediction: chunks give the one-shot result; bad input is refused up front."""

import io

import numpy as np
import pytest

from softreg import rundir
from softreg.commands import predict
from softreg.errors import DataError
from softreg.io import delimited_numbers
from softreg.io.delimited_numbers import NotNumeric
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
    """Without chunk_rows, a run whose config says data.memory_budget: 1MiB is read read_chunk_rows rows at a time."""
    from softreg.cache import budget

    run_dir, model = model_dir
    (run_dir / "config.yaml").write_text("data:\n  memory_budget: 1048576\n")
    X = np.random.default_rng(2).normal(size=(1000, 2))
    path = write_input(tmp_path, X)
    rows = budget.read_chunk_rows(2**20, 4, predict.CHUNK_ROWS)
    with predict.prediction_stream(run_dir, path) as stream:
        sizes = [len(chunk.labels) for chunk in stream.chunks]
    assert rows == 256 and sizes == [rows] * 3 + [1000 - 3 * rows]


# -- numeric input through the fast path (softreg.io.delimited_numbers), the text path from where it declines


@pytest.fixture
def id_model_dir(tmp_path):
    """The model of `model_dir`, trained on a file with a row-id column ``rid``."""
    rng = np.random.default_rng(0)
    model = Model(
        coef=rng.normal(size=(3, 2)), intercept=rng.normal(size=3), classes=np.array(["ant", "bee", "cat"]),
        feature_mean=np.array([1.0, -2.0]), feature_scale=np.array([2.0, 0.5]), feature_names=["u", "v"],
        label_name="kind", id_name="rid",
    )
    (tmp_path / "run").mkdir()
    rundir.save_model(tmp_path / "run", model)
    return tmp_path / "run"


def predicted(run_dir, path, monkeypatch, fast, chunk_rows=7):
    """``predict``'s output text for ``path`` (or the error it stops with), and how many chunks the
    fast path predicted; ``fast`` False makes the fast path decline the whole file."""
    numeric = []
    original = predict._numeric_predictions

    def counted(*args):
        numeric.append(original(*args))
        return numeric[-1]

    def declines(*args, **kwargs):
        raise NotNumeric

    with monkeypatch.context() as patch:
        patch.setattr(predict, "_numeric_predictions", counted)
        if not fast:
            patch.setattr(delimited_numbers, "read_layout", declines)
        buffer = io.StringIO()
        try:
            with predict.prediction_stream(run_dir, path, chunk_rows=chunk_rows) as stream:
                predict.write_predictions(buffer, stream)
        except DataError as error:
            return ("error", str(error)), len(numeric)
    return buffer.getvalue(), len(numeric)


def numeric_rows(n_rows, seed=0):
    """(u, v) rows of floats in repr and in fewer digits, and quoted ids, some holding the delimiter."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 2)) * [3.0, 1e-3]
    ids = [f'"r{i}, {i % 3}"' if i % 5 == 0 else f"r{i}" for i in range(n_rows)]
    return [(f"{u!r}", f"{v:.7g}", rid) for (u, v), rid in zip(X.tolist(), ids, strict=True)]


@pytest.mark.parametrize(
    "layout",
    [
        "label, then the features out of order, CRLF and blank lines", "id and features, no label", "no header",
        "declined mid-way: a line of blanks, a blank label last",
    ],
)
def test_fast_path_predicts_the_text_paths_bytes(id_model_dir, tmp_path, monkeypatch, layout):
    """Numeric input read through the fast path gives byte for byte the output of the text path, over
    many chunks past the first 100 rows: columns matched by name in any order (the label ignored, the
    id copied as written, quoted or not) or by position in a file without a header."""
    rows = numeric_rows(230)
    if layout.startswith("label"):
        text = "v,kind,rid,u\r\n\r\n" + "".join(f"{v},x{i % 4},{rid},{u}\r\n" for i, (u, v, rid) in enumerate(rows))
    elif layout.startswith("id"):
        text = "rid,u,v\n" + "\n".join(f"{rid},{u},{v}" for u, v, rid in rows) + "\n\n"
    elif layout.startswith("no header"):
        text = "\n".join(f"{u},{v}" for u, v, _ in rows) + "\n"
    else:  # the text path skips the blank line and ignores the label; the fast path declines both
        lines = [f"{rid},{u},{v},{'' if i == 100 else 'x'}" for i, (u, v, rid) in enumerate(rows)]
        text = "rid,u,v,kind\n" + "\n".join([*lines[:150], " , ,  ,", *lines[150:]]) + "\n"
    path = tmp_path / "in.csv"
    path.write_text(text, newline="")
    fast, fast_chunks = predicted(id_model_dir, path, monkeypatch, fast=True)
    slow, slow_chunks = predicted(id_model_dir, path, monkeypatch, fast=False)
    assert (fast_chunks, slow_chunks) == (14 if layout.startswith("declined") else 33, 0)  # 14 chunks of 7 < 100
    assert fast == slow
    lines = fast.splitlines()
    assert len(lines) == 231
    if layout.startswith("no header"):
        assert lines[0] == "label,prob_ant,prob_bee,prob_cat"
    else:
        assert lines[0] == "rid,label,prob_ant,prob_bee,prob_cat"
        assert lines[1].startswith('"r0, 0",') and lines[2].startswith("r1,")


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("zz", "line 251, column 'v': 'zz' is not a number"),
        ("", "line 251, column 'v': an empty cell is not a number; set data.missing to drop, mean, median or "
         "most_frequent to handle missing cells"),
        ("1.7e308", "line 251, column 'v': 1.7e+308 is too large to standardize with the model's mean and "
         "scale (the result overflows)"),
    ],
)
def test_a_bad_cell_after_fast_chunks_is_named_by_the_text_path(id_model_dir, tmp_path, monkeypatch, cell, message):
    """A cell that is not a number (or too large to standardize) on line 251: the fast path predicts the
    chunks before it, then the text path reads on from that chunk and stops with the line and column,
    as it does when it reads the whole file."""
    rows = numeric_rows(300)
    rows[249] = (rows[249][0], cell, rows[249][2])
    path = tmp_path / "in.csv"
    path.write_text("rid,u,v\n" + "\n".join(f"{rid},{u},{v}" for u, v, rid in rows) + "\n")
    fast = predicted(id_model_dir, path, monkeypatch, fast=True, chunk_rows=16)
    slow = predicted(id_model_dir, path, monkeypatch, fast=False, chunk_rows=16)
    assert fast == (("error", f"{path}: {message}"), 15)  # 15 chunks of 16 rows before the one with line 251
    assert slow == (("error", f"{path}: {message}"), 0)


def reference_output(stream, delimiter):
    """The predictions as csv.writer writes them, each probability formatted f"{p:.10g}"."""
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow([*([stream.id_name] if stream.id_name else []), "label", *(f"prob_{c}" for c in stream.classes)])
    for chunk in stream.chunks:
        ids = chunk.ids.tolist() if chunk.ids is not None else [None] * len(chunk.labels)
        for ident, label, row in zip(ids, chunk.labels.tolist(), chunk.proba.tolist(), strict=True):
            writer.writerow([*([ident] if ident is not None else []), label, *(f"{value:.10g}" for value in row)])
    return buffer.getvalue()


EDGE_PROBABILITIES = np.array([
    [0.0, 1.0, 5e-324], [0.12345678905, 0.99999999995, 1 / 3], [1e-300, 2.5e-10, 0.1 + 0.2], [7e-5, 0.5, 1e22],
])


def stream_of(classes, ids):
    """Two chunks (3 rows, 1 row) predicting classes 0, 1, 2, 1 with `EDGE_PROBABILITIES`."""
    chunks = [
        predict.Predictions(None if ids is None else ids[rows], classes[[0, 1, 2, 1][rows]], EDGE_PROBABILITIES[rows])
        for rows in (slice(0, 3), slice(3, 4))
    ]
    return predict.PredictionStream(classes, None if ids is None else "rid", iter(chunks))


@pytest.mark.parametrize("delimiter", [",", "\t"])
@pytest.mark.parametrize(
    ("classes", "ids"),
    [
        (np.array([3, -1, 20]), None),
        (np.array(["ant", "b,ee", "c\tat"]), None),
        (np.array(["ant", "bee", "cat"]), np.array(["r1", "r 2", "é3", "r4"])),
        (np.array(["ant", "bee", "cat"]), np.array(['r"1', "", "r\n3", "r\r4"])),
        (np.array(["ant", 'b"ee', "cat"]), np.array(["r1", "r2", "r,3", "r\t4"])),
    ],
)
def test_written_predictions_are_what_csv_writer_writes(delimiter, classes, ids):
    """Probabilities at the edges of 10 significant digits (0, 1, subnormal, rounding up to a new digit),
    integer and text classes, and ids or labels that need quotes (the delimiter, a quote, a line end,
    an empty id) in some chunks: the output is byte for byte that of csv.writer with f"{p:.10g}"."""
    buffer = io.StringIO()
    assert predict.write_predictions(buffer, stream_of(classes, ids), delimiter) == 4
    assert buffer.getvalue() == reference_output(stream_of(classes, ids), delimiter)


def test_standard_input_streams_as_text_and_gives_the_files_bytes(id_model_dir, tmp_path, monkeypatch):
    """`--input -` streamed into --output goes through the text path (the fast path reads files only),
    and writes what the file read through the fast path writes; printed to stdout, standard input is
    spooled to a file first, which the fast path reads."""
    from click.testing import CliRunner

    from softreg.cli import main

    rows = numeric_rows(230)
    text = "rid,u,v\n" + "\n".join(f"{rid},{u},{v}" for u, v, rid in rows) + "\n"
    (tmp_path / "in.csv").write_text(text)
    numeric = []
    original = predict._numeric_predictions
    monkeypatch.setattr(predict, "_numeric_predictions", lambda *args: numeric.append(1) or original(*args))
    outputs = {}
    for name, source, stdin in [("file", tmp_path / "in.csv", None), ("stdin", "-", text)]:
        numeric.clear()
        out = tmp_path / f"{name}.csv"
        result = CliRunner().invoke(main, ["predict", "--run", str(id_model_dir), "--input", str(source),
                                           "--output", str(out)], input=stdin)
        assert result.exit_code == 0, result.stderr
        outputs[name] = (out.read_bytes(), len(numeric))
    assert outputs["file"] == (outputs["stdin"][0], 1) and outputs["stdin"][1] == 0
    numeric.clear()
    result = CliRunner().invoke(main, ["predict", "--run", str(id_model_dir), "--input", "-"], input=text)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.encode() == outputs["file"][0] and len(numeric) == 2  # checked whole, then written
