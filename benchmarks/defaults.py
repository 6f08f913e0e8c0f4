"""Does `softreg train` reach the optimum with its defaults, and does the certificate say so? One command.

    python benchmarks/defaults.py [--quick] [--settings NAME,...] [--tables NAME,...] [--results DIR]

Each table (`tables.py`: nine real tables from packages that ship their data, letters, and
synthetic 60000 x 784 x 10 and 900000 x 100 x 20 sets) is written once as a user would have
it, into DIR/tables-v<N>/, then trained through `softreg.fit_config` (what ``softreg train
--config`` does) from a config naming only the data (source, label, and what the table needs:
``missing: mean`` where cells are missing, ``exclude`` for a column naming the row), ``seed:
0`` and ``output.plots: false``: whatever the defaults of the day are, with a setting's
``optim`` keys on top. Then ``softreg evaluate --optimum`` solves the same objective exactly
(L-BFGS) for the true relative gap (J - J*)/J* and the optimum's test accuracy, and
scikit-learn's LogisticRegression (lbfgs, C = 1/(n lambda), tol 1e-8, max_iter 10000: the
same objective, to its optimum) is fit on the same preprocessed training matrix in the same
process. Per table and setting the table shows: the certified bound (metrics.json's
gap_bound) and ``converged``, the true gap, test accuracy against the optimum's, epochs,
training seconds, lbfgs's seconds and gap, and their ratio; then, per setting, the training
seconds summed over the real tables against lbfgs's. Seconds are this machine's, this run's.

The markdown goes to standard output and DIR/defaults-<time>.md, the figures to
DIR/defaults-<time>.json. Settings: ``defaults`` (nothing set), ``svrg`` (variance_reduction
svrg, lr auto, at most 300 epochs: the README's recipe) and ``svrg-long`` (the same, at most
1000 epochs). --quick: penguins and digits, defaults (seconds). A table whose package is not
installed (``pip install '.[bench]'``) is listed as skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import tables  # noqa: E402

SETTINGS = {
    "defaults": {},
    "svrg": {"variance_reduction": "svrg", "lr": "auto", "epochs": 300},
    "svrg-long": {"variance_reduction": "svrg", "lr": "auto", "epochs": 1000},
}
QUICK_TABLES = ("penguins", "digits")
LBFGS = {"tol": 1e-8, "max_iter": 10000}


def config_for(table: tables.Table, source: Path, setting: str) -> dict:
    """The config a user would write for ``table``: its data, the seed, no plots, and the setting's keys."""
    config = {"data": {"source": str(source), **table.data}, "seed": 0, "output": {"plots": False}}
    if SETTINGS[setting]:
        config["optim"] = dict(SETTINGS[setting])
    return config


def measure(table: tables.Table, setting: str, results: Path, scratch: Path) -> dict:
    """Train ``table`` with ``setting``, find the exact optimum, and time LogisticRegression on the same matrix."""
    from softreg import fit_config
    from softreg.errors import SoftregError

    row = {"table": table.name, "origin": table.origin, "setting": setting, "real": table.real,
           "data": {key: value for key, value in table.data.items() if key != "label"}}
    missing = table.missing_package()
    if missing and not tables.exported(table, results).exists():  # a table written before needs no package
        return {**row, "skipped": f"{missing} is not installed (pip install '.[bench]')"}
    source = tables.export(table, results)
    out = scratch / f"{table.name}-{setting}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unseen categories, not converged: the table says so
            _, run_dir = fit_config(config_for(table, source, setting), out=out)
    except SoftregError as error:
        return {**row, "error": f"{type(error).__name__}: {error}"}
    return {**row, **trained(run_dir), **optimum(run_dir), **lbfgs(run_dir)}


def trained(run_dir: Path) -> dict:
    """What the run itself says: its bound, whether it converged, accuracy, epochs and seconds."""
    training = json.loads((run_dir / "model.json").read_text())["training"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "gap_bound": metrics.get("gap_bound"), "converged": metrics.get("converged"),
        "accuracy": metrics["accuracy"], "epochs": training["epochs_run"], "seconds": training["seconds"],
    }


def optimum(run_dir: Path) -> dict:
    """``softreg evaluate --optimum``: the true gap of the run's model and the optimum's test accuracy."""
    from click.testing import CliRunner

    from softreg.cli import main

    result = CliRunner().invoke(main, ["evaluate", "--run", str(run_dir), "--optimum", "--json"])
    if result.exit_code != 0:
        raise RuntimeError(f"softreg evaluate --optimum exited {result.exit_code}: {result.output.strip()}")
    found = json.loads(result.stdout)["optimum"]
    return {"true_gap": found["gap"], "optimum_accuracy": found["accuracy"], "objective_star": found["objective"]}


