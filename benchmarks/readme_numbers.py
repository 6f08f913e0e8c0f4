"""The numbers the README quotes, made again by the code as it is now.

    python benchmarks/readme_numbers.py            # make them again and compare: exit 1 naming each difference
    python benchmarks/readme_numbers.py --write    # make them again and write them where the README reads them

It runs ``softreg demo why-softmax`` into a scratch folder (``--scratch``, default a temporary
one) and the "Measured" table's runs (``softreg train`` of each config, then ``softreg
evaluate --optimum``). ``--write`` copies the demo's numbers.json, numbers.md and figures/ into
benchmarks/why-softmax/ and rewrites the README's generated blocks, each between
``<!-- readme-numbers: NAME -->`` and ``<!-- /readme-numbers -->``. The check compares
numbers.md and every block as text, and numbers.json's numbers to 1e-9 relative. Not compared:
the figures (their bytes depend on matplotlib's version); none of these numbers is a timing.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
COMMITTED = REPO / "benchmarks" / "why-softmax"
MEASURED_CONFIGS = ("configs/digits.yaml", "configs/letters.yaml", "configs/letters-fast.yaml")
BLOCK = re.compile(r"(<!-- readme-numbers: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /readme-numbers -->)", re.DOTALL)
LOSS_NAMES = {"cross_entropy": "cross-entropy", "squared_error": "squared error"}


def exponent(value: float) -> str:
    """1e-3 rather than 0.001 or 1e-03 (the README's way of writing a decay)."""
    if value == 0:
        return "0"
    mantissa, power = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(power)}"


def scientific(value: float) -> str:
    """Two significant digits as the README writes them: 6.1e-9 (not 6.1e-09)."""
    mantissa, power = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(power)}"


def loss_table(numbers: dict[str, Any]) -> str:
    runs = numbers["loss"]["runs"]
    epochs = len(runs[0]["val_accuracy_by_epoch"])
    lines = [f"| loss | lr | val accuracy after epoch 1 | after epoch {epochs} | val log loss | val ECE "
             "| test accuracy |", "|---|---|---|---|---|---|---|"]
    for run in runs:
        curve = run["val_accuracy_by_epoch"]
        lines.append(f"| {LOSS_NAMES[run['loss']]} | {run['lr']:g} | {curve[0]:.4f} | {curve[-1]:.4f} | "
                     f"{run['val_log_loss']:.4f} | {run['val_ece']:.4f} | {run['test_accuracy']:.4f} |")
    return "\n".join(lines) + "\n"


def normalizer_table(numbers: dict[str, Any]) -> str:
    lines = ["| data | normalizer | test accuracy | mean confidence | log loss | ECE | T fitted by `--calibrate` "
             "| log loss at T | ECE at T |", "|---|---|---|---|---|---|---|---|---|"]
    for data, table in numbers["normalizers"].items():
        for normalizer, row in table.items():
            lines.append(f"| {data} | {normalizer} | {row['test_accuracy']:.4f} | {row['test_mean_confidence']:.4f} "
                         f"| {row['test_log_loss']:.4f} | {row['test_ece']:.4f} | {row['calibrated_temperature']:.3f} "
                         f"| {row['calibrated_test_log_loss']:.4f} | {row['calibrated_test_ece']:.4f} |")
    return "\n".join(lines) + "\n"


def weight_decay_table(numbers: dict[str, Any]) -> str:
    runs = numbers["weight_decay"]["runs"]
    return "\n".join([
        "| λ (digits) | " + " | ".join(exponent(run["weight_decay"]) for run in runs) + " |",
        "|---" * (len(runs) + 1) + "|",
        "| test accuracy | " + " | ".join(f"{run['test_accuracy']:.4f}" for run in runs) + " |",
        "| ‖W‖_F | " + " | ".join(f"{run['coef_norm']:.2f}" for run in runs) + " |",
    ]) + "\n"


