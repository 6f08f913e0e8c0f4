"""The benchmark of defaults (benchmarks/defaults.py, benchmarks/tables.py): its tables reach softreg as a
user's CSV files, its configs name only the data, and its objective and totals are the ones it claims."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))  # defaults.py imports its sibling tables.py
spec = importlib.util.spec_from_file_location("defaults", REPO / "benchmarks" / "defaults.py")
defaults = importlib.util.module_from_spec(spec)
spec.loader.exec_module(defaults)
tables = defaults.tables


def test_a_written_table_has_empty_missing_cells_text_as_text_and_no_index(tmp_path):
    """write_csv leaves missing cells empty (text and numbers), writes text unquoted and adds no index column."""
    frame = pd.DataFrame({"size": [1.5, None, 3.0], "color": ["red", None, "blue"], "kind": ["a", "b", "a"]},
                         index=[10, 11, 12])
    path = tmp_path / "table.csv"
    tables.write_csv(frame, path)
    assert path.read_text().splitlines() == ["size,color,kind", "1.5,red,a", ",,b", "3.0,blue,a"]


def test_a_written_table_trains_with_its_text_one_hot_and_its_missing_cells_filled(tmp_path):
    """A table written by write_csv trains from the config defaults.py makes for it (missing: mean): the text column
    becomes one indicator per category, the label column the classes."""
    rng = np.random.default_rng(0)
    size = rng.normal(size=60).round(3).astype(object)
    size[[3, 17]] = None
    frame = pd.DataFrame({"size": size, "color": rng.choice(["red", "blue"], 60), "kind": ["a", "b", "c"] * 20})
    tables.write_csv(frame, tmp_path / "table.csv")
    table = tables.Table("toy", "a test", {"label": "kind", "missing": "mean"})
    config = defaults.config_for(table, tmp_path / "table.csv", "defaults")
    config["data"]["val"] = 0.0  # 60 rows: keep the training part whole
    from softreg import fit_config

    _, run_dir = fit_config(config, out=tmp_path / "run")
    model = json.loads((run_dir / "model.json").read_text())
    assert model["feature_names"] == ["size", "color=blue", "color=red"] and model["classes"] == ["a", "b", "c"]


def test_the_config_names_only_the_data_the_seed_and_no_plots_plus_the_settings_optim():
    """config_for: the defaults setting adds nothing to data, seed and output.plots; svrg adds its optim keys only."""
    table = tables.TABLES["storms"]
    config = defaults.config_for(table, Path("storms.csv"), "defaults")
    assert config == {"data": {"source": "storms.csv", "label": "status", "missing": "mean"}, "seed": 0,
                      "output": {"plots": False}}
    assert defaults.config_for(table, Path("storms.csv"), "svrg")["optim"] == defaults.SETTINGS["svrg"]


def test_the_objective_is_softregs_at_its_exact_optimum():
    """defaults.objective (what lbfgs's gap is measured with) equals softreg.solve's objective at its optimum."""
    from softreg.solve import exact_optimum

    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(200, 5)), rng.integers(0, 4, size=200)
    optimum = exact_optimum(X, y, 4, 1e-2)
    assert defaults.objective(optimum.coef, optimum.intercept, X, y, 1e-2) == pytest.approx(optimum.objective,
                                                                                        rel=1e-12)


def test_the_totals_sum_the_real_tables_only_and_name_the_highest_ratio():
    """totals: seconds summed over real tables (not the synthetic ones) against lbfgs's, and the worst table."""
    def row(table, seconds, lbfgs_seconds, real=True, converged=True):
        return {"table": table, "setting": "defaults", "real": real, "seconds": seconds,
                "lbfgs_seconds": lbfgs_seconds, "converged": converged}

    rows = [row("a", 1.0, 4.0), row("b", 3.0, 1.0, converged=False), row("synthetic", 100.0, 1.0, real=False)]
    assert defaults.totals(rows) == [
        "- defaults, 2 real tables: training 4.00 s against lbfgs 5.00 s (0.80x); certified 1 of 2; "
        "highest ratio 3.00x (b)"
    ]


def test_help_names_every_table_and_setting(capsys):
    """defaults.py --help exits 0 and lists the tables and the settings it accepts."""
    with pytest.raises(SystemExit) as stopped:
        defaults.main(["--help"])
    assert stopped.value.code == 0
    shown = "".join(capsys.readouterr().out.split())  # argparse wraps lines, at hyphens too
    for name in [*tables.TABLES, *defaults.SETTINGS]:
        assert name in shown


def test_an_unknown_table_is_refused_with_exit_2(capsys):
    """--tables with a name that is not a table: argparse's exit 2 naming it."""
    with pytest.raises(SystemExit) as stopped:
        defaults.main(["--tables", "no-such-table"])
    assert stopped.value.code == 2
    assert "unknown table or setting: no-such-table" in capsys.readouterr().err

