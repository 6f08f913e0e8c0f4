"""How fast softreg reads a numeric CSV, and at what peak memory.

    python benchmarks/read_speed.py [--rows 2400000] [--features 24] [--ingest] [--text]

Writes a CSV of ``--rows`` rows (default 2.4 million: about 437 MB) of ``--features`` floats with
four decimals and an integer label 0..7 into a temporary directory (nothing is downloaded), then
loads it in a fresh process the way training does (`softreg.io.sources.load_source` with
``as_numbers=True``) and prints the seconds, MB/s and the peak resident memory (Linux
``ru_maxrss``) against the size of the float64 X it holds. ``--ingest`` also times
``softreg ingest`` of the file into an on-disk cache; ``--text`` also times the text-cell path
(Python's csv reader: minutes and gigabytes at the default size).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

LOAD = """
import json, resource, sys, time
from softreg.io.sources import load_source
import pandas  # imported before the baseline: part of the reader, not of the data
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
start = time.perf_counter()
dataset = load_source(sys.argv[1], as_numbers=sys.argv[2] == "numbers")
seconds = time.perf_counter() - start
X = dataset.X if dataset.X is not None else dataset.cells
print(json.dumps({"seconds": seconds, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "before": before, "rows": int(X.shape[0]), "cells_kept": dataset.cells is not None}))
"""


def write_numeric_csv(path, n_rows, n_features=24, n_classes=8, seed=0, block_rows=100_000):
    """A headed CSV: ``n_features`` columns of numbers in [-10, 10) with four decimals, then a label
    0..n_classes-1; written block by block as bytes (vectorized, seconds for 2.4M rows)."""
    rng = np.random.default_rng(seed)
    digits = np.frombuffer(b"0123456789", dtype=np.uint8)
    with open(path, "wb") as handle:
        handle.write((",".join([*(f"f{j}" for j in range(n_features)), "label"]) + "\n").encode())
        for start in range(0, n_rows, block_rows):
            n = min(block_rows, n_rows - start)
            fixed = rng.integers(-99_999, 100_000, size=(n, n_features))  # the value times 10^4
            magnitude = np.abs(fixed)
            cells = np.empty((n, n_features + 1, 8), dtype=np.uint8)  # "-d.dddd," per cell
            cells[:, :n_features, 0] = ord("-")
            cells[:, :n_features, 1] = digits[magnitude // 10_000]
            cells[:, :n_features, 2] = ord(".")
            for place in range(4):
                cells[:, :n_features, 3 + place] = digits[magnitude // 10 ** (3 - place) % 10]
            cells[:, :, 7] = ord(",")
            cells[:, n_features, 0] = digits[rng.integers(0, n_classes, size=n)]
            cells[:, n_features, 1] = ord("\n")
            keep = np.ones(cells.shape, dtype=bool)
            keep[:, :n_features, 0] = fixed < 0  # a minus sign only for negative numbers
            keep[:, n_features, 2:] = False
            handle.write(cells[keep].tobytes())


def measure_load(path, how):
    done = subprocess.run([sys.executable, "-c", LOAD, str(path), how], capture_output=True, text=True,
                          cwd=REPO, check=True)
    return json.loads(done.stdout)


def measure_ingest(path, directory):
    config = directory / "ingest.yaml"
    config.write_text(f"data:\n  source: {path}\n  val: 0.1\n")
    command = [sys.executable, "-c", "import resource, sys; from softreg.cli import main; "
               "code = main(sys.argv[1:], standalone_mode=False); "
               "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, file=sys.stderr)",
               "ingest", "--config", str(config), "--cache", str(directory / "cache")]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=True)
    return time.perf_counter() - start, int(done.stderr.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_400_000)
    parser.add_argument("--features", type=int, default=24)
    parser.add_argument("--ingest", action="store_true", help="also time softreg ingest")
    parser.add_argument("--text", action="store_true", help="also time the text-cell path (slow)")
    args = parser.parse_args()
    mib = 2**20
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        path = directory / "numbers.csv"
        write_numeric_csv(path, args.rows, args.features)
        size = path.stat().st_size
        x_bytes = args.rows * args.features * 8
        print(f"{path.name}: {args.rows} rows x {args.features} floats + an integer label, {size / 1e6:.0f} MB; "
              f"its float64 X is {x_bytes / mib:.0f} MiB")
        for how in ["numbers", "text"] if args.text else ["numbers"]:
            result = measure_load(path, how)
            assert result["rows"] == args.rows and result["cells_kept"] == (how == "text")
            print(f"in memory ({'fast path' if how == 'numbers' else 'text cells'}): {result['seconds']:.2f} s, "
                  f"{size / 1e6 / result['seconds']:.0f} MB/s, peak RSS {result['peak'] / mib:.0f} MiB "
                  f"= {result['peak'] / x_bytes:.2f} x X (before reading: {result['before'] / mib:.0f} MiB)")
        if args.ingest:
            seconds, peak = measure_ingest(path, directory)
            print(f"softreg ingest: {seconds:.1f} s (process start included), {size / 1e6 / seconds:.0f} MB/s, "
                  f"peak RSS {peak / mib:.0f} MiB")


if __name__ == "__main__":
    main()
