"""Data larger than memory, measured: the cache's epoch, bounded memory, and Vowpal Wabbit.

    python benchmarks/outofcore.py [--quick] [--results DIR] [--budget MB]

(a) An epoch of plain SGD read from a warm cache (a memory-mapped X.npy, as `softreg train`
    reads its cache) against the same epoch in memory, on run.py's synthetic 60000 x 784 x 10
    float32 set (6000 rows with --quick): the median of the epochs after the first, in three
    processes of each kind. Target: at most 1.3x.
(b) A generated CSV larger than 8x ``data.memory_budget``: ``softreg train`` (no data.cache: the
    budget sends it through a cache of its own), trained again from the warm cache, then
    ``predict`` and ``evaluate --data`` on the same file, each under ``/usr/bin/time -v`` in a
    process of its own. Target: every peak resident set under the budget + 200 MB.
(c) A 2.4M-row CSV (24 float features, 8 classes drawn from a random linear map plus Gumbel
    noise: the true model is a softmax regression), 200,000 held-out rows beside it:
    ``softreg train`` through the cache (2 epochs) against Vowpal Wabbit's conversion to its
    text format (its own `DFtoVW`, 100,000 rows at a time) plus one pass
    (``--oaa 8 --loss_function logistic``), each timed from the CSV to a model. Targets:
    softreg's wall time below VW's, test accuracy at least VW's, peak within the budget + 200 MB.
    VW needs ``pip install vowpalwabbit pandas`` (part (c) is skipped without them).

Every figure is measured in this run; the raw figures go to ``DIR/outofcore-<time>.json``
(default DIR: benchmarks/results), the generated files to ``DIR/outofcore/`` (removed after).
``run.py`` runs this too and lists its targets with its own.
"""

import argparse
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import workloads  # noqa: E402  (a script beside this one)

BUDGET_MB = 64  # data.memory_budget of parts (b) and (c)
SLACK_MB = 200  # what a process may take beyond the budget: the interpreter, numpy, the model
EPOCH_RATIO_LIMIT = 1.3
N_FEATURES, N_CLASSES = 24, 8
TRAIN_ROWS, TEST_ROWS = 2_400_000, 200_000
QUICK = {"epoch_rows": 6000, "budget_mb": 2, "train_rows": 30_000, "test_rows": 6_000}
CHUNK_ROWS = 100_000  # rows generated, and converted for VW, at a time
PLAIN = {"lr": 0.1, "momentum": 0.0, "schedule": "constant"}  # run.py's plain SGD
ROUNDS, EPOCHS = 3, 6  # part (a): rounds of each mode (a process each), epochs per round


# -- the data


def write_csv(path, n_rows, purpose, seed=0):
    """``n_rows`` rows of 24 features N(0, 1) (3 decimals) and a class 0..7 drawn from softmax(W x + b)
    by the Gumbel-max trick; W and b come from ``seed`` alone, the rows from (seed, purpose).
    Returns the share of rows whose class is the true model's most probable one (its accuracy)."""
    rng = np.random.default_rng(seed)
    coef, intercept = rng.normal(size=(N_CLASSES, N_FEATURES)), rng.normal(size=N_CLASSES)
    rows_rng = np.random.default_rng([seed, purpose])
    hits = 0
    with open(path, "wb") as handle:
        handle.write((",".join(f"x{j}" for j in range(N_FEATURES)) + ",label\n").encode())
        for start in range(0, n_rows, CHUNK_ROWS):
            X = rows_rng.normal(size=(min(CHUNK_ROWS, n_rows - start), N_FEATURES))
            logits = X @ coef.T + intercept  # (n, K)
            y = (logits + rows_rng.gumbel(size=logits.shape)).argmax(axis=1)
            hits += int(np.count_nonzero(logits.argmax(axis=1) == y))
            handle.write(_csv_bytes(X, y))
    return hits / n_rows


def _csv_bytes(X, y):
    """Rows ``-1.234,0.567,...,label\\n`` built as bytes with numpy (Python's formatting is the slow part)."""
    n, d = X.shape
    digits = np.minimum(np.rint(np.abs(X) * 1000), 9999).astype(np.int64)
    cells = np.zeros((n, d, 7), np.uint8)  # sign (0: none), digit, point, three digits, comma
    cells[:, :, 0] = np.where(X < 0, ord("-"), 0)
    for position, power in ((1, 1000), (3, 100), (4, 10), (5, 1)):
        cells[:, :, position] = ord("0") + digits // power % 10
    cells[:, :, 2], cells[:, :, 6] = ord("."), ord(",")
    rows = np.empty((n, d * 7 + 2), np.uint8)
    rows[:, :-2] = cells.reshape(n, -1)
    rows[:, -2], rows[:, -1] = ord("0") + y, ord("\n")
    flat = rows.ravel()
    return flat[flat != 0].tobytes()


