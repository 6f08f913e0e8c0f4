"""Where Dask pays: a model of a step's time fitted to `cluster.py`'s figures, and the batch
size above which W workers on W machines beat one process.

    python benchmarks/cluster_model.py [--figures FILE]           # derive; exit 1 naming each block that differs
    python benchmarks/cluster_model.py [--figures FILE] --write   # derive and rewrite the blocks

FILE defaults to ``benchmarks/cluster-figures.json`` (written by ``cluster.py --save``). The
README's cluster section and RESULTS.md quote what this derives, each between
``<!-- cluster-model: NAME -->`` and ``<!-- /cluster-model -->``; the tests derive it again
from the committed figures and compare. Nothing here measures: the figures are what they are.

The model. A step of the Dask engine with W workers and a batch of B rows takes

    t(W, B) = rtt + a + b·W + c·B/W

rtt: the round trip of an empty call to a worker's actor (measured); a: the rest of a step that
does not grow with W or B (the driver adding the sums and updating the weights, a worker's
fixed cost per call); b: what each worker adds to a call (the driver sends the weights to each
and reads back sums of their size); c: a worker's seconds per row computed, each of W workers
computing its B/W rows alone, side by side. One process takes ``a1 + c1·B``.

The fit, by least squares, each coefficient to the figures that measure it. On the machine
that measured, W workers share its cores (and the driver, and other jobs), so the two-worker
steps do not compute in B/W rows' time, and a fit of the formula to every Dask step at once
mixes that sharing into every coefficient (RESULTS.md shows it: a negative a). So: ``rtt`` is
the median empty round trip; ``b`` the slope, against W, of a round trip that carries the
weights to every worker at once and back, the workers idle; ``a`` and ``c`` the line through
the one-worker steps less rtt and b (a worker computing alone, as each of W machines would);
``a1`` and ``c1`` the line through the one-process steps. The two-worker steps measured on one
machine are reported against the model's two-machine figures, not fitted.

The fits weight each figure by 1/t (they minimise relative errors): the step times span two
orders of magnitude and the noise of a shared machine is roughly proportional to the time.
Every coefficient is a time, so none is let go below 0.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIGURES = HERE / "cluster-figures.json"
FILES = {"readme": REPO / "README.md", "results": HERE / "RESULTS.md"}
BLOCK = re.compile(r"(<!-- cluster-model: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /cluster-model -->)", re.DOTALL)

WORKERS = (2, 4, 8)  # W machines the batch size B* is derived for
ASSUMED_RTTS = (0.5e-3, 2e-3)  # assumed round trips on a LAN, the weights' transfer included
DISK_BYTES_PER_SECOND = 0.5e9  # assumed sequential read of one machine's disk, for a part its memory cannot hold
BYTES_PER_VALUE = 4  # float32
EXAMPLE_GIB = 16  # a machine's memory, to put the data size in rows
WIDTH = 95  # columns of the generated prose, as the README's


@dataclass(frozen=True)
class StepModel:
    """t(W, B) = rtt + a + b·W + c·B/W seconds, a step of W workers on W machines."""

    rtt: float
    a: float
    b: float
    c: float

    def seconds(self, workers: float, batch_size: float, rtt: float | None = None) -> float:
        """The step's seconds for ``workers`` machines and ``batch_size`` rows (at round trip ``rtt``)."""
        return (self.rtt if rtt is None else rtt) + self.a + self.b * workers + self.c * batch_size / workers


@dataclass(frozen=True)
class OneProcess:
    """t(B) = a1 + c1·B seconds, a step of the numpy engine in one process."""

    a1: float
    c1: float

    def seconds(self, batch_size: float, read_per_row: float = 0.0) -> float:
        """The step's seconds for ``batch_size`` rows, plus ``read_per_row`` seconds per row read from disk."""
        return self.a1 + (self.c1 + read_per_row) * batch_size


