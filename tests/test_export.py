"""``softreg export --format onnx`` and ``SoftmaxRegression.to_onnx``: onnxruntime gives what
``softreg predict`` gives (probabilities to 1e-9 in float64 and 1e-5 in float32, labels exactly)."""

import csv
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from softreg import SoftmaxRegression, __version__, rundir
from softreg.cli import main
from softreg.commands.predict import prediction_stream
from softreg.errors import DataError
from softreg.export import export_model, onnx_model
from softreg.io.cells import MISSING_TOKENS, missing_mask
from softreg.io.sources import load_source
from softreg.model import Model
from softreg.prepare.columns import Column, Columns

REPO = Path(__file__).resolve().parent.parent
TOLERANCE = {"float64": 1e-9, "float32": 1e-5}


def softreg(*args):
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def session(path):
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def feeds_from_rows(runtime, rows):
    """The graph's inputs from rows of text cells (dicts by column name), as a server would build them."""
    feeds = {}
    for entry in runtime.get_inputs():
        cells = np.array([row[entry.name] for row in rows], dtype=str)
        if entry.type == "tensor(string)":
            feeds[entry.name] = cells.astype(object)[:, None]
        else:
            dtype = np.float32 if entry.type == "tensor(float)" else np.float64
            feeds[entry.name] = np.where(missing_mask(cells), "nan", cells).astype(np.float64).astype(dtype)[:, None]
    return feeds


def predicted(run_dir, source):
    """``softreg predict``'s labels and probabilities for ``source``."""
    with prediction_stream(run_dir, source) as stream:
        chunks = list(stream.chunks)
    return np.concatenate([chunk.labels for chunk in chunks]), np.concatenate([chunk.proba for chunk in chunks])


def check_against_predict(run_dir, onnx_path, source, feeds, dtype):
    labels, proba = predicted(run_dir, source)
    onnx_labels, onnx_proba = session(onnx_path).run(["label", "probabilities"], feeds)
    assert onnx_proba.dtype == np.dtype(dtype) and onnx_proba.shape == proba.shape
    np.testing.assert_allclose(onnx_proba, proba, rtol=0, atol=TOLERANCE[dtype])
    assert onnx_labels.tolist() == labels.tolist()


def export(run_dir, output, *extra):
    code, stdout, stderr = softreg("export", "--run", run_dir, "--format", "onnx", "--output", output, *extra)
    assert code == 0, stderr
    return stdout


def builtin_feeds(runtime, source, dtype):
    dataset = load_source(source)
    position = {name: index for index, name in enumerate(dataset.feature_names)}
    return {entry.name: dataset.X[:, [position[entry.name]]].astype(dtype) for entry in runtime.get_inputs()}


def csv_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


BUNDLED = ["iris.yaml", "iris-csv.yaml", "wine.yaml", "digits.yaml", "letters.yaml", "letters-fast.yaml",
           "letters-cache.yaml"]


@pytest.mark.parametrize("config", BUNDLED)
def test_bundled_configs_export_what_predict_gives(tmp_path, config):
    """Every bundled config (2 epochs): the float64 graph's probabilities are predict's to 1e-9, the
    float32 graph's to 1e-5, the labels equal; the graph takes one input per column, named as the column."""
    run_dir = tmp_path / "run"
    cache = ["--set", f"data.cache={tmp_path / 'cache'}"] if "cache" in config else []
    code, _, stderr = softreg("train", "--config", REPO / "configs" / config, "--out", run_dir, "--quiet",
                              "--set", "optim.epochs=2", "--set", "output.plots=false", *cache)
    assert code == 0, stderr
    model = rundir.load_model(run_dir)
    source = str(yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["source"])
    for dtype in ("float64", "float32"):
        output = tmp_path / f"model-{dtype}.onnx"
        export(run_dir, output, "--dtype", dtype)
        runtime = session(output)
        assert [entry.name for entry in runtime.get_inputs()] == model.input_names
        if source.startswith("builtin:"):
            feeds = builtin_feeds(runtime, source, dtype)
        else:
            feeds = feeds_from_rows(runtime, csv_rows(source))
        check_against_predict(run_dir, output, source, feeds, dtype)


