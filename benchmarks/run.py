"""softreg against its peers, on the same data and objective, in one command.

    python benchmarks/run.py [--quick | --full] [--repeat N] [--results DIR] [--blas-threads N]

Every contender trains in a fresh process (`contenders.py`) on the same standardized arrays
(`workloads.py`), minimizing J = mean cross-entropy + lambda/2 ||W||^2 (lambda = 1e-4, the
intercept not decayed) in the same dtype with batches of 256, and a floor kernel measures what
an epoch cannot go below on this machine (the same steps' two products and exponentials over
batches gathered in advance), with softreg's epoch timed in parts beside it. The table shows
ratios measured in this run (absolute times drift on shared machines); the raw figures go to
``DIR/<mode>-<time>.json`` (default DIR: benchmarks/results, which git ignores), next to the
cached data and exact optima.

--quick: digits only, a few epochs (a smoke test: seconds). Default: digits, letters and a
synthetic 60000 x 784 x 10 float32 set, plus epoch times in the other dtype, and the Dask
engine's step time and communication share on that set (`cluster.py`). --full adds a
synthetic 900000 x 100 x 20 float32 set. Every mode ends with the benchmark of defaults
(`defaults.py`: what `softreg train` does with a config naming only the data, against
LogisticRegression, on real tables; --quick: two small ones) and its table.
"""

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import cluster  # noqa: E402
import workloads  # noqa: E402

GAPS = (1e-3, 1e-4)
LBFGS_MAX_ITER = 10000
LABELS = {
    "softreg-auto": "softreg fast, lr auto",
    "softreg-tuned": "softreg fast, tuned lr",
    "softreg-sgd": "softreg plain SGD",
    "floor": "floor kernel",
    "reference": "numpy reference loop",
    "torch": "PyTorch CPU loop",
    "sgdclassifier": "SGDClassifier (OvR)",
    "lbfgs": "LogisticRegression lbfgs",
}
SOFTREG = ("softreg-auto", "softreg-tuned", "softreg-sgd")
# Plain SGD at a constant rate: the update of the reference loop (and the PyTorch loop), so that
# their epoch times compare like with like.
PLAIN = {"lr": 0.1, "momentum": 0.0, "schedule": "constant"}
# The fast recipe: SVRG with heavy-ball momentum at a constant rate (letters uses
# configs/letters-fast.yaml, the same recipe), once with optim.lr: auto and once with the rate
# a sweep on the same data found best (factor-2 grid, time to gap 1e-4): the tuning a user skips.
SVRG = {"variance_reduction": "svrg", "momentum": 0.9, "schedule": "constant"}
TUNED_LR = {"digits": 8.0, "letters": 4.0, "synthetic-60k": 0.03, "synthetic-900k": 0.1}
FLOOR_ROUNDS = 5  # epochs of the floor kernel, and rounds of the breakdown of softreg's epoch


def plan(mode):
    """[(workload, {label: (contender, settings)})] for ``mode``: quick, default or full."""
    def entries(name, fast_epochs, plain_epochs, sgd_classifier_epochs, epoch_only=False, config_file=None):
        chosen = {}
        if not epoch_only:
            if config_file:
                chosen["softreg-auto"] = ("softreg", {"config_file": config_file, "overrides": ["optim.lr=auto"]})
                chosen["softreg-tuned"] = ("softreg", {"config_file": config_file,
                                                       "overrides": [f"optim.lr={TUNED_LR[name]}"]})
            else:
                chosen["softreg-auto"] = ("softreg", {"optim": {**SVRG, "lr": "auto", "epochs": fast_epochs}})
                chosen["softreg-tuned"] = ("softreg", {"optim": {**SVRG, "lr": TUNED_LR[name], "epochs": fast_epochs}})
        chosen["softreg-sgd"] = ("softreg", {"optim": {**PLAIN, "epochs": plain_epochs}})
        chosen["floor"] = ("floor", {"epochs": FLOOR_ROUNDS})
        chosen["reference"] = ("reference", {"lr": PLAIN["lr"], "epochs": plain_epochs})
        chosen["torch"] = ("torch", {"lr": PLAIN["lr"], "epochs": plain_epochs})
        if not epoch_only:
            chosen["sgdclassifier"] = ("sgdclassifier", {"epochs": sgd_classifier_epochs})
            chosen["lbfgs"] = ("lbfgs", {"max_iter": LBFGS_MAX_ITER, "stop_gap": min(GAPS)})
        return chosen

    if mode == "quick":
        return [(workloads.digits("float64"), entries("digits", 5, 3, 2))]
    chosen = [
        (workloads.digits("float64"), entries("digits", 250, 40, 5)),
        (workloads.letters("float64"), entries("letters", None, 20, 5, config_file="configs/letters-fast.yaml")),
        (workloads.synthetic(60000, 784, 10, "float32"), entries("synthetic-60k", 5, 12, 3)),
        (workloads.digits("float32"), entries("digits", None, 40, 0, epoch_only=True)),
        (workloads.letters("float32"), entries("letters", None, 20, 0, epoch_only=True)),
        (workloads.synthetic(60000, 784, 10, "float64"), entries("synthetic-60k", None, 12, 0, epoch_only=True)),
    ]
    if mode == "full":
        big = workloads.synthetic(900000, 100, 20, "float32")
        chosen.insert(3, (big, entries("synthetic-900k", 3, 10, 1)))
    return chosen


