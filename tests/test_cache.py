"""The on-disk shuffled cache: ingest, the shards it writes, and training from them."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from softreg import cache
from softreg.config import ConfigError, load_config
from softreg.errors import DataError, SoftregWarning
from tests.strategies import run

REPO = Path(__file__).resolve().parent.parent
FAST = ["--set", "optim.epochs=3", "--set", "output.plots=false", "--quiet"]


def write_csv(path, n_rows=600, n_features=4, seed=0, sort=False):
    """A headed CSV of small integer features (exact in float32 and after standardizing back)
    and a text label of three classes; ``sort`` orders the rows by class."""
    rng = np.random.default_rng(seed)
    X = rng.integers(-50, 50, size=(n_rows, n_features))
    labels = np.array(["a", "b", "c"])[(X[:, 0] > -10).astype(int) + (X[:, 1] > 10).astype(int)]
    if sort:
        order = np.argsort(labels, kind="stable")
        X, labels = X[order], labels[order]
    lines = [",".join([*(f"f{j}" for j in range(n_features)), "label"])]
    lines += [",".join([*map(str, row), label]) for row, label in zip(X.tolist(), labels, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return X, labels


def write_config(tmp_path, source, extra=""):
    path = tmp_path / "c.yaml"
    path.write_text(
        f"data:\n  source: {source}\n  cache: {tmp_path / 'cache'}\n  val: 0.2\n{extra}"
        "optim:\n  lr: 0.1\n  batch_size: 16\n"
    )
    return path


@pytest.fixture
def small(tmp_path, monkeypatch):
    """A 600-row CSV and its config, with buckets small enough that the shuffle uses several."""
    monkeypatch.setattr(cache.rows, "BUCKET_BYTES", 4096)
    X, labels = write_csv(tmp_path / "d.csv")
    return tmp_path, write_config(tmp_path, tmp_path / "d.csv"), X, labels


def shard_rows(cache_dir, part):
    """A part's rows, unstandardized and rounded back to the integers they were, with their labels."""
    manifest = json.loads((cache_dir / "manifest.json").read_text())
    X = np.load(cache_dir / part / "X.npy") * np.array(manifest["feature_scale"]) + np.array(manifest["feature_mean"])
    y = np.load(cache_dir / part / "y.npy")
    return np.round(X).astype(np.int64), np.asarray(manifest["classes"])[y]


def as_multiset(X, labels):
    return sorted(zip(map(tuple, X.tolist()), labels.tolist(), strict=True))


def test_ingest_twice_gives_identical_shards(small):
    """Two ingests of the same data and seed write the same bytes, shard for shard."""
    tmp_path, config, _, _ = small
    first, second = tmp_path / "one", tmp_path / "two"
    for target in (first, second):
        code, stdout, stderr = run("ingest", "--config", config, "--cache", target)
        assert code == 0, stderr
        assert f"wrote {target}" in stdout
    assert json.loads((first / "manifest.json").read_text())["buckets"] > 1
    for part in cache.PARTS:
        for name in ("X.npy", "y.npy"):
            assert (first / part / name).read_bytes() == (second / part / name).read_bytes()


def test_cache_is_a_permutation_of_the_rows_split_by_the_seeded_hash(small):
    """Each part holds exactly the rows the hash assigns it (as a multiset), in a shuffled order."""
    tmp_path, config, X, labels = small
    assert run("ingest", "--config", config)[0] == 0
    part_of = cache.assign_parts(0, np.arange(len(X)), 0.2, 0.2)
    everything = []
    for index, part in enumerate(cache.PARTS):
        rows, row_labels = shard_rows(tmp_path / "cache", part)
        expected = part_of == index
        assert as_multiset(rows, row_labels) == as_multiset(X[expected], labels[expected])
        assert not np.array_equal(rows, X[expected])  # shuffled, not copied in file order
        everything += as_multiset(rows, row_labels)
    assert sorted(everything) == as_multiset(X, labels)
    assert 0.5 < np.mean(part_of == 0) < 0.75  # 0.8 * 0.8 of the rows train, up to sampling


