"""Scoring by parts (softreg.engine.score, softreg.commands.predict_folder, evaluated_parts): predict writes a
Parquet folder of one part per input part, rows in order, the same bytes on the numpy engine and on Dask with
1 and 2 workers; evaluate adds the parts' exact sums, the same JSON on every engine; --force never replaces a
folder softreg did not write; bad input is one line, exit 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from softreg.commands.predict_folder import MARKER, is_folder_output
from tests.clusters import REPO, Cluster
from tests.strategies import run
from tests.test_remote import BUCKET, SECRET, _credentials, server, softreg, trained  # noqa: F401 (server: a fixture)

pytestmark = pytest.mark.slow  # starts clusters: scheduler and worker processes

PART_ROWS = (70, 130, 41)  # three parts of unequal sizes


def table(n_rows, seed):
    """An id, three numeric features (one of integers) and a text label of three classes."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 3)) * [1.0, 10.0, 0.1]
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 2] > 0.05)
    return pd.DataFrame({"rid": [f"r{seed}-{i}" for i in range(n_rows)], "a": X[:, 0],
                         "b": np.round(X[:, 1]).astype(np.int64), "c": X[:, 2],
                         "label": np.array(["low", "mid", "high"])[y]})


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A run trained on CSV (id rid, engine.workers 1) and a folder of three Parquet parts of other rows, their
    columns in another order and row groups of 32; the same rows as one CSV file."""
    folder = tmp_path_factory.mktemp("score")
    table(300, 0).to_csv(folder / "train.csv", index=False)
    (folder / "c.yaml").write_text(f"data:\n  source: {folder / 'train.csv'}\n  id: rid\n  label: label\n"
                                   "optim:\n  epochs: 3\noutput:\n  plots: false\nengine:\n  workers: 1\n")
    code, _, stderr = run("train", "--config", folder / "c.yaml", "--out", folder / "run", "--quiet")
    assert code == 0, stderr
    (folder / "parts").mkdir()
    frames = [table(rows, seed)[["b", "rid", "label", "c", "a"]] for seed, rows in enumerate(PART_ROWS, start=1)]
    for index, frame in enumerate(frames):
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / "parts" / f"p{index}.parquet",
                       row_group_size=32)
    pd.concat(frames).to_csv(folder / "all.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two worker processes on 127.0.0.1 for the module."""
    started = Cluster(tmp_path_factory.mktemp("cluster"), n_workers=2)
    yield started
    started.stop()


def predict(scored, output, *options):
    return run("predict", "--run", scored / "run", "--input", scored / "parts", "--output", output, *options)


