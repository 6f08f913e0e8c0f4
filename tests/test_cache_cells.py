"""Categorical columns and missing cells through the on-disk cache: what ingest learns in
one streamed pass equals what in-memory training learns from the whole training part."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softreg import cache
from softreg.cache.cells import NanMoments
from softreg.prepare.columns import Columns, fit_columns
from tests.test_cache import FAST, run, write_config

COLORS = ["red", "green", "blue", "teal"]


def write_mixed(path, n_rows=500, seed=1, missing_rate=0.1):
    """A CSV with a numeric column, a text column of colours, another numeric column and a
    label; some numeric and colour cells empty or NA. Returns the rows as cells."""
    rng = np.random.default_rng(seed)
    x0 = rng.integers(-20, 20, n_rows).astype(str).astype(object)
    color = rng.choice(COLORS[:3], n_rows).astype(object)
    color[rng.random(n_rows) < 0.02] = COLORS[3]  # rare: may be missing from the training rows
    x2 = (rng.integers(0, 100, n_rows) / 4).astype(str).astype(object)
    label = np.where(x0.astype(float) + (color == "red") * 10 > 0, "yes", "no")
    for column, token in ((x0, ""), (color, "NA"), (x2, "?")):
        column[rng.random(n_rows) < missing_rate] = token
    cells = np.column_stack([x0, color, x2]).astype(str)
    lines = ["x0,color,x2,label"] + [",".join([*row, lab]) for row, lab in zip(cells.tolist(), label, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return cells, label


@pytest.fixture
def mixed(tmp_path, monkeypatch):
    monkeypatch.setattr(cache.rows, "BUCKET_BYTES", 4096)
    monkeypatch.setattr(cache.rows, "READ_ROWS", 128)  # several chunks: the moments are merged
    cells, labels = write_mixed(tmp_path / "m.csv")
    return tmp_path, cells, labels


def train_cells(cells, seed=0, val=0.2):
    """The training rows of a cache built with ``seed`` (the seeded-hash split of the row index)."""
    part = cache.assign_parts(seed, np.arange(len(cells)), 0.2, val)
    return cells[part == 0]


def test_mean_imputation_and_categories_equal_the_in_memory_columns(mixed):
    """data.missing: mean: the fills (mean of the training rows' present values, the most frequent
    colour), the sorted categories and the standardizer equal fit_columns + StandardScaler on the
    training rows to rounding, indicators centred but not scaled; val/test rows get the same encoding."""
    from sklearn.preprocessing import StandardScaler

    tmp_path, cells, _ = mixed
    config = write_config(tmp_path, tmp_path / "m.csv", "  missing: mean\n")
    code, _, stderr = run("ingest", "--config", config)
    assert code == 0, stderr
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    learnt = Columns.from_json(manifest["columns"])
    expected = fit_columns(train_cells(cells), ["x0", "color", "x2"], ["color"], "mean")
    assert [c.categories for c in learnt.columns] == [c.categories for c in expected.columns]
    assert learnt.columns[1].fill == expected.columns[1].fill
    for index in (0, 2):
        assert learnt.columns[index].fill == pytest.approx(expected.columns[index].fill, rel=1e-12)
    assert manifest["feature_names"] == expected.feature_names
    X_train = expected.encode(train_cells(cells), "m.csv").X
    scaler = StandardScaler().fit(X_train)
    scale = np.where(["=" in name for name in expected.feature_names], 1.0, scaler.scale_)
    np.testing.assert_allclose(manifest["feature_mean"], scaler.mean_, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(manifest["feature_scale"], scale, rtol=1e-12)
    for part_index, part in enumerate(cache.PARTS):
        in_part = cache.assign_parts(0, np.arange(len(cells)), 0.2, 0.2) == part_index
        want = expected.encode(cells[in_part], "m.csv").X
        got = np.load(tmp_path / "cache" / part / "X.npy") * scale + scaler.mean_
        assert sorted(map(tuple, np.round(got, 9).tolist())) == sorted(map(tuple, np.round(want, 9).tolist()))


def test_drop_keeps_exactly_the_complete_rows(mixed):
    """data.missing: drop: the cache holds the rows without a missing cell, no more, no fewer."""
    tmp_path, cells, _ = mixed
    config = write_config(tmp_path, tmp_path / "m.csv", "  missing: drop\n")
    assert run("ingest", "--config", config)[0] == 0
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    complete = ~np.isin(np.char.lower(cells), ["", "na", "?"]).any(axis=1)
    assert sum(manifest["n"].values()) == int(complete.sum())
    assert all(column["fill"] is None for column in manifest["columns"]["columns"])


def test_a_missing_cell_under_missing_error_is_the_in_memory_error(mixed):
    """The default data.missing: error refuses the first missing cell of the file with the message
    that in-memory loading gives (which names the first of the training rows), naming its line and
    column; numeric or categorical alike."""
    import re

    tmp_path, cells, _ = mixed
    for first_missing in ("x0", "color"):
        if first_missing == "color":  # no numeric cell missing: the first missing cell is a colour
            text = (tmp_path / "m.csv").read_text().splitlines()
            rows = [line.split(",") for line in text]
            for row in rows[1:]:
                row[0] = row[0] or "1"
                row[2] = "1" if row[2] == "?" else row[2]
            (tmp_path / "m.csv").write_text("\n".join(",".join(row) for row in rows) + "\n")
        config = write_config(tmp_path, tmp_path / "m.csv")
        code, _, stderr = run("ingest", "--config", config)
        in_memory = tmp_path / "memory.yaml"
        in_memory.write_text(f"data: {{source: {tmp_path / 'm.csv'}}}\n")
        memory_code, _, memory_stderr = run("train", "--config", in_memory, "--out", tmp_path / "r")
        assert code == memory_code == 2
        assert re.sub(r"line \d+", "line N", stderr) == re.sub(r"line \d+", "line N", memory_stderr)
        lines = (tmp_path / "m.csv").read_text().splitlines()
        first = next(number for number, line in enumerate(lines, 1) if re.search(r"(^|,)(|NA|\?)(,|$)", line))
        assert f"line {first}, column {first_missing!r}" in stderr
        assert not (tmp_path / "cache").exists()


def test_median_is_refused_with_the_reason(mixed):
    """data.missing: median needs a whole column: refused by name, exit 2, no cache."""
    tmp_path, _, _ = mixed
    config = write_config(tmp_path, tmp_path / "m.csv", "  missing: median\n")
    code, _, stderr = run("ingest", "--config", config)
    assert code == 2 and "data.missing: median (it needs every value of a column at once" in stderr
    assert not (tmp_path / "cache").exists()


def test_a_run_trained_through_the_cache_predicts_the_raw_file(mixed):
    """Training from a cache with categories and mean fills saves the columns it learnt; predict
    applies them to the raw file, and its log loss on the test rows (the seeded-hash test part)
    equals the one training measured on the cache's encoding of those rows."""
    tmp_path, cells, labels = mixed
    config = write_config(tmp_path, tmp_path / "m.csv", "  missing: mean\n")
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", *FAST)
    assert code == 0, stderr
    code, stdout, stderr = run("predict", "--run", tmp_path / "run", "--input", tmp_path / "m.csv")
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0] == "label,prob_no,prob_yes" and len(lines) == len(cells) + 1
    model = json.loads((tmp_path / "run" / "model.json").read_text())
    assert model["input"]["columns"]["columns"][1]["categories"][:3] == ["blue", "green", "red"]
    probabilities = np.array([line.split(",")[1:] for line in lines[1:]], dtype=float)
    test = cache.assign_parts(0, np.arange(len(cells)), 0.2, 0.2) == 2
    truth = (labels[test] == "yes").astype(int)
    log_loss = -np.mean(np.log(probabilities[test][np.arange(truth.size), truth]))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["n_samples"] == int(test.sum())
    assert log_loss == pytest.approx(metrics["log_loss"], abs=1e-8)  # predict prints 10 decimals


