"""``softreg demo why-softmax``: one command makes the README section's figures and numbers."""

import json

import pytest
from click.testing import CliRunner

from softreg.cli import main

FIGURES = ["gradient_vs_p.png", "loss_learning.png", "norm_vs_epoch.png", "normalizers.png", "weight_decay.png"]


@pytest.mark.slow  # about ten seconds even with --quick: a dozen runs on digits and letters
def test_quick_demo_writes_every_figure_and_the_numbers(tmp_path, monkeypatch):
    """--quick: five PNG figures, numbers.json with every part, numbers.md, and nothing outside --out (run
    from an empty folder); a rerun reuses the sweeps' runs."""
    from pathlib import Path

    letters = Path(__file__).resolve().parents[1] / "data" / "letter-recognition.csv"
    out = tmp_path / "why"
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    arguments = ["demo", "why-softmax", "--out", str(out), "--quick", "--letters", str(letters)]
    result = CliRunner().invoke(main, arguments, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cwd", "why"]
    assert list((tmp_path / "cwd").iterdir()) == []
    for name in FIGURES:
        assert (out / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    numbers = json.loads((out / "numbers.json").read_text())
    assert set(numbers) == {"quick", "gradient", "loss", "normalizers", "weight_decay", "uniqueness", "norm_growth"}
    smallest = numbers["gradient"]["dL_dz_true_at_p"]["0.000989"]
    assert smallest["cross_entropy"] < -0.99 and -0.01 < smallest["squared_error"] < 0
    assert set(numbers["normalizers"]) == {"digits", "letters"}
    assert set(numbers["normalizers"]["digits"]) == {"softmax", "taylor", "spherical"}
    assert "| digits | softmax |" in (out / "numbers.md").read_text()
    again = CliRunner().invoke(main, arguments, catch_exceptions=False)
    assert again.exit_code == 0 and "failed" not in again.stderr and again.stderr.count(": reused") == 14


def test_demo_without_the_letters_file_exits_2(tmp_path):
    """A missing --letters file: exit 2 with one line saying where to run from."""
    result = CliRunner().invoke(main, ["demo", "why-softmax", "--out", str(tmp_path / "why"), "--letters",
                                       str(tmp_path / "none.csv")])
    assert result.exit_code == 2 and "run from the repository root, or give --letters PATH" in result.stderr