def write_table(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "size", "colour", "shape", "weight", "kind"])
        writer.writerows(rows)


def table_rows(rng, n, categories, missing):
    """Rows of a table with text columns, numeric ones and missing cells (``missing`` of them blank)."""
    rows = []
    for index in range(n):
        colour, shape = rng.choice(categories[0]), rng.choice(categories[1])
        size, weight = rng.normal(5, 2), rng.normal(-1, 3)
        kind = int(size > 5) + int(colour == "red") + (2 if shape == "round" else 0)
        row = [f"r{index}", f"{size:.3f}", colour, shape, f"{weight:.3f}", kind]
        for column in rng.choice([1, 2, 3, 4], size=rng.integers(0, 3), replace=False) if index < missing else []:
            row[column] = rng.choice(["", "NA", " null ", "?", "nan"])
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def text_tables(tmp_path_factory):
    """A training table with text columns and missing cells, and a table to predict with unseen categories."""
    folder = tmp_path_factory.mktemp("text")
    rng = np.random.default_rng(3)
    known = (["red", "green", "blue", "Red"], ["round", "square", "flat"])
    write_table(folder / "train.csv", table_rows(rng, 300, known, missing=120))
    unseen = (["red", "green", "blue", "Red", "purple", " red", "RED"], ["round", "square", "flat", "oval"])
    write_table(folder / "new.csv", table_rows(rng, 200, unseen, missing=100))
    return folder


@pytest.mark.parametrize("normalizer, temperature, missing", [
    ("softmax", 1.0, "mean"), ("softmax", 2.5, "median"), ("taylor", 1.0, "most_frequent"),
    ("taylor", 0.5, "mean"), ("spherical", 1.0, "median"), ("spherical", 3.0, "mean"),
])
def test_text_columns_missing_cells_unseen_categories(text_tables, tmp_path, normalizer, temperature, missing):
    """Text columns, missing cells (blank, NA, null, ? and nan, filled as training learnt) and categories
    unseen in training (all-zero indicators), under every normalizer and temperatures other than 1:
    onnxruntime equals predict, to 1e-9 in float64 and 1e-5 in float32, labels exactly."""
    config = tmp_path / "text.yaml"
    config.write_text(
        f"data:\n  source: {text_tables / 'train.csv'}\n  label: kind\n  id: id\n  missing: {missing}\n  test: 0.2\n"
        f"  val: 0.0\nmodel:\n  normalizer: {normalizer}\n  temperature: {temperature}\n"
        "optim:\n  lr: 0.05\n  epochs: 15\n  batch_size: 16\noutput:\n  plots: false\nseed: 1\n"
    )
    run_dir = tmp_path / "run"
    code, _, stderr = softreg("train", "--config", config, "--out", run_dir, "--quiet")
    assert code == 0, stderr
    model = rundir.load_model(run_dir)
    assert model.columns is not None and [column.categories is not None for column in model.columns.columns] == [
        False, True, True, False]
    source = text_tables / "new.csv"
    for dtype in ("float64", "float32"):
        output = tmp_path / f"{dtype}.onnx"
        export(run_dir, output, "--dtype", dtype)
        runtime = session(output)
        types = {entry.name: entry.type for entry in runtime.get_inputs()}
        number = "tensor(double)" if dtype == "float64" else "tensor(float)"
        assert types == {"size": number, "colour": "tensor(string)", "shape": "tensor(string)", "weight": number}
        with pytest.warns(UserWarning, match="categories unseen in training"):
            check_against_predict(run_dir, output, str(source), feeds_from_rows(runtime, csv_rows(source)), dtype)


