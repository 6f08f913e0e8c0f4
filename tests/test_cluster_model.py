"""benchmarks/cluster_model.py: the fit recovers the coefficients that made a set of figures, B* solves
the model's equation, and the README and RESULTS.md quote what the committed figures give."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import brentq

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("cluster_model", REPO / "benchmarks" / "cluster_model.py")
cluster_model = importlib.util.module_from_spec(spec)
sys.modules.setdefault("cluster_model", cluster_model)  # dataclasses look their module up there
spec.loader.exec_module(cluster_model)

MODEL = cluster_model.StepModel(rtt=0.9e-3, a=0.4e-3, b=1.5e-3, c=2.5e-6)
ONE = cluster_model.OneProcess(a1=0.05e-3, c1=2.0e-6)
BATCH_SIZES = (256, 1024, 4096, 16384)


def synthetic_figures(model=MODEL, one=ONE):
    """Figures as `cluster.py` writes them, made exactly by ``model`` and ``one``: one-worker steps, two-worker
    steps far off the model (as on shared cores), one-process steps and round trips."""
    rows = []
    for batch_size in BATCH_SIZES:
        rows.append({"engine": "numpy", "workers": None, "shards": 1, "batch_size": batch_size,
                     "step_seconds": one.seconds(batch_size), "comm_share": None, "compute_seconds": None})
        rows.append({"engine": "numpy", "workers": None, "shards": 4, "batch_size": batch_size,
                     "step_seconds": 5 * one.seconds(batch_size), "comm_share": None, "compute_seconds": None})
        rows.append({"engine": "dask", "workers": 1, "shards": 4, "batch_size": batch_size,
                     "step_seconds": model.seconds(1, batch_size), "comm_share": 0.5,
                     "compute_seconds": 0.1e-3 + model.c * batch_size})
        rows.append({"engine": "dask", "workers": 2, "shards": 4, "batch_size": batch_size,
                     "step_seconds": 3 * model.seconds(2, batch_size), "comm_share": 0.5,
                     "compute_seconds": 0.1e-3 + model.c * batch_size})
    trips = [{"workers": workers, "empty": model.rtt * (1 + 0.1 * sign), "empty_every_worker": model.rtt * workers,
              "weights_every_worker": 0.2e-3 + model.b * workers}
             for workers in (1, 2) for sign in (-1, 0, 1)]
    return {"shards": 4, "n_samples": 60000, "n_features": 784, "n_classes": 10, "dtype": "float32", "repeat": 3,
            "rows": rows, "round_trips": trips, "measured": "2026-01-01 00:00 UTC"}


def test_the_fit_recovers_the_coefficients_that_made_the_figures():
    """From figures made exactly by known rtt, a, b, c, a1 and c1, the fit returns them (the two-worker steps,
    three times the model's, do not enter it), and c by the workers' clocks is the c that made them."""
    model, one = cluster_model.fit(synthetic_figures())
    for fitted, true in ((model.rtt, MODEL.rtt), (model.a, MODEL.a), (model.b, MODEL.b), (model.c, MODEL.c),
                         (one.a1, ONE.a1), (one.c1, ONE.c1)):
        assert fitted == pytest.approx(true, rel=1e-9)
    assert cluster_model.compute_per_row(synthetic_figures()) == pytest.approx(MODEL.c, rel=1e-9)


def test_least_squares_minimises_relative_residuals_and_keeps_every_coefficient_non_negative():
    """With a scale, the solution is numpy's weighted least squares when that is non-negative; a line whose best
    intercept would be negative gets intercept 0 and the best slope through the origin."""
    rng = np.random.default_rng(0)
    sizes = np.array(BATCH_SIZES, dtype=float)
    design = np.column_stack([np.ones_like(sizes), sizes])
    measured = (1e-4 + 2e-6 * sizes) * (1 + 0.05 * rng.standard_normal(sizes.size))
    weighted, *_ = np.linalg.lstsq(design / measured[:, None], np.ones_like(measured), rcond=None)
    assert np.all(weighted > 0)
    assert cluster_model.least_squares(design, measured, scale=measured) == pytest.approx(weighted, rel=1e-9)
    below = 2e-6 * sizes - 1e-4
    intercept, slope = cluster_model.least_squares(design, below)
    assert intercept == 0.0
    assert slope == pytest.approx(float(sizes @ below / (sizes @ sizes)), rel=1e-9)


@pytest.mark.parametrize("workers", [2, 4, 8])
@pytest.mark.parametrize("rtt", [None, 0.5e-3, 2e-3])
@pytest.mark.parametrize("read", [0.0, 6e-6])
def test_break_even_is_where_the_model_and_one_process_take_the_same_time(workers, rtt, read):
    """B* from the formula is the root of t_dask(W, B) − t_one(B), found by a bracketing solver."""
    found = cluster_model.break_even(MODEL, ONE, workers, rtt, read)
    root = brentq(lambda batch: MODEL.seconds(workers, batch, rtt) - ONE.seconds(batch, read), 0.0, 1e9,
                  xtol=1e-9, rtol=1e-12)
    assert found == pytest.approx(root, rel=1e-9)
    assert MODEL.seconds(workers, 0.9 * found, rtt) > ONE.seconds(0.9 * found, read)
    assert MODEL.seconds(workers, 1.1 * found, rtt) < ONE.seconds(1.1 * found, read)


def test_break_even_is_none_when_the_workers_compute_a_row_no_faster_than_one_process():
    """When c/W >= c1 the W workers are slower at every batch size, and B* is None."""
    slow = cluster_model.StepModel(rtt=MODEL.rtt, a=MODEL.a, b=MODEL.b, c=2 * ONE.c1)
    assert cluster_model.break_even(slow, ONE, 2) is None
    assert all(slow.seconds(2, batch) > ONE.seconds(batch) for batch in (1, 1e4, 1e8))
    assert cluster_model.break_even(slow, ONE, 4) is not None


def test_the_readme_and_results_quote_what_the_committed_figures_give():
    """The cluster-model blocks of README.md and benchmarks/RESULTS.md are what the committed
    benchmarks/cluster-figures.json derives now (`cluster_model.py` without --write exits 0)."""
    figures = json.loads(cluster_model.FIGURES.read_text(encoding="utf-8"))
    made = cluster_model.derived(figures)
    texts = {key: path.read_text(encoding="utf-8") for key, path in cluster_model.FILES.items()}
    assert cluster_model.differences(made, texts) == []
    assert cluster_model.main([]) == 0


def test_a_changed_figure_names_both_blocks_and_write_mode_replaces_only_them():
    """Derived from other figures, both blocks differ and are named; with_blocks rewrites each file's block and
    leaves the rest of the file as it was."""
    made = cluster_model.derived(synthetic_figures())
    texts = {key: path.read_text(encoding="utf-8") for key, path in cluster_model.FILES.items()}
    found = [line.split(":")[0] for line in cluster_model.differences(made, texts)]
    assert found == ["README.md block 'readme'", "RESULTS.md block 'results'"]
    for key, text in texts.items():
        written = cluster_model.with_blocks(text, {key: made[key]}, key)
        assert cluster_model.differences({key: made[key]}, {key: written}) == []
        assert cluster_model.BLOCK.sub("", written) == cluster_model.BLOCK.sub("", text)


@pytest.mark.slow  # builds the 60000 x 784 set and its cache, starts four local Dask clusters: a minute or two
def test_cluster_py_measures_round_trips_and_steps_and_prints_the_model(tmp_path):
    """benchmarks/cluster.py at two batch sizes exits 0, prints the table and the fitted model, and writes figures
    with every engine's row (the run on the workers' own shards too, with its ingest's seconds) and round trips
    on clusters of 1 and 2 workers, which the model's fit accepts."""
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "cluster.py"), "--batch-sizes", "256", "1024",
         "--results", str(tmp_path)],
        capture_output=True, text=True, timeout=900, cwd=tmp_path, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "dask, 2 workers" in done.stdout.split("engine ")[1]
    assert "model t(W, B) = rtt + a + b·W + c·B/W: rtt = " in done.stdout
    (written,) = tmp_path.glob("cluster-*.json")
    figures = json.loads(written.read_text())
    engines = sorted((row["engine"], row["workers"] or 0, row["shards"], row["batch_size"]) for row in figures["rows"])
    assert engines == sorted((engine, workers, shards, size) for size in (256, 1024)
                             for engine, workers, shards in (("numpy", 0, 1), ("numpy", 0, 4), ("dask", 1, 4),
                                                             ("dask", 2, 4), ("dask-own-disks", 2, 4)))
    assert "dask, 2 workers, own disks" in done.stdout  # the workers ingested the set and trained on their own shards
    assert figures["ingest_seconds"]["workers"] > 0 and figures["ingest_seconds"]["one_process"] > 0
    assert sorted({trip["workers"] for trip in figures["round_trips"]}) == [1, 2]
    assert all(trip["empty"] > 0 for trip in figures["round_trips"])
    assert cluster_model.fittable(figures)