def write_csv_of_size(path, n_bytes, purpose):
    """A CSV of the same kind, just over ``n_bytes`` (rows from its mean row size). Returns the rows."""
    sample = _csv_bytes(np.random.default_rng(purpose).normal(size=(10_000, N_FEATURES)), np.zeros(10_000, int))
    n_rows = int(n_bytes * 1.02 / (len(sample) / 10_000)) + 1
    write_csv(path, n_rows, purpose)
    return n_rows


# -- measuring a process


def measured(command, env=None):
    """Run ``command``; return (wall seconds, peak resident set in bytes, stdout). The peak is what
    ``/usr/bin/time -v`` reports (os.wait4's, where that program is missing)."""
    environment = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    timer = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").exists() else []
    started = time.perf_counter()
    process = subprocess.Popen([*timer, *map(str, command)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=environment, text=True)
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed ({process.returncode}):\n{stderr[-3000:]}")
    if timer:
        peak_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr).group(1))
    else:
        import resource

        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child so far
    return seconds, peak_kib * 1024, stdout


def softreg(*args):
    return [sys.executable, "-m", "softreg", *args]


def write_config(path, source, budget_mb, epochs=2):
    """A config that trains through the cache the budget chooses (no data.cache), without plots; 1% of
    the rows make the run's test part (the held-out file gives the test accuracy)."""
    path.write_text(
        f"data:\n  source: {source}\n  test: 0.01\n  val: 0.0\n  memory_budget: {budget_mb}MB\n"
        f"model:\n  dtype: float32\n  weight_decay: 1.0e-6\n"
        f"optim:\n  lr: 0.05\n  batch_size: 256\n  epochs: {epochs}\n  momentum: 0.9\n"
        f"output:\n  plots: false\n"
    )


# -- (a) an epoch from a warm cache against one in memory


def epoch_ratio(folder, n_rows, log):
    """Median epoch seconds of plain SGD from a memory-mapped X.npy and from memory (each measured
    in a fresh process, alternately), and their ratio."""
    workload = workloads.synthetic(n_rows, 784, 10, "float32")
    X, y, _, _ = workloads.build(workload)
    part = folder / "epoch"
    part.mkdir(parents=True, exist_ok=True)
    np.save(part / "X.npy", np.ascontiguousarray(X))
    np.save(part / "y.npy", np.asarray(y, dtype=np.int64))
    log(f"  (a) {len(y)}x784 float32: {ROUNDS} rounds of {EPOCHS} epochs, from the cache and in memory")
    seconds = {"cache": [], "memory": []}
    for _ in range(ROUNDS):
        for mode in seconds:
            _, _, stdout = measured([sys.executable, __file__, "--epoch", mode, part])
            seconds[mode] += json.loads(stdout)["epoch_seconds"]
    cache, memory = statistics.median(seconds["cache"]), statistics.median(seconds["memory"])
    # the fastest epochs too: on a machine shared with other work the median can catch a busy spell
    return {"n_rows": len(y), "n_features": 784, "cache_epoch_seconds": cache, "memory_epoch_seconds": memory,
            "ratio": cache / memory, "fastest_ratio": min(seconds["cache"]) / min(seconds["memory"]),
            "runs": seconds}