def hand_model(normalizer="softmax", temperature=1.0, classes=("ant", "bee", "cat")):
    """A model of two numeric columns (one filled) and a text column (filled with 'b')."""
    rng = np.random.default_rng(0)
    columns = Columns([Column("u", None, 0.5), Column("colour", ["a", "b", "c c"], "b"), Column("v")], "mean")
    return Model(
        coef=rng.normal(size=(len(classes), 5)), intercept=rng.normal(size=len(classes)),
        classes=np.array(classes), feature_mean=rng.normal(size=5), feature_scale=rng.uniform(0.5, 2, size=5),
        feature_names=columns.feature_names, label_name="kind", normalizer=normalizer, temperature=temperature,
        columns=columns, header=True,
    )


MISSING_OR_NOT = ["", " ", "NA", " na ", "\tNULL\n", "\xa0?", "n/a", "N/A", "nAn", "none", "None\u2003", "?",
                  "nope", "a", "NAN2", "b", "c c", " a", "c", "na na", "\x0bnull\x1f", "nuLL\u3000"]


def test_missing_tokens_and_categories_match_predict_cell_by_cell(tmp_path):
    """Each text cell, missing tokens in any case and surrounded by any white space included, gives
    the indicators predict's encoding gives (a missing cell the fill category, an unseen one zeros)."""
    model = hand_model()
    path = tmp_path / "m.onnx"
    export_model(model, path)
    n = len(MISSING_OR_NOT)
    cells = np.array([["1.5", text, "-2"] for text in MISSING_OR_NOT], dtype=object)
    cells[::3, 0] = ""  # some numeric cells missing (filled with 0.5)
    feeds = {"u": np.array([[float(c) if c else np.nan] for c in cells[:, 0]]),
             "colour": cells[:, 1:2], "v": np.full((n, 1), -2.0)}
    labels, proba = session(path).run(["label", "probabilities"], feeds)
    encoded = model.columns.encode(cells.astype(str), "cells")
    np.testing.assert_allclose(proba, model.predict_proba(encoded.X), rtol=0, atol=1e-12)
    assert labels.tolist() == model.classes[model.predict_proba(encoded.X).argmax(axis=1)].tolist()
    assert encoded.unknown == {"colour": int(np.sum(~missing_mask(np.array(MISSING_OR_NOT)) & ~np.isin(
        MISSING_OR_NOT, ["a", "b", "c c"])))}


SPACES = st.text(alphabet=[chr(code) for code in range(0x3001) if chr(code).isspace()] + ["\u200b", "_"], max_size=3)


@st.composite
def cells(draw):
    """A missing token in random case within random white space (and look-alikes), or any text."""
    token = draw(st.sampled_from(MISSING_TOKENS))
    cased = "".join(draw(st.sampled_from([c.lower(), c.upper()])) for c in token)
    return draw(st.one_of(st.builds(lambda a, b: a + cased + b, SPACES, SPACES), st.text(max_size=6)))


_TEXT_SESSION = {}


@given(st.lists(cells(), min_size=1, max_size=8))
def test_missing_text_cells_are_those_of_predict(texts):
    """The graph's missing-token match (RegexFullMatch) agrees with predict's (strip, lower, the tokens)
    on any text: a missing cell takes the fill category 'b', any other cell its own indicator or none."""
    if not _TEXT_SESSION:
        proto = onnx_model(hand_model())
        _TEXT_SESSION["model"] = onnxruntime.InferenceSession(proto.SerializeToString(),
                                                              providers=["CPUExecutionProvider"])
    texts = [text.replace("\x00", "") for text in texts]
    n = len(texts)
    feeds = {"u": np.ones((n, 1)), "colour": np.array(texts, dtype=object)[:, None], "v": np.zeros((n, 1))}
    _, proba = _TEXT_SESSION["model"].run(["label", "probabilities"], feeds)
    cells_ = np.array([["1", text, "0"] for text in texts], dtype=object).astype(str)
    model = hand_model()
    np.testing.assert_allclose(proba, model.predict_proba(model.columns.encode(cells_, "cells").X), rtol=0, atol=1e-12)


