"""Parquet files and folders as a data source (softreg.io.parquet): the same data as CSV give the same
model and the same cache; a folder is its files in name order; bad input is one clear line, exit 2."""

import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from softreg import cache
from softreg.cli import main
from softreg.io.selection import Selection
from softreg.io.sources import load_source

FAST = ["--set", "optim.epochs=3", "--set", "output.plots=false", "--quiet"]


def run(*args):
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    return result.exit_code, result.stdout, result.stderr


def table(n_rows=300, seed=0, text_labels=False):
    """Three float features (one with integers), an id and a label of three classes."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 3)) * [1.0, 10.0, 0.1]
    X[:, 1] = np.round(X[:, 1])
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 2] > 0.05)
    labels = np.array(["low", "mid", "high"])[y] if text_labels else y
    return {"rid": [f"r{i}" for i in range(n_rows)], "a": X[:, 0], "b": X[:, 1].astype(np.int64), "c": X[:, 2],
            "label": labels}


def write_csv(path, columns):
    """The same table as CSV: floats written with repr, so that they read back exactly."""
    names = list(columns)
    rows = zip(*(columns[name] for name in names), strict=True)
    text = "\n".join([",".join(names), *(",".join(map(repr_cell, row)) for row in rows)]) + "\n"
    path.write_text(text)


def repr_cell(value):
    return repr(float(value)) if isinstance(value, float | np.floating) else str(value)


def write_config(path, source, extra=""):
    path.write_text(f"data:\n  source: {source}\n  id: rid\n{extra}")
    return path


def train(tmp_path, name, source, extra=""):
    config = write_config(tmp_path / f"{name}.yaml", source, extra)
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / name, *FAST)
    assert code == 0, stderr
    return (tmp_path / name / "model.npz").read_bytes()


@pytest.mark.parametrize("text_labels", [False, True])
def test_parquet_trains_the_same_model_as_the_same_csv(tmp_path, text_labels):
    """The same rows as Parquet and as CSV, with the same seed, train to the same model.npz bytes;
    integer labels stay integers, text labels text."""
    columns = table(text_labels=text_labels)
    pq.write_table(pa.table(columns), tmp_path / "d.parquet")
    write_csv(tmp_path / "d.csv", columns)
    assert train(tmp_path, "pq", tmp_path / "d.parquet") == train(tmp_path, "csv", tmp_path / "d.csv")
    classes = json.loads((tmp_path / "pq" / "model.json").read_text())["classes"]
    assert classes == (["high", "low", "mid"] if text_labels else ["0", "1", "2"])


def test_nulls_are_missing_values(tmp_path):
    """A null feature is refused naming the file, row and column; with data.missing: mean it is imputed
    exactly as an empty CSV cell is, to the same model."""
    columns = table()
    a = pa.array(columns["a"], mask=np.arange(300) % 50 == 7)
    pq.write_table(pa.table({**columns, "a": a}), tmp_path / "d.parquet")
    code, _, stderr = run("train", "--config", write_config(tmp_path / "c.yaml", tmp_path / "d.parquet"),
                          "--out", tmp_path / "r", *FAST)
    assert code == 2
    assert stderr.strip().endswith(
        "d.parquet: row 8, column 'a': missing value; set data.missing to drop, mean, median or most_frequent "
        "to handle missing cells"
    )
    write_csv(tmp_path / "d.csv", {**columns, "a": ["" if value is None else value for value in a.to_pylist()]})
    mean = "  missing: mean\n"
    assert train(tmp_path, "pq", tmp_path / "d.parquet", mean) == train(tmp_path, "csv", tmp_path / "d.csv", mean)


def test_folder_is_its_files_in_name_order(tmp_path):
    """A folder loads as the concatenation of its *.parquet files sorted by name (other files, and names
    starting with _ or ., ignored), whatever their row groups; ingesting it gives the one file's shards."""
    whole = pa.table(table(n_rows=400))
    pq.write_table(whole, tmp_path / "whole.parquet", row_group_size=64)
    folder = tmp_path / "parts"
    folder.mkdir()
    for name, start, stop in [("part-2.parquet", 250, 400), ("part-0.parquet", 0, 90), ("part-1.parquet", 90, 250)]:
        pq.write_table(whole.slice(start, stop - start), folder / name, row_group_size=33)
    (folder / "_SUCCESS").write_text("")
    pq.write_table(pa.table({"other": [1]}), folder / "_common_metadata.parquet")  # names starting with _ or .
    pq.write_table(pa.table({"other": [1]}), folder / ".part-3.parquet")
    selection = Selection(id="rid")
    one, parts = load_source(str(tmp_path / "whole.parquet"), selection), load_source(str(folder), selection)
    assert parts.X.tobytes() == one.X.tobytes() and parts.X.shape == (400, 3)
    assert parts.labels.tolist() == one.labels.tolist() and parts.ids.tolist() == one.ids.tolist()
    assert shards(tmp_path, folder, "folder") == shards(tmp_path, tmp_path / "whole.parquet", "file")
    assert sum(json.loads((tmp_path / "folder" / "manifest.json").read_text())["n"].values()) == 400


