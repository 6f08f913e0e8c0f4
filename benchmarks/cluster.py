"""The Dask engine's step time and communication share, against training in one process.

    python benchmarks/cluster.py [--results DIR] [--workers 1 2] [--batch-sizes 256 16384]

On the benchmark's synthetic 60000 x 784 x 10 float32 set (`workloads.synthetic`, generated,
not downloaded), ingested once into a softreg cache of 4 shards, it trains through:

- numpy, 1 shard: the default path (the cache's block order, BLAS on its own threads);
- numpy, 4 shards: the sharded batch plan in this process;
- dask, W workers: the same plan, each shard an actor on a local cluster of W worker processes
  of one thread each (``engine.scheduler: local``), the same bits as "numpy, 4 shards".

A step's time is the median interval between consecutive steps of an epoch (its first step
and the full-data evaluations left out); the communication share is the engine's own account:
of the steps' wall time, what the workers did not spend computing. `run.py` calls `run` in its
default and full modes; the figures go to ``DIR/cluster-<time>.json``.
"""

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import workloads  # noqa: E402

SHARDS = 4
STEPS = {256: 120, 16384: 8}  # steps timed per batch size: about a second of computing each at least


def cached_arrays(cache_root):
    """X_train (60000, 784) float32 standardized and y_train: `run.py`'s cached arrays when there, else built."""
    workload = workloads.synthetic(60000, 784, 10, "float32")
    folder = Path(cache_root) / workload.key
    if (folder / "X_train.npy").exists() and (folder / "y_train.npy").exists():
        return np.load(folder / "X_train.npy"), np.load(folder / "y_train.npy")
    X_train, y_train, _, _ = workloads.build(workload)
    return X_train, y_train


def softreg_cache(cache_root, log=print):
    """A softreg cache of the set (every row in the training part): ingested once, then reused."""
    from softreg.cache import open_cache

    folder = Path(cache_root) / "cluster-60k"
    source = folder / "synthetic-60k.npz"
    if not source.exists():
        log("  writing the 60000 x 784 set for softreg ingest ...")
        folder.mkdir(parents=True, exist_ok=True)
        X_train, y_train = cached_arrays(cache_root)
        np.savez(source, X=X_train, y=y_train)
    config = make_config(folder, 256, "numpy", 1)
    open_cache(config)  # builds it when missing
    return folder


def make_config(folder, batch_size, kind, workers, shards=SHARDS):
    from softreg.config import resolve

    return resolve({
        "data": {"source": str(folder / "synthetic-60k.npz"), "cache": str(folder / "cache"), "val": 0, "test": 0.0,
                 "shards": shards},
        "model": {"dtype": "float32", "weight_decay": workloads.WEIGHT_DECAY},
        "optim": {"lr": 0.05, "batch_size": batch_size, "epochs": 1000, "momentum": 0.9},
        "engine": {"kind": kind, "scheduler": "local", "workers": workers},
    })


class _Stop(Exception):
    pass


def measure(config, steps):
    """(median step seconds, communication share or None) over ``steps`` steps of ``config``'s training."""
    from softreg.cache import prepare_cached
    from softreg.engine import open_engine, sharded
    from softreg.prepare.data import random_streams
    from softreg.train import fit

    prepared = prepare_cached(config)
    stamps = []

    def on_step(coef, intercept):
        stamps.append(time.perf_counter())
        if len(stamps) > steps:
            raise _Stop

    engine = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the engine's own advice on the communication share: measured here
        if sharded(config):
            with open_engine(config, prepared.train, None) as (train, _):
                engine = train.engine
                try:
                    fit(train, 10, config.training_settings(), random_streams(0).batches, on_step=on_step)
                except _Stop:
                    pass
                timing = getattr(engine, "timing", None)
        else:
            try:
                fit(prepared.train, 10, config.training_settings(), random_streams(0).batches, on_step=on_step)
            except _Stop:
                pass
            timing = None
    per_epoch = -(-prepared.train.n_samples // config.optim.batch_size)
    intervals = [stamps[index + 1] - stamps[index] for index in range(len(stamps) - 1)
                 if (index + 1) % per_epoch != 0]  # not across an epoch's end (its evaluation)
    share = None if timing is None else timing.step_comm / timing.step_wall
    return statistics.median(intervals), share


def run(cache_root, workers=(1, 2), batch_sizes=(256, 16384), log=print):
    """Measure every engine at every batch size; print a table; return the figures."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        log("cluster: skipped (pip install 'softreg[dask]')")
        return {"skipped": "dask is not installed"}
    folder = softreg_cache(cache_root, log)
    rows = []
    for batch_size in batch_sizes:
        engines = [("numpy", 1, 1), ("numpy", 1, SHARDS)] + [("dask", count, SHARDS) for count in workers]
        for kind, count, shards in engines:
            config = make_config(folder, batch_size, kind, count, shards)
            seconds, share = measure(config, STEPS.get(batch_size, 20))
            rows.append({"engine": kind, "workers": count if kind == "dask" else None, "shards": shards,
                         "batch_size": batch_size, "step_seconds": seconds, "comm_share": share})
            log(f"  batch {batch_size:>5}  {_name(rows[-1]):<22} {1e3 * seconds:9.2f} ms/step  "
                f"{'' if share is None else f'communication {share:.0%}'}")
    log("")
    for line in table(rows):
        log(line)
    return {"shards": SHARDS, "rows": rows}


def _name(row):
    if row["engine"] == "numpy":
        return f"numpy, {row['shards']} shard{'s' if row['shards'] > 1 else ''}"
    return f"dask, {row['workers']} worker{'s' if row['workers'] > 1 else ''}"


def table(rows):
    """One line per engine, a column pair (ms/step, communication share) per batch size."""
    batch_sizes = sorted({row["batch_size"] for row in rows})
    names = list(dict.fromkeys(_name(row) for row in rows))
    by_key = {(_name(row), row["batch_size"]): row for row in rows}
    head = "".join(f" | batch {size}: ms/step, comm" for size in batch_sizes)
    lines = [f"synthetic 60000×784×10 float32, {SHARDS} shards of the cache (dask: a local cluster)",
             f"{'engine':<22}{head}"]
    for name in names:
        cells = []
        for size in batch_sizes:
            row = by_key[(name, size)]
            share = "—" if row["comm_share"] is None else f"{row['comm_share']:.0%}"
            cells.append(f" | {1e3 * row['step_seconds']:>10.2f}, {share:>4}")
        lines.append(f"{name:<22}{''.join(cells)}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=HERE / "results", help="folder for the JSON and the cache")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 16384])
    args = parser.parse_args(argv)
    figures = run(args.results / "cache", tuple(args.workers), tuple(args.batch_sizes))
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"cluster-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(figures, indent=1))
    print(f"raw figures: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