def test_categorical_names_a_column_and_none_refuses_text(tmp_path):
    """data.categorical: [color] encodes that column; categorical: none leaves the text column
    numeric, so its first text cell is an error naming it."""
    write_mixed(tmp_path / "m.csv", missing_rate=0.0)
    config = write_config(tmp_path, tmp_path / "m.csv", "  categorical: [color]\n")
    assert run("ingest", "--config", config)[0] == 0
    names = json.loads((tmp_path / "cache" / "manifest.json").read_text())["feature_names"]
    assert names[0] == "x0" and names[1].startswith("color=") and names[-1] == "x2"
    config = write_config(tmp_path, tmp_path / "m.csv", "  categorical: none\n")
    code, _, stderr = run("ingest", "--config", config)
    assert code == 2 and "column 'color'" in stderr and "is not a number" in stderr


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), min_size=3, max_size=3), min_size=1,
                max_size=40), st.integers(1, 7))
def test_nan_aware_moments_merged_by_chunks_equal_the_whole(rows, chunk):
    """NaN-aware Chan merge over chunks of any size: per column, the count, mean and squared
    deviations of the present values equal numpy's over the whole column."""
    X = np.array([[np.nan if value is None else value for value in row] for row in rows])
    moments = NanMoments.empty(3)
    for start in range(0, len(X), chunk):
        moments.add(X[start:start + chunk])
    present = ~np.isnan(X)
    np.testing.assert_array_equal(moments.count, present.sum(axis=0))
    for column in range(3):
        values = X[present[:, column], column]
        if values.size:
            assert moments.mean[column] == pytest.approx(values.mean(), rel=1e-9, abs=1e-6)
            assert moments.squares[column] == pytest.approx(((values - values.mean()) ** 2).sum(), rel=1e-6,
                                                            abs=1e-3)