def least_squares(design: np.ndarray, target: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
    """The coefficients x >= 0 minimising ‖(design·x − target) / scale‖ (‖design·x − target‖ without ``scale``).

    Every coefficient of the model is a time, so none may be negative (scipy's ``nnls``).

    Parameters
    ----------
    design : ndarray of shape (n_figures, n_coefficients)
    target : ndarray of shape (n_figures,)
    scale : ndarray of shape (n_figures,), positive: each figure's residual is divided by it

    Returns
    -------
    ndarray of shape (n_coefficients,)
    """
    from scipy.optimize import nnls

    weights = np.ones_like(target) if scale is None else 1.0 / scale
    solution, _ = nnls(design * weights[:, None], target * weights)
    return solution


def break_even(model: StepModel, one: OneProcess, workers: float, rtt: float | None = None,
               read_per_row: float = 0.0) -> float | None:
    """B*: the batch size above which ``model``'s W workers take less time a step than ``one``
    process (reading ``read_per_row`` seconds a row from disk); None when they never do.

    Solves rtt + a + b·W + c·B/W = a1 + (c1 + r)·B for B.
    """
    slope = one.c1 + read_per_row - model.c / workers
    fixed = model.seconds(workers, 0.0, rtt) - one.a1
    if slope <= 0:
        return None
    return max(0.0, fixed / slope)


def _dask(figures: dict[str, Any], workers: int) -> list[dict[str, Any]]:
    return sorted((row for row in figures["rows"] if row["engine"] == "dask" and row["workers"] == workers),
                  key=lambda row: row["batch_size"])


def _one_process(figures: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted((row for row in figures["rows"] if row["engine"] == "numpy" and row["shards"] == 1),
                  key=lambda row: row["batch_size"])


def fittable(figures: dict[str, Any]) -> bool:
    """Whether ``figures`` hold what the fit needs: one process and one worker at two batch sizes
    or more, and round trips on clusters of two sizes or more."""
    sizes = {trip["workers"] for trip in figures.get("round_trips", [])}
    return len(_dask(figures, 1)) >= 2 and len(_one_process(figures)) >= 2 and len(sizes) >= 2


def _line(rows: list[dict[str, Any]], key: str, less: float = 0.0) -> np.ndarray:
    """(intercept, slope) of ``row[key] - less`` against the batch size, relative to ``row[key]``."""
    measured = np.array([row[key] for row in rows])
    design = np.array([[1.0, row["batch_size"]] for row in rows])
    return least_squares(design, measured - less, scale=measured)


def fit(figures: dict[str, Any]) -> tuple[StepModel, OneProcess]:
    """The step model and the one-process line fitted to ``cluster.py``'s figures (see the module's text)."""
    trips = figures["round_trips"]
    rtt = statistics.median(trip["empty"] for trip in trips)
    carried = np.array([trip["weights_every_worker"] for trip in trips])
    per_worker = least_squares(np.array([[1.0, trip["workers"]] for trip in trips]), carried, scale=carried)[1]
    a, c = _line(_dask(figures, 1), "step_seconds", less=rtt + per_worker)
    a1, c1 = _line(_one_process(figures), "step_seconds")
    return StepModel(rtt=rtt, a=a, b=per_worker, c=c), OneProcess(a1=a1, c1=c1)


def fit_every_step(figures: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The formula fitted to every Dask step at once (numpy's least squares, relative, unconstrained):
    (a, b, c) and each step's (measured − fitted) / measured, to show why `fit` does not do this."""
    rows = [row for row in figures["rows"] if row["engine"] == "dask"]
    rtt = statistics.median(trip["empty"] for trip in figures["round_trips"])
    measured = np.array([row["step_seconds"] for row in rows])
    design = np.array([[1.0, row["workers"], row["batch_size"] / row["workers"]] for row in rows])
    solution, *_ = np.linalg.lstsq(design / measured[:, None], (measured - rtt) / measured, rcond=None)
    return solution, (measured - rtt - design @ solution) / measured


def compute_per_row(figures: dict[str, Any]) -> float:
    """A worker's seconds per row by its own clock (the one-worker steps' computing, fitted as e + c·B):
    a check of the c fitted to the steps' wall time."""
    return float(_line([row for row in _dask(figures, 1) if row.get("compute_seconds")], "compute_seconds")[1])


def read_per_row(n_features: int) -> float:
    """Seconds to read one row of ``n_features`` float32 values from disk at the assumed bandwidth."""
    return n_features * BYTES_PER_VALUE / DISK_BYTES_PER_SECOND


def _ms(seconds: float) -> str:
    return f"{1e3 * seconds:.2f} ms"


def _us(seconds: float) -> str:
    return f"{1e6 * seconds:.2f} µs"


def _rows(batch_size: float | None) -> str:
    return "never" if batch_size is None else f"{batch_size:,.0f}"


def _rounds(count: int) -> str:
    return "1 round" if count == 1 else f"{count} rounds"


def _rtts(model: StepModel) -> list[tuple[str, float]]:
    return [(f"{_ms(model.rtt)} (measured here, loopback)", model.rtt)] + [
        (f"{_ms(rtt)} (assumed)", rtt) for rtt in ASSUMED_RTTS]


def break_even_table(model: StepModel, one: OneProcess, read: float = 0.0) -> str:
    """B* in rows for each round trip (a row) and each W of `WORKERS` (a column), as markdown."""
    lines = ["| round trip | " + " | ".join(f"W = {workers}" for workers in WORKERS) + " |",
             "|---" * (len(WORKERS) + 1) + "|"]
    for label, rtt in _rtts(model):
        cells = [_rows(break_even(model, one, workers, rtt, read)) for workers in WORKERS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def coefficients_text(figures: dict[str, Any], model: StepModel, one: OneProcess) -> str:
    """The fitted coefficients, one sentence."""
    return (
        f"rtt = {_ms(model.rtt)}, a = {_ms(model.a)}, b = {_ms(model.b)} per worker, c = {_us(model.c)} per row; "
        f"one process: a1 = {_ms(one.a1)}, c1 = {_us(one.c1)} per row "
        f"({figures['n_features']} float32 features, {figures['n_classes']} classes)"
    )


def measured_table(figures: dict[str, Any], model: StepModel, one: OneProcess) -> str:
    """Every measured step against the model's figure for it, as markdown."""
    lines = ["| engine | batch | measured ms/step | model ms/step | (measured − model) / measured |",
             "|---|---|---|---|---|"]
    entries = [("one process (numpy, 1 shard)", row, one.seconds(row["batch_size"])) for row in _one_process(figures)]
    for workers in sorted({row["workers"] for row in figures["rows"] if row["engine"] == "dask"}):
        name = f"dask, {workers} worker{'s' if workers > 1 else ''}"
        if workers > 1:
            name += " on one machine (model: on as many)"
        entries += [(name, row, model.seconds(workers, row["batch_size"])) for row in _dask(figures, workers)]
    for name, row, modelled in entries:
        measured = row["step_seconds"]
        lines.append(f"| {name} | {row['batch_size']} | {1e3 * measured:.2f} | {1e3 * modelled:.2f} "
                     f"| {(measured - modelled) / measured:+.0%} |")
    return "\n".join(lines) + "\n"


OWN_DISKS = "dask-own-disks"  # cluster.py's run whose workers keep their shards in their own folders (not fitted)


def steps_table(figures: dict[str, Any]) -> str:
    """Every engine's measured step (ms, and the communication share for Dask) at every batch size, as markdown."""
    sizes = sorted({row["batch_size"] for row in figures["rows"]})
    names = {("numpy", 1): "numpy, 1 shard (the default path)", ("numpy", figures["shards"]): "numpy, 4 shards"}
    lines = ["| ms/step (communication) | " + " | ".join(f"batch {size}" for size in sizes) + " |",
             "|---" * (len(sizes) + 1) + "|"]
    keys = list(dict.fromkeys((row["engine"], row["workers"] or row["shards"]) for row in figures["rows"]))
    for engine, count in keys:
        by_size = {row["batch_size"]: row for row in figures["rows"]
                   if (row["engine"], row["workers"] or row["shards"]) == (engine, count)}
        own = ", own disks (no shared folder)" if engine == OWN_DISKS else ""
        name = (names.get((engine, count), engine) if engine == "numpy"
                else f"dask, {count} worker{'s' if count > 1 else ''}{own}")
        cells = [f"{1e3 * by_size[size]['step_seconds']:.2f}"
                 + ("" if by_size[size]["comm_share"] is None else f" ({by_size[size]['comm_share']:.0%})")
                 for size in sizes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _paragraph(text: str) -> str:
    """``text`` wrapped as the README wraps its prose, never inside ``name = value``."""
    kept = text.replace(" = ", "\u00a0=\u00a0")
    return textwrap.fill(kept, WIDTH, break_long_words=False, break_on_hyphens=False).replace("\u00a0", " ") + "\n"


def memory_text(figures: dict[str, Any]) -> str:
    """When the part does not fit one machine's memory: the reasoning, one paragraph."""
    row_bytes = figures["n_features"] * BYTES_PER_VALUE
    per_gib = 2**30 / row_bytes
    return _paragraph(
        f"A step's time depends on the batch, not on the rows of the part, so the data's size matters only "
        f"through memory. While the part fits one machine's memory M, its pages stay in the page cache after "
        f"the first epoch and the table above holds. A part larger than M ({row_bytes:,} bytes a row here: "
        f"{per_gib:,.0f} rows per GiB of M, {EXAMPLE_GIB * per_gib:,.0f} rows for M = {EXAMPLE_GIB} GiB) is read "
        f"from disk again every epoch by one process (the page cache evicts the oldest pages first, and an epoch "
        f"reads them all), while W machines hold up to W·M in their page caches together. Past M, one process "
        f"pays r = {_us(read_per_row(figures['n_features']))} more a row (at an assumed "
        f"{DISK_BYTES_PER_SECOND / 1e9:g} GB/s from disk), and W workers beat it above:"
    )


def _source(figures: dict[str, Any]) -> str:
    repeat = figures.get("repeat", 1)
    return (f"Medians of {_rounds(repeat)} on this machine, measured {figures.get('measured', 'on an unknown date')} "
            f"(`OPENBLAS_NUM_THREADS=1 python benchmarks/cluster.py --repeat {repeat} --save` writes them to "
            f"`benchmarks/{FIGURES.name}`; `python benchmarks/cluster_model.py --write` derives what follows and "
            f"writes it here).{_own_disks(figures)}")


def _own_disks(figures: dict[str, Any]) -> str:
    """What the run on the workers' own shards adds (nothing where the figures have none)."""
    ingest = figures.get("ingest_seconds")
    workers = sorted({row["workers"] for row in figures["rows"] if row["engine"] == OWN_DISKS})
    if not ingest or not workers:
        return ""
    return (f" In the row \"own disks\", {workers[0]} workers ingested the set themselves from a Parquet copy "
            f"(`softreg ingest` on Dask, {ingest['workers']:.1f} s against {ingest['one_process']:.1f} s in one "
            "process), each keeping its shards in its own local directory, and trained on them with no folder "
            "shared and no row in the process that trains; it is not part of the fit.")


def derived(figures: dict[str, Any]) -> dict[str, str]:
    """Every block this module writes, by name."""
    model, one = fit(figures)
    read = read_per_row(figures["n_features"])
    coefficients = coefficients_text(figures, model, one)
    assumed = " and ".join(_ms(rtt) for rtt in ASSUMED_RTTS)
    tables = (
        _paragraph(f"W workers on W machines beat one process for batches of more than B* rows a step ({assumed} "
                   f"are assumed round trips of a network, the weights' transfer included):")
        + f"\n{break_even_table(model, one)}\n{memory_text(figures)}\n{break_even_table(model, one, read)}"
    )
    readme = (f"{steps_table(figures)}\n"
              + _paragraph(f"{_source(figures)} The model fitted to them (the fit and its residuals: "
                           f"benchmarks/RESULTS.md): {coefficients}.")
              + "\n" + tables)
    (a_all, b_all, c_all), residuals = fit_every_step(figures)
    results = (_paragraph(f"{_source(figures)} The fit: {coefficients}. A worker's c by its own clock: "
                          f"{_us(compute_per_row(figures))} per row. Fitted to every Dask step at once instead, "
                          f"the same formula would give a = {_ms(a_all)}, b = {_ms(b_all)} per worker, "
                          f"c = {_us(c_all)} per row, its residuals from {min(residuals):+.0%} to "
                          f"{max(residuals):+.0%}.")
               + f"\n{steps_table(figures)}\nEach measured step against the model:\n\n"
               + f"{measured_table(figures, model, one)}\n" + tables)
    return {"readme": readme, "results": results}


def summary(figures: dict[str, Any]) -> list[str]:
    """What `cluster.py` prints after its table: the fit and B*, as text lines."""
    model, one = fit(figures)
    read = read_per_row(figures["n_features"])
    lines = [f"model t(W, B) = rtt + a + b·W + c·B/W: {coefficients_text(figures, model, one)}",
             f"c by the workers' own clocks: {_us(compute_per_row(figures))} per row",
             "B*, rows a step above which W workers on W machines beat one process (in memory; part on disk):"]
    for label, rtt in _rtts(model):
        cells = [f"W={workers}: {_rows(break_even(model, one, workers, rtt))}; "
                 f"{_rows(break_even(model, one, workers, rtt, read))}" for workers in WORKERS]
        lines.append(f"  rtt {label}: " + "  ".join(cells))
    return lines


def with_blocks(text: str, made: dict[str, str], where: str) -> str:
    """``text`` with its cluster-model blocks replaced by ``made``'s of the same name; it must hold exactly one."""
    found = [match["name"] for match in BLOCK.finditer(text)]
    expected = [name for name in made if name in found]
    if len(found) != 1 or len(expected) != 1:
        raise SystemExit(f"{where}: cluster-model blocks {found}, expected one of {sorted(made)}")
    return BLOCK.sub(lambda match: match[1] + made[match["name"]] + match[4], text)


def differences(made: dict[str, str], texts: dict[str, str]) -> list[str]:
    """The files (by key of `FILES`) whose block differs from what is derived now."""
    found = []
    for key, text in texts.items():
        current = {match["name"]: match["body"] for match in BLOCK.finditer(text)}
        if current.get(key) != made[key]:
            found.append(f"{FILES[key].name} block {key!r}:\n  now:       {made[key]!r}\n"
                         f"  committed: {current.get(key)!r}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--figures", type=Path, default=FIGURES, help="cluster.py's figures (JSON)")
    parser.add_argument("--write", action="store_true", help="rewrite the blocks in README.md and RESULTS.md")
    args = parser.parse_args(argv)
    figures = json.loads(args.figures.read_text(encoding="utf-8"))
    for line in summary(figures):
        print(line)
    made = derived(figures)
    texts = {key: path.read_text(encoding="utf-8") for key, path in FILES.items()}
    if args.write:
        for key, path in FILES.items():
            path.write_text(with_blocks(texts[key], {key: made[key]}, path.name), encoding="utf-8")
        print(f"wrote the cluster-model blocks of {', '.join(path.name for path in FILES.values())}")
        return 0
    found = differences(made, texts)
    for line in found:
        print(line)
    print(f"{len(found)} difference(s); --write writes what is derived now" if found
          else "the blocks quote what the figures give")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
