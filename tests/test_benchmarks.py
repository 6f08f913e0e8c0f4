"""The benchmark runs end to end: ``benchmarks/run.py --quick`` in a subprocess (digits, a few
epochs) prints one table with every contender and writes its raw figures. No timing is asserted."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark script in subprocesses

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--results", str(results)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    return done, results


def test_quick_benchmark_exits_0_and_prints_one_table_of_every_contender(quick_run):
    """Exit 0; the digits table names every contender (PyTorch as skipped when it is not installed); the table of
    defaults.py has digits's row."""
    done, _ = quick_run
    assert done.returncode == 0, done.stderr
    table = done.stdout.split("digits 1437×64×10 float64")[1]
    for name in ("softreg fast, lr auto", "softreg fast, tuned lr", "softreg plain SGD", "floor kernel",
                 "numpy reference loop", "PyTorch CPU loop", "SGDClassifier (OvR)", "LogisticRegression lbfgs"):
        assert name in table
    assert "where a plain-SGD step goes" in table
    assert "targets, measured in this run:" in done.stdout
    for target in ("epoch from a warm cache ≤ 1.3× in memory", "predict of a", "evaluate --data of a",
                   "softreg train through the cache, 30,000 rows"):  # benchmarks/outofcore.py's, quick
        assert target in done.stdout.split("targets, measured in this run:")[1]
    defaults_table = done.stdout.split("defaults of softreg train (benchmarks/defaults.py):")[1]
    assert "| digits | 1293 x 64 x 10 | — | defaults |" in defaults_table  # penguins: skipped without the package


def test_quick_benchmark_writes_raw_figures_and_caches_the_optimum(quick_run):
    """The JSON holds per-contender epoch times, curves and memory, the machine, and the targets; f* is cached;
    defaults.py's rows are in it."""
    _, results = quick_run
    (path,) = results.glob("quick-*.json")
    document = json.loads(path.read_text())
    entry = document["results"]["digits-float64"]
    assert entry["meta"]["n_train"] == 1437 and entry["meta"]["objective"] > 0
    for label in ("softreg-auto", "softreg-tuned", "softreg-sgd", "reference", "sgdclassifier", "lbfgs"):
        summary = entry["contenders"][label]
        assert summary["epoch_seconds"] > 0 and summary["peak_bytes"] >= 0
        assert 0 <= summary["test_accuracy"] <= 1
        # one objective per epoch, or per logged epoch for softreg's plain SGD (adaptive logging)
        assert all(1 <= len(run["curve"]) <= len(run["epoch_seconds"]) for run in entry["runs"][label])
    assert entry["contenders"]["softreg-auto"]["lr"] > 0  # the number auto chose
    floor = entry["contenders"]["floor"]
    assert floor["epoch_seconds"] > 0 and set(floor["breakdown"]) == {
        "floor", "gather", "gather+gradient", "gather+gradient+update", "evaluation"}
    assert entry["contenders"]["lbfgs"]["final_gap"] <= 1e-4  # stopped at the smallest gap
    assert document["machine"]["cores"] >= 1 and document["targets"]
    assert (results / "cache" / "digits-float64" / "meta.json").exists()
    (digits,) = [row for row in document["defaults"] if row["table"] == "digits"]
    assert digits["n_train"] == 1293 and digits["true_gap"] > -1e-6 and digits["lbfgs_seconds"] > 0
    outofcore = document["outofcore"]
    assert outofcore["epoch"]["ratio"] > 0 and outofcore["bounded"]["csv_bytes"] > 8 * outofcore["budget_mb"] * 10**6
    assert outofcore["bounded"]["predict"]["peak_bytes"] > 0 and not (results / "outofcore").exists()


def test_the_csv_ingest_benchmark_cuts_the_file_and_checks_the_workers_bytes():
    """benchmarks/csv_ingest.py on a small table: exit 0 only if the workers read more than one byte range and
    their shards hold the one-process cache's bytes; it prints both timings and their ratio."""
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "csv_ingest.py"), "--rows", "70000", "--features", "4",
         "--repeat", "1"], capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 workers, 3 byte ranges" in done.stdout and "x one process" in done.stdout
    assert "the workers' shards hold the one-process cache's bytes: yes" in done.stdout