def time_epochs(mode, part):
    """In this process: `EPOCHS` epochs of plain SGD on the part, memory-mapped (as `prepare_cached`
    maps a cache part, for the default memory budget) or loaded; prints the seconds of the epochs
    after the first (which pays for the first touch of every page) as JSON."""
    from softreg.cache import CacheData
    from softreg.cache.budget import memory_budget
    from softreg.train import ArrayData, Settings, fit

    mapped = mode == "cache"
    X = np.load(part / "X.npy", mmap_mode="r" if mapped else None)
    y = np.load(part / "y.npy", mmap_mode="r" if mapped else None)
    data = CacheData(X, y, release_pages=X.nbytes + y.nbytes > memory_budget(None) // 2) if mapped else ArrayData(X, y)
    settings = Settings(weight_decay=workloads.WEIGHT_DECAY, batch_size=workloads.BATCH_SIZE, epochs=EPOCHS, **PLAIN)
    result = fit(data, 10, settings, np.random.default_rng(0))
    print(json.dumps({"epoch_seconds": [record.seconds for record in result.history[1:]]}))


# -- (b) a CSV over 8x the budget: train, predict, evaluate in bounded memory


def bounded_memory(folder, budget_mb, log):
    source = folder / "big.csv"
    n_rows = write_csv_of_size(source, 8 * budget_mb * 10**6, purpose=3)
    size = source.stat().st_size
    log(f"  (b) {size / 1e6:.0f} MB CSV ({n_rows:,} rows) against data.memory_budget {budget_mb} MB")
    write_config(folder / "big.yaml", source.name, budget_mb)
    figures = {"csv_bytes": size, "n_rows": n_rows, "budget_bytes": budget_mb * 10**6}
    commands = {
        "train (ingest + 2 epochs)": softreg("train", "--config", folder / "big.yaml", "--out", folder / "runs/big",
                                             "--quiet"),
        "train again (warm cache)": softreg("train", "--config", folder / "big.yaml", "--out",
                                            folder / "runs/big-again", "--quiet"),
        "predict": softreg("predict", "--run", folder / "runs/big", "--input", source, "--output",
                           folder / "predictions.csv"),
        "evaluate --data": softreg("evaluate", "--run", folder / "runs/big", "--data", source, "--json"),
    }
    for what, command in commands.items():
        seconds, peak, stdout = measured(command)
        figures[what] = {"seconds": seconds, "peak_bytes": peak}
        if what == "evaluate --data":
            figures[what]["accuracy"] = json.loads(stdout)["accuracy"]
        log(f"      {what}: {seconds:.1f} s, peak {peak / 1e6:.0f} MB")
    return figures


# -- (c) end to end against Vowpal Wabbit


def versus_vw(folder, budget_mb, n_train, n_test, log):
    train, test = folder / "train.csv", folder / "test.csv"
    bayes = write_csv(train, n_train, purpose=1)
    write_csv(test, n_test, purpose=2)
    log(f"  (c) {n_train:,} rows ({train.stat().st_size / 1e6:.0f} MB CSV), {n_test:,} held out; "
        f"the true model's accuracy {bayes:.4f}")
    figures = {"n_train": n_train, "n_test": n_test, "csv_bytes": train.stat().st_size, "budget_bytes":
               budget_mb * 10**6, "true_model_train_accuracy": bayes}
    write_config(folder / "train.yaml", train.name, budget_mb)
    seconds, peak, _ = measured(softreg("train", "--config", folder / "train.yaml", "--out", folder / "runs/vs",
                                        "--quiet"))
    _, _, stdout = measured(softreg("evaluate", "--run", folder / "runs/vs", "--data", test, "--json"))
    figures["softreg"] = {"seconds": seconds, "peak_bytes": peak, "test_accuracy": json.loads(stdout)["accuracy"]}
    log(f"      softreg train: {seconds:.1f} s, peak {peak / 1e6:.0f} MB, "
        f"test accuracy {figures['softreg']['test_accuracy']:.4f}")
    if importlib.util.find_spec("vowpalwabbit") is None or importlib.util.find_spec("pandas") is None:
        figures["vw"] = {"skipped": "vowpalwabbit or pandas is not installed (pip install vowpalwabbit pandas)"}
        log(f"      VW: {figures['vw']['skipped']}")
        return figures
    convert_seconds, convert_peak, _ = measured([sys.executable, __file__, "--to-vw", train, folder / "train.vw"])
    vw = [sys.executable, "-m", "vowpalwabbit", "--quiet"]
    learn_seconds, learn_peak, _ = measured([*vw, "--oaa", str(N_CLASSES), "--loss_function", "logistic",
                                             "-d", folder / "train.vw", "-f", folder / "model.vw"])
    measured([sys.executable, __file__, "--to-vw", test, folder / "test.vw"])
    measured([*vw, "-t", "-i", folder / "model.vw", "-d", folder / "test.vw", "-p", folder / "vw-predictions.txt"])
    predicted = np.loadtxt(folder / "vw-predictions.txt", usecols=0).astype(np.int64) - 1
    labels = np.loadtxt(test, delimiter=",", skiprows=1, usecols=N_FEATURES, dtype=np.int64)
    figures["vw"] = {
        "seconds": convert_seconds + learn_seconds, "convert_seconds": convert_seconds, "learn_seconds": learn_seconds,
        "peak_bytes": max(convert_peak, learn_peak), "convert_peak_bytes": convert_peak,
        "learn_peak_bytes": learn_peak, "test_accuracy": float(np.mean(predicted == labels)),
    }
    log(f"      VW conversion + one pass: {convert_seconds:.1f} + {learn_seconds:.1f} s, peak "
        f"{figures['vw']['peak_bytes'] / 1e6:.0f} MB, test accuracy {figures['vw']['test_accuracy']:.4f}")
    return figures


def to_vw(source, target):
    """In this process: the CSV in VW's text format (``label | x0:v x1:v ...``, classes 1..8) with VW's
    own converter, `CHUNK_ROWS` rows at a time."""
    import pandas as pd
    from vowpalwabbit.dftovw import DFtoVW

    with open(target, "w") as handle:
        for frame in pd.read_csv(source, chunksize=CHUNK_ROWS):
            frame["label"] += 1
            features = [name for name in frame.columns if name != "label"]
            converter = DFtoVW.from_column_names(y="label", x=features, df=frame, label_type="multiclass_label")
            handle.write("\n".join(converter.convert_df()) + "\n")


# -- all of it


def run(quick=False, results=HERE / "results", budget_mb=None, log=print):
    """Parts (a), (b) and (c); returns their figures (the generated files are removed)."""
    budget_mb = budget_mb or (QUICK["budget_mb"] if quick else BUDGET_MB)
    folder = Path(results) / "outofcore"
    shutil.rmtree(folder, ignore_errors=True)  # a cache left by an earlier run would not be cold
    folder.mkdir(parents=True)
    log(f"out of core ({'quick' if quick else 'default'}; data.memory_budget {budget_mb} MB)")
    try:
        return {
            "budget_mb": budget_mb,
            "epoch": epoch_ratio(folder, QUICK["epoch_rows"] if quick else 60000, log),
            "bounded": bounded_memory(folder, budget_mb, log),
            "vw": versus_vw(folder, budget_mb, QUICK["train_rows"] if quick else TRAIN_ROWS,
                            QUICK["test_rows"] if quick else TEST_ROWS, log),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def targets(figures):
    """[(target, measured, met)] as run.py lists them."""
    limit = (figures["budget_mb"] + SLACK_MB) * 10**6
    epoch = figures["epoch"]
    found = [(
        f"6. epoch from a warm cache ≤ {EPOCH_RATIO_LIMIT}× in memory, {epoch['n_rows']}×784 float32",
        f"median {epoch['cache_epoch_seconds']:.3f} s vs {epoch['memory_epoch_seconds']:.3f} s = {epoch['ratio']:.2f}× "
        f"(fastest epochs {epoch['fastest_ratio']:.2f}×)",
        epoch["ratio"] <= EPOCH_RATIO_LIMIT,
    )]
    bounded = figures["bounded"]
    for what in ("train (ingest + 2 epochs)", "train again (warm cache)", "predict", "evaluate --data"):
        peak = bounded[what]["peak_bytes"]
        found.append((
            f"6. {what} of a {bounded['csv_bytes'] / 1e6:.0f} MB CSV: peak ≤ budget + {SLACK_MB} MB "
            f"= {limit / 1e6:.0f} MB", f"{peak / 1e6:.0f} MB ({bounded[what]['seconds']:.1f} s)", peak <= limit,
        ))
    ours, theirs = figures["vw"]["softreg"], figures["vw"]["vw"]
    rows = f"{figures['vw']['n_train']:,} rows"
    found.append((f"6. softreg train through the cache, {rows}: peak ≤ budget + {SLACK_MB} MB",
                  f"{ours['peak_bytes'] / 1e6:.0f} MB", ours["peak_bytes"] <= limit))
    if "skipped" in theirs:
        found.append((f"6. softreg train < VW conversion + one pass, {rows}", theirs["skipped"], None))
        return found
    ratio = ours["seconds"] / theirs["seconds"]
    found.append((
        f"6. softreg train (2 epochs) < VW conversion + one pass, {rows}",
        f"{ours['seconds']:.1f} s vs {theirs['convert_seconds']:.1f} + {theirs['learn_seconds']:.1f} s = "
        f"{ratio:.2f}× (peaks {ours['peak_bytes'] / 1e6:.0f} MB vs {theirs['peak_bytes'] / 1e6:.0f} MB)", ratio < 1,
    ))
    found.append((f"6. softreg test accuracy ≥ VW's, {figures['vw']['n_test']:,} held-out rows",
                  f"{ours['test_accuracy']:.4f} vs {theirs['test_accuracy']:.4f}",
                  ours["test_accuracy"] >= theirs["test_accuracy"]))
    return found


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--epoch"]:  # the processes the parts start
        return time_epochs(argv[1], Path(argv[2]))
    if argv[:1] == ["--to-vw"]:
        return to_vw(argv[1], argv[2])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of a few seconds")
    parser.add_argument("--results", type=Path, default=HERE / "results", help="folder for the JSON and the data")
    parser.add_argument("--budget", type=int, default=None, help=f"data.memory_budget in MB (default {BUDGET_MB})")
    args = parser.parse_args(argv)
    started = time.strftime("%Y%m%d-%H%M%S")
    figures = run(args.quick, args.results, args.budget, log=lambda line: print(line, flush=True))
    print("targets, measured in this run:")
    for target, shown, met in targets(figures):
        print(f"  [{'stated' if met is None else 'met' if met else 'NOT MET'}] {target}: {shown}")
    path = args.results / f"outofcore-{started}.json"
    path.write_text(json.dumps({"started": started, **figures}, indent=1))
    print(f"\nraw figures: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