def run_contender(contender, folder, settings, timeout, blas_threads=None):
    """One contender in a fresh process; its RESULT line as a dict, or {"error": ...}."""
    command = [sys.executable, str(HERE / "contenders.py"), contender, str(folder), json.dumps(settings)]
    env = dict(os.environ)
    if blas_threads is not None:
        env.update(OPENBLAS_NUM_THREADS=str(blas_threads), OMP_NUM_THREADS=str(blas_threads))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    lines = (done.stderr or done.stdout).strip().splitlines()
    return {"error": f"exit {done.returncode}: {lines[-1] if lines else 'no output'}"}


def time_to_gap(curve, f_star, gap):
    """Seconds until the objective first comes within relative ``gap`` of f*; None if never."""
    return next((seconds for seconds, value in curve if (value - f_star) / abs(f_star) <= gap), None)


def summarize(runs, meta):
    """Medians over repeats of one contender's runs on one workload."""
    good = [run for run in runs if "error" not in run]
    if not good:
        return {"error": runs[0]["error"]}
    f_star = meta["objective"]
    first = good[0]

    def median_or_none(values):
        values = [value for value in values if value is not None]
        return statistics.median(values) if values else None

    summary = {
        "epoch_seconds": statistics.median(statistics.median(run["epoch_seconds"]) for run in good),
        "epochs": len(first["epoch_seconds"]),
        "final_gap": (first["final_objective"] - f_star) / abs(f_star),
        "test_accuracy": first["test_accuracy"],
        "accuracy_vs_optimum": first["test_accuracy"] - meta["test_accuracy"],
        "peak_bytes": max(run["peak_bytes"] for run in good),
        "peak_exact": all(run["peak_exact"] for run in good),
        "total_seconds": median_or_none([sum(run["epoch_seconds"]) for run in good]),
        "repeats": len(good),
    }
    for gap in GAPS:
        summary[f"seconds_to_{gap:g}"] = median_or_none([time_to_gap(run["curve"], f_star, gap) for run in good])
    for key in ("logging_share", "iterations", "optim", "scipy_pool_limited", "lr", "steps"):
        if key in first:
            summary[key] = median_or_none([run[key] for run in good]) if key == "logging_share" else first[key]
    if "breakdown" in first:
        summary["breakdown"] = {part: statistics.median(run["breakdown"][part] for run in good)
                                for part in first["breakdown"]}
    return summary


def settings_for(contender, settings, meta):
    return {
        **settings,
        "n_classes": meta["n_classes"],
        "weight_decay": workloads.WEIGHT_DECAY,
        "batch_size": workloads.BATCH_SIZE,
        "seed": 0,
        "f_star": meta["objective"],
    }


# -- the table


def _fmt(value, spec, missing="—"):
    """``format(value, spec)``, or ``missing`` padded to the same width."""
    if value is None:
        width = spec.split(".")[0]
        return missing.rjust(int(width)) if width.isdigit() else missing
    return format(value, spec)


def _ratio(numerator, denominator):
    return None if numerator is None or not denominator else numerator / denominator


def memory_limit(meta):
    """Target 3: extra peak memory at most max(0.6 |X|, 4 MiB)."""
    return max(0.6 * meta["x_bytes"], 4 * 2**20)