def lbfgs(run_dir: Path) -> dict:
    """LogisticRegression (lbfgs, C = 1/(n lambda)) fit on the run's preprocessed training matrix, timed."""
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    from softreg.commands.run_parts import rebuild_parts
    from softreg.rundir import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unseen categories training warned about
        resolved, prepared = rebuild_parts(run_dir, load_model(run_dir), "the benchmark")
    X, y = prepared.train.X, prepared.train.y
    weight_decay = resolved.model.weight_decay
    reference = LogisticRegression(C=1.0 / (len(y) * weight_decay), **LBFGS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        started = time.perf_counter()
        reference.fit(X, y)
        seconds = time.perf_counter() - started
    return {
        "n_train": int(X.shape[0]), "n_features": int(X.shape[1]), "n_classes": len(prepared.classes),
        "lbfgs_seconds": seconds, "lbfgs_iterations": int(np.max(reference.n_iter_)),
        "lbfgs_objective": objective(reference.coef_, reference.intercept_, X, y, weight_decay),
        "lbfgs_warned": any(issubclass(warning.category, ConvergenceWarning) for warning in caught),
    }


def objective(coef, intercept, X, y, weight_decay: float) -> float:
    """J = mean cross-entropy + weight_decay/2 ||coef||^2 (the intercept not decayed), softreg's objective.

    coef : ndarray of shape (n_classes, n_features); intercept : (n_classes,);
    X : ndarray of shape (n_samples, n_features); y : (n_samples,) class indices.
    """
    import numpy as np
    from scipy.special import logsumexp

    logits = X @ coef.T + intercept  # (n_samples, n_classes)
    cross_entropy = logsumexp(logits, axis=1) - logits[np.arange(len(y)), y]
    return float(np.mean(cross_entropy) + 0.5 * weight_decay * np.vdot(coef, coef))


def _yaml(value) -> str:
    """A config value as YAML's flow style writes it: ``[date]``, ``mean``."""
    return f"[{', '.join(map(str, value))}]" if isinstance(value, list) else str(value)


def _gap(row: dict) -> float:
    return (row["lbfgs_objective"] - row["objective_star"]) / abs(row["objective_star"])


def markdown(rows: list[dict]) -> str:
    """The table RESULTS.md quotes: one line per table and setting, then the totals per setting."""
    lines = [
        "| table | n x d x K | data keys | setting | certified bound | converged | true gap "
        "| accuracy (optimum's) | epochs | seconds | lbfgs seconds (gap) | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        keys = "; ".join(f"{key}: {_yaml(value)}" for key, value in row["data"].items()) or "—"
        if "skipped" in row or "error" in row:
            lines.append(f"| {row['table']} | | {keys} | {row['setting']} | {row.get('skipped') or row['error']} "
                         "| | | | | | | |")
            continue
        bound = "none" if row["gap_bound"] is None else f"{row['gap_bound']:.1e}"
        warned = ", warned" if row["lbfgs_warned"] else ""
        lines.append(
            f"| {row['table']} | {row['n_train']} x {row['n_features']} x {row['n_classes']} | {keys} "
            f"| {row['setting']} | {bound} | {'yes' if row['converged'] else 'no'} | {row['true_gap']:.1e} "
            f"| {row['accuracy']:.4f} ({row['optimum_accuracy']:.4f}) | {row['epochs']} | {row['seconds']:.2f} "
            f"| {row['lbfgs_seconds']:.2f} ({_gap(row):.0e}{warned}) | {row['seconds'] / row['lbfgs_seconds']:.2f} |"
        )
    lines.append("")
    lines.extend(totals(rows))
    return "\n".join(lines)


def totals(rows: list[dict]) -> list[str]:
    """Per setting: training seconds summed over the real tables against LogisticRegression's."""
    lines = []
    for setting in dict.fromkeys(row["setting"] for row in rows):
        done = [row for row in rows if row["setting"] == setting and row["real"] and "seconds" in row]
        if not done:
            continue
        seconds = sum(row["seconds"] for row in done)
        reference = sum(row["lbfgs_seconds"] for row in done)
        certified = sum(1 for row in done if row["converged"])
        worst = max(done, key=lambda row: row["seconds"] / row["lbfgs_seconds"])
        lines.append(
            f"- {setting}, {len(done)} real tables: training {seconds:.2f} s against lbfgs {reference:.2f} s "
            f"({seconds / reference:.2f}x); certified {certified} of {len(done)}; highest ratio "
            f"{worst['seconds'] / worst['lbfgs_seconds']:.2f}x ({worst['table']})"
        )
    return lines


def targets(rows: list[dict]) -> list[tuple[str, str, bool | None]]:
    """[(target, measured, met)] of the issue "Converged by default" for the ``defaults`` rows, as run.py lists them."""
    done = [row for row in rows if row["setting"] == "defaults" and "seconds" in row]
    if not done:
        return []
    found = []
    for row in done:
        met = bool(row["converged"]) and row["gap_bound"] is not None and row["gap_bound"] <= 1e-4
        met = met and row["true_gap"] <= 1e-4 and row["accuracy"] >= row["optimum_accuracy"] - 0.005
        bound = "none" if row["gap_bound"] is None else f"{row['gap_bound']:.1e}"
        found.append((
            f"7. defaults converged, bound and true gap <= 1e-4, accuracy within 0.005 of the optimum's, "
            f"{row['table']}",
            f"converged {'yes' if row['converged'] else 'no'}, bound {bound}, true gap {row['true_gap']:.1e}, "
            f"accuracy {row['accuracy']:.4f} vs {row['optimum_accuracy']:.4f}", met,
        ))
    real = [row for row in done if row["real"]]
    if real:
        seconds, reference = sum(row["seconds"] for row in real), sum(row["lbfgs_seconds"] for row in real)
        found.append(("7. defaults' training seconds summed over the real tables <= lbfgs's",
                      f"{seconds:.2f} s vs {reference:.2f} s = {seconds / reference:.2f}x", seconds <= reference))
    for row in done:
        ratio = row["seconds"] / row["lbfgs_seconds"]
        limit = 3.0 if row["real"] else 0.5
        found.append((f"7. defaults' training seconds <= {limit}x lbfgs's, {row['table']}", f"{ratio:.2f}x",
                      ratio <= limit))
    return found


def table_names(quick: bool = False) -> list[str]:
    """The tables of a run: all of them, or --quick's."""
    return list(QUICK_TABLES if quick else tables.TABLES)


def run(chosen_tables: list[str], settings: list[str], results: Path, log=print) -> list[dict]:
    """Every table with every setting, in the order given; the rows of the table."""
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory(prefix="softreg-defaults-") as scratch:
        for name in chosen_tables:
            for setting in settings:
                started = time.perf_counter()
                row = measure(tables.TABLES[name], setting, Path(results), Path(scratch))
                rows.append(row)
                log(f"  {name} {setting}: {summary(row)} ({time.perf_counter() - started:.0f} s in all)")
    return rows


def summary(row: dict) -> str:
    if "skipped" in row or "error" in row:
        return row.get("skipped") or row["error"]
    return (f"bound {row['gap_bound']}, converged {row['converged']}, true gap {row['true_gap']:.2e}, "
            f"{row['epochs']} epochs, {row['seconds']:.2f} s (lbfgs {row['lbfgs_seconds']:.2f} s)")


def save(rows: list[dict], results: Path) -> Path:
    """Write the figures and the markdown under ``results``; return the markdown's path."""
    results.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (results / f"defaults-{stamp}.json").write_text(json.dumps(rows, indent=2))
    path = results / f"defaults-{stamp}.md"
    path.write_text(markdown(rows) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true",
                        help=f"{' and '.join(QUICK_TABLES)} with the defaults only (seconds)")
    parser.add_argument("--settings", default=None,
                        help=f"comma-separated, of: {', '.join(SETTINGS)} (default: defaults)")
    parser.add_argument("--tables", default=None,
                        help=f"comma-separated, of: {', '.join(tables.TABLES)} (default: all)")
    parser.add_argument("--results", type=Path, default=HERE / "results",
                        help="folder for the tables' files, the markdown and the JSON (default: benchmarks/results)")
    args = parser.parse_args(argv)
    chosen_tables = args.tables.split(",") if args.tables else table_names(args.quick)
    settings = args.settings.split(",") if args.settings else ["defaults"]
    unknown = [name for name in chosen_tables if name not in tables.TABLES]
    unknown += [name for name in settings if name not in SETTINGS]
    if unknown:
        parser.error(f"unknown table or setting: {', '.join(unknown)}")
    rows = run(chosen_tables, settings, args.results, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(markdown(rows))
    print(f"\nwritten: {save(rows, args.results)}", file=sys.stderr)
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
