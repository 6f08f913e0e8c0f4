"""Caches on the workers (engine.worker_cache): softreg ingest on Dask has the workers read the source and
keep their own shards, the same bytes as a one-machine ingest's rows of each shard for 1 and 2 workers;
training there gives the numpy engine's bits; the driver reads no row; and the errors (exit 2)."""

import json
from pathlib import Path

import numpy as np
import pytest

from softreg import rundir
from softreg.cache import read_manifest
from softreg.cache.manifest import digest, problem
from softreg.config import load_config
from softreg.engine import plan
from softreg.errors import SoftregWarning
from tests.clusters import Cluster
from tests.strategies import run
from tests.test_remote import server  # noqa: F401 (a fixture: moto's S3 server on 127.0.0.1)

pytestmark = pytest.mark.slow  # starts a cluster: a scheduler and worker processes

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two workers, each with its own local directory: they share no folder."""
    started = Cluster(tmp_path_factory.mktemp("cluster"), n_workers=2, own_directories=True)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def parquet_source(tmp_path_factory):
    """120000 rows in three Parquet files of row groups of 7000, 2% without a label, 1% missing cells."""
    import pandas as pd

    folder = tmp_path_factory.mktemp("parquet")
    rng = np.random.default_rng(1)
    n = 120_000
    X = rng.normal(size=(n, 5)) * [1, 10, 100, 0.1, 1] + [0, 5, -3, 0, 1e3]
    X[rng.random((n, 5)) < 0.01] = np.nan
    labels = rng.choice(["a", "b", "c"], n).astype(object)
    labels[rng.random(n) < 0.02] = None
    table = pd.DataFrame(X, columns=list("pqrst")).assign(label=labels)
    (folder / "src").mkdir()
    for index, (start, stop) in enumerate([(0, 50_000), (50_000, 90_000), (90_000, n)]):
        pq.write_table(pa.Table.from_pandas(table.iloc[start:stop], preserve_index=False),
                       folder / "src" / f"part-{index}.parquet", row_group_size=7000)
    return folder / "src"


def write_config(path, source, cache, extra=""):
    path.write_text(f"data:\n  source: {source}\n  label: label\n  missing: drop\n  val: 0.1\n  shards: 4\n"
                    f"  cache: {cache}\n{extra}")
    return path


def ingest(config, *settings):
    arguments = ["ingest", "--config", config, "--quiet"]
    for setting in settings:
        arguments += ["--set", setting]
    return run(*arguments)


def ingest_loud(config, *settings):
    """`ingest` with its summary on standard output."""
    return run("ingest", "--config", config, *[part for setting in settings for part in ("--set", setting)])


def on_dask(cluster, workers=2):
    return ("engine.kind=dask", f"engine.scheduler={cluster.address}", f"engine.workers={workers}")


def assert_same_shards(distributed, reference):
    """Each worker shard holds the bytes of the one-machine cache's rows of that shard (plan.shard_ranges)."""
    placed, local = read_manifest(distributed).document, read_manifest(reference).document
    for key in ("n", "classes", "feature_mean", "feature_scale", "feature_names", "columns", "unlabelled"):
        assert placed[key] == local[key], key
    for part, shards in placed["placement"].items():
        ranges = plan.shard_ranges(local["n"][part], placed["worker_shards"])
        for shard, (start, stop) in zip(shards, ranges, strict=True):
            assert shard["rows"] == stop - start
            for name in ("X", "y", "source_rows"):
                whole = np.load(reference / part / f"{name}.npy")
                mine = np.load(shard["files"][name]["file"])
                assert mine.dtype == whole.dtype and mine.tobytes() == whole[start:stop].tobytes(), (part, name)


