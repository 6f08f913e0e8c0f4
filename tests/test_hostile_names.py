"""Every name is data: class and feature names with dollar signs and control characters are drawn
literally in the plots and shown escaped on a terminal, in train, --resume, evaluate and predict;
predict's CSV keeps them as they are."""

import csv
import io

import numpy as np
import pytest

from softreg.escape import visible, visible_lines
from tests.strategies import run

CLASSES = ["$", "$$", "$$$", "\x1b]0;pwned\x07", "\x1b[2Jx"]
FEATURES = ["price_$$", "b_\x1b[31m"]
PLOTS = {"class_probabilities.png", "confusion_matrix.png", "decision_regions.png", "learning_curves.png",
         "reliability.png", "weights.png"}


@pytest.fixture(scope="module")
def priced(tmp_path_factory):
    """A run trained on five classes named like price tiers and escape sequences (plots on)."""
    root = tmp_path_factory.mktemp("names")
    rng = np.random.default_rng(0)
    lines = [",".join([*FEATURES, "label"])]
    for row in range(150):
        k = row % 5
        lines.append(f"{rng.normal() + k:.6f},{rng.normal() - k:.6f},{CLASSES[k]}")
    (root / "d.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "c.yaml").write_text("data:\n  source: d.csv\noptim:\n  epochs: 2\n")
    code, stdout, stderr = run("train", "--config", root / "c.yaml", "--out", root / "run")
    assert code == 0, stderr
    assert "\x1b" not in stdout + stderr and "\x07" not in stdout + stderr
    return root


def test_visible_escapes_control_characters_only():
    """Control characters (C0, DEL, C1, bidi overrides) become escapes; letters, `$` and accents stay."""
    assert visible("a\x1b[2Jb\x07") == "a\\x1b[2Jb\\x07"
    assert visible("tab\there\nnl\x7f\x9b") == "tab\\x09here\\x0anl\\x7f\\x9b"
    assert visible("\u202eevil") == "\\u202eevil"
    assert visible("$$ café Ω") == "$$ café Ω"
    assert visible(3) == "3"
    assert visible_lines("one \x1b\ntwo") == "one \\x1b\ntwo"


def test_train_with_dollar_and_escape_names_draws_every_plot(priced):
    """Classes `$`, `$$`, `$$$` and a column `price_$$` train to exit 0 with all six plots."""
    assert {path.name for path in (priced / "run" / "plots").iterdir()} == PLOTS


def test_resume_with_dollar_names_replots(priced, tmp_path):
    """--resume with more epochs redraws the plots of those names: exit 0, nothing raw on the terminal."""
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(priced / "run", run_dir)
    code, stdout, stderr = run("train", "--resume", run_dir, "--set", "optim.epochs=3")
    assert code == 0, stderr
    assert "\x1b" not in stdout + stderr
    assert {path.name for path in (run_dir / "plots").iterdir()} == PLOTS


def test_evaluate_out_shows_names_escaped(priced, tmp_path):
    """evaluate --out draws its plots and prints the class table with `\\x1b` written out, `$$` as is."""
    code, stdout, stderr = run("evaluate", "--run", priced / "run", "--out", tmp_path / "ev")
    assert code == 0, stderr
    assert "\x1b" not in stdout + stderr and "\x07" not in stdout + stderr
    rows = {line.split()[0] for line in stdout.splitlines()[3:8]}
    assert rows == {"$", "$$", "$$$", "\\x1b]0;pwned\\x07", "\\x1b[2Jx"}
    assert (tmp_path / "ev" / "plots" / "confusion_matrix.png").is_file()


def test_predict_csv_keeps_names_but_errors_escape_them(priced, tmp_path):
    """predict's CSV is data: the class names stay raw in its header; an error naming the
    columns shows their control characters escaped, in one line."""
    code, stdout, stderr = run("predict", "--run", priced / "run", "--input", priced / "d.csv")
    assert code == 0, stderr
    header = next(csv.reader(io.StringIO(stdout)))
    assert header == ["label", *(f"prob_{name}" for name in sorted(CLASSES))]
    (tmp_path / "bad.csv").write_text("x,y\n1,2\n")
    code, _, stderr = run("predict", "--run", priced / "run", "--input", tmp_path / "bad.csv")
    assert code == 2
    assert stderr == (f"softreg: error: {tmp_path / 'bad.csv'}: missing feature column(s) 'price_$$', "
                      "'b_\\x1b[31m' that the model needs\n")


def test_sweep_output_holds_no_raw_escape(priced, tmp_path):
    """A sweep whose grid value holds an escape sequence (a column `b_\\x1b[31m` in data.exclude) trains, and
    nothing it prints holds the raw escape (run names are made of safe characters)."""
    config = priced / "c.yaml"
    code, stdout, stderr = run("sweep", "--config", config, "--grid", 'data.exclude=["price_$$"],["b_\\e[31m"]',
                               "--set", "output.plots=false", "--out", tmp_path / "sweep")
    assert code == 0, stderr
    assert "\x1b" not in stdout + stderr


def test_sweep_summary_escapes_names_the_best_and_the_retrain_command(tmp_path):
    """The summary table, the best run, the retrain command and the folder show control characters escaped."""
    from softreg.commands.sweep import SweepResult
    from softreg.console import sweep_summary

    row = {"run_dir": "a\x1b[2J", "status": "trained", "val_accuracy": 0.5, "val_log_loss": 0.7, "val_ece": 0.1,
           "test_accuracy": 0.5, "test_log_loss": 0.7, "epochs": 2, "seconds": 0.1}
    result = SweepResult(out=tmp_path / "o\x07", grids=[], rows=[row], best=row,
                         retrain_command="softreg train --set 'x=\x1b]0;t\x07'")
    text = sweep_summary(result)
    assert "\x1b" not in text and "\x07" not in text
    assert "a\\x1b[2J" in text and "x=\\x1b]0;t\\x07" in text and "o\\x07/sweep.csv" in text