def uniqueness_text(numbers: dict[str, Any]) -> str:
    by_decay = numbers["uniqueness"]
    decay = next(key for key in by_decay if float(key) > 0)
    unique, free = by_decay[decay], by_decay["0"]
    runs = unique["runs"]
    return (
        f"two SVRG runs on digits' training part at λ = {decay} with different seeds and\n"
        f"batch sizes ({runs[0]['batch_size']} and {runs[1]['batch_size']}, {unique['epochs']} epochs) end at "
        f"`‖W_a − W_b‖ / ‖W_a‖ = {scientific(unique['relative_distance'])}`, and each within\n"
        f"{scientific(max(unique['relative_distance_to_lbfgs']))} of L-BFGS's optimum. At λ = 0 the same two runs end "
        f"{free['relative_distance']:.0%} apart (‖W‖ of {free['coef_norms'][0]:.1f} and {free['coef_norms'][1]:.1f}).\n"
    )


def norm_growth_text(numbers: dict[str, Any]) -> str:
    growth = numbers["norm_growth"]
    last = str(growth["epochs"])
    free = growth["by_weight_decay"]["0"]["coef_norm_at_epoch"]
    milestones = [epoch for epoch in free if epoch != "30"]
    levels = [f"{entry['coef_norm_at_epoch'][last]:.2f} against {entry['optimum_coef_norm']:.2f} at "
              f"λ = {exponent(float(decay))}" for decay, entry in growth["by_weight_decay"].items() if decay != "0"]
    return (
        f"(plain SGD, constant rate {growth['lr']:g}: at λ = 0 ‖W‖ is {', '.join(f'{free[e]:.1f}' for e in milestones)}"
        f" after {', '.join(milestones)} epochs; after {last} epochs at λ > 0, against ‖W*‖ dotted: "
        f"{', '.join(levels)}).\n"
    )


def measured_table(measured: list[dict[str, Any]]) -> str:
    lines = ["| config | epochs | certified bound (converged) | test accuracy | exact optimum's test accuracy "
             "| relative objective gap |", "|---|---|---|---|---|---|"]
    for row in measured:
        bound = "none" if row["gap_bound"] is None else scientific(row["gap_bound"])
        lines.append(f"| {row['label']} | {row['epochs']} | {bound} ({'yes' if row['converged'] else 'no'}) "
                     f"| {row['accuracy']:.4f} | {row['optimum_accuracy']:.4f} | {scientific(row['gap'])} |")
    return "\n".join(lines) + "\n"


DEMO_BLOCKS: dict[str, Callable[[dict[str, Any]], str]] = {
    "loss": loss_table, "normalizers": normalizer_table, "weight-decay": weight_decay_table,
    "uniqueness": uniqueness_text, "norm-growth": norm_growth_text,
}


def _epochs(run_dir: Path) -> int:
    return int(json.loads((run_dir / "model.json").read_text())["training"]["epochs_run"])


def measure(scratch: Path) -> list[dict[str, Any]]:
    """Train each of `MEASURED_CONFIGS` and evaluate it against its exact optimum."""
    from softreg.commands.evaluate import evaluate_run
    from softreg.config import load_config
    from softreg.run import train_run

    rows = []
    for name in MEASURED_CONFIGS:
        config = load_config(REPO / name)
        run_dir = scratch / "measured" / Path(name).stem
        shutil.rmtree(run_dir, ignore_errors=True)  # the scratch folder's own run of an earlier call
        train_run(config, run_dir)
        metrics = evaluate_run(run_dir, optimum=True)
        details = [f"λ = {exponent(config.model.weight_decay)}"]
        if config.optim.variance_reduction == "svrg":
            details.append("SVRG, then full-batch steps" if config.optim.full_batch == "auto" else "SVRG")
        if config.optim.lr == "auto":
            details.append("`lr: auto`")
        rows.append({"label": f"`{name}` ({', '.join(details)})", "accuracy": metrics["accuracy"],
                     "optimum_accuracy": metrics["optimum"]["accuracy"], "gap": metrics["optimum"]["gap"],
                     "epochs": _epochs(run_dir),
                     "gap_bound": metrics.get("gap_bound"), "converged": bool(metrics.get("converged"))})
    return rows