def test_parquet_pieces_on_one_and_two_workers_hold_a_one_machine_ingests_bytes(cluster, parquet_source, tmp_path):
    """A Parquet folder read in pieces by 1 and by 2 workers: every shard's X, y and source rows are the
    bytes of the one-machine cache's rows of that shard, the standardizer and counts the same numbers."""
    config = write_config(tmp_path / "c.yaml", parquet_source, tmp_path / "one")
    code, _, stderr = ingest(config)
    assert code == 0, stderr
    workers_seen = set()
    for workers in (1, 2):
        cache = tmp_path / f"dask-{workers}"
        code, _, stderr = ingest(config, f"data.cache={cache}", *on_dask(cluster, workers))
        assert code == 0, stderr
        assert "2370 rows without a label were left out" in stderr  # the workers' counts, said once
        assert_same_shards(cache, tmp_path / "one")
        placement = read_manifest(cache).document["placement"]
        workers_seen = {shard["worker"] for shards in placement.values() for shard in shards}
        assert len(workers_seen) == workers
        folders = {shard["files"]["X"]["file"].split("/worker-")[1][0] for shard in placement["train"]}
        assert len(folders) == workers  # each worker wrote into its own local directory


def test_delimited_text_with_categories_over_several_buckets(cluster, tmp_path):
    """A CSV with a categorical column and missing cells (data.missing: mean), shuffled through six
    buckets: two workers write the one-machine cache's bytes."""
    rng = np.random.default_rng(0)
    n = 60_000
    a = np.round(rng.normal(size=n), 6).astype(str)
    a[rng.choice(n, 3000)] = ""
    colour = rng.choice(["red", "green", "blue", "grey"], n)
    colour[rng.choice(n, 1000)] = ""
    rows = np.column_stack([a, np.round(rng.normal(size=n) * 100, 3).astype(str), colour, rng.choice(list("pqr"), n)])
    source = tmp_path / "t.csv"
    source.write_text("a,b,colour,label\n" + "\n".join(",".join(row) for row in rows) + "\n")
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  source: {source}\n  label: label\n  missing: mean\n  val: 0.1\n  shards: 4\n"
                      f"  memory_budget: 1MiB\n  cache: {tmp_path / 'one'}\n")
    ingest_here_and_there(config, cluster, tmp_path)
    assert read_manifest(tmp_path / "dask").document["buckets"] == 6


def awkward_csv(path, n=140_000, seed=0):
    """A CSV with CRLF line ends, a quoted id column (commas and line feeds inside quotes), missing cells,
    a categorical column (some of it quoted), blank lines, and labels missing as empty cells and as "NA"."""
    rng = np.random.default_rng(seed)
    ids = np.array([f'"r{i}, x"' if i % 7 else f'"r{i}\nsecond line"' for i in range(n)], dtype=object)
    a = np.round(rng.normal(size=n), 6).astype(str).astype(object)
    a[rng.random(n) < 0.01] = ""
    b = np.round(rng.normal(size=n) * 100, 3).astype(str).astype(object)
    colour = rng.choice(["red", "green", '"blue"', "grey"], n).astype(object)
    colour[rng.random(n) < 0.01] = ""
    label = rng.choice(list("pqr"), n).astype(object)
    label[rng.random(n) < 0.02] = ""
    label[rng.random(n) < 0.01] = '"NA"'
    lines = [",".join(row) for row in zip(ids, a, b, colour, label, strict=True)]
    for index in rng.choice(n, 50):
        lines[index] = ""
    path.write_bytes(("id,a,b,colour,label\r\n" + "\r\n".join(lines) + "\r\n").encode())
    return path


@pytest.mark.parametrize("workers", [1, 2])
def test_one_csv_is_read_in_byte_ranges_by_the_workers_and_holds_a_one_machine_ingests_bytes(cluster, tmp_path,
                                                                                            workers):
    """One CSV (quoted fields holding commas and line feeds, CRLF, blank lines, missing cells and labels)
    cut into byte ranges that the workers read: the one-machine cache's bytes, for 1 and 2 workers."""
    source = awkward_csv(tmp_path / "t.csv")
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  source: {source}\n  label: label\n  id: id\n  missing: mean\n  val: 0.1\n"
                      f"  shards: 4\n  memory_budget: 2MiB\n  cache: {tmp_path / 'one'}\n")
    code, _, stderr = ingest(config)
    assert code == 0, stderr
    said = stderr.count("rows without a label were left out")
    code, stdout, stderr = ingest_loud(config, f"data.cache={tmp_path / 'dask'}", *on_dask(cluster, workers))
    assert code == 0, stderr
    pieces = {1: 3, 2: 5}[workers]  # 5 chunks, 4 pieces a worker at most
    assert f"shards on {workers} worker{'s' if workers > 1 else ''}, the source read in {pieces} pieces" in stdout
    assert stderr.count("rows without a label were left out") == said == 1  # the total, said once
    assert "reads it whole" not in stderr
    document = read_manifest(tmp_path / "dask").document
    assert document["pieces"] == pieces and document["buckets"] > 1
    assert_same_shards(tmp_path / "dask", tmp_path / "one")


