"""Do the trainer's settings reach the optimum, and does the certificate say so? One command.

    python benchmarks/defaults.py [--quick] [--settings NAME,...] [--results DIR]

For each table (scikit-learn's bundled iris, wine, breast_cancer and digits, and the letters
table in data/), each setting trains through `softreg.fit_config` (what ``softreg train``
does) with ``optim.tol: 1e-4``, then ``softreg evaluate --optimum`` finds the exact optimum
of the same objective (L-BFGS). The table shows, per run: the certified bound on the relative
gap (J - J*)/J* and whether it met the tolerance, the true gap, the test accuracy against the
optimum's, the epochs and the training seconds; beside them, scikit-learn's
LogisticRegression (lbfgs, C = 1/(n lambda), the same objective) fit on the same standardized
training part in the same process, and its seconds. Seconds are this machine's, this run's.

Settings: ``defaults`` (the config's defaults: lr 0.1, momentum 0.9, batch 64, 20 epochs),
``svrg`` (variance_reduction svrg, lr auto, up to 300 epochs: the README's recipe) and
``svrg-long`` (the same, up to 1000 epochs). --quick: iris and wine, defaults and svrg.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TABLES = {
    "iris": "builtin:iris",
    "wine": "builtin:wine",
    "breast_cancer": "builtin:breast_cancer",
    "digits": "builtin:digits",
    "letters": str(REPO / "data" / "letter-recognition.csv"),
}
SETTINGS = {
    "defaults": {},
    "svrg": {"variance_reduction": "svrg", "lr": "auto", "epochs": 300},
    "svrg-long": {"variance_reduction": "svrg", "lr": "auto", "epochs": 1000},
}
TOL = 1e-4


def measure(table: str, setting: str, root: Path) -> dict:
    """Train one table with one setting, then its exact optimum and LogisticRegression's fit."""
    from click.testing import CliRunner
    from sklearn.linear_model import LogisticRegression

    from softreg import fit_config
    from softreg.cli import main
    from softreg.commands.run_parts import rebuild_parts
    from softreg.rundir import load_model

    source = TABLES[table]
    data = {"source": source, "val": 0.0}
    if table == "letters":
        data["label"] = "Letter"
    config = {"data": data, "optim": {**SETTINGS[setting], "tol": TOL}, "output": {"plots": False}, "seed": 0}
    out = root / f"{table}-{setting}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, run_dir = fit_config(config, out=out)
    training = json.loads((run_dir / "model.json").read_text())["training"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    result = CliRunner().invoke(main, ["evaluate", "--run", str(run_dir), "--optimum", "--json"])
    optimum = json.loads(result.stdout)["optimum"]
    resolved, prepared = rebuild_parts(run_dir, load_model(run_dir), "the benchmark")
    X, y = prepared.train.X, prepared.train.y
    decay = resolved.model.weight_decay
    started = time.perf_counter()
    reference = LogisticRegression(C=1.0 / (len(y) * decay), max_iter=10000, tol=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference.fit(X, y)
    lbfgs_seconds = time.perf_counter() - started
    return {
        "table": table, "setting": setting, "n_train": int(len(y)), "n_features": int(X.shape[1]),
        "n_classes": len(prepared.classes), "gap_bound": metrics.get("gap_bound"),
        "converged": metrics.get("converged"), "true_gap": optimum["gap"], "accuracy": metrics["accuracy"],
        "optimum_accuracy": optimum["accuracy"], "epochs": training["epochs_run"],
        "seconds": training["seconds"], "lbfgs_seconds": lbfgs_seconds,
    }


def table_markdown(rows: list[dict]) -> str:
    lines = [
        "| table | n x d x K | setting | certified bound | converged | true gap | accuracy (optimum's) | epochs "
        "| seconds | lbfgs seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        bound = "none yet" if row["gap_bound"] is None else f"{row['gap_bound']:.1e}"
        lines.append(
            f"| {row['table']} | {row['n_train']} x {row['n_features']} x {row['n_classes']} | {row['setting']} "
            f"| {bound} | {'yes' if row['converged'] else 'no'} | {row['true_gap']:.1e} "
            f"| {row['accuracy']:.4f} ({row['optimum_accuracy']:.4f}) | {row['epochs']} | {row['seconds']:.2f} "
            f"| {row['lbfgs_seconds']:.3f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="iris and wine, defaults and svrg")
    parser.add_argument("--settings", default="defaults,svrg", help="comma-separated: " + ", ".join(SETTINGS))
    parser.add_argument("--tables", default=",".join(TABLES), help="comma-separated: " + ", ".join(TABLES))
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    tables = ["iris", "wine"] if args.quick else args.tables.split(",")
    settings = ["defaults", "svrg"] if args.quick else args.settings.split(",")
    unknown = [name for name in tables if name not in TABLES] + [name for name in settings if name not in SETTINGS]
    if unknown:
        parser.error(f"unknown table or setting: {', '.join(unknown)}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="softreg-defaults-") as scratch:
        for table in tables:
            for setting in settings:
                row = measure(table, setting, Path(scratch))
                rows.append(row)
                print(f"{table} {setting}: bound {row['gap_bound']}, true gap {row['true_gap']:.2e}, "
                      f"{row['epochs']} epochs, {row['seconds']:.2f} s", file=sys.stderr, flush=True)
    text = table_markdown(rows)
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"defaults-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