def test_standardizer_is_the_training_rows_mean_and_std(small):
    """The manifest's mean and scale are those of the training rows (merged chunk by chunk)."""
    tmp_path, config, X, _ = small
    assert run("ingest", "--config", config)[0] == 0
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    train = X[cache.assign_parts(0, np.arange(len(X)), 0.2, 0.2) == 0]
    np.testing.assert_allclose(manifest["feature_mean"], train.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(manifest["feature_scale"], train.std(axis=0), rtol=1e-12)
    assert manifest["classes"] == ["a", "b", "c"] and manifest["n"]["train"] == len(train)


def test_chan_merge_equals_whole_moments():
    """Moments merged over uneven chunks equal those of the whole array; a constant column gets scale 1."""
    rng = np.random.default_rng(1)
    X = rng.normal(5.0, 3.0, size=(1000, 3))
    X[:, 2] = 7.0
    moments = cache.Moments.empty(3)
    for chunk in np.split(X, [1, 10, 400, 999]):
        moments.add(chunk)
    mean, scale = moments.standardizer()
    np.testing.assert_allclose(mean, X.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(scale[:2], X[:, :2].std(axis=0), rtol=1e-12)
    assert scale[2] == 1.0


def test_minibatches_visit_every_row_once_in_block_order(monkeypatch):
    """An epoch yields each row once, in full batches but the last, and the same order for the same rng."""
    monkeypatch.setattr(cache.read, "BLOCK_ROWS", 100)
    X = np.arange(350 * 2, dtype=np.float64).reshape(350, 2)
    data = cache.CacheData(X, np.arange(350))

    def epoch(seed):
        return [(batch.copy(), y) for batch, y, _ in data.minibatches(32, np.random.default_rng(seed))]

    batches = epoch(0)
    assert [len(y) for _, y in batches] == [32] * 10 + [30]
    seen = np.concatenate([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(350)) and not np.array_equal(seen, np.arange(350))
    np.testing.assert_array_equal(np.concatenate([b for b, _ in batches]), X[seen])
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(batches, epoch(0), strict=True))
    chunks = list(data.chunks(128))
    np.testing.assert_array_equal(np.concatenate([c[0] for c in chunks]), X)


def test_two_trainings_from_one_cache_give_the_same_model(small):
    """Training twice from the same cache writes the same model.npz, byte for byte."""
    tmp_path, config, _, _ = small
    models = []
    for name in ("r1", "r2"):
        code, stdout, stderr = run("train", "--config", config, "--out", tmp_path / name, *FAST)
        assert code == 0, stderr
        models.append((tmp_path / name / "model.npz").read_bytes())
    assert models[0] == models[1]
    code, stdout, _ = run("evaluate", "--run", tmp_path / "r1", "--json")
    assert code == 0 and json.loads(stdout)["n_samples"] == json.loads(
        (tmp_path / "cache" / "manifest.json").read_text())["n"]["test"]


def test_changed_source_is_rebuilt_with_a_message(small):
    """A source changed since ingest is rebuilt: ingest says why, train warns; never silently reused."""
    tmp_path, config, _, _ = small
    assert run("ingest", "--config", config)[0] == 0
    code, stdout, _ = run("ingest", "--config", config)
    assert code == 0 and "up to date" in stdout
    write_csv(tmp_path / "d.csv", seed=1)
    code, stdout, _ = run("ingest", "--config", config)
    assert code == 0 and "rebuilt because the source" in stdout and "changed" in stdout
    write_csv(tmp_path / "d.csv", seed=2)
    with pytest.warns(SoftregWarning, match="rebuilding the data cache: the source .* changed"):
        manifest = cache.open_cache(load_config(config))
    assert manifest.document["fingerprint"] == cache.fingerprint(str(tmp_path / "d.csv"))
    code, stdout, _ = run("ingest", "--config", config, "--set", "seed=3")
    assert code == 0 and "data options, model.dtype or seed differ" in stdout


def no_cache_left(tmp_path):
    return not (tmp_path / "cache").exists() and not list(tmp_path.glob(".cache.*"))


def test_bad_cell_names_line_and_column_and_leaves_no_cache(small):
    """A text cell in a numeric column: exit 2, the line and column named, no cache and no staging left."""
    tmp_path, config, _, _ = small
    lines = (tmp_path / "d.csv").read_text().splitlines()
    cells = lines[400].split(",")
    cells[2] = "oops"
    lines[400] = ",".join(cells)
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    code, stdout, stderr = run("ingest", "--config", config)
    assert code == 2 and stdout == ""
    assert "line 401, column 'f2': 'oops' is not a number" in stderr
    assert no_cache_left(tmp_path)


def test_truncated_file_is_refused_and_leaves_no_cache(small):
    """A file cut in the middle of its last row: exit 2 naming the line, no cache that looks complete."""
    tmp_path, config, _, _ = small
    text = (tmp_path / "d.csv").read_text()
    (tmp_path / "d.csv").write_text(text[: len(text) - 9])
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", *FAST)
    assert code == 2 and "line 601 has" in stderr and "fields" in stderr
    assert no_cache_left(tmp_path) and not (tmp_path / "run").exists()


def test_failed_rebuild_keeps_the_old_cache(small):
    """A rebuild that fails leaves the previous cache as it was (it is replaced only when complete)."""
    tmp_path, config, _, _ = small
    assert run("ingest", "--config", config)[0] == 0
    before = (tmp_path / "cache" / "train" / "X.npy").read_bytes()
    (tmp_path / "d.csv").write_text((tmp_path / "d.csv").read_text() + "1,2,3,x,a\n")
    assert run("ingest", "--config", config)[0] == 2
    assert (tmp_path / "cache" / "train" / "X.npy").read_bytes() == before
    assert not list(tmp_path.glob(".cache.*"))


def test_refuses_what_it_cannot_do_yet(tmp_path):
    """Options the cache does not handle yet, and a directory that is not a cache, are refused by name."""
    write_csv(tmp_path / "d.csv")
    config = write_config(tmp_path, tmp_path / "d.csv", "  split: ordered\n")
    code, _, stderr = run("ingest", "--config", config)
    assert code == 2 and ("data.split: ordered (a cache splits by a seeded hash of each row; set data.split: random) "
                          "is not supported with a data cache yet") in stderr
    config = write_config(tmp_path, tmp_path / "d.csv")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "notes.txt").write_text("mine")
    code, _, stderr = run("ingest", "--config", config)
    assert code == 2 and "is not a softreg cache; choose another data.cache directory" in stderr
    assert (tmp_path / "cache" / "notes.txt").read_text() == "mine"
    code, _, stderr = run("ingest", "--config", REPO / "configs" / "iris.yaml")
    assert code == 2 and "--cache DIR" in stderr


def test_damaged_shard_is_refused(small):
    """A shard whose size differs from the manifest's is a DataError asking to ingest again."""
    tmp_path, config, _, _ = small
    assert run("ingest", "--config", config)[0] == 0
    shard = tmp_path / "cache" / "train" / "X.npy"
    shard.write_bytes(shard.read_bytes()[:-8])
    manifest = cache.read_manifest(tmp_path / "cache")
    assert manifest is not None
    with pytest.raises(DataError, match="ingest again"):
        cache.load_part(manifest, "train")


def test_numeric_source_and_float32(tmp_path):
    """A builtin source (loaded whole) ingests into float32 shards that train."""
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  source: builtin:iris\n  cache: {tmp_path / 'cache'}\nmodel:\n  dtype: float32\n")
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", *FAST)
    assert code == 0, stderr
    assert np.load(tmp_path / "cache" / "train" / "X.npy").dtype == np.float32


@pytest.mark.parametrize(("value", "expected"), [(2**21, 2**21), ("512MB", 512 * 10**6), ("1.5GiB", 3 * 2**29)])
def test_memory_budget_takes_bytes_or_sizes(tmp_path, value, expected):
    """data.memory_budget reads an integer or a size with a unit."""
    path = tmp_path / "c.yaml"
    path.write_text(f"data:\n  source: builtin:iris\n  memory_budget: {json.dumps(value)}\n")
    assert load_config(path).data.memory_budget == expected


def test_memory_budget_refuses_nonsense(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text('data:\n  source: builtin:iris\n  memory_budget: "lots"\n')
    with pytest.raises(ConfigError, match="data.memory_budget must be bytes"):
        load_config(path)


@pytest.mark.slow
def test_class_sorted_letters_through_the_cache_match_the_shuffled_in_memory_gap(tmp_path):
    """The letters data sorted by class, trained through the cache, gets as close to the optimum
    (relative objective gap) as the original file trained in memory: within 20%."""
    from softreg.solve import exact_optimum

    source = REPO / "data" / "letter-recognition.csv"
    header, *rows = source.read_text().splitlines()
    (tmp_path / "sorted.csv").write_text("\n".join([header, *sorted(rows, key=lambda row: row.split(",")[0])]) + "\n")
    settings = (
        "  label: Letter\n  val: 0\nmodel:\n  weight_decay: 1.0e-4\n"
        "optim:\n  lr: auto\n  batch_size: 64\n  epochs: 20\n  momentum: 0.9\n  schedule: cosine\n"
        "output:\n  plots: false\n"
    )
    gaps = {}
    for name, path, extra in (
        ("memory", source, ""),
        ("cache", tmp_path / "sorted.csv", f"  cache: {tmp_path / 'shards'}\n"),
    ):
        config = tmp_path / f"{name}.yaml"
        config.write_text(f"data:\n  source: {path}\n{extra}{settings}")
        code, _, stderr = run("train", "--config", config, "--out", tmp_path / name, "--quiet")
        assert code == 0, stderr
        from softreg.prepare.data import random_streams
        from softreg.run import prepare_for

        loaded = load_config(config)
        prepared = prepare_for(loaded, random_streams(loaded.seed).split)
        optimum = exact_optimum(np.asarray(prepared.train.X), np.asarray(prepared.train.y), 26, 1e-4)
        objective = json.loads((tmp_path / name / "metrics.json").read_text())["objective"]
        gaps[name] = (objective - optimum.objective) / optimum.objective
    assert gaps["cache"] <= 1.2 * gaps["memory"], gaps


def test_evaluate_optimum_and_calibrate_rebuild_parts_from_the_cache(small):
    """evaluate --optimum and --calibrate of a cached run read its parts from the cache (float32 shards too)."""
    tmp_path, config, _, _ = small
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", "--set", "model.dtype=float32",
                          "--set", "optim.epochs=30", *FAST[2:])
    assert code == 0, stderr
    code, stdout, stderr = run("evaluate", "--run", tmp_path / "run", "--optimum", "--calibrate", "--json")
    assert code == 0, stderr
    optimum = json.loads(stdout)["optimum"]
    assert 0 <= optimum["gap"] < 0.05 and "calibration" in json.loads(stdout)


def test_full_disk_is_exit_1_and_leaves_no_cache(small, monkeypatch):
    """A write that fails for want of space: exit 1 naming the cache, nothing that looks like a cache left."""
    tmp_path, config, _, _ = small

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache.build, "_write_shards", full)
    code, _, stderr = run("ingest", "--config", config)
    assert code == 1 and "cannot write the cache (No space left on device)" in stderr
    assert no_cache_left(tmp_path)


