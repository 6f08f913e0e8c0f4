"""Sharded training in one process: the batch plan, a shard's sums, the numpy engine, the config's rules."""

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

from softreg import rundir, softmax
from softreg.config import ConfigError, resolve
from softreg.engine import plan, shard_partial_sums
from softreg.train import EpochRecord, PartialSums, add_partials
from tests.strategies import run

REPO = Path(__file__).resolve().parent.parent
LETTERS = REPO / "data" / "letter-recognition.csv"


def letters_config(tmp_path, cache, extra=""):
    """Letters through a cache: 4 shards, batches of 512, a validation part; a few epochs."""
    path = tmp_path / "letters.yaml"
    path.write_text(
        f"data:\n  source: {LETTERS}\n  label: Letter\n  cache: {cache}\n  val: 0.1\n  shards: 4\n"
        "optim:\n  lr: 0.1\n  batch_size: 512\n  epochs: 3\n  schedule: cosine\n  variance_reduction: none\n"
        "output:\n  plots: false\n" + extra
    )
    return path


@pytest.fixture(scope="module")
def letters_cache(tmp_path_factory):
    """The letters cache, ingested once for the module."""
    folder = tmp_path_factory.mktemp("letters")
    code, _, stderr = run("ingest", "--config", letters_config(folder, folder / "cache"), "--quiet")
    assert code == 0, stderr
    return folder / "cache"


@pytest.mark.parametrize(("n_samples", "n_shards", "batch_size"), [(10, 3, 3), (9, 2, 4), (16000, 4, 512), (5, 5, 5)])
def test_the_plan_visits_every_row_once_an_epoch_in_full_batches(n_samples, n_shards, batch_size):
    """Shards cover the rows (sizes differ by one at most); an epoch of ceil(n / B) steps takes every
    row exactly once, B rows a step but the last, from B/S rows of each shard's permutation."""
    ranges = plan.shard_ranges(n_samples, n_shards)
    sizes = [stop - start for start, stop in ranges]
    assert ranges[0][0] == 0 and ranges[-1][1] == n_samples and max(sizes) - min(sizes) <= 1
    assert all(stop == start for (_, stop), (start, _) in zip(ranges, ranges[1:], strict=False))
    rows = plan.rows_per_step(batch_size, n_shards)
    steps = plan.steps_per_epoch(n_samples, batch_size)
    orders = [plan.shard_order(7, shard, size) for shard, size in enumerate(sizes)]
    starts = [start for start, _ in ranges]
    batches = [
        np.concatenate([start + plan.step_rows(order, step, rows) for start, order in zip(starts, orders, strict=True)])
        for step in range(steps)
    ]
    assert sorted(np.concatenate(batches).tolist()) == list(range(n_samples))
    assert all(len(batch) == batch_size for batch in batches[:-1]) and 1 <= len(batches[-1]) <= batch_size
    assert all(len(plan.step_rows(order, steps, rows)) == 0 for order in orders)  # nothing is left over