def part_bytes(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_a_folder_output_is_named_by_a_slash_or_parquet():
    """--output names a folder when it ends in / or .parquet (with or without /), a file otherwise."""
    assert all(map(is_folder_output, ["out/", "out.parquet", "out.PARQUET", "a/out.parquet/"]))
    assert not any(map(is_folder_output, ["out", "out.csv", "out.tsv", "out.parquet.csv"]))


def test_one_part_per_input_part_holding_the_csv_predictions_in_order(scored, tmp_path):
    """With the numpy engine, OUT/part-0000i.parquet holds the predictions of input part i, rows in order, with
    predict's CSV columns (rid, label, prob_<class>) and values: those of the same rows read as CSV."""
    code, stdout, stderr = predict(scored, f"{tmp_path / 'out'}/", "--engine", "numpy")
    assert (code, stdout) == (0, "")
    assert stderr == f"wrote {sum(PART_ROWS)} predictions in 3 parts to {tmp_path / 'out'}\n"
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        MARKER, "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    frames = [pd.read_parquet(tmp_path / "out" / f"part-0000{index}.parquet") for index in range(3)]
    assert [len(frame) for frame in frames] == list(PART_ROWS)
    code, csv_text, _ = run("predict", "--run", scored / "run", "--input", scored / "all.csv")
    lines = csv_text.splitlines()
    whole = pd.concat(frames)
    assert lines[0] == ",".join(whole.columns) == "rid,label,prob_high,prob_low,prob_mid"
    written = [",".join([rid, label, *(f"{p:.10g}" for p in probs)])
               for rid, label, *probs in whole.itertuples(index=False)]
    assert written == lines[1:]


def test_numpy_and_dask_with_one_and_two_workers_write_the_same_bytes(scored, cluster, tmp_path):
    """Every part file is byte for byte the same on the numpy engine, a local cluster of the run's one worker
    (engine.workers: 1) and a scheduler with two workers."""
    assert predict(scored, tmp_path / "numpy.parquet", "--engine", "numpy")[0] == 0
    assert predict(scored, tmp_path / "local.parquet", "--engine", "dask", "--scheduler", "local")[0] == 0
    code, _, stderr = predict(scored, tmp_path / "two.parquet", "--engine", "dask", "--scheduler", cluster.address)
    assert code == 0, stderr
    reference = part_bytes(tmp_path / "numpy.parquet")
    assert len(reference) == 4
    assert part_bytes(tmp_path / "local.parquet") == reference == part_bytes(tmp_path / "two.parquet")


def test_evaluate_by_parts_prints_the_same_json_on_every_engine(scored, cluster, tmp_path):
    """evaluate --data on the Parquet folder prints the same JSON on the numpy engine and Dask with one and two
    workers, and, but for the source's name, the JSON of the same rows as one CSV file (the sums are exact)."""
    common = ("evaluate", "--run", scored / "run", "--data", scored / "parts", "--json")
    outputs = [run(*common, *engine) for engine in (
        ("--engine", "numpy"), ("--engine", "dask", "--scheduler", "local"),
        ("--engine", "dask", "--scheduler", cluster.address), ())]
    assert all(code == 0 for code, _, _ in outputs), outputs
    assert len({stdout for _, stdout, _ in outputs}) == 1
    code, from_csv, _ = run("evaluate", "--run", scored / "run", "--data", scored / "all.csv", "--json")
    parts, whole = json.loads(outputs[0][1]), json.loads(from_csv)
    assert parts.pop("source") == str(scored / "parts") and whole.pop("source") == str(scored / "all.csv")
    assert parts == whole and parts["n_samples"] == sum(PART_ROWS)


def test_evaluate_out_writes_the_same_metrics_on_either_engine(scored, tmp_path):
    """evaluate --out with --optimum on the folder writes the same metrics.json on the numpy engine and on Dask
    (the optimum's hits are counted on the workers), and the reliability diagram among its plots."""
    for engine in ("numpy", "dask"):  # the numpy engine has no use for the scheduler
        code, _, stderr = run("evaluate", "--run", scored / "run", "--data", scored / "parts", "--optimum",
                              "--out", tmp_path / engine, "--engine", engine, "--scheduler", "local")
        assert code == 0, stderr
    assert (tmp_path / "numpy" / "metrics.json").read_bytes() == (tmp_path / "dask" / "metrics.json").read_bytes()
    assert "optimum" in json.loads((tmp_path / "dask" / "metrics.json").read_text())
    assert (tmp_path / "dask" / "plots" / "reliability.png").is_file()


def test_the_folder_is_read_back_as_one_dataset_in_input_order(scored, tmp_path):
    """pyarrow reads OUT as one Parquet dataset (the marker, a hidden file, is not a part): the input's ids in
    the input's order."""
    assert predict(scored, f"{tmp_path / 'out'}/")[0] == 0
    ids = pq.read_table(tmp_path / "out").column("rid").to_pylist()
    assert ids == pd.read_csv(scored / "all.csv")["rid"].tolist()


def test_an_existing_output_is_refused_and_force_replaces_only_predictions(scored, tmp_path):
    """An existing OUT is refused (exit 2, one line) without --force; --force replaces a predictions folder, and
    refuses, leaving it as it was, a folder holding a file softreg did not write or no marker (a run's)."""
    out = tmp_path / "out"
    assert predict(scored, f"{out}/")[0] == 0
    assert predict(scored, f"{out}/") == (2, "", f"softreg: error: {out}: exists; use --force to replace it\n")
    (out / "part-00000.parquet").write_bytes(b"stale")
    assert predict(scored, f"{out}/", "--force")[0] == 0
    assert (out / "part-00000.parquet").read_bytes()[:4] == b"PAR1"
    (out / "notes.txt").write_text("mine")
    code, stdout, stderr = predict(scored, f"{out}/", "--force")
    assert (code, stdout) == (2, "") and stderr == (
        f"softreg: error: {out}: holds entries softreg did not write (notes.txt); refusing to replace it even "
        "with --force\n")
    assert (out / "notes.txt").read_text() == "mine"
    run_dir = scored / "run"
    before = part_bytes(run_dir)
    code, _, stderr = predict(scored, f"{run_dir}/", "--force")
    assert code == 2 and stderr == (
        f"softreg: error: {run_dir}: exists and is not a folder of softreg's predictions (no {MARKER} marker); "
        "choose another --output (softreg replaces only folders it made)\n")
    assert part_bytes(run_dir) == before
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]  # no staging folder left behind