def test_a_csv_quoted_other_than_rfc_4180_is_read_whole_by_one_worker_with_the_same_bytes(cluster, tmp_path):
    """A quote inside an unquoted field (12" pipe) makes quote parity no guide to where records end:
    the ingest says one worker reads the file whole, and writes the one-machine bytes."""
    rng = np.random.default_rng(3)
    n = 150_000
    names = rng.choice(['12" pipe', "plain"], n)
    rows = [f"{name},{x:.6f},{'ab'[int(x > 0)]}" for name, x in zip(names, rng.normal(size=n), strict=True)]
    source = tmp_path / "t.csv"
    source.write_text("item,x,label\n" + "\n".join(rows) + "\n")
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  source: {source}\n  label: label\n  features: [x]\n  val: 0.1\n  shards: 2\n"
                      f"  cache: {tmp_path / 'one'}\n")
    stderr = ingest_here_and_there(config, cluster, tmp_path)
    assert f"{source}: one worker reads it whole, since it has a quote inside a field" in stderr
    assert read_manifest(tmp_path / "dask").document["pieces"] == 1


def test_a_bad_cell_in_a_later_byte_range_is_the_one_machine_ingests_one_line(cluster, tmp_path):
    """A cell that is not a number far into the file (quoted line feeds before it) stops the ingest on
    the workers with the line a one-machine ingest names."""
    source = awkward_csv(tmp_path / "t.csv", n=100_000)
    text = source.read_bytes().split(b"\r\n")
    row = text[90_000].split(b",")
    text[90_000] = b",".join([*row[:-4], b"oops", *row[-3:]])  # column a of that record
    source.write_bytes(b"\r\n".join(text))
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  source: {source}\n  label: label\n  id: id\n  missing: mean\n"
                      f"  categorical: [colour]\n  shards: 2\n  cache: {tmp_path / 'one'}\n")
    code, _, expected = ingest(config)
    assert code == 2 and "'oops'" in expected and "line 102" in expected, expected  # (line feeds in quotes count)
    code, _, stderr = ingest(config, f"data.cache={tmp_path / 'dask'}", *on_dask(cluster))
    assert (code, stderr.strip().splitlines()[-1]) == (2, expected.strip().splitlines()[-1])