def test_interrupted_ingest_leaves_no_cache(small, monkeypatch):
    """Ctrl-C during the shuffle removes the staging directory: no cache, complete-looking or not."""
    tmp_path, config, _, _ = small

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache.build, "_write_shards", interrupt)
    with pytest.raises(KeyboardInterrupt):
        cache.ingest(load_config(config), tmp_path / "cache")
    assert no_cache_left(tmp_path)


def test_resumed_cached_run_equals_an_uninterrupted_one(small):
    """A cached run trained 2 epochs and resumed to 4 ends with the model of a straight 4-epoch run."""
    tmp_path, config, _, _ = small
    plain = ["--set", "output.plots=false", "--quiet"]
    assert run("train", "--config", config, "--out", tmp_path / "straight", "--set", "optim.epochs=4", *plain)[0] == 0
    assert run("train", "--config", config, "--out", tmp_path / "resumed", "--set", "optim.epochs=2", *plain)[0] == 0
    code, _, stderr = run("train", "--resume", tmp_path / "resumed", "--set", "optim.epochs=4", "--quiet")
    assert code == 0, stderr
    assert (tmp_path / "straight" / "model.npz").read_bytes() == (tmp_path / "resumed" / "model.npz").read_bytes()


def test_cached_run_predicts_like_any_run(tmp_path):
    """A model trained through the cache keeps the file's columns and data.id: predict reads the raw file."""
    X, _ = write_csv(tmp_path / "d.csv", n_rows=200)
    lines = (tmp_path / "d.csv").read_text().splitlines()
    (tmp_path / "d.csv").write_text("\n".join(f"{'rid' if i == 0 else f'r{i}'},{line}" for i, line in
                                              enumerate(lines)) + "\n")
    config = write_config(tmp_path, tmp_path / "d.csv", "  id: rid\n")
    assert run("train", "--config", config, "--out", tmp_path / "run", *FAST)[0] == 0
    code, stdout, stderr = run("predict", "--run", tmp_path / "run", "--input", tmp_path / "d.csv")
    assert code == 0, stderr
    output = stdout.splitlines()
    assert output[0] == "rid,label,prob_a,prob_b,prob_c" and output[1].startswith("r1,") and len(output) == 201