def test_train_force_never_replaces_a_predictions_folder(scored, tmp_path):
    """train --out OUT --force on a predictions folder is refused (it has no run's marker), OUT kept."""
    out = tmp_path / "out"
    assert predict(scored, f"{out}/")[0] == 0
    before = part_bytes(out)
    code, _, stderr = run("train", "--config", scored / "c.yaml", "--out", out, "--force", "--quiet")
    assert code == 2 and stderr == (
        f"softreg: error: {out}: exists and is not a softreg output directory (no .softreg-run marker); "
        "choose another --out (softreg replaces only directories it made)\n")
    assert part_bytes(out) == before


def test_bad_input_is_one_line_and_leaves_no_folder(scored, tmp_path):
    """Exit 2 with one line, and no OUT nor staging folder left, for: CSV input to a folder output, a later part
    missing a model column (naming the part and the column), --engine with a CSV output, a scheduler that does
    not answer."""
    out = tmp_path / "out.parquet"
    code, _, stderr = run("predict", "--run", scored / "run", "--input", scored / "all.csv", "--output", out)
    assert code == 2 and stderr == (
        f"softreg: error: {scored / 'all.csv'}: a Parquet folder --output (a name ending in / or .parquet) needs "
        "Parquet input (a Parquet file or a folder of them)\n")
    (tmp_path / "parts").mkdir()
    for name, frame in (("p0", table(20, 5)), ("p1", table(20, 6).drop(columns="c"))):
        frame.to_parquet(tmp_path / "parts" / f"{name}.parquet", index=False)
    for engine in (("--engine", "numpy"), ("--engine", "dask", "--scheduler", "local")):
        code, _, stderr = run("predict", "--run", scored / "run", "--input", tmp_path / "parts", "--output", out,
                              *engine)
        assert code == 2 and stderr == (
            f"softreg: error: {tmp_path / 'parts' / 'p1.parquet'}: missing feature column(s) 'c' that the model "
            "needs\n")
    code, _, stderr = run("predict", "--run", scored / "run", "--input", scored / "all.csv", "--output",
                          tmp_path / "p.csv", "--engine", "dask")
    assert code == 2 and stderr.startswith("softreg: error: --engine dask and --scheduler apply to a Parquet folder")
    code, _, stderr = predict(scored, out, "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9")
    assert code == 2 and stderr.count("\n") == 1 and "tcp://127.0.0.1:9" in stderr
    assert sorted(os.listdir(tmp_path)) == ["parts"]