def table(workload, meta, summaries):
    shape = f"{meta['n_train']}×{meta['n_features']}×{meta['n_classes']}"
    lines = [
        f"{workload.name} {shape} {workload.dtype}: f* = {meta['objective']:.6f}, optimum's test accuracy "
        f"{meta['test_accuracy']:.4f}, |X| = {meta['x_bytes'] / 2**20:.1f} MiB",
        f"  {'contender':26} {'epoch ms':>9} {'×ref':>5} {'×floor':>6} {'lr':>7} {'→1e-3 s':>8} {'→1e-4 s':>8} "
        f"{'×lbfgs':>7} {'final gap':>9} {'test acc':>8} {'Δacc':>7} {'peak MiB':>8} {'×|X|':>5}",
    ]
    reference = summaries.get("reference", {}).get("epoch_seconds")
    floor = summaries.get("floor", {}).get("epoch_seconds")
    lbfgs = summaries.get("lbfgs", {}).get("seconds_to_0.0001")
    epoch_only = "lbfgs" not in summaries  # a table of epoch times only: no gaps to compare
    for label, summary in summaries.items():
        name = LABELS[label] + (" /it" if label == "lbfgs" else "")
        if "error" in summary or "skipped" in summary:
            lines.append(f"  {name:26} {summary.get('skipped') or summary['error']}")
            continue
        epoch = summary["epoch_seconds"]
        if label == "floor":
            lines.append(f"  {name:26} {epoch * 1e3:9.2f} {_fmt(_ratio(epoch, reference), '5.2f')} {1:6.2f}")
            continue
        gaps = None if epoch_only or label == "softreg-sgd" else summary
        lines.append(
            f"  {name:26} {epoch * 1e3:9.2f} "
            f"{_fmt(_ratio(epoch, reference) if label != 'lbfgs' else None, '5.2f')} "
            f"{_fmt(_ratio(epoch, floor) if label not in ('lbfgs', 'sgdclassifier') else None, '6.2f')} "
            f"{_fmt(summary.get('lr'), '7.3g')} "
            f"{_fmt(gaps and gaps['seconds_to_0.001'], '8.3f')} "
            f"{_fmt(gaps and gaps['seconds_to_0.0001'], '8.3f')} "
            f"{_fmt(gaps and _ratio(gaps['seconds_to_0.0001'], lbfgs), '7.2f')} "
            f"{summary['final_gap']:9.1e} {summary['test_accuracy']:8.4f} {summary['accuracy_vs_optimum']:+7.4f} "
            f"{summary['peak_bytes'] / 2**20:8.1f} {summary['peak_bytes'] / meta['x_bytes']:5.2f}"
        )
    breakdown = summaries.get("floor", {}).get("breakdown")
    if breakdown:
        epoch = summaries.get("softreg-sgd", {}).get("epoch_seconds")
        lines.extend(breakdown_lines(breakdown, summaries["floor"]["steps"], epoch))
    return lines


def breakdown_lines(parts, steps, epoch):
    """Where softreg's plain-SGD epoch (``epoch`` seconds) goes, from the passes that
    `contenders.epoch_breakdown` timed: each piece is its pass's increment over the one before;
    the loop is what the measured epoch adds to the last pass."""
    def us(seconds):
        return f"{seconds / steps * 1e6:.1f}"

    floor, gather = parts["floor"], parts["gather"]
    gradient = parts["gather+gradient"] - gather
    update = parts["gather+gradient+update"] - parts["gather+gradient"]
    loop = None if epoch is None else epoch - parts["gather+gradient+update"]
    evaluation = parts["evaluation"]
    return [
        f"  where a plain-SGD step goes (µs; passes over whole epochs of {steps} steps, each piece the increment):",
        f"    gather {us(gather)} + gradient {us(gradient)} (of which the floor kernel's products and exp "
        f"{us(floor)}) + update {us(update)}"
        + ("" if loop is None else f" + loop, logging and interpreter {us(loop)} = epoch {us(epoch)}"),
        f"    one full-data evaluation: {evaluation * 1e3:.1f} ms"
        + ("" if epoch is None else f" = {evaluation / epoch:.2f} epoch"),
    ]


# -- the targets of the issue "Performance, restated", each with its measured figure


