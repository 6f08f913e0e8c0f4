"""The fast path for numeric delimited text (softreg.io.delimited_numbers): the same data, bit for bit,
as the text-cell path, or the text path itself with its messages."""

import io
import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softreg.cli import main
from softreg.errors import DataError
from softreg.io import arrays, delimited_numbers, sources
from softreg.io.delimited_numbers import NotNumeric
from softreg.io.selection import Selection
from softreg.io.sources import load_source
from softreg.prepare.columns import Columns


def outcome(path, as_numbers, **options):
    """What training makes of a file: the numeric features (bytes), labels, ids and column facts,
    or the one DataError or warning it stops or warns with."""
    selection = Selection(**{key: options.pop(key) for key in ("label", "id", "exclude") if key in options})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            dataset = load_source(str(path), selection, as_numbers=as_numbers, **options)
            if dataset.cells is None:
                X = dataset.X
            else:
                X = Columns.numeric(dataset.feature_names).encode(
                    dataset.cells, dataset.source, dataset.line_numbers.tolist()
                ).X
        except DataError as error:
            return ("error", str(error), [str(w.message) for w in caught])
    ids = None if dataset.ids is None else dataset.ids.tolist()
    return (
        X.shape, X.tobytes(), dataset.labels.dtype.kind, dataset.labels.tolist(), ids, dataset.feature_names,
        dataset.label_name, dataset.named, dataset.file_columns, dataset.id_name, [str(w.message) for w in caught],
    )


def fast(path, **options):
    """The dataset through the fast path itself (NotNumeric when it declines)."""
    selection = Selection(**{key: options.pop(key) for key in ("label", "id", "exclude") if key in options})
    return arrays.load_numbers(path, selection, **options)


# -- numbers as people write them


@st.composite
def written_numbers(draw):
    """A numeric table (n, d) and its CSV text: each cell in repr, fewer digits, an exponent,
    a leading '+', or padded with blanks; labels integers or text; a header or not."""
    n_rows = draw(st.integers(1, 130))  # past the 100 rows the text path reads first
    n_features = draw(st.integers(1, 4))
    finite = st.floats(min_value=-1e307, max_value=1e307)  # fewer digits must not round up to inf
    X = draw(hnp.arrays(np.float64, (n_rows, n_features), elements=finite))
    styles = draw(st.lists(st.sampled_from(["repr", "g", "e", "E", "plus", "padded"]), min_size=1, max_size=3))
    digits = draw(st.integers(1, 20))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def cell(value):
        style = styles[rng.integers(len(styles))]
        if style == "g":
            return f"{value:.{digits}g}"
        if style in ("e", "E"):
            text = f"{value:.{digits}e}"
            return text.upper() if style == "E" else text
        if style == "plus":
            return f"+{value!r}" if value >= 0 and not str(value).startswith("-") else repr(value)
        if style == "padded":
            return f" {value!r}\t"
        return repr(value)

    text_labels = draw(st.booleans())
    labels = rng.integers(-3, 4, size=n_rows)
    label_texts = [f" class {label}" if text_labels else f"{label}" for label in labels.tolist()]
    lines = [",".join([*map(cell, row), label]) for row, label in zip(X.tolist(), label_texts, strict=True)]
    header = draw(st.booleans())
    if header:
        lines.insert(0, ",".join([*(f"x{j}" for j in range(n_features)), "target"]))
    return "\n".join(lines) + "\n", header


@given(written=written_numbers())
def test_numbers_parse_bit_for_bit_as_python_floats(tmp_path_factory, written):
    """Every way of writing a float64 (shortest repr, fewer digits, exponents, '+', blanks around it)
    loads through the fast path, bit for bit what the text path's float() reads, labels typed alike."""
    text, header = written
    path = tmp_path_factory.mktemp("numbers") / "d.csv"
    path.write_text(text)
    dataset = fast(path, header=header)
    assert dataset.cells is None and dataset.X.dtype == np.float64
    assert outcome(path, True, header=header) == outcome(path, False, header=header)