@pytest.mark.parametrize("normalizer, temperature", [("softmax", 1.0), ("softmax", 0.3), ("taylor", 2.0),
                                                     ("spherical", 0.7)])
def test_extreme_logits_stay_finite(tmp_path, normalizer, temperature):
    """Inputs of +-1e150 (logits far beyond exp's range, hypot's squares overflowing if written naively)
    give the probabilities of predict, finite and summing to one."""
    model = hand_model(normalizer, temperature)
    path = tmp_path / "m.onnx"
    export_model(model, path)
    u = np.array([[1e150], [-1e150], [3.0], [0.0]])
    v = np.array([[-1e150], [1e150], [1e-300], [0.0]])
    colour = np.array([["a"], ["b"], ["zz"], [""]], dtype=object)
    _, proba = session(path).run(["label", "probabilities"], {"u": u, "colour": colour, "v": v})
    encoded = model.columns.encode(np.column_stack([u[:, 0], colour[:, 0], v[:, 0]]).astype(str), "cells")
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba, model.predict_proba(encoded.X), rtol=0, atol=1e-12)


@pytest.mark.parametrize("classes, onnx_type", [(("ant", "bee", "cat"), str), ((3, 7, 11), int)])
def test_labels_and_metadata(tmp_path, classes, onnx_type):
    """The label output holds the class names as trained (strings or integers); the metadata lists the
    classes in the probabilities' order, the softreg version and the config digest (sha256 of config.yaml)."""
    model = hand_model(classes=classes)
    rundir.save_model(tmp_path, model)
    (tmp_path / "config.yaml").write_text("seed: 3\n")
    export(tmp_path, tmp_path / "m.onnx")
    proto = onnx.load(str(tmp_path / "m.onnx"))
    metadata = {entry.key: entry.value for entry in proto.metadata_props}
    assert json.loads(metadata["classes"]) == list(classes)
    assert metadata["softreg_version"] == __version__ == proto.producer_version
    assert metadata["config_digest"] == "sha256:" + hashlib.sha256(b"seed: 3\n").hexdigest()
    feeds = {"u": np.array([[0.0], [9.0]]), "colour": np.array([["a"], ["c c"]], dtype=object),
             "v": np.array([[1.0], [-4.0]])}
    [labels] = session(tmp_path / "m.onnx").run(["label"], feeds)
    encoded = model.columns.encode(np.array([["0", "a", "1"], ["9", "c c", "-4"]]), "cells")
    assert labels.tolist() == model.classes[model.predict_proba(encoded.X).argmax(axis=1)].tolist()
    assert all(type(label) is onnx_type for label in labels.tolist())


