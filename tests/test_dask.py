"""The Dask engine: the same bits as the numpy engine for any number of workers, a worker killed
mid-run, the CLI against a scheduler and workers started here, and the cluster errors (exit 2)."""

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from softreg import rundir
from softreg.config import load_config
from softreg.engine import ShardSpec, open_engine
from softreg.engine import cluster as dask_cluster
from softreg.engine import dask as dask_engine
from softreg.errors import ClusterError, SoftregWarning
from softreg.prepare.data import random_streams
from softreg.run import prepare_for, train_run
from softreg.train import fit
from tests.clusters import Cluster
from tests.strategies import run

pytestmark = pytest.mark.slow  # starts clusters: scheduler and worker processes

REPO = Path(__file__).resolve().parent.parent
LETTERS = REPO / "data" / "letter-recognition.csv"
COMMUNICATION = "dask: communication takes"  # the engine's warning on letters' tiny steps: not what these tests check


@pytest.fixture(scope="module")
def letters(tmp_path_factory):
    """Letters through a cache, 4 shards of batch 512, 3 epochs with validation; and the numpy engine's model."""
    folder = tmp_path_factory.mktemp("letters")
    config = folder / "letters.yaml"
    config.write_text(
        f"data:\n  source: {LETTERS}\n  label: Letter\n  cache: {folder / 'cache'}\n  val: 0.1\n  shards: 4\n"
        "optim:\n  lr: 0.1\n  batch_size: 512\n  epochs: 3\n  schedule: cosine\noutput:\n  plots: false\n"
    )
    code, _, stderr = run("train", "--config", config, "--out", folder / "numpy", "--quiet")
    assert code == 0, stderr
    return config, rundir.load_model(folder / "numpy"), rundir.read_history(folder / "numpy")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    started = Cluster(tmp_path_factory.mktemp("cluster"), n_workers=2)
    yield started
    started.stop()


def history_without_timing(history):
    return [{key: value for key, value in row.items() if key not in ("seconds", "comm_seconds")} for row in history]


def test_one_and_two_local_workers_give_the_numpy_engines_bits(letters, tmp_path):
    """np.array_equal weights, and the same history but the timings, for the numpy engine and Dask with
    1 and 2 workers (4 shards, letters through the cache); Dask logs its communication seconds."""
    config_path, reference, reference_history = letters
    for workers in (1, 2):
        config = load_config(config_path, ["engine.kind=dask", "engine.scheduler=local", f"engine.workers={workers}"])
        found = []
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=COMMUNICATION, category=SoftregWarning)
            train_run(config, tmp_path / f"w{workers}", on_engine=found.append)
        model, history = rundir.load_model(tmp_path / f"w{workers}"), rundir.read_history(tmp_path / f"w{workers}")
        assert np.array_equal(model.coef, reference.coef) and np.array_equal(model.intercept, reference.intercept)
        assert history_without_timing(history) == history_without_timing(reference_history)
        assert len(found[0].workers) == workers and found[0].local
        assert found[0].placement == [found[0].workers[shard % workers] for shard in range(4)]
        assert all(0 < row["comm_seconds"] <= row["seconds"] for row in history)


def test_a_worker_killed_mid_epoch_changes_nothing(letters, tmp_path):
    """Killing one of two worker processes in the middle of epoch 2: its shards are opened again on the
    other worker, the step replayed, and the weights are the numpy engine's, bit for bit (a warning says so)."""
    config_path, reference, _ = letters
    started = Cluster(tmp_path, n_workers=2)
    try:
        config = load_config(config_path, ["engine.kind=dask", f"engine.scheduler={started.address}"])
        prepared = prepare_for(config, random_streams(config.seed).split)
        steps = []

        def kill_in_epoch_two(coef, intercept):
            steps.append(1)
            if len(steps) == 40:  # 29 steps an epoch: the 11th step of epoch 2
                started.workers[1].kill()
                started.workers[1].wait()

        with warnings.catch_warnings(), pytest.warns(SoftregWarning, match="was lost; its shards are opened again"):
            warnings.filterwarnings("ignore", message=COMMUNICATION, category=SoftregWarning)
            with open_engine(config, prepared.train, prepared.val) as (train, val, _):
                result = fit(train, 26, config.training_settings(), random_streams(config.seed).batches, val=val,
                             on_step=kill_in_epoch_two)
    finally:
        started.stop()
    assert len(steps) == 3 * 29 and started.workers[1].returncode is not None
    assert np.array_equal(result.coef, reference.coef) and np.array_equal(result.intercept, reference.intercept)


