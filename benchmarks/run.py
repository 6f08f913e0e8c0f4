"""softreg against its peers, on the same data and objective, in one command.

    python benchmarks/run.py [--quick | --full] [--repeat N] [--results DIR]

Every contender trains in a fresh process (`contenders.py`) on the same standardized arrays
(`workloads.py`), minimizing J = mean cross-entropy + lambda/2 ||W||^2 (lambda = 1e-4, the
intercept not decayed) in the same dtype with batches of 256. The table shows ratios measured
in this run (absolute times drift on shared machines); the raw figures go to
``DIR/<mode>-<time>.json`` (default DIR: benchmarks/results, which git ignores), next to the
cached data and exact optima.

--quick: digits only, a few epochs (a smoke test: seconds). Default: digits, letters and a
synthetic 60000 x 784 x 10 float32 set, plus epoch times in the other dtype. --full adds a
synthetic 900000 x 100 x 20 float32 set.
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
import workloads  # noqa: E402

GAPS = (1e-3, 1e-4)
LBFGS_MAX_ITER = 10000
LABELS = {
    "softreg": "softreg (fast recipe)",
    "softreg-sgd": "softreg (plain SGD)",
    "reference": "numpy reference loop",
    "torch": "PyTorch CPU loop",
    "sgdclassifier": "SGDClassifier (OvR)",
    "lbfgs": "LogisticRegression lbfgs",
}
# Plain SGD at a constant rate: the update of the reference loop (and the PyTorch loop), so that
# their epoch times compare like with like.
PLAIN = {"lr": 0.1, "momentum": 0.0, "schedule": "constant"}
# The fast recipe for the sets without a config file: SVRG with heavy-ball momentum at a
# constant rate (letters uses configs/letters-fast.yaml, the same recipe).
SVRG = {"variance_reduction": "svrg", "momentum": 0.9, "schedule": "constant"}


def plan(mode):
    """[(workload, {label: (contender, settings)})] for ``mode``: quick, default or full."""
    def entries(fast, plain_epochs, sgd_classifier_epochs, epoch_only=False):
        chosen = {}
        if not epoch_only:
            chosen["softreg"] = ("softreg", fast)
        chosen["softreg-sgd"] = ("softreg", {"optim": {**PLAIN, "epochs": plain_epochs}})
        chosen["reference"] = ("reference", {"lr": PLAIN["lr"], "epochs": plain_epochs})
        chosen["torch"] = ("torch", {"lr": PLAIN["lr"], "epochs": plain_epochs})
        if not epoch_only:
            chosen["sgdclassifier"] = ("sgdclassifier", {"epochs": sgd_classifier_epochs})
            chosen["lbfgs"] = ("lbfgs", {"max_iter": LBFGS_MAX_ITER, "stop_gap": min(GAPS)})
        return chosen

    digits_fast = {"optim": {**SVRG, "lr": 2.0, "epochs": 200}}
    letters_fast = {"config_file": "configs/letters-fast.yaml"}
    synthetic_fast = {"optim": {**SVRG, "lr": 0.015, "epochs": 4}}
    if mode == "quick":
        return [(workloads.digits("float64"), entries({"optim": {**SVRG, "lr": 0.5, "epochs": 5}}, 3, 2))]
    chosen = [
        (workloads.digits("float64"), entries(digits_fast, 40, 5)),
        (workloads.letters("float64"), entries(letters_fast, 20, 5)),
        (workloads.synthetic(60000, 784, 10, "float32"), entries(synthetic_fast, 6, 3)),
        (workloads.digits("float32"), entries(None, 40, 0, epoch_only=True)),
        (workloads.letters("float32"), entries(None, 20, 0, epoch_only=True)),
        (workloads.synthetic(60000, 784, 10, "float64"), entries(None, 6, 0, epoch_only=True)),
    ]
    if mode == "full":
        big_fast = {"optim": {**SVRG, "lr": 0.006, "epochs": 3}}
        chosen.insert(3, (workloads.synthetic(900000, 100, 20, "float32"), entries(big_fast, 3, 1)))
    return chosen


def run_contender(contender, folder, settings, timeout):
    """One contender in a fresh process; its RESULT line as a dict, or {"error": ...}."""
    command = [sys.executable, str(HERE / "contenders.py"), contender, str(folder), json.dumps(settings)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
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
    for key in ("logging_share", "iterations", "optim", "scipy_pool_limited"):
        if key in first:
            summary[key] = median_or_none([run[key] for run in good]) if key == "logging_share" else first[key]
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


def table(workload, meta, summaries):
    shape = f"{meta['n_train']}×{meta['n_features']}×{meta['n_classes']}"
    lines = [
        f"{workload.name} {shape} {workload.dtype}: f* = {meta['objective']:.6f}, optimum's test accuracy "
        f"{meta['test_accuracy']:.4f}, |X| = {meta['x_bytes'] / 2**20:.1f} MiB",
        f"  {'contender':26} {'epoch ms':>9} {'×ref':>6} {'→1e-3 s':>8} {'→1e-4 s':>8} {'×lbfgs':>7} "
        f"{'final gap':>9} {'test acc':>8} {'Δacc':>7} {'peak MiB':>8} {'×|X|':>5}",
    ]
    reference = summaries.get("reference", {}).get("epoch_seconds")
    lbfgs = summaries.get("lbfgs", {}).get("seconds_to_0.0001")
    for label, summary in summaries.items():
        name = LABELS[label] + (" /it" if label == "lbfgs" else "")
        if "error" in summary or "skipped" in summary:
            lines.append(f"  {name:26} {summary.get('skipped') or summary['error']}")
            continue
        epoch_only = "lbfgs" not in summaries  # a table of epoch times only: no gaps to compare
        lines.append(
            f"  {name:26} {summary['epoch_seconds'] * 1e3:9.2f} "
            f"{_fmt(_ratio(summary['epoch_seconds'], reference) if label != 'lbfgs' else None, '6.2f')} "
            f"{_fmt(None if epoch_only else summary['seconds_to_0.001'], '8.3f')} "
            f"{_fmt(None if epoch_only else summary['seconds_to_0.0001'], '8.3f')} "
            f"{_fmt(None if epoch_only else _ratio(summary['seconds_to_0.0001'], lbfgs), '7.2f')} "
            f"{summary['final_gap']:9.1e} {summary['test_accuracy']:8.4f} {summary['accuracy_vs_optimum']:+7.4f} "
            f"{summary['peak_bytes'] / 2**20:8.1f} {summary['peak_bytes'] / meta['x_bytes']:5.2f}"
        )
    return lines


# -- the targets of issue 7, each with its measured ratio


def targets(results, cli_seconds):
    """[(target, measured, met)] from the summaries of this run."""
    found = []

    def summaries(key):
        return results.get(key, {}).get("contenders", {})

    for key, entry in results.items():
        contenders = entry["contenders"]
        sgd, reference, torch = (contenders.get(label, {}) for label in ("softreg-sgd", "reference", "torch"))
        if "epoch_seconds" in sgd and "epoch_seconds" in reference:
            ratio = sgd["epoch_seconds"] / reference["epoch_seconds"]
            found.append((f"1. epoch ≤ 1.2× reference loop, {key}", f"{ratio:.2f}×", ratio <= 1.2))
        if "epoch_seconds" in sgd and "epoch_seconds" in torch:
            speedup = torch["epoch_seconds"] / sgd["epoch_seconds"]
            found.append((f"1. ≥ 3× faster than PyTorch, {key}", f"{speedup:.2f}× faster", speedup >= 3))
    for key in results:
        contenders = summaries(key)
        fast, lbfgs = contenders.get("softreg", {}), contenders.get("lbfgs", {})
        if "epoch_seconds" not in fast:
            continue
        if "seconds_to_0.0001" in lbfgs and not key.startswith("digits"):
            ratio = _ratio(fast["seconds_to_0.0001"], lbfgs["seconds_to_0.0001"])
            found.append((f"2. time to gap 1e-4 ≤ lbfgs, {key}", "never reached" if ratio is None else f"{ratio:.2f}×",
                          ratio is not None and ratio <= 1))
        if key.startswith("letters") and "seconds_to_0.0001" in lbfgs:
            total, lbfgs_time = fast["total_seconds"], lbfgs["seconds_to_0.0001"]
            met = fast["final_gap"] <= 1e-4 and lbfgs_time is not None and total < lbfgs_time
            found.append(("2. letters-fast.yaml ends within 1e-4, Σ seconds < lbfgs to 1e-4",
                          f"gap {fast['final_gap']:.1e}, {total:.3f} s vs {_fmt(lbfgs_time, '.3f')} s", met))
        delta = fast["accuracy_vs_optimum"]
        found.append((f"3. test accuracy within 0.005 of the optimum's, {key}", f"{delta:+.4f}", abs(delta) <= 0.005))
    for key in results:
        contenders, meta = summaries(key), results[key]["meta"]
        for label in ("softreg", "softreg-sgd"):
            if "peak_bytes" in contenders.get(label, {}):
                share = contenders[label]["peak_bytes"] / meta["x_bytes"]
                found.append((f"4. peak memory ≤ 0.6× |X|, {LABELS[label]}, {key}", f"{share:.2f}×", share <= 0.6))
    for key in results:
        share = summaries(key).get("softreg-sgd", {}).get("logging_share")
        if share is not None:
            found.append((f"5. logging ≤ 10% of training (adaptive default), {key}", f"{share:.1%}", share <= 0.10))
    for what, seconds in cli_seconds.items():
        if seconds is not None:
            found.append((f"6. softreg {what} < 0.3 s", f"{seconds:.3f} s", seconds < 0.3))
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
                raw[workload.key][label].append(run_contender(contender, folder, settings, args.timeout))

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

    print()
    for workload, _ in chosen:
        for line in table(workload, results[workload.key]["meta"], results[workload.key]["contenders"]):
            print(line)
        print()
    print("targets (issue 7), measured in this run:")
    for target, measured, met in found:
        print(f"  [{'met' if met else 'NOT MET'}] {target}: {measured}")
    document = {
        "mode": mode,
        "started": started,
        "repeat": repeat,
        "machine": machine(),
        "weight_decay": workloads.WEIGHT_DECAY,
        "batch_size": workloads.BATCH_SIZE,
        "gaps": GAPS,
        "plan": {workload.key: entries for workload, entries in chosen},
        "results": results,
        "cli_seconds": cli,
        "targets": [{"target": target, "measured": measured, "met": met} for target, measured, met in found],
    }
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"{mode}-{started}.json"
    path.write_text(json.dumps(document, indent=1, default=str))
    print(f"\nraw figures: {path}")
    failed = [
        label for entry in results.values() for label, summary in entry["contenders"].items() if "error" in summary
    ]
    if failed:
        print(f"contenders that failed: {', '.join(sorted(set(failed)))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