def test_byte_ranges_whose_rows_differ_from_the_plan_are_read_whole_again_with_the_same_bytes(cluster, tmp_path,
                                                                                         monkeypatch):
    """Should a cut disagree with the readers (here: a plan with one piece's first labelled row moved by
    one), the pieces' counts show it, and the file is read again whole: a warning, the same bytes."""
    from dataclasses import replace

    from softreg.engine import text_pieces

    planned = text_pieces.delimited_pieces

    def moved(*args, **kwargs):
        found = planned(*args, **kwargs)
        return [*found[:2], replace(found[2], start=found[2].start + 1), *found[3:]]

    source = awkward_csv(tmp_path / "t.csv")
    config = write_config(tmp_path / "c.yaml", source, tmp_path / "one", "  id: id\n")
    assert ingest(config)[0] == 0
    monkeypatch.setattr(text_pieces, "delimited_pieces", moved)
    code, _, stderr = ingest(config, f"data.cache={tmp_path / 'dask'}", *on_dask(cluster))
    assert code == 0, stderr
    assert "t.csv: its byte ranges did not hold the rows planned; one worker reads it whole" in stderr
    assert read_manifest(tmp_path / "dask").document["pieces"] == 1
    assert_same_shards(tmp_path / "dask", tmp_path / "one")


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_the_driver_reads_no_row(cluster, parquet_source, tmp_path, monkeypatch, kind):
    """With every row reader of this process made to fail, an ingest on the workers still completes,
    of a Parquet folder and of one CSV cut into byte ranges."""
    from softreg.cache import pieces
    from softreg.cache import rows as cache_rows
    from softreg.commands.ingest import ingest_run
    from softreg.engine import text_pieces
    from softreg.io import delimited, delimited_numbers, parquet, records, stream

    source = parquet_source if kind == "parquet" else awkward_csv(tmp_path / "t.csv")
    extra = "" if kind == "parquet" else "  id: id\n"
    config_path = write_config(tmp_path / "c.yaml", source, tmp_path / "dask", extra)
    assert ingest(config_path, f"data.cache={tmp_path / 'one'}")[0] == 0  # here, before the readers go
    expected = read_manifest(tmp_path / "one").document["n"]

    def refuse(*args, **kwargs):
        raise AssertionError("the driver read rows")

    # the workers' tasks refer to their own modules (functions travel by name), so this affects this process only
    for module, name in [(cache_rows, "open_rows"), (stream, "open_rows"), (parquet, "read_batches"),
                         (cache_rows, "_open_source"), (pieces, "_open_source"), (pq.ParquetFile, "iter_batches"),
                         (pq.ParquetFile, "read_row_group"), (pq.ParquetFile, "read"), (np, "fromfile"),
                         (np, "load"), (text_pieces, "_open_source"), (text_pieces, "open_delimited"),
                         (delimited, "open_delimited"), (delimited_numbers, "read_chunks"),
                         (records, "scan_records"), (records, "quote_count"), (text_pieces, "scan_records"),
                         (text_pieces, "quote_count")]:
        monkeypatch.setattr(module, name, refuse)
    config = load_config(config_path, overrides=["engine.kind=dask", f"engine.scheduler={cluster.address}"])
    with pytest.warns(SoftregWarning, match="rows without a label were left out"):
        outcome = ingest_run(config)
    assert outcome.manifest.document["n"] == expected
    assert outcome.manifest.document["pieces"] == (4 if kind == "parquet" else 5)


def test_an_up_to_date_cache_is_kept_and_a_lost_shard_rebuilt(cluster, parquet_source, tmp_path):
    """A second ingest finds every shard on a worker and keeps the cache; with a shard's file gone,
    it says which and rebuilds the same bytes."""
    config = write_config(tmp_path / "c.yaml", parquet_source, tmp_path / "dask")
    assert ingest(config, *on_dask(cluster))[0] == 0
    code, stdout, _ = ingest_loud(config, *on_dask(cluster))
    assert code == 0 and "up to date" in stdout
    before = read_manifest(tmp_path / "dask").document
    lost = before["placement"]["train"][1]["files"]["y"]["file"]
    np.save(lost, np.zeros(3, dtype=np.int64))  # another shard where it was: its size and ends differ
    code, stdout, stderr = ingest_loud(config, *on_dask(cluster))
    assert code == 0, stderr
    writer = before["placement"]["train"][1]["worker"]
    assert f"rebuilt because no live worker holds shard(s) train 1 (written by {writer})" in stdout
    assert read_manifest(tmp_path / "dask").document["placement"] == before["placement"]


def test_a_worker_that_cannot_write_its_cache_directory_is_exit_2(cluster, parquet_source, tmp_path):
    """engine.worker_cache under a file: one line naming the worker, the folder and the setting."""
    (tmp_path / "a-file").write_text("not a folder")
    config = write_config(tmp_path / "c.yaml", parquet_source, tmp_path / "dask")
    code, _, stderr = ingest(config, *on_dask(cluster), f"engine.worker_cache={tmp_path / 'a-file' / 'cache'}")
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith("softreg: error: worker tcp://127.0.0.1:")
    assert (f"cannot write its cache directory {tmp_path / 'a-file' / 'cache'} (Not a directory); "
            "set engine.worker_cache to a folder every worker can write") in stderr
    assert not (tmp_path / "dask").exists()


def test_a_whole_source_on_dask_is_exit_2(cluster, tmp_path):
    """An .npz source is not read in pieces: exit 2, saying how to ingest it."""
    np.savez(tmp_path / "d.npz", X=np.random.default_rng(0).normal(size=(40, 2)), y=np.arange(40) % 2)
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  source: {tmp_path / 'd.npz'}\n  shards: 2\n  cache: {tmp_path / 'dask'}\n")
    code, _, stderr = ingest(config, *on_dask(cluster))
    assert code == 2
    assert stderr == (f"softreg: error: {tmp_path / 'd.npz'}: engine.kind: dask ingests delimited text or Parquet; "
                      "ingest this source with engine.kind: numpy\n")


