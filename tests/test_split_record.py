"""split.npz: which source rows each part holds (0-based data-row indices), so that the
split can be rebuilt with pandas; written by train, resume and Dask runs, read by nothing
that would break, and replaced with the run."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from softreg import rundir
from softreg.cli import main


def softreg(*args):
    """The command line in this process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A pandas-written CSV of 200 rows, two numbers (rows 5, 17 and 60 miss one, written as
    empty cells) and a 3-class label; and its frame."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    frame["kind"] = np.where(frame["a"] + frame["b"] > 0.5, "x", np.where(frame["a"] > 0, "y", "z"))
    frame.loc[[5, 60], "a"] = np.nan
    frame.loc[17, "b"] = np.nan
    path = tmp_path_factory.mktemp("split") / "t.csv"
    frame.to_csv(path, index=False)
    return path, frame


def train(tmp_path, path, name="run", *overrides, **data):
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"data": {"source": str(path), "label": "kind", "missing": "drop", "val": 0.2,
                                               **data},
                                      "optim": {"epochs": 3}, "output": {"plots": False}}))
    run = tmp_path / name
    sets = [item for override in overrides for item in ("--set", override)]
    code, _, stderr = softreg("train", "--config", config, "--out", run, "--quiet", *sets)
    assert code == 0, stderr
    return run, config


def test_split_lists_each_source_row_once_but_those_left_out(table, tmp_path):
    """train, val and test are disjoint, cover every row but the three with a missing cell,
    and the test indices pick test.npz's rows, in order, out of the pandas frame."""
    path, frame = table
    run, _ = train(tmp_path, path)
    split = rundir.load_split(run)
    parts = [split[part] for part in ("train", "val", "test")]
    together = np.concatenate(parts)
    assert len(together) == len(set(together.tolist())) == 197
    assert set(together.tolist()) == set(range(200)) - {5, 17, 60}
    X_test, y_test = rundir.load_test_split(run)
    np.testing.assert_array_equal(X_test, frame.iloc[split["test"]][["a", "b"]].to_numpy())
    classes = rundir.load_model(run).classes
    assert classes[y_test].tolist() == frame.iloc[split["test"]]["kind"].tolist()
    training = json.loads((run / rundir.MODEL_JSON).read_text())["training"]
    assert [len(part) for part in parts] == [training["n_train"], training["n_val"], training["n_test"]]


def test_an_explicit_test_file_gets_indices_into_that_file(table, tmp_path):
    """With data.test a file, split.npz's test holds that file's data rows (0-based), missing ones left out."""
    path, frame = table
    test_path = tmp_path / "later.csv"
    frame.iloc[100:].to_csv(test_path, index=False)
    train_path = tmp_path / "first.csv"
    frame.iloc[:100].to_csv(train_path, index=False)
    run, _ = train(tmp_path, train_path, test=str(test_path))
    split = rundir.load_split(run)
    assert split["test"].tolist() == list(range(100))  # rows 100..199 of the frame hold no missing cell
    assert sorted(np.concatenate([split["train"], split["val"]]).tolist()) == sorted(set(range(100)) - {5, 17, 60})


def test_resume_writes_the_same_split(table, tmp_path):
    """A finished run trained further with --resume writes split.npz again, the same arrays."""
    path, _ = table
    run, _ = train(tmp_path, path)
    before = rundir.load_split(run)
    code, _, stderr = softreg("train", "--resume", run, "--set", "optim.epochs=5", "--quiet")
    assert code == 0, stderr
    after = rundir.load_split(run)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(after[part], before[part])


def test_a_cached_run_knows_each_rows_source_index(table, tmp_path):
    """Through data.cache the parts come from the cache's hash split: disjoint, every row but the
    three left out, and test.npz's rows are the frame's rows at split.npz's test indices."""
    path, frame = table
    run, _ = train(tmp_path, path, cache=str(tmp_path / "cache"))
    split = rundir.load_split(run)
    together = np.concatenate([split[part] for part in ("train", "val", "test")])
    assert len(together) == len(set(together.tolist())) == 197
    assert set(together.tolist()) == set(range(200)) - {5, 17, 60}
    X_test, _ = rundir.load_test_split(run)
    np.testing.assert_allclose(X_test, frame.iloc[split["test"]][["a", "b"]].to_numpy(), rtol=1e-12)