def shards(tmp_path, source, name, extra=""):
    """Ingest ``source`` into ``tmp_path/name``; the bytes of every shard."""
    config = write_config(tmp_path / f"{name}.yaml", source, "  val: 0.2\n" + extra)
    code, _, stderr = run("ingest", "--config", config, "--cache", tmp_path / name)
    assert code == 0, stderr
    return {(part, array): (tmp_path / name / part / array).read_bytes()
            for part in cache.PARTS for array in ("X.npy", "y.npy")}


def test_ingest_from_parquet_equals_ingest_from_csv(tmp_path, monkeypatch):
    """The cache of a Parquet file, streamed in row batches, holds the same bytes as that of the same rows
    as CSV (shuffled through as many buckets: their count follows the file size), and its manifest
    fingerprints a folder file by file."""
    monkeypatch.setattr(cache.rows, "READ_ROWS", 50)
    columns = table()
    pq.write_table(pa.table(columns), tmp_path / "d.parquet", row_group_size=64)
    write_csv(tmp_path / "d.csv", columns)
    assert shards(tmp_path, tmp_path / "d.parquet", "pq") == shards(tmp_path, tmp_path / "d.csv", "csv")
    folder = tmp_path / "folder"
    folder.mkdir()
    (tmp_path / "d.parquet").rename(folder / "d.parquet")
    fingerprint = cache.fingerprint(str(folder))
    assert [entry["name"] for entry in fingerprint["files"]] == ["d.parquet"]
    assert fingerprint["size"] == (folder / "d.parquet").stat().st_size


def test_predict_and_evaluate_read_parquet_like_csv(tmp_path):
    """A model trained on CSV predicts and evaluates the same rows as Parquet (label last, no id column)
    as it does the CSV."""
    columns = table()
    write_csv(tmp_path / "d.csv", columns)
    pq.write_table(pa.table({name: columns[name] for name in ("a", "b", "c", "label")}), tmp_path / "d.parquet")
    train(tmp_path, "run", tmp_path / "d.csv")
    outputs = {}
    for suffix in ("csv", "parquet"):
        code, stdout, stderr = run("evaluate", "--run", tmp_path / "run", "--data", tmp_path / f"d.{suffix}", "--json")
        assert code == 0, stderr
        code, predicted, stderr = run("predict", "--run", tmp_path / "run", "--input", tmp_path / f"d.{suffix}")
        assert code == 0, stderr
        metrics = json.loads(stdout)
        rows = predicted.splitlines()
        if suffix == "csv":  # the CSV has the model's id column, which predict copies first
            rows = [row.split(",", 1)[1] for row in rows]
        outputs[suffix] = (metrics["accuracy"], metrics["log_loss"], rows)
    assert outputs["csv"] == outputs["parquet"]
    assert len(outputs["csv"][2]) == 301


def test_without_pyarrow_the_error_names_the_extra(tmp_path, monkeypatch):
    """Without pyarrow, a Parquet source is one line naming the install extra, exit 2."""
    pq.write_table(pa.table(table()), tmp_path / "d.parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    code, stdout, stderr = run("train", "--config", write_config(tmp_path / "c.yaml", tmp_path / "d.parquet"),
                               "--out", tmp_path / "r", *FAST)
    assert (code, stdout) == (2, "")
    assert stderr.strip().endswith("d.parquet: reading Parquet needs pyarrow: pip install 'softreg[parquet]' "
                                   "(from a clone of the repository: pip install '.[parquet]')")