def test_a_cache_on_the_workers_is_rebuilt_here_for_the_numpy_engine(cluster, parquet_source, tmp_path):
    """softreg ingest with engine.kind: numpy over a cache on the workers rebuilds it on this machine, saying why."""
    config = write_config(tmp_path / "c.yaml", parquet_source, tmp_path / "cache")
    assert ingest(config, *on_dask(cluster))[0] == 0
    code, stdout, stderr = run("ingest", "--config", config)
    assert code == 0, stderr
    assert "rebuilt because its shards are on Dask workers; engine.kind: numpy reads a cache on this machine" in stdout
    assert "placement" not in read_manifest(tmp_path / "cache").document


def test_a_placement_that_does_not_add_up_is_a_problem(cluster, parquet_source, tmp_path):
    """The manifest of a cache on the workers is checked like any other: rows that do not add up are named."""
    config = write_config(tmp_path / "c.yaml", parquet_source, tmp_path / "dask")
    assert ingest(config, *on_dask(cluster))[0] == 0
    manifest = read_manifest(tmp_path / "dask")
    assert problem(manifest) is None
    manifest.document["placement"]["val"][0]["rows"] += 1
    manifest.document["digest"] = digest(manifest.document)
    assert problem(manifest) == "manifest.json: placement.val: the shards' rows do not add up to n.val"
    manifest.document["placement"]["val"][0]["files"]["X"]["file"] = "relative/X.npy"
    manifest.document["digest"] = digest(manifest.document)
    assert problem(manifest).startswith("manifest.json: placement.val[0] must give a worker, its rows and its files")


LETTERS = Path(__file__).resolve().parent.parent / "data" / "letter-recognition.csv"


@pytest.fixture(scope="module")
def letters_numpy(tmp_path_factory):
    """Letters with 4 shards, lr: auto and validation, trained by the numpy engine from a cache on this machine."""
    folder = tmp_path_factory.mktemp("letters")
    config = folder / "letters.yaml"
    config.write_text(
        f"data:\n  source: {LETTERS}\n  label: Letter\n  cache: {folder / 'local'}\n  val: 0.1\n  shards: 4\n"
        "optim:\n  lr: auto\n  batch_size: 512\n  epochs: 3\noutput:\n  plots: [learning_curves, reliability]\n"
    )
    code, _, stderr = run("train", "--config", config, "--out", folder / "numpy", "--quiet")
    assert code == 0, stderr
    return config, folder / "numpy"


def without_timing(history):
    return [{key: value for key, value in row.items() if key not in ("seconds", "comm_seconds")} for row in history]