def targets(results, cli_seconds):
    """[(target, measured, met)] from the summaries of this run; met is None for a stated figure."""
    found = []

    def contenders(key):
        return results[key]["contenders"]

    for key in results:
        auto, tuned, lbfgs = (contenders(key).get(label, {}) for label in ("softreg-auto", "softreg-tuned", "lbfgs"))
        if "epoch_seconds" not in auto or key.startswith("digits"):
            continue
        to_gap = auto["seconds_to_0.0001"]
        shown = _fmt(to_gap, ".3f", "never")
        ratio = _ratio(to_gap, tuned.get("seconds_to_0.0001"))
        found.append((
            f"1. lr auto ({auto['lr']:.3g}) to gap 1e-4 ≤ 2× tuned lr ({tuned.get('lr', 0):.3g}), {key}",
            f"{shown} s vs {_fmt(tuned.get('seconds_to_0.0001'), '.3f', 'never')} s = {_fmt(ratio, '.2f', '—')}×",
            ratio is not None and ratio <= 2,
        ))
        ratio = _ratio(to_gap, lbfgs.get("seconds_to_0.0001"))
        found.append((
            f"1. lr auto to gap 1e-4 ≤ lbfgs, {key}",
            f"{shown} s vs {_fmt(lbfgs.get('seconds_to_0.0001'), '.3f', 'never')} s = {_fmt(ratio, '.2f', '—')}×",
            ratio is not None and ratio <= 1,
        ))
    limits = {"synthetic-60k-float32": 1.5, "synthetic-900k-float32": 2.0}
    for key in results:
        sgd, floor, reference = (contenders(key).get(label, {}) for label in ("softreg-sgd", "floor", "reference"))
        if "epoch_seconds" in sgd and "epoch_seconds" in floor:
            ratio, limit = sgd["epoch_seconds"] / floor["epoch_seconds"], limits.get(key)
            what = f"≤ {limit}× the floor kernel" if limit else "over the floor kernel"
            met = None if limit is None else ratio <= limit
            found.append((f"2. plain-SGD epoch {what}, {key}", f"{ratio:.2f}×", met))
        if "epoch_seconds" in sgd and "epoch_seconds" in reference:
            ratio = sgd["epoch_seconds"] / reference["epoch_seconds"]
            found.append((f"2. plain-SGD epoch ≤ 1.2× the reference loop, {key}", f"{ratio:.2f}×", ratio <= 1.2))
    for key in results:
        meta, limit = results[key]["meta"], memory_limit(results[key]["meta"])
        for label in SOFTREG:
            summary = contenders(key).get(label, {})
            if "peak_bytes" in summary:
                peak = summary["peak_bytes"]
                found.append((
                    f"3. extra peak ≤ max(0.6 |X|, 4 MiB) = {limit / 2**20:.1f} MiB, {LABELS[label]}, {key}",
                    f"{peak / 2**20:.1f} MiB ({peak / meta['x_bytes']:.2f}× |X|)", peak <= limit,
                ))
    for key in results:
        for label in SOFTREG:
            summary = contenders(key).get(label, {})
            share = summary.get("logging_share")
            if share is None:
                continue
            long_run = summary["epochs"] >= 10
            found.append((
                f"4. logging {'≤ 10% of training' if long_run else 'share (a run under 10 epochs)'}, "
                f"{summary['epochs']} epochs, {LABELS[label]}, {key}",
                f"{share:.1%}", share <= 0.10 if long_run else None,
            ))
    for key in results:
        if not key.startswith("digits"):
            continue
        for label in ("softreg-auto", "softreg-tuned", "lbfgs"):
            summary = contenders(key).get(label, {})
            if "epoch_seconds" in summary:
                found.append((
                    f"5. ill-conditioned digits (λ = 1e-4), {LABELS[label]}"
                    + (f" (lr {summary['lr']:.3g})" if "lr" in summary else ""),
                    f"to 1e-3 {_fmt(summary['seconds_to_0.001'], '.3f', 'never')} s, to 1e-4 "
                    f"{_fmt(summary['seconds_to_0.0001'], '.3f', 'never')} s (final gap {summary['final_gap']:.1e})",
                    None,
                ))
    for what, seconds in cli_seconds.items():
        if seconds is not None:
            found.append((f"softreg {what} < 0.3 s", f"{seconds:.3f} s", seconds < 0.3))
    return found


def cli_seconds(repeat=5):
    """Median wall time of ``softreg --help`` and ``softreg --version`` (the installed script)."""
    script = Path(sys.executable).parent / "softreg"
    command = [str(script)] if script.exists() else shutil.which("softreg") and [shutil.which("softreg")]
    if not command:
        return {"--help": None, "--version": None}
    measured = {}
    for flag in ("--help", "--version"):
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            subprocess.run([*command, flag], capture_output=True, check=True)
            times.append(time.perf_counter() - started)
        measured[flag] = statistics.median(times)
    return measured