def test_a_dask_run_writes_the_numpy_runs_split(table, tmp_path):
    """engine.kind: dask on a local cluster (shards of the cache) writes the numpy engine's split.npz."""
    path, _ = table
    cache = str(tmp_path / "cache")
    numpy_run, _ = train(tmp_path, path, "numpy", cache=cache, shards=2)
    dask_run, _ = train(tmp_path, path, "dask", "engine.kind=dask", "engine.scheduler=local", "engine.workers=1",
                        cache=cache, shards=2)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(rundir.load_split(dask_run)[part], rundir.load_split(numpy_run)[part])


def test_commands_that_read_a_run_accept_its_split(table, tmp_path):
    """evaluate, predict and report read a run with split.npz; train --force replaces it; a sweep's runs have one."""
    path, frame = table
    run, config = train(tmp_path, path)
    assert softreg("evaluate", "--run", run)[0] == 0
    complete = tmp_path / "complete.csv"
    frame.dropna().to_csv(complete, index=False)
    assert softreg("predict", "--run", run, "--input", complete, "--output", tmp_path / "p.csv")[0] == 0
    assert softreg("report", "--run", run)[0] == 0
    code, _, stderr = softreg("train", "--config", config, "--out", run, "--force", "--quiet",
                              "--set", "data.val=0.0")
    assert code == 0, stderr
    assert len(rundir.load_split(run)["val"]) == 0
    code, _, stderr = softreg("sweep", "--config", config, "--grid", "seed=0,1", "--out", tmp_path / "sweep")
    assert code == 0, stderr
    splits = [rundir.load_split(found.parent) for found in (tmp_path / "sweep").rglob(rundir.SPLIT)]
    assert len(splits) == 2 and not np.array_equal(splits[0]["test"], splits[1]["test"])


def test_a_damaged_split_is_refused_in_one_line(table, tmp_path):
    """A split.npz with negative indices is a RunDirError naming the file and the part."""
    path, _ = table
    run, _ = train(tmp_path, path)
    np.savez(run / rundir.SPLIT, train=np.array([-1]), val=np.array([], dtype=np.int64), test=np.array([2]))
    with pytest.raises(rundir_error(), match=r"split\.npz: train must be non-negative row indices"):
        rundir.load_split(run)


def rundir_error():
    from softreg.errors import RunDirError

    return RunDirError


def test_rows_left_out_for_a_missing_label_keep_their_source_row_numbers(table, tmp_path):
    """Labels NA (rows 3 and 40) and empty (row 99) left out by data.missing: drop: the CSV reader's split still
    indexes the source's rows, so the test rows picked from the frame are test.npz's; a Parquet
    source, whose reader does not say which rows it left out, writes no split.npz rather than wrong ones."""
    path, frame = table
    frame = frame.copy()
    frame.loc[[3, 40], "kind"] = "NA"
    frame.loc[99, "kind"] = ""
    labelled = tmp_path / "labelled.csv"
    frame.to_csv(labelled, index=False)
    run, _ = train(tmp_path, labelled)
    split = rundir.load_split(run)
    together = np.concatenate([split[part] for part in ("train", "val", "test")])
    assert set(together.tolist()) == set(range(200)) - {3, 5, 17, 40, 60, 99}
    X_test, y_test = rundir.load_test_split(run)
    np.testing.assert_array_equal(X_test, frame.iloc[split["test"]][["a", "b"]].to_numpy())
    assert rundir.load_model(run).classes[y_test].tolist() == frame.iloc[split["test"]]["kind"].tolist()
    parquet = tmp_path / "labelled.parquet"
    frame.assign(kind=frame["kind"].replace({"NA": None, "": None})).to_parquet(parquet, index=False)
    run, _ = train(tmp_path, parquet, "parquet-run")
    assert (run / rundir.MODEL).exists() and not (run / rundir.SPLIT).exists()  # none rather than wrong