def write_unnamed(tmp_path, kind, X, y):
    """X and y as an .npz without feature names, svmlight text, or a CSV without a header (a few cells
    blank, the label in the middle); the feeds for the input X of the model trained on it."""
    if kind == "npz":
        np.savez(tmp_path / "data.npz", X=X, y=y)
        return tmp_path / "data.npz", X, ""
    if kind == "svmlight":
        from sklearn.datasets import dump_svmlight_file

        dump_svmlight_file(X, y, str(tmp_path / "data.svm"), zero_based=True)
        return tmp_path / "data.svm", X, ""
    cells = X.astype(str)
    cells[::7, 1] = ""
    with open(tmp_path / "data.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(np.column_stack([cells[:, :2], y, cells[:, 2:]]).tolist())
    return tmp_path / "data.csv", np.where(cells == "", "nan", cells).astype(float), "  label: 2\n  missing: median\n"


@pytest.mark.parametrize("kind", ["npz", "svmlight", "csv"])
def test_unnamed_matrix_has_one_input_x(tmp_path, kind):
    """A model trained on a matrix without column names (an .npz without feature names, svmlight, a CSV
    without a header, its missing cells filled) takes one input X of shape [N, d]: predict's answers."""
    rng = np.random.default_rng(5)
    X, y = np.round(rng.normal(size=(120, 4)) * [1, 10, 100, 0.1], 3), rng.integers(0, 3, size=120)
    X[X[:, 0] < -1, 0] = 0.0  # zeros, as sparse data have them
    source, feeds, options = write_unnamed(tmp_path, kind, X, y)
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  source: {source}\n{options}optim:\n  epochs: 3\noutput:\n  plots: false\n")
    code, _, stderr = softreg("train", "--config", config, "--out", tmp_path / "run", "--quiet")
    assert code == 0, stderr
    export(tmp_path / "run", tmp_path / "m.onnx")
    runtime = session(tmp_path / "m.onnx")
    [entry] = runtime.get_inputs()
    assert (entry.name, entry.type, entry.shape) == ("X", "tensor(double)", ["N", 4])
    check_against_predict(tmp_path / "run", tmp_path / "m.onnx", str(source), {"X": feeds}, "float64")


def test_float32_model_exports_a_float32_graph(tmp_path):
    """A model trained in float32 gives a float32 graph by default (float inputs), predict's to 1e-5;
    --dtype float64 makes a double one."""
    code, _, stderr = softreg("train", "--config", REPO / "configs" / "iris.yaml", "--out", tmp_path / "run", "--quiet",
                              "--set", "model.dtype=float32", "--set", "output.plots=false")
    assert code == 0, stderr
    export(tmp_path / "run", tmp_path / "m.onnx")
    runtime = session(tmp_path / "m.onnx")
    assert {entry.type for entry in runtime.get_inputs()} == {"tensor(float)"}
    feeds = builtin_feeds(runtime, "builtin:iris", np.float32)
    check_against_predict(tmp_path / "run", tmp_path / "m.onnx", "builtin:iris", feeds, "float32")
    export(tmp_path / "run", tmp_path / "m64.onnx", "--dtype", "float64")
    assert {entry.type for entry in session(tmp_path / "m64.onnx").get_inputs()} == {"tensor(double)"}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_estimator_to_onnx(tmp_path, dtype):
    """SoftmaxRegression.to_onnx: input X, the estimator's predict and predict_proba (1e-9 / 1e-5), the
    config digest of the config.yaml that save_run writes."""
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(200, 3)), rng.choice(["no", "yes", "maybe"], size=200)
    estimator = SoftmaxRegression(dtype=dtype, normalizer="taylor", temperature=1.5, epochs=5, random_state=0)
    estimator.fit(X, y)
    path = estimator.to_onnx(tmp_path / "e.onnx")
    labels, proba = session(path).run(["label", "probabilities"], {"X": X.astype(dtype)})
    np.testing.assert_allclose(proba, estimator.predict_proba(X.astype(dtype)), rtol=0, atol=TOLERANCE[dtype])
    assert labels.tolist() == estimator.predict(X.astype(dtype)).tolist()
    estimator.save_run(tmp_path / "run")
    digest = "sha256:" + hashlib.sha256((tmp_path / "run" / "config.yaml").read_bytes()).hexdigest()
    assert {entry.key: entry.value for entry in onnx.load(str(path)).metadata_props}["config_digest"] == digest


def test_same_model_same_bytes_and_force(tmp_path):
    """Exporting twice gives the same bytes; an existing output is refused without --force (exit 2, the
    file untouched) and replaced with it."""
    model = hand_model()
    rundir.save_model(tmp_path, model)
    first = tmp_path / "a.onnx"
    stdout = export(tmp_path, first)
    assert stdout == f"wrote {first}: ONNX opset 20, float64, 3 input(s), 3 classes\n"
    second = tmp_path / "b.onnx"
    second.write_bytes(b"mine")
    code, stdout, stderr = softreg("export", "--run", tmp_path, "--format", "onnx", "--output", second)
    assert (code, stdout, stderr) == (2, "", f"softreg: error: {second}: exists; use --force to overwrite it\n")
    assert second.read_bytes() == b"mine"
    export(tmp_path, second, "--force")
    assert first.read_bytes() == second.read_bytes()