def blocks(numbers: dict[str, Any], measured: list[dict[str, Any]]) -> dict[str, str]:
    """Every generated README block, by name."""
    made = {name: render(numbers) for name, render in DEMO_BLOCKS.items()}
    made["measured"] = measured_table(measured)
    return made


def with_blocks(readme: str, made: dict[str, str]) -> str:
    """The README with each generated block replaced; a block the README lacks, or one it has
    that nothing makes, is an error."""
    found = [match["name"] for match in BLOCK.finditer(readme)]
    if sorted(found) != sorted(made):
        raise SystemExit(f"README.md: generated blocks {sorted(found)}, expected {sorted(made)}")
    return BLOCK.sub(lambda match: match[1] + made[match["name"]] + match[4], readme)


def differences(readme: str, made: dict[str, str], numbers_md: str, committed_md: str,
                numbers: dict[str, Any], committed: dict[str, Any]) -> list[str]:
    """What differs between the committed numbers and the ones made now, one line each."""
    found = []
    current = {match["name"]: match["body"] for match in BLOCK.finditer(readme)}
    for name, text in made.items():
        if current.get(name) != text:
            found.append(f"README.md block {name!r}:\n  now:       {text!r}\n  committed: {current.get(name)!r}")
    if numbers_md != committed_md:
        found.append("benchmarks/why-softmax/numbers.md differs from what the demo makes now")
    found += [f"benchmarks/why-softmax/numbers.json {where}" for where in _json_differences(numbers, committed, "")]
    return found


def _json_differences(now: Any, committed: Any, where: str) -> list[str]:
    if isinstance(now, dict) and isinstance(committed, dict):
        if sorted(now) != sorted(committed):
            return [f"{where or '/'}: keys {sorted(now)} now, {sorted(committed)} committed"]
        return [line for key in now for line in _json_differences(now[key], committed[key], f"{where}/{key}")]
    if isinstance(now, list) and isinstance(committed, list):
        if len(now) != len(committed):
            return [f"{where}: {len(now)} items now, {len(committed)} committed"]
        return [line for index, pair in enumerate(zip(now, committed, strict=True))
                for line in _json_differences(*pair, f"{where}/{index}")]
    numeric = all(isinstance(value, int | float) and not isinstance(value, bool) for value in (now, committed))
    if numeric and math.isclose(now, committed, rel_tol=1e-9, abs_tol=1e-12):
        return []
    return [] if now == committed else [f"{where}: {now!r} now, {committed!r} committed"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="Write the numbers made now (else compare).")
    parser.add_argument("--jobs", type=int, default=1, help="Runs at a time in the demo's sweeps.")
    parser.add_argument("--scratch", type=Path, help="Where the demo and the runs go (default: a temporary folder).")
    args = parser.parse_args(argv)
    from softreg.commands.demo import numbers_markdown, why_softmax

    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="readme-numbers-"))
    try:
        demo = scratch / "why-softmax"
        say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
        numbers = why_softmax(demo, REPO / "data" / "letter-recognition.csv", jobs=args.jobs, on_progress=say)
        say("the Measured table: train each config, then evaluate --optimum")
        made = blocks(numbers, measure(scratch))
        readme = README.read_text(encoding="utf-8")
        if args.write:
            for name in ("numbers.json", "numbers.md"):
                shutil.copy2(demo / name, COMMITTED / name)
            shutil.copytree(demo / "figures", COMMITTED / "figures", dirs_exist_ok=True)
            README.write_text(with_blocks(readme, made), encoding="utf-8")
            print(f"wrote {COMMITTED.relative_to(REPO)}/ and {len(made)} blocks of README.md")
            return 0
        committed = json.loads((COMMITTED / "numbers.json").read_text(encoding="utf-8"))
        found = differences(readme, made, numbers_markdown(numbers),
                            (COMMITTED / "numbers.md").read_text(encoding="utf-8"), numbers, committed)
        for line in found:
            print(line)
        print(f"{len(found)} difference(s); `python benchmarks/readme_numbers.py --write` writes the numbers made now"
              if found else "the README's numbers are the ones the code makes now")
        return 1 if found else 0
    finally:
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