def bad_sources(tmp_path):
    """(source, extra config, the end of the message) of each kind of bad Parquet input."""
    columns = table(n_rows=20)
    pq.write_table(pa.table({**columns, "b": [f"t{i}" for i in range(20)]}), tmp_path / "text.parquet")
    pq.write_table(pa.table(columns), tmp_path / "good.parquet")
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt.parquet").write_bytes(b"PAR1 this is not a parquet file")
    (tmp_path / "mixed").mkdir()
    pq.write_table(pa.table(columns), tmp_path / "mixed" / "0.parquet")
    pq.write_table(pa.table({**columns, "extra": np.zeros(20)}), tmp_path / "mixed" / "1.parquet")
    label = pa.array(columns["label"], mask=np.arange(20) == 4)
    pq.write_table(pa.table({**columns, "label": label}), tmp_path / "nolabel.parquet")
    pq.write_table(pa.table({**columns, "c": np.where(np.arange(20) == 11, np.inf, columns["c"])}),
                   tmp_path / "inf.parquet")
    return [
        ("text.parquet", "", "text.parquet: feature column 'b' holds string values, not numbers; Parquet features "
         "must be numeric (leave it out with data.exclude, or list the features with data.features)"),
        ("good.parquet", "  label: species\n", "good.parquet: label column 'species' not found; columns are: "
         "rid, a, b, c, label"),
        ("empty", "", "empty: a folder is read as Parquet, and this one holds no *.parquet files; give a data "
         "file, or a folder of Parquet files"),
        ("corrupt.parquet", "", "corrupt.parquet: not a readable Parquet file (Parquet magic bytes not found in "
         "footer. Either the file is corrupted or this is not a parquet file.)"),
        ("mixed", "", "1.parquet: its columns ('rid', 'a', 'b', 'c', 'label', 'extra') differ from 0.parquet's "
         "('rid', 'a', 'b', 'c', 'label'); every Parquet file of a folder needs the same columns"),
        ("nolabel.parquet", "", "nolabel.parquet: row 5: empty label in column 'label'"),
        ("inf.parquet", "", "inf.parquet: row 12, column 'c': inf is not a finite number (NaN and inf are not "
         "allowed in features)"),
    ]


def test_bad_parquet_input_is_one_line_and_exit_2(tmp_path):
    """A text feature column, a missing label column, an empty folder, a corrupt file, files with other
    columns, a null label, inf: each is one line on stderr naming the file (and row, column), exit 2."""
    for source, extra, message in bad_sources(tmp_path):
        config = tmp_path / "c.yaml"
        write_config(config, tmp_path / source, extra)
        code, stdout, stderr = run("train", "--config", config, "--out", tmp_path / "r", *FAST)
        assert (code, stdout) == (2, ""), source
        assert len(stderr.strip().splitlines()) == 1 and stderr.strip().endswith(message), (source, stderr)


def test_column_types(tmp_path):
    """Integer, float32, boolean and decimal features read as float64 (integers beyond 2**53 rounded as
    numpy rounds them); float labels that are whole numbers type as integers, dictionary-encoded text
    labels as text; a null id is an empty text."""
    from decimal import Decimal

    big = 2**62 + 1
    columns = {
        "small": pa.array([1, -2, 3, 4], pa.int8()), "single": pa.array([0.1, 2.5, -1, 7], pa.float32()),
        "flag": pa.array([True, False, True, True]), "money": pa.array([Decimal("1.10"), Decimal("-2.25")] * 2),
        "huge": pa.array([big, -big, 0, 1], pa.int64()), "rid": pa.array(["a", None, "c", "d"]),
    }
    pq.write_table(pa.table({**columns, "y": pa.array([1.0, 2.0, 1.0, 3.0])}), tmp_path / "d.parquet")
    dataset = load_source(str(tmp_path / "d.parquet"), Selection(id="rid"))
    expected = np.column_stack([
        np.array([1, -2, 3, 4], dtype=np.float64), np.array([0.1, 2.5, -1, 7], dtype=np.float32).astype(np.float64),
        [1.0, 0.0, 1.0, 1.0], [1.1, -2.25, 1.1, -2.25], np.array([big, -big, 0, 1], dtype=np.int64).astype(np.float64),
    ])
    assert dataset.X.tobytes() == expected.tobytes()
    assert dataset.labels.dtype == np.int64 and dataset.labels.tolist() == [1, 2, 1, 3]
    assert dataset.ids.tolist() == ["a", "", "c", "d"]
    labels = pa.array(["b", " a", "b", "c"]).dictionary_encode()
    pq.write_table(pa.table({**columns, "y": labels}), tmp_path / "e.parquet")
    assert load_source(str(tmp_path / "e.parquet"), Selection(id="rid")).labels.tolist() == ["b", "a", "b", "c"]