def test_refusals_are_one_line_with_exit_2(tmp_path, monkeypatch):
    """A run without a finished model, and a missing onnx package, each give one line and exit 2."""
    code, stdout, stderr = softreg("export", "--run", tmp_path, "--format", "onnx", "--output", tmp_path / "m.onnx")
    assert (code, stdout) == (2, "") and stderr == (
        f"softreg: error: {tmp_path}: no model.npz (the run did not finish, or this is not a softreg run directory)\n")
    rundir.save_model(tmp_path, hand_model())
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    code, stdout, stderr = softreg("export", "--run", tmp_path, "--format", "onnx", "--output", tmp_path / "m.onnx")
    assert (code, stdout) == (2, "") and stderr == (
        "softreg: error: exporting to ONNX needs the onnx package: pip install 'softreg[onnx]' (from a clone "
        "of the repository: pip install '.[onnx]')\n")
    assert not (tmp_path / "m.onnx").exists()


def test_column_named_like_an_output_is_refused():
    """An input column named ``label`` or ``probabilities`` would clash with the outputs: refused by name."""
    model = hand_model()
    model.columns.columns[2].name = "probabilities"
    with pytest.raises(DataError, match=r"input column 'probabilities' has a name the ONNX graph keeps"):
        onnx_model(model)


def readme_section():
    text = (REPO / "README.md").read_text()
    return text.split("## Serving the model", 1)[1].split("\n## ", 1)[0]


def test_readme_serving_example_runs(tmp_path):
    """The README's commands and its onnxruntime example, run as written from a copy of the repository's
    layout: it prints predict's label for every row of data/iris.csv."""
    section = readme_section()
    commands = [line.strip().split()[1:] for line in section.splitlines() if line.strip().startswith("softreg ")]
    (tmp_path / "configs").symlink_to(REPO / "configs")
    (tmp_path / "data").symlink_to(REPO / "data")
    for arguments in commands:
        arguments = [str(tmp_path / arg) if arg.startswith("runs/") or arg.endswith(".onnx") else
                     str(REPO / arg) if arg.startswith("configs/") else arg for arg in arguments]
        code, _, stderr = softreg(*arguments)
        assert code == 0, stderr
    [program] = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(program.strip().splitlines()) == 10
    result = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    labels, proba = predicted(tmp_path / "runs" / "iris-csv", str(REPO / "data" / "iris.csv"))
    printed = [line.split(maxsplit=1) for line in result.stdout.splitlines()]
    assert [label for label, _ in printed] == labels.tolist()


def test_what_predict_refuses_gives_nan_probabilities(tmp_path):
    """A missing number in a column without a fill, or an infinite one, gives NaN probabilities and the
    first class (the README's word; predict refuses such rows); the other rows are unaffected."""
    model = hand_model()
    path = tmp_path / "m.onnx"
    export_model(model, path)
    feeds = {"u": np.array([[np.inf], [1.0], [1.0]]), "colour": np.array([["a"], ["b"], ["b"]], dtype=object),
             "v": np.array([[0.0], [np.nan], [2.0]])}
    labels, proba = session(path).run(["label", "probabilities"], feeds)
    assert np.isnan(proba[:2]).all() and labels[:2].tolist() == ["ant", "ant"]
    encoded = model.columns.encode(np.array([["1", "b", "2"]]), "cells")
    np.testing.assert_allclose(proba[2:], model.predict_proba(encoded.X), rtol=0, atol=1e-12)