def test_killed_ingest_staging_is_removed_by_the_next(small):
    """A staging directory left by a killed ingest (its process gone) is removed by the next ingest;
    one of a running process is left alone."""
    tmp_path, config, _, _ = small
    import socket

    abandoned = tmp_path / ".cache.ingest-999999999-abc"  # beyond any pid the kernel hands out
    running = tmp_path / f".cache.ingest-{os.getpid()}-abc"
    for directory, pid in ((abandoned, 999999999), (running, os.getpid())):
        directory.mkdir()
        (directory / "bucket-0.bin").write_bytes(b"\0" * 64)
        (directory / ".softreg-ingest").write_text(json.dumps({"host": socket.gethostname(), "pid": pid}))
    assert run("ingest", "--config", config)[0] == 0
    assert not abandoned.exists() and running.exists()


def test_a_foreign_manifest_is_not_taken_for_a_cache(small):
    """A directory whose manifest.json is not a softreg cache's is refused, not replaced."""
    tmp_path, config, _, _ = small
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "manifest.json").write_text('{"name": "my project"}')
    code, _, stderr = run("ingest", "--config", config)
    assert code == 2 and "is not a softreg cache" in stderr
    assert (tmp_path / "cache" / "manifest.json").read_text() == '{"name": "my project"}'