# -- anything else reads as text cells, with their messages

HOSTILE_CELLS = [
    "", " ", "nan", "NaN", "inf", "-Infinity", "1e999", "NA", "?", "null", "abc", "1_000", "\u00a01", "1,5", '"2"',
    '"a,b"', '"x""y"', '"multi\nline"', '"open', "3 4", "0x10", "1e", ".", "+-1", "\u0661", "+7", " 8 ", "1.5e-3",
    "\t9", "-0", "1\r", "x\x00y",
]


@st.composite
def hostile_files(draw):
    """Well-formed numeric rows (none, a few, or more than the text path reads first), then rows
    with cells that are not plain numbers, quotes, blank lines or the wrong length."""
    n_columns = draw(st.integers(2, 4))
    n_good = draw(st.sampled_from([0, 3, 105]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    good = rng.normal(size=(n_good, n_columns - 1))
    rows = [[*(f"{value:.6g}" for value in row), str(rng.integers(3))] for row in good.tolist()]
    for _ in range(draw(st.integers(1, 5))):
        row = [draw(st.sampled_from([*HOSTILE_CELLS, "1.25", "7"])) for _ in range(n_columns)]
        shape = draw(st.sampled_from(["same", "same", "same", "short", "long", "blank"]))
        if shape == "short":
            row = row[:-1]
        elif shape == "long":
            row = [*row, "5"]
        elif shape == "blank":
            row = []
        rows.insert(draw(st.integers(0, len(rows))), row)
    header = draw(st.sampled_from([None, True, False]))
    head = [",".join(f"c{j}" for j in range(n_columns))] if header is not False else []
    return "\n".join(head + [",".join(row) for row in rows]) + draw(st.sampled_from(["\n", "", "\n\n"])), header


@given(written=hostile_files())
def test_anything_not_plainly_numeric_gives_what_the_text_path_gives(tmp_path_factory, written):
    """Missing cells, text, NaN, inf, quotes, ragged rows, blank labels: with the fast path enabled,
    loading gives exactly the text path's data, or its error message naming line and column."""
    text, header = written
    path = tmp_path_factory.mktemp("hostile") / "d.csv"
    path.write_bytes(text.encode())
    assert outcome(path, True, header=header) == outcome(path, False, header=header)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("oops", "d.csv: line 103, column 'b': 'oops' is not a number"),
        ("", "d.csv: line 103, column 'b': an empty cell is not a number; set data.missing to drop, mean, median "
         "or most_frequent to handle missing cells"),
        ("nan", "d.csv: line 103, column 'b': nan is not a finite number (NaN and inf are not allowed in features)"),
        ("1e999", "d.csv: line 103, column 'b': inf is not a finite number (NaN and inf are not allowed in features)"),
        ("4,5", "d.csv: line 103 has 4 fields, expected 3 (as in the header)"),
    ],
)
def test_a_bad_cell_past_the_first_rows_is_named_by_the_text_path(tmp_path, body, message):
    """A bad cell below the first 100 rows, where only pandas sees it: the fast path declines, and the
    training command reports the text path's line and column, exit 2."""
    rows = [f"{i % 7}.5,{i % 3},{i % 2}" for i in range(101)]
    (tmp_path / "d.csv").write_text("\n".join(["a,b,y", *rows, f"1,{body},0"]) + "\n")
    (tmp_path / "c.yaml").write_text("data:\n  source: d.csv\n")
    with pytest.raises(NotNumeric):
        fast(tmp_path / "d.csv")
    result = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(message)