@pytest.mark.parametrize("workers", [1, 2])
def test_training_on_the_workers_shards_gives_the_numpy_engines_bits(cluster, letters_numpy, tmp_path, workers):
    """Ingested to the workers' own folders and trained there (lr: auto's sample, steps, validation and
    test metrics all the workers' sums): the rate, the weights and the history are the numpy engine's,
    bit for bit; the test metrics' counts equal and their means agree to the last digits; evaluate
    repeats metrics.json exactly."""
    config, reference = letters_numpy
    settings = [f"data.cache={tmp_path / 'dask'}", *on_dask(cluster, workers)]
    assert ingest(config, *settings)[0] == 0
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", "--quiet",
                          *[part for setting in settings for part in ("--set", setting)])
    assert code == 0, stderr
    ours, theirs = rundir.load_model(tmp_path / "run"), rundir.load_model(reference)
    assert np.array_equal(ours.coef, theirs.coef) and np.array_equal(ours.intercept, theirs.intercept)
    assert (load_config(tmp_path / "run" / "config.yaml").optim.lr == load_config(reference / "config.yaml").optim.lr)
    assert without_timing(rundir.read_history(tmp_path / "run")) == without_timing(rundir.read_history(reference))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    expected = json.loads((reference / "metrics.json").read_text())
    for key, value in expected.items():
        if isinstance(value, float):
            assert metrics[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
        else:
            assert metrics[key] == value, key
    assert not (tmp_path / "run" / "test.npz").exists() and not (tmp_path / "run" / "split.npz").exists()
    assert sorted(path.name for path in (tmp_path / "run" / "plots").iterdir()) == [
        "learning_curves.png", "reliability.png"]
    code, stdout, stderr = run("evaluate", "--run", tmp_path / "run", "--json")
    assert code == 0, stderr
    evaluated = json.loads(stdout)
    assert {key: evaluated[key] for key in metrics if key != "split"} == {
        key: value for key, value in metrics.items() if key != "split"}


@pytest.mark.filterwarnings("ignore:dask. communication takes")  # letters' steps are tiny: not what this checks
def test_the_driver_trains_without_reading_a_row(cluster, letters_numpy, tmp_path, monkeypatch):
    """With every way this process reads a cache's rows made to fail, a run on the workers' shards finishes."""
    from softreg.cache import read as cache_read
    from softreg.run import train_run

    config_path, _ = letters_numpy
    config = load_config(config_path, [f"data.cache={tmp_path / 'dask'}", *on_dask(cluster)])
    assert ingest(config_path, f"data.cache={tmp_path / 'dask'}", *on_dask(cluster))[0] == 0

    def refuse(*args, **kwargs):
        raise AssertionError("the driver read rows")

    for module, name in [(cache_read, "load_part"), (cache_read, "prepare_cached"), (np, "fromfile"),
                         (np, "memmap"), (cache_read.CacheData, "minibatches"), (cache_read.CacheData, "chunks")]:
        monkeypatch.setattr(module, name, refuse)
    outcome = train_run(config, tmp_path / "run")
    assert outcome.metrics["n_samples"] == read_manifest(tmp_path / "dask").document["n"]["test"]
    assert rundir.load_model(tmp_path / "run").coef.shape == (26, 16)


def test_a_shard_no_worker_holds_stops_training_with_the_command_that_writes_it(cluster, letters_numpy, tmp_path):
    """A worker's shard file removed: train stops with exit 2 before writing anything, naming the
    shard, its writer and the ingest command."""
    config, _ = letters_numpy
    settings = [f"data.cache={tmp_path / 'dask'}", *on_dask(cluster)]
    assert ingest(config, *settings)[0] == 0
    placement = read_manifest(tmp_path / "dask").document["placement"]
    Path(placement["val"][2]["files"]["X"]["file"]).unlink()
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run",
                          *[part for setting in settings for part in ("--set", setting)])
    assert code == 2
    assert stderr == (
        f"softreg: error: {tmp_path / 'dask'}: no live worker holds shard(s) val 2 (written by "
        f"{placement['val'][2]['worker']}); write them again on the workers: softreg ingest --config {config} "
        "(with the same engine settings)\n"
    )
    assert not (tmp_path / "run").exists()


def test_a_worker_lost_with_its_disk_has_its_shards_written_again_and_changes_nothing(letters_numpy, tmp_path):
    """One of two workers killed mid-epoch and its folder deleted: its shards are written again from the
    source on the other worker (the manifest records where), the step replayed, and the weights are the
    numpy engine's, bit for bit."""
    import shutil
    import warnings

    from softreg.engine import open_engine
    from softreg.prepare.data import random_streams
    from softreg.run import prepare_for
    from softreg.train import fit

    config_path, reference = letters_numpy
    started = Cluster(tmp_path, n_workers=2, own_directories=True)
    try:
        settings = [f"data.cache={tmp_path / 'dask'}", *on_dask(started)]
        assert ingest(config_path, *settings)[0] == 0
        before = read_manifest(tmp_path / "dask").document["placement"]
        config = load_config(reference / "config.yaml", settings)  # the rate lr: auto chose, as a number
        prepared = prepare_for(config, random_streams(config.seed).split)
        steps = []
        doomed = sorted({shard["worker"] for shard in before["train"]})[1]
        folder = next(shard["files"]["X"]["file"] for shard in before["train"] if shard["worker"] == doomed)

        def kill_in_epoch_two(coef, intercept):
            steps.append(1)
            if len(steps) == 40:  # 29 steps an epoch: the 11th step of epoch 2
                process = started.workers[int(folder.split("/worker-")[1][0])]
                process.kill()
                process.wait()
                shutil.rmtree(folder.split("/softreg-cache-")[0])  # its disk is gone too

        with warnings.catch_warnings(), pytest.warns(SoftregWarning, match="written again from the source"):
            warnings.filterwarnings("ignore", message="dask: communication takes", category=SoftregWarning)
            with open_engine(config, prepared.train, prepared.val, test=prepared.test) as (train, val, _):
                result = fit(train, 26, config.training_settings(), random_streams(config.seed).batches, val=val,
                             on_step=kill_in_epoch_two)
    finally:
        started.stop()
    expected = rundir.load_model(reference)
    assert len(steps) == 3 * 29
    assert np.array_equal(result.coef, expected.coef) and np.array_equal(result.intercept, expected.intercept)
    after = read_manifest(tmp_path / "dask")
    assert problem(after) is None
    moved = [index for index, shard in enumerate(before["train"]) if shard["worker"] == doomed]
    assert all(after.document["placement"]["train"][index]["worker"] != doomed for index in moved)
    assert all(after.document["placement"]["train"][index]["files"]["X"]["ends"]
               == before["train"][index]["files"]["X"]["ends"] for index in moved)