def test_cli_trains_against_a_scheduler_and_two_workers(letters, cluster, tmp_path):
    """softreg train --set engine.kind=dask --set engine.scheduler=tcp://127.0.0.1:PORT in a subprocess:
    exit 0, the workers and the dashboard printed, comm_seconds logged, the numpy engine's model."""
    config_path, reference, _ = letters
    done = subprocess.run(
        [sys.executable, "-m", "softreg", "train", "--config", str(config_path), "--out", str(tmp_path / "run"),
         "--set", "engine.kind=dask", "--set", f"engine.scheduler={cluster.address}"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert f"dask: 2 worker(s) of the scheduler at {cluster.address}: " in done.stderr
    assert "(shards 0 2)" in done.stderr and "(shards 1 3)" in done.stderr
    assert "dask: dashboard http://" in done.stderr or "dask: no dashboard (pip install bokeh)" in done.stderr
    assert "epoch 3/3" in done.stderr and ", comm " in done.stderr
    model = rundir.load_model(tmp_path / "run")
    assert np.array_equal(model.coef, reference.coef) and np.array_equal(model.intercept, reference.intercept)
    assert all(row["comm_seconds"] > 0 for row in rundir.read_history(tmp_path / "run"))


def test_a_numpy_engine_run_resumes_on_dask_bit_for_bit(letters, cluster, tmp_path):
    """With data.shards > 1 a run may change engines on --resume: 2 epochs on the numpy engine, then a
    third on the Dask workers, end with the model of 3 straight epochs on the numpy engine."""
    constant = ("--quiet", "--set", "optim.schedule=constant")  # a cosine schedule depends on the number of epochs
    for name, epochs in (("straight", 3), ("moved", 2)):
        assert run("train", "--config", letters[0], "--out", tmp_path / name, *constant, "--set",
                   f"optim.epochs={epochs}")[0] == 0
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=COMMUNICATION, category=SoftregWarning)
        code, _, stderr = run("train", "--resume", tmp_path / "moved", "--quiet", "--set", "optim.epochs=3",
                              "--set", "engine.kind=dask", "--set", f"engine.scheduler={cluster.address}")
    assert code == 0, stderr
    assert (tmp_path / "moved" / "model.npz").read_bytes() == (tmp_path / "straight" / "model.npz").read_bytes()
    comm = [row["comm_seconds"] for row in rundir.read_history(tmp_path / "moved")]
    assert comm[:2] == [None, None] and comm[2] > 0


def test_too_few_workers_is_exit_2(letters, cluster, tmp_path, monkeypatch):
    """engine.workers 3 against a scheduler with 2: exit 2 once the wait runs out, naming both numbers."""
    monkeypatch.setattr(dask_engine, "WORKERS_SECONDS", 1.0)
    code, _, stderr = run(
        "train", "--config", letters[0], "--out", tmp_path / "run", "--quiet", "--set", "engine.kind=dask",
        "--set", f"engine.scheduler={cluster.address}", "--set", "engine.workers=3",
    )
    assert code == 2 and stderr == (
        f"softreg: error: engine.scheduler {cluster.address}: 2 worker(s) joined within 1 s; engine.workers is 3 "
        f"(start more with: dask worker {cluster.address})\n"
    )
    assert not (tmp_path / "run").exists()  # the same command, with enough workers, starts afresh


def test_an_unreachable_scheduler_is_exit_2(letters, tmp_path, monkeypatch):
    """A scheduler address nobody listens on: exit 2 with the address and how to start one, and no
    run directory left (so the same command works once the scheduler is up)."""
    monkeypatch.setattr(dask_cluster, "CONNECT_SECONDS", 1.0)
    code, _, stderr = run(
        "train", "--config", letters[0], "--out", tmp_path / "run", "--quiet", "--set", "engine.kind=dask",
        "--set", "engine.scheduler=tcp://127.0.0.1:9",
    )
    assert code == 2 and stderr == (
        "softreg: error: engine.scheduler tcp://127.0.0.1:9: cannot reach the Dask scheduler within 1 s "
        "(start one with: dask scheduler)\n"
    )
    assert not (tmp_path / "run").exists()


def test_a_cache_the_workers_cannot_open_is_a_cluster_error(cluster, tmp_path):
    """A shard path that does not exist on the workers: ClusterError (exit 2) naming the worker and the path."""
    import distributed

    with distributed.Client(cluster.address, timeout=30) as client:
        worker = sorted(client.scheduler_info()["workers"])[0]
        spec = ShardSpec(str(tmp_path / "X.npy"), str(tmp_path / "y.npy"), 0, 10, 0)
        with pytest.raises(ClusterError) as caught:
            dask_engine.DaskEngine(client, None, [worker], {"train": [spec]})
    assert caught.value.exit_code == 2 and str(caught.value) == (
        f"worker {worker} cannot open the data cache at {tmp_path / 'X.npy'} (FileNotFoundError): "
        "every worker must see data.cache at the same path"
    )


class VersionsClient:
    """A client whose get_versions raises dask's ValueError (or passes), and whose workers run ``code``."""

    def __init__(self, code=None, error=None):
        self.code, self.error = code or {}, error

    def get_versions(self, check=False, packages=()):
        if self.error is not None:
            raise ValueError(self.error)
        return {}

    def run(self, function):
        return self.code


def test_mismatched_versions_are_cluster_errors():
    """dask's get_versions(check=True) error, or other softreg code or numpy on a worker: ClusterError naming it."""
    from softreg.engine.identity import running_code

    table = (
        "Mismatched versions found\n\n+---------+--------+-----------+---------+\n"
        "| Package | Client | Scheduler | Workers |\n+---------+--------+-----------+---------+\n"
        "| dask    | 2026.8 | 2026.8    | 2025.1  |\n+---------+--------+-----------+---------+"
    )
    with pytest.raises(ClusterError) as caught:
        dask_cluster._check_versions(VersionsClient(error=table), "tcp://h:1")
    assert str(caught.value) == (
        "engine.scheduler tcp://h:1: Mismatched versions found: dask (client 2026.8, scheduler 2026.8, workers 2025.1)"
    )
    here = running_code()
    dask_cluster._check_versions(VersionsClient({"tcp://w:1": here}), "tcp://h:1")  # the same code: no error
    other = {**here, "softreg": here["softreg"].replace("(source ", "(source f")}
    with pytest.raises(ClusterError) as caught:
        dask_cluster._check_versions(VersionsClient({"tcp://w:1": other}), "tcp://h:1")
    assert str(caught.value) == (
        f"worker tcp://w:1 runs softreg {other['softreg']}, this process {here['softreg']}: "
        "install the same softreg[dask] on every worker"
    )
    with pytest.raises(ClusterError, match=f"worker tcp://w:1 runs numpy missing, this process {here['numpy']}"):
        dask_cluster._check_versions(VersionsClient({"tcp://w:1": {"softreg": here["softreg"]}}), "tcp://h:1")


def test_a_worker_running_other_softreg_code_is_refused(letters, tmp_path):
    """A worker whose PYTHONPATH puts an edited copy of softreg first, with the same version and
    installed metadata, is refused: the check compares the source that runs."""
    copy = tmp_path / "other"
    shutil.copytree(REPO / "softreg", copy / "softreg", ignore=shutil.ignore_patterns("__pycache__"))
    with open(copy / "softreg" / "softmax.py", "a") as handle:
        handle.write("\n# an edit that changes no behaviour, but the code is not the same\n")
    started = Cluster(tmp_path, n_workers=1, pythonpath=copy)
    try:
        code, _, stderr = run(
            "train", "--config", letters[0], "--out", tmp_path / "run", "--quiet", "--set", "engine.kind=dask",
            "--set", f"engine.scheduler={started.address}", "--set", "engine.workers=1",
        )
    finally:
        started.stop()
    assert code == 2 and stderr.startswith("softreg: error: worker tcp://127.0.0.1:") and " runs softreg " in stderr
    assert stderr.endswith("install the same softreg[dask] on every worker\n") and stderr.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_the_communication_advice_comes_past_half_of_each_step():
    """The engine's advice: None while communication is at most half the steps' time, else the share,
    the time a step takes and the two remedies."""
    timing = dask_engine.Timing(step_wall=1.0, step_comm=0.5, steps=400, batch_size=512)
    assert timing.advice() is None and dask_engine.Timing().advice() is None
    timing.step_comm = 0.8
    assert timing.advice() == (
        "dask: communication takes 80% of each step (2.50 ms a step); a larger optim.batch_size (now 512) or "
        "engine.kind: numpy would train faster"
    )


def test_evaluate_optimum_of_a_dask_run_solves_with_the_workers_sums(letters, cluster, tmp_path, monkeypatch):
    """evaluate --optimum of a run trained on Dask: L-BFGS on this process with each objective and
    gradient summed over the workers' shards; it reaches the optimum that the chunked solve over the
    cache finds (the sums add in another order: equal to 1e-10), and the model's objective the same."""
    import shutil

    import yaml

    config_path, _, _ = letters
    numpy_run = config_path.parent / "numpy"
    dask_run = tmp_path / "dask-run"
    shutil.copytree(numpy_run, dask_run)
    document = yaml.safe_load((dask_run / "config.yaml").read_text())
    document["engine"] = {**document.get("engine", {}), "kind": "dask", "scheduler": cluster.address}
    (dask_run / "config.yaml").write_text(yaml.safe_dump(document))
    import softreg.solve

    solved_by_engine = []
    original = softreg.solve.optimum_of
    monkeypatch.setattr(softreg.solve, "optimum_of", lambda *a, **k: solved_by_engine.append(1) or original(*a, **k))
    results = []
    for run_dir in (numpy_run, dask_run):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=COMMUNICATION, category=SoftregWarning)
            code, stdout, stderr = run("evaluate", "--run", run_dir, "--optimum", "--json")
        assert code == 0, stderr
        results.append(json.loads(stdout)["optimum"])
    here, there = results
    assert solved_by_engine == [1]  # the Dask run's optimum only
    assert there["grad_norm"] < 1e-6
    assert there["objective"] == pytest.approx(here["objective"], rel=1e-10)
    assert there["model_objective"] == pytest.approx(here["model_objective"], rel=1e-12)
    assert there["gap"] == pytest.approx(here["gap"], rel=1e-6)