def test_svmlight_through_the_cache_trains_like_in_memory(tmp_path):
    """A sparse svmlight file goes into the cache as CSR parts (scaled, centred implicitly):
    each part is a permutation of its rows, the standardizer equals the in-memory one on the
    training rows, training reads it, and predict reads the raw file."""
    import scipy.sparse as sp
    from sklearn.datasets import dump_svmlight_file, load_wine

    from softreg.prepare.data import fit_standardizer

    X, y = load_wine(return_X_y=True)
    X[X < np.median(X, axis=0)] = 0.0  # sparse: about half the cells are zero
    dump_svmlight_file(X, y, str(tmp_path / "w.svm"), zero_based=False)
    config = write_config(tmp_path, tmp_path / "w.svm")
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", *FAST)
    assert code == 0, stderr
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert manifest["sparse"] is True and manifest["index_base"] == 1
    part = cache.assign_parts(0, np.arange(len(X)), 0.2, 0.2)
    mean, scale = fit_standardizer(sp.csr_matrix(X[part == 0]), True)
    np.testing.assert_allclose(manifest["feature_mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(manifest["feature_scale"], scale, rtol=1e-12)
    loaded = cache.load_part(cache.read_manifest(tmp_path / "cache"), "train")
    assert loaded is not None and loaded.center is not None
    stored = loaded.X.toarray() * scale
    want = X[part == 0]
    assert sorted(map(tuple, np.round(stored, 8).tolist())) == sorted(map(tuple, np.round(want, 8).tolist()))
    code, stdout, stderr = run("predict", "--run", tmp_path / "run", "--input", tmp_path / "w.svm")
    assert code == 0, stderr
    assert len(stdout.splitlines()) == len(X) + 1
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["n_samples"] == int((part == 2).sum()) and metrics["accuracy"] > 0.85
    code, stdout, stderr = run("evaluate", "--run", tmp_path / "run", "--optimum", "--json")
    assert code == 0, stderr
    optimum = json.loads(stdout)["optimum"]
    assert optimum["grad_norm"] < 1e-6 and 0 < optimum["objective"] < optimum["model_objective"]


def test_parquet_nulls_through_the_cache_take_the_mean_or_drop(tmp_path):
    """A Parquet source with null features: data.missing: error refuses them (naming the row and
    column), mean fills them with the training rows' mean, drop leaves the complete rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(3)
    x0 = rng.normal(size=300)
    x1 = rng.normal(size=300)
    label = np.where(x0 + x1 > 0, "up", "down")
    holes = rng.random(300) < 0.1
    column = pa.array([None if hole else value for hole, value in zip(holes, x1.tolist(), strict=True)])
    pq.write_table(pa.table({"x0": x0, "x1": column, "label": label}), tmp_path / "p.parquet")
    config = write_config(tmp_path, tmp_path / "p.parquet")
    code, _, stderr = run("ingest", "--config", config)
    first = int(np.flatnonzero(holes)[0])
    assert code == 2 and f"row {first + 1}" in stderr and "'x1'" in stderr
    config = write_config(tmp_path, tmp_path / "p.parquet", "  missing: mean\n")
    assert run("ingest", "--config", config)[0] == 0
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    train = cache.assign_parts(0, np.arange(300), 0.2, 0.2) == 0
    fill = manifest["columns"]["columns"][1]["fill"]
    assert fill == pytest.approx(x1[train & ~holes].mean(), rel=1e-12)
    config = write_config(tmp_path, tmp_path / "p.parquet", "  missing: drop\n")
    assert run("ingest", "--config", config)[0] == 0
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert sum(manifest["n"].values()) == int((~holes).sum())


def test_a_sparse_cache_refuses_shards_by_name(tmp_path):
    """data.shards > 1 over an svmlight (CSR) cache: exit 2, saying how to train it instead."""
    from sklearn.datasets import dump_svmlight_file, load_wine

    X, y = load_wine(return_X_y=True)
    dump_svmlight_file(X, y, str(tmp_path / "w.svm"))
    config = write_config(tmp_path, tmp_path / "w.svm")
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", "--set", "data.shards=2", *FAST)
    assert code == 2, stderr
    assert "a sparse (svmlight) cache trains in one process; set data.shards: 1 and engine.kind: numpy" in stderr


def test_an_option_a_cache_cannot_do_is_refused_before_any_word_of_rebuilding(mixed):
    """train with data.cache over an existing cache and data.missing: median: exit 2 naming the
    option, no "rebuilding" warning, and the cache untouched."""
    tmp_path, _, _ = mixed
    config = write_config(tmp_path, tmp_path / "m.csv", "  missing: mean\n")
    assert run("ingest", "--config", config)[0] == 0
    before = (tmp_path / "cache" / "manifest.json").read_bytes()
    config = write_config(tmp_path, tmp_path / "m.csv", "  missing: median\n")
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", *FAST)
    assert code == 2 and "rebuilding" not in stderr
    assert stderr.startswith("softreg: error: ") and "data.missing: median (it needs every value" in stderr
    assert (tmp_path / "cache" / "manifest.json").read_bytes() == before
