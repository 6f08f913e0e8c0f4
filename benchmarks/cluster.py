"""The Dask engine's step time and communication share, against training in one process.

    python benchmarks/cluster.py [--results DIR] [--workers 1 2] [--batch-sizes 256 1024 4096 16384]
                                 [--repeat N] [--save]

On the benchmark's synthetic 60000 x 784 x 10 float32 set (`workloads.synthetic`, generated,
not downloaded), ingested once into a softreg cache of 4 shards, it trains through:

- numpy, 1 shard: the default path (the cache's block order, BLAS on its own threads);
- numpy, 4 shards: the sharded batch plan in this process;
- dask, W workers: the same plan, each shard an actor on a local cluster of W worker processes
  of one thread each (``engine.scheduler: local``), the same bits as "numpy, 4 shards";
- dask, W workers, own disks: the cache ingested by the workers themselves (`softreg ingest` on
  Dask, from a Parquet copy of the set), each keeping its shards in its own local directory, so
  that they share no folder, and the process that trains holds no row (``--own-disks W``; also
  the time of that ingest against a one-machine one).

A step's time is the median interval between consecutive steps of an epoch (the first epoch,
which warms up, each epoch's first step and the full-data evaluations left out); the
communication share is the engine's own account: of the steps' wall time, what the workers did
not spend computing. On each Dask cluster it also times the round trip of an empty call to a
worker's actor, and of one carrying the weights (medians of ``ROUND_TRIPS`` calls).
``--repeat N`` runs every timing N times, interleaved, and reports medians: the machine is
shared. `cluster_model.py` fits a model of a step's time to the figures; ``--save`` also
writes them where it reads them (``benchmarks/cluster-figures.json``). `run.py` calls `run` in
its default and full modes; the figures go to ``DIR/cluster-<time>.json``. Run it with
OPENBLAS_NUM_THREADS=1: dask's nanny gives each worker one BLAS thread, and the process it is
compared with should have one too.
"""

import argparse
import json
import shutil
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
BATCH_SIZES = (256, 1024, 4096, 16384)
STEPS = {256: 120, 1024: 60, 4096: 24, 16384: 16}  # steps timed per batch size: a second or so each
ROUND_TRIPS = 200  # empty calls timed on each cluster
OWN_DISKS = "dask-own-disks"  # the engine label of the run on the workers' own shards (cluster_model.OWN_DISKS)
SAVED = HERE / "cluster-figures.json"  # the figures cluster_model.py derives the README's block from


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


def make_config(folder, batch_size, kind, workers, shards=SHARDS, source=None, cache=None, scheduler="local"):
    from softreg.config import resolve

    return resolve({
        "data": {"source": str(source or folder / "synthetic-60k.npz"), "cache": str(cache or folder / "cache"),
                 "val": 0, "test": 0.0, "shards": shards, **({"label": "label"} if source else {})},
        "model": {"dtype": "float32", "weight_decay": workloads.WEIGHT_DECAY},
        # plain minibatch steps on every engine (the sharded ones take no others): by default one shard would
        # train with SVRG (two gradients a step) and then full-batch steps
        "optim": {"lr": 0.05, "batch_size": batch_size, "epochs": 1000, "momentum": 0.9,
                  "variance_reduction": "none", "full_batch": "never", "tol": None},
        "engine": {"kind": kind, "scheduler": scheduler, "workers": workers},
    })


class _Stop(Exception):
    pass


def own_disks_run(cache_root, batch_sizes, workers, steps_of, log=print):
    """``workers`` workers of a local cluster, each its own local directory (dask's default), ingest the
    set from Parquet to their own folders and train on them: per batch size a `measure`, and the
    seconds of that ingest and of a one-machine ingest of the same Parquet file."""
    import distributed

    from softreg.commands.ingest import ingest_run

    folder = softreg_cache(cache_root, log)
    parquet = folder / "synthetic-60k.parquet"
    if not parquet.exists():
        import pyarrow as pa
        import pyarrow.parquet as pq

        X_train, y_train = cached_arrays(cache_root)
        columns = {f"x{index}": X_train[:, index] for index in range(X_train.shape[1])}
        pq.write_table(pa.table({**columns, "label": y_train}), parquet, row_group_size=8192)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=":0")
    try:
        def config_for(batch_size, kind, cache):
            return make_config(folder, batch_size, kind, workers, source=parquet, cache=cache,
                               scheduler=cluster.scheduler_address)

        for built in ("cache-parquet", f"cache-own-disks-{workers}"):  # each timed from scratch
            shutil.rmtree(folder / built, ignore_errors=True)
        started = time.perf_counter()
        ingest_run(config_for(batch_sizes[0], "numpy", folder / "cache-parquet"))
        one_machine = time.perf_counter() - started
        started = time.perf_counter()
        ingest_run(config_for(batch_sizes[0], "dask", folder / f"cache-own-disks-{workers}"))
        on_workers = time.perf_counter() - started
        log(f"  ingest of the Parquet set: {one_machine:.1f} s in one process, {on_workers:.1f} s on {workers} "
            "workers into their own folders")
        timings = {size: measure(config_for(size, "dask", folder / f"cache-own-disks-{workers}"), steps_of(size))
                   for size in batch_sizes}
    finally:
        cluster.close()
    return timings, {"one_process": one_machine, "workers": on_workers}


