"""What the user reads: the progress bar fits the terminal and redraws in place; help examples exist."""

import io
import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from softreg import console
from softreg.cli import main
from softreg.train import EpochRecord

ROOT = Path(__file__).resolve().parent.parent


class Terminal(io.StringIO):
    """A stream that says it is a terminal and keeps everything written to it."""

    def isatty(self):
        return True


def digits_record(epoch, validation=True):
    """An epoch record with the widest numbers configs/digits.yaml prints."""
    return EpochRecord(
        epoch=epoch, lr=0.2, train_loss=0.034934 + 1e-6 * epoch, val_loss=0.08 if validation else None,
        val_accuracy=0.9861 if validation else None, seconds=0.003,
    )


def drive(monkeypatch, columns, epochs, total, validation=True):
    """Feed ``epochs`` records to a bar on a terminal ``columns`` wide; return what it wrote."""
    monkeypatch.setenv("COLUMNS", str(columns))
    progress = console.Progress()
    progress.stream = Terminal()
    progress.MIN_INTERVAL = 0.0  # draw every epoch
    for epoch in epochs:
        progress(digits_record(epoch, validation), total)
    return progress, progress.stream.getvalue()


def drawn_lines(output):
    """Every line as the terminal shows it after a carriage return: the escape that erases the rest dropped."""
    return [line.replace("\x1b[K", "") for line in re.split(r"[\r\n]", output) if line]


@pytest.mark.parametrize("columns", [40, 60, 80, 120, 200])
def test_the_bar_fits_the_terminal_and_redraws_in_place(monkeypatch, columns):
    """Every drawn line leaves the terminal's last columns free, and only the finished bar ends with a newline."""
    _, output = drive(monkeypatch, columns, range(1, 301), 300)
    lines = drawn_lines(output)
    assert len(lines) == 300 and max(len(line) for line in lines) <= columns - 3
    assert output.count("\n") == 1 and output.endswith("\n")
    assert lines[-1].startswith("training [" if columns >= 80 else "") and "300/300" in lines[-1]
    assert "loss 0.035" in lines[-1] and "acc 0.986" in lines[-1]


def test_a_terminal_of_unknown_width_gets_the_default_width_not_a_cut_line(monkeypatch):
    """A pty whose size was never set reports 0 columns; the bar then takes shutil's width, as for no terminal."""
    pty = pytest.importorskip("pty")
    leader, follower = pty.openpty()
    try:
        assert os.get_terminal_size(follower).columns == 0
        monkeypatch.delenv("COLUMNS", raising=False)
        monkeypatch.setattr(shutil, "get_terminal_size", lambda: os.terminal_size((80, 24)))
        progress = console.Progress()
        progress.stream = Terminal()
        progress.stream.fileno = lambda: follower
        progress(digits_record(5), 10)
    finally:
        os.close(leader)
        os.close(follower)
    (line,) = drawn_lines(progress.stream.getvalue())
    assert line.startswith("training [") and " 5/10 " in line and line.endswith("loss 0.0349 val acc 0.986")
    assert len(line) <= 80 - 3


def test_bar_line_gives_up_the_label_then_the_eta_then_the_bar_then_whole_numbers():
    """Narrower widths drop pieces in order, a number whole, never cut; each line fits its width."""
    record = digits_record(150)  # loss 0.035084
    lines = {width: console.bar_line(record, 300, width, eta="1:05") for width in (100, 60, 50, 40, 28, 18)}
    assert lines[100] == "training [" + "#" * 20 + "-" * 20 + "] 150/300 eta 1:05 loss 0.0351 val acc 0.986"
    assert lines[60].startswith("[") and lines[60].endswith("] 150/300 eta 1:05 loss 0.0351 val acc 0.986")
    assert lines[50].startswith("[") and lines[50].endswith("] 150/300 loss 0.0351 val acc 0.986")
    assert lines[40] == "150/300 loss 0.0351 acc 0.986"
    assert lines[28] == "150/300 loss 0.0351"
    assert lines[18] == "150/300"
    for width, line in lines.items():
        assert len(line) <= width, (width, line)


def test_the_bar_shows_epochs_not_calls_after_a_resume(monkeypatch):
    """A run resumed at epoch 51 of 100 shows 51/100 first, and a half-filled bar."""
    _, output = drive(monkeypatch, 80, range(51, 53), 100)
    first = drawn_lines(output)[0]
    assert "51/100" in first
    bar = first[first.index("[") + 1: first.index("]")]
    assert abs(bar.count("#") - len(bar) / 2) <= 1


def test_finish_line_ends_a_live_bar_once(monkeypatch):
    """finish_line after an unfinished bar writes one newline; again, or close() after it, writes nothing."""
    progress, output = drive(monkeypatch, 80, range(1, 11), 100)
    assert "\n" not in output
    progress.finish_line()
    assert progress.stream.getvalue() == output + "\n"
    progress.finish_line()
    progress.close()
    assert progress.stream.getvalue() == output + "\n"


def test_finish_line_draws_the_epoch_a_throttled_redraw_skipped(monkeypatch):
    """Redraws are throttled; the line that finish_line ends shows the last epoch seen."""
    monkeypatch.setenv("COLUMNS", "80")
    progress = console.Progress()
    progress.stream = Terminal()
    progress.MIN_INTERVAL = 3600.0
    for epoch in range(1, 8):
        progress(digits_record(epoch), 100)
    assert len(drawn_lines(progress.stream.getvalue())) == 1  # epoch 1 only
    progress.finish_line()
    lines = drawn_lines(progress.stream.getvalue())
    assert "7/100" in lines[-1] and progress.stream.getvalue().endswith("\n")


def test_no_bar_no_newline(monkeypatch):
    """finish_line and close write nothing when no bar was drawn: quiet, or not a terminal (plain epoch lines)."""
    quiet = console.Progress(quiet=True)
    quiet.stream = Terminal()
    quiet(digits_record(1), 10)
    quiet.finish_line()
    assert quiet.stream.getvalue() == ""
    plain = console.Progress()
    plain.stream = io.StringIO()
    plain(digits_record(1), 10)
    plain.finish_line()
    plain.close()
    assert plain.stream.getvalue().startswith("epoch 1/10  lr=0.2") and plain.stream.getvalue().count("\n") == 1


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "report", "compare-logistic"])
def test_help_examples_name_files_that_exist(command):
    """Every configs/... and data/... path in a command's --help example is a file of the repository."""
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    paths = re.findall(r"\b(?:configs|data)/[\w.-]+", result.stdout)
    assert all((ROOT / path).is_file() for path in paths), paths
    if command == "predict":
        assert "configs/iris-csv.yaml" in paths and "data/iris.csv" in paths