def test_ingest_progress_lines(monkeypatch):
    """Progress says the rows read and the rate, at most once per interval, and where the reader
    knows its place, the megabytes read of the total, the share and the time left at this rate."""
    from softreg.commands import ingest as ingest_command

    clock = iter([100.0, 110.0, 120.0, 100.0, 160.0])
    monkeypatch.setattr(ingest_command.time, "perf_counter", lambda: next(clock))
    lines = []
    progress = ingest_command.RowProgress(lines.append, every=5.0, total_bytes=400_000_000)
    progress(65536, 100_000_000)  # 10 s in: a quarter read, 30 s left
    progress(131072, None)  # 20 s in: the text path does not know its place
    silent = ingest_command.RowProgress(lines.append, every=3600.0)
    silent(65536)
    assert lines == [
        "ingest: 65,536 rows read (6,554 rows/s), 100 of 400 MB (25%), about 30 s left to read",
        "ingest: 131,072 rows read (6,554 rows/s)",
    ]


@pytest.mark.parametrize("form", ["numeric csv", "csv with text", "parquet"])
def test_ingest_prints_progress_with_bytes(tmp_path, monkeypatch, form):
    """The CLI's ingest progress knows its place in the source on every path (pandas' parser, the
    text path, Parquet by its share of the rows): the last line reports all of the source read."""
    import re

    from softreg.commands import ingest as ingest_command

    monkeypatch.setattr(cache.rows, "READ_ROWS", 10_000)
    original = ingest_command.RowProgress.__init__

    def every_chunk(self, echo, every=5.0, total_bytes=None):
        original(self, echo, 0.0, total_bytes)

    monkeypatch.setattr(ingest_command.RowProgress, "__init__", every_chunk)
    X, labels = write_csv(tmp_path / "d.csv", n_rows=60_000)  # about 1 MB: several reads of each reader
    source = tmp_path / "d.csv"
    if form == "csv with text":  # a text column: categorical, so the text path reads the file
        lines = source.read_text().splitlines()
        source.write_text("\n".join([lines[0] + ",shade"] + [f"{line},{'dark' if i % 3 else 'light'}"
                                                             for i, line in enumerate(lines[1:])]) + "\n")
    elif form == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        source = tmp_path / "d.parquet"
        pq.write_table(pa.table({**{f"f{j}": X[:, j] for j in range(X.shape[1])}, "label": labels}), source)
    config = write_config(tmp_path, source, "  label: label\n")
    code, _, stderr = run("ingest", "--config", config)
    assert code == 0, stderr
    size = source.stat().st_size
    progress = [line for line in stderr.splitlines() if line.startswith("ingest: ")]
    assert len(progress) == 6 and progress[-1].startswith("ingest: 60,000 rows read (")
    assert progress[-1].endswith(f"{size / 1e6:,.0f} of {size / 1e6:,.0f} MB (100%), about 0 s left to read")
    shares = [int(re.search(r"\((\d+)%\)", line).group(1)) for line in progress]
    assert shares == sorted(shares) and shares[0] < 60 and shares[-1] == 100


