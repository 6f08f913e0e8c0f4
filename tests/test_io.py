"""Every format through the one streaming entry point (softreg.io.stream.open_rows) and every command
that reads a source: the same rows, labels and feature names come out of each (a table of formats x
commands)."""

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.datasets
from sklearn.datasets import dump_svmlight_file

from softreg import rundir
from softreg.commands.evaluated_data import evaluated_chunks
from softreg.commands.predict import prediction_stream
from softreg.errors import DataError
from softreg.io.kinds import source_kind
from softreg.io.selection import Selection
from softreg.io.sources import load_source
from softreg.io.stream import open_rows
from softreg.prepare.features import as_numeric
from tests.strategies import run

IRIS = sklearn.datasets.load_iris()
NAMES = [str(name) for name in IRIS.feature_names]
POSITIONAL = [f"x{index}" for index in range(4)]  # svmlight names its columns by position

# name: (file name or source, kind open_rows must decide, feature names, labels as text)
FORMATS = {
    "csv": ("iris.csv", "delimited", NAMES, IRIS.target.astype(str)),
    "tsv": ("iris.tsv", "delimited", NAMES, IRIS.target.astype(str)),
    "semicolons": ("iris-semicolons.csv", "delimited", NAMES, IRIS.target.astype(str)),
    "svmlight by name": ("iris.svm", "svmlight", POSITIONAL, IRIS.target.astype(str)),
    "svmlight by content": ("iris.dat", "svmlight", POSITIONAL, IRIS.target.astype(str)),
    "npz": ("iris.npz", "npz", NAMES, IRIS.target.astype(str)),
    "parquet": ("iris.parquet", "parquet", NAMES, IRIS.target.astype(str)),
    "builtin": ("builtin:iris", "builtin", NAMES, IRIS.target_names[IRIS.target]),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The iris table written in every format (labels 0, 1, 2; the builtin set names its classes)."""
    import pandas as pd

    folder = tmp_path_factory.mktemp("formats")
    frame = pd.DataFrame(IRIS.data, columns=NAMES).assign(target=IRIS.target)
    frame.to_csv(folder / "iris.csv", index=False)
    frame.to_csv(folder / "iris.tsv", index=False, sep="\t")
    frame.to_csv(folder / "iris-semicolons.csv", index=False, sep=";")
    frame.to_parquet(folder / "iris.parquet", index=False)
    dump_svmlight_file(IRIS.data, IRIS.target, str(folder / "iris.svm"), zero_based=True)
    dump_svmlight_file(IRIS.data, IRIS.target, str(folder / "iris.dat"), zero_based=True)
    np.savez(folder / "iris.npz", X=IRIS.data, y=IRIS.target, feature_names=np.array(NAMES))
    return folder


def source_of(folder, name):
    file_name = FORMATS[name][0]
    return file_name if file_name.startswith("builtin:") else str(folder / file_name)


def dense(X):
    return np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float64)


def config_for(folder, name, tmp_path, **data):
    """A config training a few epochs on the format ``name`` (plus ``data`` options)."""
    lines = "".join(f"  {key}: {value}\n" for key, value in data.items())
    path = tmp_path / "config.yaml"
    path.write_text(f"data:\n  source: {source_of(folder, name)}\n{lines}optim:\n  epochs: 2\n  tol: null\n"
                    "output:\n  plots: false\n")
    return path


@pytest.mark.parametrize("name", FORMATS)
def test_open_rows_reads_every_format_to_the_same_rows(folder, name):
    """open_rows decides the format (svmlight by content too) and yields iris's 150 rows, labels and names."""
    source = source_of(folder, name)
    _, kind, names, labels = FORMATS[name]
    assert source_kind(source) == kind
    with open_rows(source, Selection(), chunk_rows=64) as rows:
        chunks = list(rows.chunks)
        feature_names = [rows.names[index] for index in rows.features]
    X = np.vstack([dense(chunk.X) if chunk.cells is None else chunk.cells[:, rows.features].astype(float)
                   for chunk in chunks])
    assert rows.kind == kind and feature_names == names
    assert np.array_equal(X, IRIS.data)
    assert np.concatenate([chunk.labels for chunk in chunks]).astype(str).tolist() == labels.tolist()
    assert [chunk.first_row for chunk in chunks] == list(np.cumsum([0] + [len(chunk) for chunk in chunks])[:-1])


@pytest.mark.parametrize("name", FORMATS)
def test_in_memory_load_reads_every_format_to_the_same_rows(folder, name):
    """The in-memory load (training's) gives the same rows, labels and feature names for every format."""
    _, _, names, labels = FORMATS[name]
    dataset = as_numeric(load_source(source_of(folder, name), as_numbers=True))
    assert dataset.feature_names == names
    assert np.array_equal(dense(dataset.X), IRIS.data)
    assert dataset.labels.astype(str).tolist() == labels.tolist()


@pytest.fixture(scope="module")
def dense_cache(folder, tmp_path_factory):
    """The training shard of the csv's cache, the reference the other dense formats must give."""
    tmp_path = tmp_path_factory.mktemp("reference")
    config = config_for(folder, "csv", tmp_path, split="random")
    assert run("ingest", "--config", config, "--cache", tmp_path / "cache", "--quiet")[0] == 0
    return (tmp_path / "cache" / "train" / "X.npy").read_bytes()


@pytest.mark.parametrize("name", FORMATS)
def test_ingest_reads_every_format_to_the_same_cache(folder, name, tmp_path, dense_cache):
    """softreg ingest caches every format's 150 rows with its feature names and classes; the dense
    formats give the same training shard byte for byte (a svmlight file named d.dat included)."""
    _, kind, names, labels = FORMATS[name]
    config = config_for(folder, name, tmp_path, split="random")
    code, _, stderr = run("ingest", "--config", config, "--cache", tmp_path / "cache", "--quiet")
    assert code == 0, stderr
    manifest = rundir.files.read_json_object(tmp_path / "cache" / "manifest.json")
    assert manifest["feature_names"] == names and sum(manifest["n"].values()) == 150
    assert [str(label) for label in manifest["classes"]] == sorted(set(labels.tolist()))
    if kind != "svmlight":  # svmlight is stored as CSR arrays
        assert (tmp_path / "cache" / "train" / "X.npy").read_bytes() == dense_cache


@pytest.fixture(scope="module")
def runs(folder, tmp_path_factory):
    """A run trained in memory on each format, by name."""
    trained = {}
    for name in FORMATS:
        tmp_path = tmp_path_factory.mktemp(name.replace(" ", "-"))
        code, _, stderr = run("train", "--config", config_for(folder, name, tmp_path), "--out", tmp_path / "run",
                              "--quiet")
        assert code == 0, stderr
        trained[name] = tmp_path / "run"
    return trained


@pytest.mark.parametrize("name", FORMATS)
def test_training_names_every_formats_features_and_classes(runs, name):
    """softreg train (in memory) on every format saves its feature names and classes."""
    _, _, names, labels = FORMATS[name]
    model = rundir.load_model(runs[name])
    assert model.feature_names == names
    assert model.classes.astype(str).tolist() == sorted(set(labels.tolist()))


@pytest.mark.parametrize("name", FORMATS)
def test_evaluate_data_reads_every_format_to_the_same_rows(folder, runs, name):
    """evaluate --data streams every format's 150 rows and labels, the features in the model's order."""
    _, _, _, labels = FORMATS[name]
    model = rundir.load_model(runs[name])
    with evaluated_chunks(runs[name], model, source_of(folder, name), None, None, 64) as (chunks, _):
        parts = list(chunks)
    X = np.vstack([dense(X) for X, _ in parts])
    y = np.concatenate([y for _, y in parts])
    assert np.array_equal(X, IRIS.data)
    assert model.classes[y].astype(str).tolist() == labels.tolist()


@pytest.mark.parametrize("name", FORMATS)
def test_predict_reads_every_format_to_the_same_rows(folder, runs, name):
    """predict reads every format's 150 rows in order: its labels are the model's on iris's features
    (svmlight's as a sparse matrix, which the model scales without centring)."""
    model = rundir.load_model(runs[name])
    features = sp.csr_matrix(IRIS.data) if FORMATS[name][1] == "svmlight" else IRIS.data
    with prediction_stream(runs[name], source_of(folder, name), chunk_rows=64) as stream:
        predicted = list(stream.chunks)
    proba = np.vstack([chunk.proba for chunk in predicted])
    assert np.array_equal(proba, model.predict_proba(features))
    assert np.concatenate([chunk.labels for chunk in predicted]).tolist() == model.classes[proba.argmax(1)].tolist()


@pytest.mark.parametrize("name", ["a" * 300 + ".dat", "missing.dat", "folder/missing.libsvm.txt"])
def test_a_file_that_cannot_be_sniffed_is_left_to_the_delimited_reader(tmp_path, name):
    """A name too long or a missing file is not svmlight by content: the reader then refuses it in one line."""
    source = str(tmp_path / name)
    assert source_kind(source) == "delimited"
    with pytest.raises(DataError, match="cannot be read|not found"):
        load_source(source)