def test_layouts_the_fast_path_reads(tmp_path):
    """A byte-order mark with no header, CRLF line ends, blank lines, quoted numbers, quoted labels with
    the delimiter or a line end in them, Latin-1 text, an id column and excluded text: the fast path
    reads each, and gives what the text path gives."""
    body = [f'{i}.25,"{i % 4}",{i % 3},"lab, {i % 2}"' if i != 120 else '9,"1",1,"two\nlines"' for i in range(150)]
    cases = {
        "bom.csv": ("\ufeff" + "\r\n".join(f"{i},{i * 2},{i % 2}" for i in range(150)) + "\r\n", "utf-8", {}),
        "blank.csv": ("\n\na;b;y\n\n" + "\n\n".join(f"{i};-{i}e-3;{i % 2}" for i in range(150)) + "\n\n", "utf-8", {}),
        "quoted.csv": ("a,b,c,label\n" + "\n".join(body) + "\n", "utf-8", {}),
        "latin.csv": ("a,b,classe\n" + "\n".join(f"{i},{i},{'été' if i % 2 else 'hiver'}" for i in range(150)) + "\n",
                      "latin-1", {"encoding": "latin-1"}),
        "extra.csv": ("id,a,notes,b,y\n" + "\n".join(f"u{i},{i},note {i},{i / 3!r},{i % 2}" for i in range(150)) + "\n",
                      "utf-8", {"id": "id", "exclude": ["notes"]}),
    }
    for name, (text, encoding, options) in cases.items():
        path = tmp_path / name
        path.write_bytes(text.encode(encoding))
        assert fast(path, **dict(options)).X.shape[0] == 150, name
        assert outcome(path, True, **dict(options)) == outcome(path, False, **dict(options)), name


def test_encodings_without_ascii_line_ends_and_standard_input_read_as_text(tmp_path, monkeypatch):
    """UTF-16 text and standard input are read by the text path (the fast path declines them)."""
    path = tmp_path / "d.csv"
    path.write_bytes("a,b,y\n1,2,0\n3,4,1\n".encode("utf-16"))
    with pytest.raises(NotNumeric):
        fast(path, encoding="utf-16")
    assert load_source(str(path), as_numbers=True, encoding="utf-16").cells is not None
    with pytest.raises(NotNumeric):
        fast("-")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"a,b,y\n1,2,0\n3,4,1\n")))
    dataset = load_source("-", as_numbers=True)
    assert dataset.cells.tolist() == [["1", "2"], ["3", "4"]] and dataset.labels.tolist() == [0, 1]


def test_many_chunks_of_uneven_rows_fill_one_array(tmp_path, monkeypatch):
    """Rows that grow longer down the file (so the first chunk's bytes per row underestimate the rest)
    load, over many small chunks, to the same array as the text path."""
    monkeypatch.setattr(delimited_numbers, "CHUNK_ROWS", 7)
    rng = np.random.default_rng(0)
    rows = [",".join([*(f"{v:.{1 + i // 20}f}" for v in rng.normal(size=3)), str(i % 3)]) for i in range(200)]
    path = tmp_path / "d.csv"
    path.write_text("a,b,c,y\n" + "\n".join(rows) + "\n")
    dataset = fast(path)
    assert dataset.X.shape == (200, 3) and dataset.X.flags.owndata
    assert outcome(path, True) == outcome(path, False)