def test_the_plan_is_a_function_of_the_key_and_the_shard():
    """The same (key, shard) gives the same order; another key or shard another one."""
    assert np.array_equal(plan.shard_order(3, 1, 100), plan.shard_order(3, 1, 100))
    assert not np.array_equal(plan.shard_order(3, 1, 100), plan.shard_order(4, 1, 100))
    assert not np.array_equal(plan.shard_order(3, 1, 100), plan.shard_order(3, 2, 100))
    with pytest.raises(ValueError, match="batch size 10 is not a multiple of the 4 shards"):
        plan.rows_per_step(10, 4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_shard_sums_are_n_times_the_mean_loss_and_gradient(dtype):
    """shard_partial_sums / n equals softmax.loss_gradient without decay (float64: 1e-12), counts the rows
    whose largest logit is the class, and adds nothing for an empty shard."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 6)).astype(dtype), rng.integers(0, 4, 50)
    coef, intercept = rng.standard_normal((4, 6)).astype(dtype), rng.standard_normal(4).astype(dtype)
    sums = shard_partial_sums(coef, intercept, X, y, correct=True)
    loss, _, grad_coef, grad_intercept = softmax.loss_gradient(
        coef.astype(np.float64), intercept.astype(np.float64), X.astype(np.float64), y, 0.0
    )
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    assert sums.count == 50 and sums.grad_coef.dtype == dtype
    np.testing.assert_allclose(sums.loss / 50, loss, rtol=tolerance)
    np.testing.assert_allclose(sums.grad_coef / 50, grad_coef, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(sums.grad_intercept / 50, grad_intercept, rtol=tolerance, atol=tolerance)
    assert sums.correct == int(np.count_nonzero((X @ coef.T + intercept).argmax(axis=1) == y))
    empty = shard_partial_sums(coef, intercept, X[:0], y[:0])
    assert empty.count == 0 and empty.loss == 0.0 and not empty.grad_coef.any() and not empty.grad_intercept.any()


def test_partials_add_in_shard_order():
    """add_partials adds the arrays, losses, counts and hits in order, leaving its inputs untouched."""
    parts = [PartialSums(np.full((2, 3), float(k)), np.full(2, float(k)), 0.5 * k, k, k) for k in (1, 2, 3)]
    total = add_partials(parts)
    assert np.array_equal(total.grad_coef, np.full((2, 3), 6.0)) and np.array_equal(total.grad_intercept, [6.0, 6.0])
    assert (total.loss, total.count, total.correct) == (3.0, 6, 6)
    assert parts[0].grad_coef[0, 0] == 1.0


BASE = {"data": {"source": "builtin:iris", "cache": "c"}}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"data": {"source": "builtin:iris", "shards": 2}},
            "c.yaml: data.shards: 2 needs data.cache: the shards are row ranges of the cache's training part, "
            "opened by path (set data.cache: DIR)",
        ),
        (
            {**BASE, "engine": {"kind": "dask"}},
            "c.yaml: data.shards 1 must be at least engine.workers 2: each worker holds one or more shards "
            "(set data.shards: 2 or more)",
        ),
        (
            {**BASE, "data": {**BASE["data"], "shards": 2}, "optim": {"variance_reduction": "svrg"}},
            "c.yaml: optim.variance_reduction: svrg is not supported with data.shards: 2, which sums plain minibatch "
            "gradients of the softmax cross-entropy; use optim.variance_reduction: none",
        ),
        (
            {**BASE, "engine": {"kind": "dask", "workers": 1}, "model": {"loss": "squared_error"}},
            "c.yaml: model.loss: squared_error is not supported with engine.kind: dask, which sums plain minibatch "
            "gradients of the softmax cross-entropy; use model.loss: cross_entropy",
        ),
        (
            {**BASE, "data": {**BASE["data"], "shards": 3}},
            "c.yaml: optim.batch_size 64 must be a multiple of data.shards 3: each step takes batch_size / shards "
            "rows from every shard (e.g. optim.batch_size: 63)",
        ),
        ({**BASE, "engine": {"worker": 2}}, "c.yaml: unknown key engine.worker (did you mean 'workers'?)"),
        ({**BASE, "engine": {"kind": "spark"}}, "c.yaml: engine.kind must be one of numpy, dask, got 'spark'"),
        (
            {**BASE, "engine": {"scheduler": "tcp://a b:8786"}},
            "c.yaml: engine.scheduler must be local or a scheduler address such as tcp://host:8786, "
            "got 'tcp://a b:8786'",
        ),
        ({**BASE, "data": {**BASE["data"], "shards": 0}}, "c.yaml: data.shards must be >= 1, got 0"),
    ],
)
def test_engine_config_errors_name_the_key(document, message):
    """What the sharded engine needs and refuses is checked with the config, one sentence naming the key."""
    with pytest.raises(ConfigError) as caught:
        resolve(document, origin="c.yaml", base_dir=".")
    assert str(caught.value) == message


def test_engine_config_defaults_and_addresses():
    """Defaults: numpy, no scheduler, 2 workers, 1 shard; tcp://, IPv6 and local addresses are accepted."""
    config = resolve({"data": {"source": "builtin:iris"}})
    assert (config.engine.kind, config.engine.scheduler, config.engine.workers, config.data.shards) == (
        "numpy", None, 2, 1)
    for address in ("tcp://10.0.0.5:8786", "tcp://[::1]:8786", "local", "scheduler-host:8786"):
        assert resolve({**BASE, "engine": {"scheduler": address}}).engine.scheduler == address


def test_cli_refuses_an_unsupported_option_with_exit_2(tmp_path, letters_cache):
    """train with data.shards and SVRG: exit 2, the option named on one line, nothing written."""
    code, stdout, stderr = run(
        "train", "--config", letters_config(tmp_path, letters_cache), "--out", tmp_path / "run",
        "--set", "optim.variance_reduction=svrg",
    )
    assert code == 2 and stdout == "" and not (tmp_path / "run").exists()
    assert stderr.strip().endswith("optim.variance_reduction: svrg is not supported with data.shards: 4, which sums "
                                   "plain minibatch gradients of the softmax cross-entropy; use "
                                   "optim.variance_reduction: none")


def test_sharded_runs_repeat_bit_for_bit_and_resume_exactly(tmp_path, letters_cache):
    """The numpy engine with 4 shards: two runs give the same model and history (but the seconds); a run
    of 2 epochs resumed to 3 ends with the straight run's model; comm_seconds is empty in this process."""
    config = letters_config(tmp_path, letters_cache)
    constant = ("--quiet", "--set", "optim.schedule=constant")  # a cosine schedule depends on the number of epochs
    for name in ("a", "b"):
        assert run("train", "--config", config, "--out", tmp_path / name, *constant)[0] == 0
    assert run("train", "--config", config, "--out", tmp_path / "r", *constant, "--set", "optim.epochs=2")[0] == 0
    code, _, stderr = run("train", "--resume", tmp_path / "r", "--set", "optim.epochs=3", "--quiet")
    assert code == 0, stderr
    models = [(tmp_path / name / "model.npz").read_bytes() for name in ("a", "b", "r")]
    assert models[0] == models[1] == models[2]
    histories = [list(csv.DictReader((tmp_path / name / "history.csv").read_text().splitlines())) for name in "ab"]
    assert list(histories[0][0]) == [*rundir.HISTORY_FIELDS]
    assert rundir.HISTORY_FIELDS[-2:] == ("comm_seconds", "gap_bound")
    assert all(row.pop("seconds") and row.pop("comm_seconds") == "" for rows in histories for row in rows)
    assert histories[0] == histories[1] and len(histories[0]) == 3 and histories[0][-1]["val_accuracy"] != ""


def test_sharded_numpy_run_differs_from_the_default_plan_but_trains_as_well(tmp_path, letters_cache):
    """data.shards: 4 is another batch plan than the cache's block order (other bits), with an objective
    within 1% of it after 3 epochs: both are minibatch SGD over the same rows."""
    objectives = {}
    for shards in (1, 4):
        out = tmp_path / f"s{shards}"
        code, _, stderr = run("train", "--config", letters_config(tmp_path, letters_cache), "--out", out, "--quiet",
                              "--set", f"data.shards={shards}")
        assert code == 0, stderr
        objectives[shards] = rundir.read_history(out)[-1]["objective"]
    assert objectives[1] != objectives[4] and abs(objectives[4] - objectives[1]) <= 0.01 * objectives[1]


def test_dask_missing_is_exit_2_with_the_install_command(tmp_path, letters_cache, monkeypatch):
    """engine.kind: dask without dask installed: exit 2, "needs dask: pip install 'softreg[dask]'"."""
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed raises ImportError
    code, _, stderr = run(
        "train", "--config", letters_config(tmp_path, letters_cache), "--out", tmp_path / "run", "--quiet",
        "--set", "engine.kind=dask", "--set", "engine.scheduler=local",
    )
    assert code == 2
    assert stderr == ("softreg: error: engine.kind: dask needs dask: pip install 'softreg[dask]' (from a clone of "
                      "the repository: pip install '.[dask]')\n")


def test_history_and_checkpoints_of_earlier_versions_still_read(tmp_path):
    """A history.csv without the comm_seconds column reads, the column as None; a checkpoint whose history
    records lack it loads; a checkpoint holds comm_seconds as zero, the file beside it the real figure."""
    (tmp_path / "history.csv").write_text(
        "epoch,lr,train_loss,objective,grad_norm,val_loss,val_accuracy,seconds\n1,0.1,2.0,,,,,0.5\n"
    )
    assert rundir.read_history(tmp_path) == [{
        "epoch": 1.0, "lr": 0.1, "train_loss": 2.0, "objective": None, "grad_norm": None, "val_loss": None,
        "val_accuracy": None, "seconds": 0.5, "comm_seconds": None, "gap_bound": None}]
    from softreg.train import TrainingState

    record = EpochRecord(epoch=1, lr=0.1, train_loss=2.0, seconds=0.5, comm_seconds=0.25)
    state = TrainingState(1, 2, 1, np.zeros(4), [], {"state": 1}, [record])
    rundir.save_checkpoint(tmp_path, state)
    loaded, meta = rundir.load_checkpoint(tmp_path)
    assert loaded.history == [record] and meta["history"][0]["comm_seconds"] == 0.0
    del meta["history"][0]["comm_seconds"]  # as an earlier version wrote it
    import json

    from softreg.rundir.files import json_text, write_npz

    write_npz(tmp_path / "checkpoint.npz", meta=np.array(json_text(meta, indent=None)), weights=np.zeros(4))
    (tmp_path / "checkpoint-seconds.json").write_text(json.dumps({"epoch_seconds": [0.5], "seconds": None}))
    assert rundir.load_checkpoint(tmp_path)[0].history == [EpochRecord(epoch=1, lr=0.1, train_loss=2.0, seconds=0.5)]


def test_the_sharded_certificate_is_the_local_one_and_stops_a_run_at_tol(tmp_path, letters_cache):
    """The certificate from the shards' sums (their logits held shard by shard) equals the one over the
    rows read here to 1e-12; a sharded run is certified and stops at optim.tol like any other."""
    from softreg.config import load_config
    from softreg.engine import open_engine
    from softreg.prepare.data import random_streams
    from softreg.run import prepare_for
    from softreg.train.certificate import MAX_LOGITS, certify, certify_held

    config_path = letters_config(tmp_path, letters_cache, "model:\n  weight_decay: 1.0e-3\n")
    out = tmp_path / "run"
    code, stdout, stderr = run("train", "--config", config_path, "--out", out, "--set", "optim.epochs=60",
                               "--set", "optim.tol=0.05", "--set", "optim.schedule=constant")
    assert code == 0, stderr
    summary = rundir.read_model_json(out / "model.json")["training"]
    assert summary["stopped_by"] == "tol" and summary["certifiable"] and 0 < summary["gap_bound"] <= 0.05
    assert summary["epochs_run"] < 60 and "(certified)" in stdout
    config = load_config(out / "config.yaml")
    prepared = prepare_for(config, random_streams(config.seed).split)
    model = rundir.load_model(out)
    here = certify(model.coef, model.intercept, prepared.train, 1e-3, True, adopt=False)
    with open_engine(config, prepared.train, None) as parts:
        held = parts.train.held_logits(model.coef, MAX_LOGITS)
        sharded = certify_held(model.coef, model.intercept, held, 1e-3, True, adopt=False)
    assert sharded.relative_gap == pytest.approx(here.relative_gap, rel=1e-12)
    assert sharded.relative_gap == pytest.approx(summary["gap_bound"], rel=1e-12)
    assert sharded.objective == pytest.approx(here.objective, rel=1e-14)


def test_an_ingest_whose_worker_left_stops_with_one_line_instead_of_waiting(monkeypatch):
    """A task pinned to a worker that left would wait forever: the ingest looks its workers up while it waits,
    and one the scheduler no longer has stops it with a ClusterError that says to ingest again."""
    from softreg.engine import ingest as distributed
    from softreg.errors import ClusterError

    class Pending:
        def result(self, timeout=None):
            raise TimeoutError

    class Client:
        def __init__(self):
            self.looks = 0

        def scheduler_info(self):
            self.looks += 1
            return {"workers": {"tcp://a:1": {}} if self.looks > 2 else {"tcp://a:1": {}, "tcp://b:2": {}}}

    monkeypatch.setattr(distributed, "POLL_SECONDS", 0.0)
    ingest = distributed._Ingest.__new__(distributed._Ingest)
    ingest.client, ingest.workers = Client(), ["tcp://a:1", "tcp://b:2"]
    with pytest.raises(ClusterError) as raised:
        ingest.wait(Pending())
    assert str(raised.value) == ("worker tcp://b:2 left the cluster during the ingest, with its part of the rows; "
                                 "run softreg ingest again (it starts over: nothing was written)")
    assert ingest.client.looks == 3


def test_a_part_on_the_workers_has_its_sizes_here_and_no_rows():
    """A PlacedPart reports the part's size, width and dtype; reading its rows here is a DataError, not
    an empty epoch."""
    from softreg.engine.placed import PlacedPart
    from softreg.errors import DataError

    part = PlacedPart(np.empty((0, 5), dtype=np.float32), np.empty(0, dtype=np.int64), n_rows=1000, part="val")
    assert (part.n_samples, part.n_features, part.dtype) == (1000, 5, np.float32)
    for read in (lambda: next(part.chunks(10)), lambda: next(part.minibatches(10, np.random.default_rng(0)))):
        with pytest.raises(DataError, match="the val part's rows are on the Dask workers"):
            read()