def machine():
    """What the numbers were measured on."""
    import numpy
    import scipy
    import sklearn
    from threadpoolctl import threadpool_info

    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as info:
            model = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = None
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "torch": torch_version,
        "blas": [
            {key: lib.get(key) for key in ("internal_api", "version", "architecture", "num_threads", "filepath")}
            for lib in threadpool_info() if lib.get("user_api") == "blas"
        ],
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="digits only, a few epochs (seconds)")
    size.add_argument("--full", action="store_true", help="add the 900000 x 100 x 20 set (minutes)")
    parser.add_argument("--repeat", type=int, default=None, help="runs of each contender (default: 1 quick, else 3)")
    parser.add_argument("--results", type=Path, default=HERE / "results", help="folder for the JSON and the cache")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed to one contender run")
    parser.add_argument(
        "--blas-threads", type=int, default=None,
        help="BLAS threads of every contender (default: the library's own); 1 on a machine shared with other "
             "work, where a BLAS thread waiting for a busy core stalls every product",
    )
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full" if args.full else "default"
    repeat = args.repeat or (1 if args.quick else 3)
    torch_ok = importlib.util.find_spec("torch") is not None
    started = time.strftime("%Y%m%d-%H%M%S")
    print(f"softreg benchmark ({mode}, {repeat} run(s) of each contender)", flush=True)

    chosen = plan(mode)
    prepared = {}
    for workload, _ in chosen:
        prepared[workload.key] = workloads.prepare_cached(
            workload, args.results / "cache", log=lambda message: print(message, flush=True)
        )
    raw = {workload.key: {label: [] for label in entries} for workload, entries in chosen}
    for round_index in range(repeat):
        for workload, entries in chosen:
            folder, meta = prepared[workload.key]
            print(f"  round {round_index + 1}/{repeat}: {workload.key}", flush=True)
            for label, (contender, settings) in entries.items():
                if contender == "torch" and not torch_ok:
                    continue
                settings = settings_for(contender, settings, meta)
                raw[workload.key][label].append(
                    run_contender(contender, folder, settings, args.timeout, args.blas_threads)
                )

    results = {}
    for workload, entries in chosen:
        folder, meta = prepared[workload.key]
        summaries = {}
        for label in entries:
            if label == "torch" and not torch_ok:
                summaries[label] = {"skipped": "skipped: torch is not installed (pip install '.[bench]')"}
            else:
                summaries[label] = summarize(raw[workload.key][label], meta)
        results[workload.key] = {"meta": meta, "contenders": summaries, "runs": raw[workload.key]}
    cli = cli_seconds(repeat=3 if args.quick else 7)
    found = targets(results, cli)
    import outofcore  # data larger than memory (benchmarks/outofcore.py): cache epoch, bounded memory, VW

    outofcore_figures = outofcore.run(args.quick, args.results, log=lambda line: print(line, flush=True))
    found += outofcore.targets(outofcore_figures)
    import defaults  # the defaults of `softreg train` on real tables (benchmarks/defaults.py)

    print("defaults of softreg train, on the tables of benchmarks/defaults.py:", flush=True)
    defaults_rows = defaults.run(defaults.table_names(args.quick), ["defaults"], args.results,
                                 log=lambda line: print(line, flush=True))
    found += defaults.targets(defaults_rows)

    print()
    for workload, _ in chosen:
        for line in table(workload, results[workload.key]["meta"], results[workload.key]["contenders"]):
            print(line)
        print()
    print("defaults of softreg train (benchmarks/defaults.py):")
    print(defaults.markdown(defaults_rows))
    print()
    print("targets, measured in this run:")
    for target, measured, met in found:
        print(f"  [{'stated' if met is None else 'met' if met else 'NOT MET'}] {target}: {measured}")
    if mode != "quick":  # the Dask engine against one process: benchmarks/cluster.py
        print("\nDask engine, step time and communication share:", flush=True)
        cluster_figures = cluster.run(args.results / "cache", log=lambda line: print(line, flush=True))
    document = {
        "mode": mode,
        "started": started,
        "repeat": repeat,
        "blas_threads": args.blas_threads,
        "machine": machine(),
        "weight_decay": workloads.WEIGHT_DECAY,
        "batch_size": workloads.BATCH_SIZE,
        "gaps": GAPS,
        "plan": {workload.key: entries for workload, entries in chosen},
        "results": results,
        "cli_seconds": cli,
        "targets": [{"target": target, "measured": measured, "met": met} for target, measured, met in found],
        "cluster": None if mode == "quick" else cluster_figures,
        "outofcore": outofcore_figures,
        "defaults": defaults_rows,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"{mode}-{started}.json"
    path.write_text(json.dumps(document, indent=1, default=str))
    print(f"\nraw figures: {path}")
    failed = [
        label for entry in results.values() for label, summary in entry["contenders"].items() if "error" in summary
    ] + [f"defaults.py {row['table']}" for row in defaults_rows if "error" in row]
    if failed:
        print(f"contenders that failed: {', '.join(sorted(set(failed)))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