def measure(config, steps):
    """One timing of ``steps`` steps of ``config``'s training, as a dict.

    step_seconds: the median interval between steps; for Dask also comm_share (of the steps'
    wall time, what the workers did not spend computing), compute_seconds (the median seconds
    of a step's busiest worker, by the workers' own clocks) and round_trip (`round_trips` on
    its cluster, after the steps); None for numpy.
    """
    from softreg.engine import open_engine, sharded
    from softreg.prepare.data import random_streams
    from softreg.run import prepare_for
    from softreg.train import fit

    prepared = prepare_for(config, random_streams(config.seed).split)  # a cache here, or on the workers
    per_epoch = -(-prepared.train.n_samples // config.optim.batch_size)
    stamps = []  # (time, the engine's step seconds so far, of which not computing) at each step
    engine = None

    def on_step(coef, intercept):
        timing = getattr(engine, "timing", None)
        stamps.append((time.perf_counter(), 0.0 if timing is None else timing.step_wall,
                       0.0 if timing is None else timing.step_comm))
        if len(stamps) > per_epoch + steps:
            raise _Stop

    round_trip = timing = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the engine's own advice on the communication share: measured here
        if sharded(config):
            with open_engine(config, prepared.train, None) as parts:
                train = parts[0]  # (train, val), or (train, val, test) where the engine opens a test part too
                engine = train.engine
                try:
                    fit(train, 10, config.training_settings(), random_streams(0).batches, on_step=on_step)
                except _Stop:
                    pass
                timing = getattr(engine, "timing", None)
                if timing is not None:
                    round_trip = round_trips(engine.client, engine.workers, prepared.train.n_features, 10)
        else:
            try:
                fit(prepared.train, 10, config.training_settings(), random_streams(0).batches, on_step=on_step)
            except _Stop:
                pass
    kept = [index for index in range(per_epoch, len(stamps) - 1)  # the first epoch warms up
            if (index + 1) % per_epoch != 0]  # not across an epoch's end (its evaluation)
    intervals = [stamps[index + 1][0] - stamps[index][0] for index in kept]
    busiest = [(stamps[index + 1][1] - stamps[index][1]) - (stamps[index + 1][2] - stamps[index][2])
               for index in kept]
    return {
        "step_seconds": statistics.median(intervals),
        "comm_share": None if timing is None else timing.step_comm / timing.step_wall,
        "compute_seconds": None if timing is None else statistics.median(busiest),
        "round_trip": round_trip,
    }


def _echo_class():
    """An actor class that does nothing, made in a function so that it travels to the workers
    by value (they need not import this file)."""

    class Echo:
        def ping(self):
            return None

        def echo(self, coef, intercept):
            return coef, intercept

    return Echo


def round_trips(client, workers, n_features, n_classes, calls=ROUND_TRIPS):
    """Median seconds, over ``calls`` calls each, of: an empty call to the first worker's actor
    (``empty``); one to every worker's at once, waiting for all (``empty_every_worker``); and one
    to every worker's sending float32 weights of a step's shape and getting them back, as a step
    sends the weights and gets sums of their size (``weights_every_worker``)."""
    echo = _echo_class()
    futures = [client.submit(echo, actor=True, workers=[worker], allow_other_workers=False, pure=False)
               for worker in workers]
    actors = [future.result() for future in futures]
    coef, intercept = np.zeros((n_classes, n_features), np.float32), np.zeros(n_classes, np.float32)

    def median_seconds(call):
        seconds = []
        for _ in range(calls):
            started = time.perf_counter()
            call()
            seconds.append(time.perf_counter() - started)
        return statistics.median(seconds)

    figures = {
        "workers": len(workers),
        "empty": median_seconds(lambda: actors[0].ping().result()),
        "empty_every_worker": median_seconds(lambda: [call.result() for call in [a.ping() for a in actors]]),
        "weights_every_worker": median_seconds(
            lambda: [call.result() for call in [a.echo(coef, intercept) for a in actors]]),
    }
    for future in futures:
        future.release()
    return figures


def run(cache_root, workers=(1, 2), batch_sizes=BATCH_SIZES, log=print, repeat=1, own_disks=2):
    """Measure every engine at every batch size (``repeat`` rounds, interleaved), and ``own_disks``
    workers training on their own shards (0: not); print a table and the model `cluster_model` fits
    to it; return the figures (medians over the rounds)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        log("cluster: skipped (pip install 'softreg[dask]')")
        return {"skipped": "dask is not installed"}
    folder = softreg_cache(cache_root, log)
    engines = [("numpy", 1, 1), ("numpy", 1, SHARDS)] + [("dask", count, SHARDS) for count in workers]
    timings = {}  # (kind, workers, shards, batch_size) -> one `measure` per round
    trips = []
    for round_index in range(repeat):
        if repeat > 1:
            log(f"  round {round_index + 1} of {repeat}")
        for batch_size in batch_sizes:
            for kind, count, shards in engines:
                timed = measure(make_config(folder, batch_size, kind, count, shards), STEPS.get(batch_size, 20))
                timings.setdefault((kind, count, shards, batch_size), []).append(timed)
                if timed["round_trip"] is not None:
                    trips.append(timed["round_trip"])
                share = timed["comm_share"]
                log(f"  batch {batch_size:>5}  {_name(_row(kind, count, shards, batch_size, [timed])):<22} "
                    f"{1e3 * timed['step_seconds']:9.2f} ms/step  "
                    f"{'' if share is None else f'communication {share:.0%}'}")
    ingests = []  # per round: the seconds of the Parquet set's ingest in one process and on the workers
    if own_disks:
        for _ in range(repeat):
            timed, seconds = own_disks_run(cache_root, batch_sizes, own_disks, lambda size: STEPS.get(size, 20), log)
            ingests.append(seconds)
            for batch_size, one in timed.items():
                timings.setdefault((OWN_DISKS, own_disks, SHARDS, batch_size), []).append(one)
                log(f"  batch {batch_size:>5}  {'dask, own disks':<22} {1e3 * one['step_seconds']:9.2f} ms/step  "
                    f"communication {one['comm_share']:.0%}")
    rows = [_row(*key, timed) for key, timed in timings.items()]
    figures = {"shards": SHARDS, "n_samples": 60000, "n_features": 784, "n_classes": 10, "dtype": "float32",
               "repeat": repeat, "rows": rows, "round_trips": trips,
               "ingest_seconds": {key: statistics.median(round_[key] for round_ in ingests) for key in ingests[0]}
               if ingests else None}
    log("")
    for line in table(rows):
        log(line)
    import cluster_model

    if cluster_model.fittable(figures):
        log("")
        for line in cluster_model.summary(figures):
            log(line)
    return figures


def _row(kind, count, shards, batch_size, timed):
    """One engine at one batch size: the medians of its rounds (and every round's step time)."""

    def median(key):
        values = [entry[key] for entry in timed if entry[key] is not None]
        return statistics.median(values) if values else None

    return {"engine": kind, "workers": count if kind in ("dask", OWN_DISKS) else None, "shards": shards,
            "batch_size": batch_size,
            "step_seconds": median("step_seconds"), "comm_share": median("comm_share"),
            "compute_seconds": median("compute_seconds"), "rounds": [entry["step_seconds"] for entry in timed]}


def _name(row):
    if row["engine"] == "numpy":
        return f"numpy, {row['shards']} shard{'s' if row['shards'] > 1 else ''}"
    own = ", own disks" if row["engine"] == OWN_DISKS else ""
    return f"dask, {row['workers']} worker{'s' if row['workers'] > 1 else ''}{own}"


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
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(BATCH_SIZES))
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every timing (medians are reported)")
    parser.add_argument("--own-disks", type=int, default=2, metavar="W",
                        help="workers for the run on the workers' own shards (0: none)")
    parser.add_argument("--save", action="store_true",
                        help=f"also write the figures to {SAVED.relative_to(HERE.parent)}, which the README's "
                             "cluster-model block is derived from (benchmarks/cluster_model.py --write)")
    args = parser.parse_args(argv)
    figures = run(args.results / "cache", tuple(args.workers), tuple(args.batch_sizes), repeat=args.repeat,
                  own_disks=args.own_disks)
    figures["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"cluster-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(figures, indent=1))
    print(f"raw figures: {path}")
    if args.save:
        SAVED.write_text(json.dumps(figures, indent=1) + "\n")
        print(f"saved: {SAVED.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