def test_parquet_folder_on_s3_predicts_on_dask_as_the_local_folder(server, tmp_path, monkeypatch):  # noqa: F811
    """A Parquet folder in S3 (moto's server) predicted into a folder by a local Dask cluster (workers reading the
    parts with the run's storage options and the environment's credentials) gives the bytes the numpy engine
    writes, one part per object, and evaluate by parts the same JSON on either engine; a missing bucket is one
    line."""
    url = f"s3://{BUCKET}/iris-parquet"
    run_dir = trained(tmp_path, "s3", url, {"endpoint_url": server})
    for key, value in _credentials().items():
        monkeypatch.setenv(key, value)  # the numpy engine runs in this process
    code, _, stderr = softreg("predict", "--run", run_dir, "--input", url, "--output", f"{tmp_path / 'dask'}/",
                              "--engine", "dask", "--scheduler", "local")
    assert code == 0 and SECRET not in stderr, stderr
    assert run("predict", "--run", run_dir, "--input", url, "--output", f"{tmp_path / 'numpy'}/")[0] == 0
    assert part_bytes(tmp_path / "numpy") == part_bytes(tmp_path / "dask")
    assert [len(pd.read_parquet(tmp_path / "dask" / f"part-0000{i}.parquet")) for i in (0, 1)] == [70, 80]
    on_dask = softreg("evaluate", "--run", run_dir, "--data", url, "--json", "--engine", "dask", "--scheduler", "local")
    assert on_dask[0] == 0 and on_dask[1] == run("evaluate", "--run", run_dir, "--data", url, "--json")[1]
    code, _, stderr = run("predict", "--run", run_dir, "--input", f"s3://{BUCKET}-missing/x",
                          "--output", f"{tmp_path / 'gone'}/")
    assert code == 2 and stderr == f"softreg: error: s3://{BUCKET}-missing/x: bucket or container not found\n"


def test_an_empty_part_gives_an_empty_part_and_adds_nothing(scored, tmp_path):
    """A part without rows (as Spark and Dask write them) gives an empty output part with the same columns, and
    evaluate by parts prints the JSON of the folder without it (but the source's name); a folder of empty parts
    alone is refused in one line."""
    folder = tmp_path / "parts"
    folder.mkdir()
    for index, name in enumerate(["p0", "p1", "p2"]):
        source = scored / "parts" / f"p{index}.parquet"
        table_read = pq.read_table(source)
        pq.write_table(table_read.slice(0, 0) if name == "p1" else table_read, folder / f"{name}.parquet")
    assert run("predict", "--run", scored / "run", "--input", folder, "--output", f"{tmp_path / 'out'}/")[0] == 0
    frames = [pd.read_parquet(tmp_path / "out" / f"part-0000{index}.parquet") for index in range(3)]
    assert [len(frame) for frame in frames] == [PART_ROWS[0], 0, PART_ROWS[2]]
    assert list(frames[1].columns) == list(frames[0].columns)
    (folder / "p1.parquet").rename(tmp_path / "empty.parquet")
    without = json.loads(run("evaluate", "--run", scored / "run", "--data", folder, "--json")[1])
    (tmp_path / "empty.parquet").rename(folder / "p1.parquet")
    with_empty = json.loads(run("evaluate", "--run", scored / "run", "--data", folder, "--json")[1])
    assert with_empty == without
    (tmp_path / "only").mkdir()
    (folder / "p1.parquet").rename(tmp_path / "only" / "p1.parquet")
    code, _, stderr = run("evaluate", "--run", scored / "run", "--data", tmp_path / "only")
    assert (code, stderr) == (2, f"softreg: error: {tmp_path / 'only'}: has no rows\n")


def test_the_readme_scoring_commands_run_as_written(tmp_path):
    """The commands of "Scoring on the cluster" in the README (the install line left out) run as written from
    a folder laid out as the repository, and write a predictions folder of two parts."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Scoring on the cluster", 1)[1].split("\n## ", 1)[0]
    commands = [line.strip() for line in section.splitlines() if line.startswith("    ") and "pip install" not in line]
    assert len(commands) == 4
    for name in ("configs", "data"):
        (tmp_path / name).symlink_to(REPO / name)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "MPLBACKEND": "Agg"}
    for command in commands:
        done = subprocess.run(command.replace(".venv/bin/python", sys.executable), shell=True, cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (command, done.stderr)
    assert sorted(path.name for path in (tmp_path / "predictions").glob("part-*")) == [
        "part-00000.parquet", "part-00001.parquet"]