def train_model(tmp_path, name, source, monkeypatch, fast_path):
    """Train a few epochs on ``source``; returns model.json (minus timings) and model.npz bytes."""
    loaded = []

    def load_numbers(*args, **kwargs):
        if not fast_path:
            raise NotNumeric
        loaded.append(arrays.load_numbers(*args, **kwargs))
        return loaded[-1]

    monkeypatch.setattr(sources, "load_numbers", load_numbers)
    config = tmp_path / f"{name}.yaml"
    config.write_text(f"data:\n  source: {source}\noptim:\n  epochs: 3\noutput:\n  plots: false\n")
    out = tmp_path / name
    result = CliRunner().invoke(main, ["train", "--config", str(config), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.stderr
    monkeypatch.undo()
    assert bool(loaded) is fast_path
    document = json.loads((out / "model.json").read_text())
    document.pop("training", None)
    return document, (out / "model.npz").read_bytes()


@pytest.mark.parametrize("header", [True, False])
def test_a_model_trained_through_the_fast_path_is_the_same_model(tmp_path, monkeypatch, header):
    """data/iris.csv-like data, with a header and without, trains to the same model.npz bytes and
    the same model.json input description (columns, header, file columns) through either path."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    rows = [",".join([*(f"{v:g}" for v in row), str(label)]) for row, label in zip(X, y, strict=True)]
    path = tmp_path / "iris.csv"
    path.write_text("\n".join((["sl,sw,pl,pw,species"] if header else []) + rows) + "\n")
    fast_model = train_model(tmp_path, "fast", path, monkeypatch, True)
    slow_model = train_model(tmp_path, "slow", path, monkeypatch, False)
    assert fast_model == slow_model
    described = fast_model[0]["input"]
    assert described["header"] is header and described["columns"]["missing"] == "error"


# -- the cache ingest streams the same rows


def write_numeric_csv(path, n_rows=600, seed=0):
    """A headed CSV of float features written with 6 significant digits and integer labels 0..2."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    rows = [",".join([*(f"{v:.6g}" for v in row), str(label)]) for row, label in zip(X.tolist(), y, strict=True)]
    path.write_text("\n".join(["f0,f1,f2,label", *rows]) + "\n")


def ingest(tmp_path, source, target):
    config = tmp_path / "ingest.yaml"
    config.write_text(f"data:\n  source: {source}\n  val: 0.2\n")
    result = CliRunner().invoke(main, ["ingest", "--config", str(config), "--cache", str(target)])
    return result.exit_code, result.stderr


def test_ingest_through_the_fast_path_writes_the_same_cache(tmp_path, monkeypatch):
    """Ingest reads numeric text through the fast path, in the same chunks, to the same shards byte for
    byte as through the text path; a bad cell chunks down the file, after the fast path has passed rows
    on, stops it with the text path's line and column."""
    from softreg import cache

    monkeypatch.setattr(cache.rows, "READ_ROWS", 50)
    monkeypatch.setattr(cache.rows, "BUCKET_BYTES", 4096)
    write_numeric_csv(tmp_path / "d.csv")
    calls = []
    original = delimited_numbers.read_chunks

    def read_chunks(*args):
        calls.append(args)
        return original(*args)

    def declines(*args):
        raise NotNumeric

    monkeypatch.setattr(delimited_numbers, "read_chunks", read_chunks)
    assert ingest(tmp_path, tmp_path / "d.csv", tmp_path / "fast") == (0, "")
    assert calls
    monkeypatch.setattr(delimited_numbers, "read_layout", declines)
    assert ingest(tmp_path, tmp_path / "d.csv", tmp_path / "text") == (0, "")
    for part in cache.PARTS:
        for name in ("X.npy", "y.npy"):
            assert (tmp_path / "fast" / part / name).read_bytes() == (tmp_path / "text" / part / name).read_bytes()
    monkeypatch.undo()
    monkeypatch.setattr(cache.rows, "READ_ROWS", 50)
    lines = (tmp_path / "d.csv").read_text().splitlines()
    lines[420] = "0.5,oops,1,2"
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    code, stderr = ingest(tmp_path, tmp_path / "d.csv", tmp_path / "bad")
    assert code == 2
    # the columns were numeric in the rows read before: a text cell now is an error, as in memory
    assert stderr.strip().endswith("d.csv: line 421, column 'f1': 'oops' is not a number")


@pytest.mark.slow  # two subprocesses
def test_read_speed_benchmark_reports_speed_and_peak_memory():
    """benchmarks/read_speed.py writes a numeric CSV, loads it through the fast path in a fresh process
    (it checks every row arrived as float64) and reports MB/s and the peak memory against X."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "read_speed.py"
    done = subprocess.run([sys.executable, str(script), "--rows", "3000", "--features", "5"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "3000 rows x 5 floats" in done.stdout
    assert "in memory (fast path):" in done.stdout and "MB/s, peak RSS" in done.stdout