def test_a_file_size_limit_is_exit_1_and_leaves_no_cache(small):
    """A real write failure (the process's file size limit, as a full disk would fail a write):
    exit 1 naming the cache and the reason, no traceback, nothing that looks like a cache left."""
    import resource
    import signal
    import subprocess
    import sys

    tmp_path, config, _, _ = small
    limit = 8192  # below the size of the shuffle's bucket file for these rows

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    process = subprocess.run([sys.executable, "-m", "softreg", "ingest", "--config", str(config)],
                             capture_output=True, text=True, preexec_fn=limited, timeout=120)
    assert process.returncode == 1, process.stderr
    assert "cannot write the cache (File too large)" in process.stderr and "Traceback" not in process.stderr
    assert no_cache_left(tmp_path)


# -- streaming from the cache: the optimum's oracle, the pages read


def test_streamed_optimum_equals_the_optimum_of_the_part_in_memory(small):
    """L-BFGS with the chunked oracle over float32 shards finds the optimum of the same rows in one
    float64 array, bit for bit; with a temperature, to 1e-9."""
    from softreg.solve import exact_optimum, streamed_optimum

    tmp_path, config, _, _ = small
    assert run("ingest", "--config", config, "--set", "model.dtype=float32")[0] == 0
    part = cache.load_part(cache.read_manifest(tmp_path / "cache"), "train")
    X, y = np.asarray(part.X, dtype=np.float64), np.asarray(part.y)
    for temperature in (1.0, 2.0):
        streamed = streamed_optimum(part, 3, 1e-2, temperature=temperature)
        whole = exact_optimum(X, y, 3, 1e-2, temperature=temperature)
        np.testing.assert_allclose(streamed.coef, whole.coef, rtol=0 if temperature == 1.0 else 1e-9)
        assert streamed.objective == pytest.approx(whole.objective, rel=0 if temperature == 1.0 else 1e-12)


def test_reading_a_part_drops_its_pages_from_the_process(tmp_path):
    """With release_pages, after a pass of chunks or an epoch over a memory-mapped 16 MiB part, at most
    a block of it stays resident; without, all of it does."""
    X = np.arange(2**21, dtype=np.float64).reshape(-1, 8)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", np.zeros(len(X), dtype=np.int64))
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r"), np.load(tmp_path / "y.npy", mmap_mode="r")
    data = cache.CacheData(*mapped, release_pages=True)
    total = sum(float(chunk[0][:, 0].sum()) for chunk in data.chunks(65536))
    assert total == float(X[:, 0].sum())
    block_kib = 65536 * 8 * 8 // 1024
    assert resident_kib(tmp_path / "X.npy") <= block_kib
    for _ in data.minibatches(4096, np.random.default_rng(0)):
        pass
    assert resident_kib(tmp_path / "X.npy") <= block_kib
    for _ in cache.CacheData(*mapped).chunks(65536):
        pass
    assert resident_kib(tmp_path / "X.npy") >= X.nbytes // 1024