@pytest.fixture
def s3_cluster(server, tmp_path, monkeypatch):  # noqa: F811
    """Two workers with their own folders, started with the S3 credentials of moto's server in their
    environment (as this process has them); yields the cluster."""
    from tests.test_remote import _credentials

    for key, value in _credentials().items():
        monkeypatch.setenv(key, value)  # the workers started below inherit them, as this process's reads do
    started = Cluster(tmp_path, n_workers=2, own_directories=True)
    yield started
    started.stop()


def ingest_here_and_there(config, cluster, tmp_path):
    """``config`` ingested in this process into ``one`` and by ``cluster``'s workers into ``dask``: their
    shards hold the same bytes; returns the workers' ingest's standard error."""
    code, _, stderr = ingest(config, f"data.cache={tmp_path / 'one'}")
    assert code == 0, stderr
    code, _, stderr = ingest(config, f"data.cache={tmp_path / 'dask'}", *on_dask(cluster))
    assert code == 0, stderr
    assert_same_shards(tmp_path / "dask", tmp_path / "one")
    return stderr


def test_a_parquet_folder_in_s3_is_ingested_by_workers_reading_it_themselves(server, s3_cluster, tmp_path):  # noqa: F811
    """The workers read a Parquet folder from S3 (moto's server) with data.storage_options and the credentials of
    their own environment, and write the shards a one-machine ingest of the same URL writes; the secret is in
    no file of the cache."""
    from tests.test_remote import BUCKET, SECRET

    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  source: s3://{BUCKET}/iris-parquet\n  label: species\n  shards: 2\n"
                      f"  storage_options:\n    endpoint_url: {server}\n")
    assert SECRET not in ingest_here_and_there(config, s3_cluster, tmp_path)
    placement = read_manifest(tmp_path / "dask").document["placement"]
    assert len({shard["worker"] for shard in placement["train"]}) == 2
    for path in [tmp_path / "dask" / "manifest.json", *(Path(entry["files"][name]["file"])
                 for shards in placement.values() for entry in shards for name in ("X", "y", "source_rows"))]:
        assert SECRET.encode() not in path.read_bytes()


def test_one_csv_in_s3_is_read_in_byte_ranges_by_the_workers(server, s3_cluster, tmp_path):  # noqa: F811
    """One CSV in S3 (moto's server), cut into byte ranges that two workers read with the URL's ranged
    reads: the shards a one-machine ingest of the same URL writes."""
    import fsspec

    from tests.test_remote import BUCKET

    fs = fsspec.filesystem("s3", endpoint_url=server, skip_instance_cache=True)
    fs.pipe(f"{BUCKET}/awkward.csv", awkward_csv(tmp_path / "t.csv").read_bytes())
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  source: s3://{BUCKET}/awkward.csv\n  label: label\n  id: id\n  missing: drop\n"
                      f"  shards: 2\n  storage_options:\n    endpoint_url: {server}\n")
    ingest_here_and_there(config, s3_cluster, tmp_path)
    assert read_manifest(tmp_path / "dask").document["pieces"] == 5
    from softreg.engine import text_pieces

    compressed = load_config(config, overrides=[f"data.source=s3://{BUCKET}/iris.csv.gz", "data.label=species",
                                                "data.id=null", f"data.cache={tmp_path / 'gz'}"])
    assert text_pieces.head(compressed)["refused"] == "it is compressed"  # read whole: no byte lands mid-stream