def predicted_rows(tmp_path, source, *options):
    code, stdout, stderr = run("predict", "--run", tmp_path / "run", "--input", source, *options)
    assert code == 0, stderr
    return stdout.splitlines()


def test_predict_reads_parquet_by_the_models_input_columns(tmp_path):
    """Parquet holding only the model's feature columns (in another order, no label) predicts what the CSV
    of the same rows predicts; with the model's id column too, the id is copied first, as from the CSV;
    read in row groups of 64, the predictions are the same."""
    columns = table()
    write_csv(tmp_path / "d.csv", columns)
    train(tmp_path, "run", tmp_path / "d.csv")
    from_csv = predicted_rows(tmp_path, tmp_path / "d.csv")
    assert from_csv[0] == "rid,label,prob_0,prob_1,prob_2" and len(from_csv) == 301
    pq.write_table(pa.table({name: columns[name] for name in ("c", "a", "b")}), tmp_path / "x.parquet")
    assert predicted_rows(tmp_path, tmp_path / "x.parquet") == [row.split(",", 1)[1] for row in from_csv]
    with_id = pa.table({name: columns[name] for name in ("b", "rid", "c", "a")})
    pq.write_table(with_id, tmp_path / "id.parquet", row_group_size=64)
    assert predicted_rows(tmp_path, tmp_path / "id.parquet") == from_csv
    out = tmp_path / "out.csv"
    assert predicted_rows(tmp_path, tmp_path / "id.parquet", "--output", out) == []
    assert out.read_text().splitlines() == from_csv


def test_predict_on_parquet_refuses_or_fills_a_null_as_the_model_does(tmp_path):
    """A null feature in Parquet, past the first row groups: a model trained without filling refuses it
    naming its row and column (exit 2, no output file); a model trained with data.missing: mean fills it
    as it fills an empty CSV cell."""
    columns = table()
    a = pa.array(columns["a"], mask=np.arange(300) == 250)
    pq.write_table(pa.table({"a": a, "b": columns["b"], "c": columns["c"]}), tmp_path / "n.parquet", row_group_size=64)
    write_csv(tmp_path / "d.csv", columns)
    train(tmp_path, "run", tmp_path / "d.csv")
    code, stdout, stderr = run("predict", "--run", tmp_path / "run", "--input", tmp_path / "n.parquet",
                               "--output", tmp_path / "out.csv")
    assert (code, stdout) == (2, "") and not (tmp_path / "out.csv").exists()
    assert stderr.strip().endswith(
        "n.parquet: row 251, column 'a': missing value; set data.missing to drop, mean, median or most_frequent "
        "to handle missing cells"
    )
    (tmp_path / "run").rename(tmp_path / "strict")
    train(tmp_path, "run", tmp_path / "d.csv", "  missing: mean\n")
    write_csv(tmp_path / "n.csv", {**columns, "a": ["" if value is None else value for value in a.to_pylist()]})
    from_csv = [row.split(",", 1)[1] for row in predicted_rows(tmp_path, tmp_path / "n.csv")]
    assert predicted_rows(tmp_path, tmp_path / "n.parquet") == from_csv


def test_evaluate_on_parquet_finds_the_label_by_name(tmp_path):
    """Parquet with the label first (and the id among the features) evaluates to the CSV's metrics,
    read in one piece or 7 rows at a time."""
    from softreg.commands.evaluate import evaluate_run

    columns = table()
    write_csv(tmp_path / "d.csv", columns)
    train(tmp_path, "run", tmp_path / "d.csv")
    pq.write_table(pa.table({name: columns[name] for name in ("label", "c", "rid", "a", "b")}),
                   tmp_path / "d.parquet", row_group_size=64)
    metrics = {}
    for suffix in ("csv", "parquet"):
        code, stdout, stderr = run("evaluate", "--run", tmp_path / "run", "--data", tmp_path / f"d.{suffix}", "--json")
        assert code == 0, stderr
        metrics[suffix] = json.loads(stdout)
        assert metrics[suffix].pop("source") == str(tmp_path / f"d.{suffix}")
    assert metrics["parquet"] == metrics["csv"] and metrics["csv"]["n_samples"] == 300
    chunked = evaluate_run(tmp_path / "run", data=str(tmp_path / "d.parquet"), chunk_rows=7)
    del chunked["source"]
    assert chunked == metrics["csv"]