def resident_kib(path):
    """Kibibytes of ``path``'s mappings resident in this process (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if line[:1].isalnum() and "-" in line.split(" ", 1)[0]:  # a mapping's first line: its address range
            inside = line.endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


# -- data.memory_budget: the footprint, the decision, the cache train chooses


def test_the_decision_compares_the_in_memory_footprint_with_the_budget():
    """rows x (features + 1) float64 values, four times over: more than the budget goes through a cache."""
    from softreg.cache import budget
    from softreg.io import footprint

    assert budget.in_memory_bytes(1000, 9) == 1000 * 10 * 8 * 4
    assert not budget.needs_cache(1000, 9, 320_000) and budget.needs_cache(1000, 9, 319_999)
    assert budget.needs_cache(2_400_000, 24, 2**30) and not budget.needs_cache(150, 4, 2**20)
    # 100 rows in a 4,000-byte sample after a 50-byte header: a 1,000,050-byte file holds 25,000
    assert footprint.estimated_rows(1_000_050, 50, 4_000, 100) == 25_000
    assert footprint.estimated_rows(10, 5, 0, 0) == 0
    assert budget.read_chunk_rows(2**31, 25, 65536) == 65536 and budget.read_chunk_rows(2**20, 6, 65536) == 170
    assert budget.read_chunk_rows(2**20, 10_000, 65536) == budget.MIN_CHUNK_ROWS


def test_default_budget_is_half_the_available_memory(tmp_path, monkeypatch):
    """MemAvailable, capped by a cgroup's limit less its usage; the default budget is half of it."""
    from softreg.cache import budget

    (tmp_path / "meminfo").write_text("MemTotal:       32000000 kB\nMemAvailable:   20000000 kB\n")
    assert budget.available_memory(tmp_path / "meminfo", tmp_path / "none") == 20000000 * 1024
    (tmp_path / "memory.max").write_text("4000000000\n")
    (tmp_path / "memory.current").write_text("1000000000\n")
    assert budget.available_memory(tmp_path / "meminfo", tmp_path) == 3_000_000_000
    (tmp_path / "memory.max").write_text("max\n")
    assert budget.available_memory(tmp_path / "meminfo", tmp_path) == 20000000 * 1024
    monkeypatch.setattr(budget, "available_memory", lambda: 3_000_000_001)
    assert budget.memory_budget(None) == 1_500_000_000 and budget.memory_budget(2**20) == 2**20


def test_footprint_of_each_source_before_loading_it(tmp_path):
    """Builtins and .npz by their shapes (read from the header); CSV by its size and first lines."""
    import sklearn.datasets

    from softreg.cache import budget
    from softreg.io import footprint

    for name, shape in footprint.BUILTIN_SHAPES.items():
        assert getattr(sklearn.datasets, f"load_{name}")().data.shape == shape
        assert budget.footprint(f"builtin:{name}") == budget.Footprint(*shape, estimated=False)
    np.savez(tmp_path / "d.npz", X=np.zeros((1234, 7)), y=np.zeros(1234))
    assert budget.footprint(str(tmp_path / "d.npz")) == budget.Footprint(1234, 7, estimated=False)
    write_csv(tmp_path / "d.csv", n_rows=20_000)
    size = budget.footprint(str(tmp_path / "d.csv"))
    assert size.n_features == 4 and size.estimated and abs(size.n_rows - 20_000) < 400
    assert budget.footprint(str(REPO / "data" / "iris.csv")) == budget.Footprint(150, 4, estimated=True)
    assert budget.footprint("-") is None and budget.footprint(str(tmp_path / "missing.csv")) is None


def test_data_over_the_budget_train_through_a_cache_beside_the_run(tmp_path):
    """Without data.cache, data that do not fit data.memory_budget go through a cache in
    softreg-cache/ beside the run, said in one line; the model is the one data.cache gives."""
    from softreg.cache import budget

    write_csv(tmp_path / "d.csv", n_rows=12_000)
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  source: d.csv\n  val: 0.2\n  memory_budget: 1MiB\noptim:\n  lr: 0.1\n  epochs: 2\n"
                      "  tol: null\n"
                      "output:\n  plots: false\n")
    runs = tmp_path / "runs"
    code, _, stderr = run("train", "--config", config, "--out", runs / "auto", "--quiet")
    assert code == 0, stderr
    chosen = load_config(runs / "auto" / "config.yaml").data.cache
    assert chosen is not None and Path(chosen).parent == (runs / "softreg-cache").resolve()
    size = budget.footprint(str(tmp_path / "d.csv"))
    assert stderr == (
        f"softreg: {tmp_path / 'd.csv'}: about {size.n_rows:,} rows x 4 features take about "
        f"{size.bytes / 1e6:.1f} MB in memory, more than data.memory_budget (1.0 MB); "
        f"training from a data cache in {chosen}\n"
    )
    assert (Path(chosen) / "manifest.json").exists()
    code, _, stderr = run("train", "--config", config, "--out", runs / "explicit", "--quiet",
                          "--set", f"data.cache={tmp_path / 'mine'}")
    assert code == 0 and stderr == ""
    assert (runs / "auto" / "model.npz").read_bytes() == (runs / "explicit" / "model.npz").read_bytes()
    code, _, stderr = run("train", "--config", config, "--out", runs / "roomy", "--quiet",
                          "--set", "data.memory_budget=1GB")
    assert code == 0 and stderr == "" and load_config(runs / "roomy" / "config.yaml").data.cache is None