def test_a_run_on_the_workers_shards_resumes_bit_for_bit(cluster, letters_numpy, tmp_path):
    """2 epochs on the workers' shards, resumed to 3 there: the numpy engine's 3-epoch weights."""
    config, reference = letters_numpy
    settings = [f"data.cache={tmp_path / 'dask'}", *on_dask(cluster)]
    assert ingest(config, *settings)[0] == 0
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", "--quiet", "--set", "optim.epochs=2",
                          *[part for setting in settings for part in ("--set", setting)])
    assert code == 0, stderr
    code, _, stderr = run("train", "--resume", tmp_path / "run", "--set", "optim.epochs=3", "--quiet")
    assert code == 0, stderr
    ours, theirs = rundir.load_model(tmp_path / "run"), rundir.load_model(reference)
    assert np.array_equal(ours.coef, theirs.coef) and np.array_equal(ours.intercept, theirs.intercept)


def test_bad_data_read_by_a_worker_is_the_one_machine_ingests_one_line(cluster, parquet_source, tmp_path):
    """A missing cell under data.missing: error, met by a worker, stops the ingest with exit 2 and the line a
    one-machine ingest prints (the first piece's error: the first bad cell of the source); nothing is written."""
    config = write_config(tmp_path / "c.yaml", parquet_source, tmp_path / "cache")
    config.write_text(config.read_text().replace("missing: drop", "missing: error"))
    here = ingest(config)
    there = ingest(config, f"data.cache={tmp_path / 'dask'}", *on_dask(cluster))
    assert here[0] == there[0] == 2
    assert there[2] == here[2] and there[2].count("\n") == 1 and "missing" in there[2]
    assert not (tmp_path / "dask").exists()


def test_training_with_the_numpy_engine_rebuilds_a_cache_on_the_workers_here(cluster, letters_numpy, tmp_path):
    """A cache on the workers met by a numpy-engine run is rebuilt on this machine with a warning saying why,
    and the run trains the numpy engine's bits."""
    config, reference = letters_numpy
    assert ingest(config, f"data.cache={tmp_path / 'cache'}", *on_dask(cluster))[0] == 0
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", "--quiet",
                          "--set", f"data.cache={tmp_path / 'cache'}")
    assert code == 0, stderr
    assert (f"softreg: warning: {tmp_path / 'cache'}: rebuilding the data cache: its shards are on Dask workers; "
            "engine.kind: numpy reads a cache on this machine") in stderr
    assert "placement" not in read_manifest(tmp_path / "cache").document
    ours, theirs = rundir.load_model(tmp_path / "run"), rundir.load_model(reference)
    assert np.array_equal(ours.coef, theirs.coef)


def test_a_run_on_the_workers_shards_without_a_test_part_is_scored_on_validation(cluster, letters_numpy, tmp_path):
    """data.test: 0 on the workers' shards: as in one process, the run's metrics are the validation
    part's, summed there, and the numpy engine's run says the same counts."""
    config, _ = letters_numpy
    settings = [f"data.cache={tmp_path / 'dask'}", "data.test=0", *on_dask(cluster)]
    assert ingest(config, *settings)[0] == 0
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", "--quiet",
                          *[part for setting in settings for part in ("--set", setting)])
    assert code == 0, stderr
    here = ["data.test=0", f"data.cache={tmp_path / 'local'}"]
    assert run("train", "--config", config, "--out", tmp_path / "numpy", "--quiet",
               *[part for setting in here for part in ("--set", setting)])[0] == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    expected = json.loads((tmp_path / "numpy" / "metrics.json").read_text())
    assert metrics["split"] == expected["split"] == "validation"
    assert metrics["n_samples"] == read_manifest(tmp_path / "dask").document["n"]["val"]
    assert metrics["confusion_matrix"] == expected["confusion_matrix"]
