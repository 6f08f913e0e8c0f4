"""One CSV ingested by one process and by W Dask workers that cut it into byte ranges.

    python benchmarks/csv_ingest.py [--rows 400000] [--features 40] [--workers 2] [--repeat 3]

Writes a numeric CSV of ``--rows`` rows (a seeded normal table and a two-class label) into a
scratch folder, starts a local cluster of ``--workers`` processes (one thread each, not timed),
and times ``softreg ingest`` of it, median of ``--repeat`` rounds: in one process (``engine.kind:
numpy``), on the workers (``engine.kind: dask``: they find the cuts in the file's bytes, read a
byte range each and write their own shards), and on the workers with the file read whole by one
of them (as before byte ranges, for comparison). Prints the seconds, their ratio, the pieces the
workers read and the seconds spent finding the cuts, and checks that the shards hold the
one-process cache's bytes. On one machine the workers share its cores (and its disk): the ratio
says what the cuts cost and what reading in parallel gains here, not on W machines.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def write_csv(path: Path, n_rows: int, n_features: int) -> None:
    import pandas as pd

    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_rows, n_features)).round(5)
    label = np.where(X[:, 0] - X[:, 1] + rng.normal(size=n_rows) > 0, "yes", "no")
    frame = pd.DataFrame(X, columns=[f"f{index}" for index in range(n_features)]).assign(label=label)
    frame.to_csv(path, index=False)


def same_bytes(distributed: Path, reference: Path) -> bool:
    """Whether every worker shard holds the one-process cache's rows of that shard."""
    from softreg.cache import read_manifest
    from softreg.engine import plan

    placed, local = read_manifest(distributed).document, read_manifest(reference).document
    for part, shards in placed["placement"].items():
        ranges = plan.shard_ranges(local["n"][part], placed["worker_shards"])
        for shard, (start, stop) in zip(shards, ranges, strict=True):
            for name in ("X", "y", "source_rows"):
                whole = np.load(reference / part / f"{name}.npy")
                if np.load(shard["files"][name]["file"]).tobytes() != whole[start:stop].tobytes():
                    return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--features", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args(argv)

    import distributed

    from softreg.cache.pieces import Piece
    from softreg.commands.ingest import ingest_run
    from softreg.config import load_config
    from softreg.engine import text_pieces

    planning: list[float] = []
    planned = text_pieces.delimited_pieces
    cut = [True]

    def timed_plan(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not cut[0]:
            return [Piece(0, 0, None)]  # the file whole, read by one worker (before byte ranges)
        started = time.perf_counter()
        found = planned(*args, **kwargs)
        planning.append(time.perf_counter() - started)
        return found

    text_pieces.delimited_pieces = timed_plan  # the driver's call: the seconds spent finding the cuts
    folder = Path(tempfile.mkdtemp(prefix="softreg-csv-ingest-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(n_workers=options.workers, threads_per_worker=1, processes=True,
                                           dashboard_address=":0")
    try:
        source = folder / "table.csv"
        write_csv(source, options.rows, options.features)
        size = source.stat().st_size
        (folder / "c.yaml").write_text(f"data:\n  source: {source}\n  label: label\n  shards: {options.workers}\n")

        def ingest(kind: str, cache: Path) -> float:
            shutil.rmtree(cache, ignore_errors=True)
            config = load_config(folder / "c.yaml", overrides=[
                f"data.cache={cache}", f"engine.kind={kind}", f"engine.scheduler={cluster.scheduler_address}",
                f"engine.workers={options.workers}", f"engine.worker_cache={folder / 'workers'}"])
            started = time.perf_counter()
            ingest_run(config)
            return time.perf_counter() - started

        one, many, whole = [], [], []
        for _ in range(options.repeat):
            one.append(ingest("numpy", folder / "one"))
            many.append(ingest("dask", folder / "dask"))
            cut[0] = False
            whole.append(ingest("dask", folder / "dask-whole"))
            cut[0] = True
        from softreg.cache import read_manifest

        pieces = read_manifest(folder / "dask").document["pieces"]
        identical = same_bytes(folder / "dask", folder / "one")
    finally:
        cluster.close()
        shutil.rmtree(folder, ignore_errors=True)
    one_s, many_s, whole_s = statistics.median(one), statistics.median(many), statistics.median(whole)
    print(f"softreg ingest of one CSV, {options.rows:,} rows x {options.features} features ({size / 2**20:.0f} MiB), "
          f"median of {options.repeat}:")
    print(f"  one process                          {one_s:7.2f} s")
    print(f"  {options.workers} workers, {pieces} byte ranges            {many_s:7.2f} s   "
          f"({many_s / one_s:.2f}x one process; finding the cuts {statistics.median(planning):.2f} s)")
    print(f"  {options.workers} workers, the file whole (one reads it) {whole_s:7.2f} s   "
          f"({whole_s / one_s:.2f}x one process; byte ranges {whole_s / many_s:.2f}x faster)")
    print(f"  the workers' shards hold the one-process cache's bytes: {'yes' if identical else 'NO'}")
    return 0 if identical and pieces > 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