def test_the_shards_do_not_depend_on_the_memory_free_at_the_time(small, monkeypatch):
    """With the default data.memory_budget (a share of the memory available), two ingests under
    very different free memory write the same bytes: the shuffle's bucket count follows the
    config and the source only."""
    from softreg.cache import budget

    tmp_path, config, _, _ = small
    written = []
    for available in (2**40, 2**12):  # the second would ask for 37 buckets, the source for 9
        monkeypatch.setattr(budget, "available_memory", lambda available=available: available)
        target = tmp_path / f"cache-{available}"
        assert run("ingest", "--config", config, "--cache", target)[0] == 0
        written.append({path.relative_to(target): path.read_bytes() for path in target.rglob("*.npy")})
    assert written[0] == written[1] and written[0]


def test_a_cache_holding_a_users_file_is_not_rebuilt_over_it(small):
    """A cache into which the user put a file, when the source changes: exit 2 naming the file, which stays
    (a rebuild replaces the directory whole, so it would be lost)."""
    tmp_path, config, _, _ = small
    assert run("ingest", "--config", config, "--quiet")[0] == 0
    (tmp_path / "cache" / "notes.md").write_text("mine")
    (tmp_path / "cache" / "train" / "extra.csv").write_text("mine")
    write_csv(tmp_path / "d.csv", seed=1)  # the source changed: the cache is out of date
    code, _, stderr = run("ingest", "--config", config, "--quiet")
    assert code == 2
    assert stderr == (f"softreg: error: {tmp_path / 'cache'}: holds entries softreg did not write (notes.md, "
                      "train/extra.csv); move them out, or choose another data.cache\n")
    assert (tmp_path / "cache" / "notes.md").read_text() == "mine"
    assert (tmp_path / "cache" / "train" / "extra.csv").read_text() == "mine"


def test_a_cache_that_is_a_link_is_refused_and_its_target_untouched(small):
    """data.cache a symbolic link (to a cache, even): exit 2, nothing written through it."""
    tmp_path, config, _, _ = small
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "thesis.tex").write_text("mine")
    (tmp_path / "cache").symlink_to(elsewhere)
    code, _, stderr = run("ingest", "--config", config, "--quiet")
    assert code == 2
    assert stderr == (f"softreg: error: {tmp_path / 'cache'}: is a symbolic link; softreg does not write through "
                      "links: give the real path as data.cache\n")
    assert sorted(p.name for p in elsewhere.iterdir()) == ["thesis.tex"]


@pytest.mark.parametrize("at_least", [1, 3, 8, 100])
def test_parquet_pieces_are_whole_chunks_that_cover_the_labelled_rows_once(at_least):
    """The pieces of a distributed ingest start at multiples of READ_ROWS labelled rows (so a chunk never
    spans two workers), each window pointing at the row group and offset of its first row, and together
    cover every labelled row once."""
    from softreg.cache import READ_ROWS
    from softreg.cache.pieces import parquet_pieces

    groups = [[7000] * 7 + [1000], [40000], [0, 30000, 5]]
    flat = [count for counts in groups for count in counts]
    found = parquet_pieces(groups, at_least)
    assert [piece.index for piece in found] == list(range(len(found)))
    assert sum(piece.window.count for piece in found) == sum(flat)
    assert all(piece.start % READ_ROWS == 0 for piece in found)
    assert [piece.start for piece in found] == [sum(p.window.count for p in found[:i]) for i in range(len(found))]
    chunks = -(-sum(flat) // READ_ROWS)
    per_piece = -(-chunks // at_least)  # whole chunks a piece, so that there are about at_least pieces
    assert len(found) == -(-chunks // per_piece) <= at_least
    assert all(piece.window.count == per_piece * READ_ROWS for piece in found[:-1])
    for piece in found:
        before = sum(sum(counts) for counts in groups[:piece.window.file])
        before += sum(groups[piece.window.file][:piece.window.group])
        assert before + piece.window.skip == piece.start
        assert 0 <= piece.window.skip < groups[piece.window.file][piece.window.group]
