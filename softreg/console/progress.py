"""Live progress of a training run: a bar redrawn in place on a terminal, one flushed
``epoch N/E`` line per epoch otherwise, and the cluster's lines before the first epoch."""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

import click

from softreg.escape import visible

if TYPE_CHECKING:
    from softreg.train import EpochRecord


def engine_lines(info: Any) -> list[str]:
    """The cluster a run trains on (`softreg.engine.cluster.EngineInfo`): its workers and their
    training shards, and the dashboard's link."""
    shards: dict[str, list[str]] = {worker: [] for worker in info.workers}
    for shard, worker in enumerate(info.placement):
        shards.setdefault(worker, []).append(str(shard))
    kind = "a local cluster" if info.local else "the scheduler"
    held = ", ".join(f"{visible(worker)} (shards {' '.join(numbers)})" for worker, numbers in shards.items())
    lines = [f"dask: {len(info.workers)} worker(s) of {kind} at {visible(info.scheduler)}: {held}"]
    lines.append(f"dask: dashboard {visible(info.dashboard)}" if info.dashboard else
                 "dask: no dashboard (pip install bokeh)")
    return lines


class Progress:
    """Per-epoch progress: a bar on a terminal, one flushed ``epoch N/E`` line otherwise.

    With ``to_stderr`` (``--json``) the lines go to stderr so stdout stays one JSON document.
    The bar is redrawn in place (carriage return, then erase to the end of the line) and is
    fitted to the terminal's width on every draw: a line longer than the terminal would wrap,
    and every redraw would then start a new line.
    """

    MIN_INTERVAL = 0.05  # seconds between redraws; the first and the last epoch are always drawn

    def __init__(self, quiet: bool = False, to_stderr: bool = False) -> None:
        self.quiet = quiet
        self.stream: TextIO = sys.stderr if to_stderr else sys.stdout
        self.active = False  # a bar is drawn and the cursor is still on its line
        self.started: tuple[float, int] | None = None  # (monotonic time, epoch) of the first epoch seen, for the ETA
        self.last_draw = -math.inf
        self.pending: tuple[EpochRecord, int] | None = None  # (record, total) not drawn yet

    def __call__(self, record: EpochRecord, total: int) -> None:
        if self.quiet:
            return
        if not self.stream.isatty():
            from softreg.run.progress import epoch_line  # here: the console stays light to import

            click.echo(epoch_line(record, total), file=self.stream)
            self.stream.flush()
            return
        now = time.monotonic()
        if self.started is None:
            self.started = (now - record.seconds, record.epoch - 1)  # resumed runs start past epoch 0
        self.pending = (record, total)
        if record.epoch >= total or not self.active or now - self.last_draw >= self.MIN_INTERVAL:
            self._draw(now)
        if record.epoch >= total:
            self.finish_line()

    def learning_rate(self, lr: float) -> None:
        """One line before the first epoch: the rate ``optim.lr: auto`` chose."""
        if not self.quiet:
            click.echo(f"optim.lr: auto chose {lr:.4g} (saved in the run's config.yaml)", file=self.stream)
            self.stream.flush()

    def engine(self, info: Any) -> None:
        """Before the first epoch: the Dask workers found and the dashboard's link."""
        if not self.quiet:
            for line in engine_lines(info):
                click.echo(line, file=self.stream)
            self.stream.flush()

    def _draw(self, now: float) -> None:
        assert self.pending is not None and self.started is not None, "__call__ sets both before any draw"
        record, total = self.pending
        self.pending = None
        self.last_draw = now
        started_at, first_epoch = self.started
        eta = _eta(now - started_at, record.epoch - first_epoch, total - record.epoch)
        # three columns stay free: a terminal may wrap once its last column is written, and
        # Ctrl-C echoes "^C" after the bar
        line = bar_line(record, total, _columns(self.stream) - 3, eta)
        self.stream.write("\r" + line + "\x1b[K")
        self.stream.flush()
        self.active = True

    def finish_line(self) -> None:
        """End the bar's line, so that what is printed next starts on a fresh one.

        The bar is redrawn first when a throttled redraw skipped the last epoch. Idempotent,
        and a no-op when no bar is drawn. The CLI calls it before printing a message while
        the bar may still be on screen (an interruption); `close` calls it too.
        """
        if self.active and self.pending is not None:
            self._draw(time.monotonic())
        if self.active:
            self.stream.write("\n")
            self.stream.flush()
            self.active = False
        self.pending = None

    def close(self) -> None:
        self.finish_line()


def _columns(stream: TextIO) -> int:
    """The width of the terminal ``stream`` writes to: $COLUMNS when set, as `shutil` reads it, else
    the stream's own terminal (stdout may be a pipe while the bar is on stderr), else 80.

    A terminal whose size was never set (a fresh pseudo-terminal) reports 0 columns; like
    `shutil`, that means unknown, not a width: the bar would be cut to nothing.
    """
    columns = shutil.get_terminal_size().columns
    if "COLUMNS" not in os.environ:
        try:
            columns = os.get_terminal_size(stream.fileno()).columns or columns
        except (AttributeError, OSError, ValueError):
            pass
    return columns


def _eta(elapsed: float, done: int, left: int) -> str | None:
    if done <= 0 or left <= 0:
        return None
    seconds = round(elapsed / done * left)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def bar_line(record: EpochRecord, total: int, width: int, eta: str | None = None) -> str:
    """The progress bar's text for ``record``, at most ``width`` characters long.

    ``training [#####-----] 37/100 eta 0:03 loss 0.0349 val acc 0.986``. On a narrower
    terminal the bar shrinks (to 10 cells), then the label goes, then the ETA; below that
    there is no bar, only ``37/100 loss 0.0349 acc 0.986``, then without the accuracy, then
    the epoch alone: a number is dropped whole, never cut.
    """
    position = f"{record.epoch}/{total}"
    loss = f"loss {record.train_loss:<6.3g}"  # padded: the bar keeps its width as 0.0405 turns into 0.041
    accuracy = None if record.val_accuracy is None else f"{record.val_accuracy:.3f}"
    eta = None if eta is None else f"eta {eta}"
    fraction = min(max(record.epoch / total, 0.0), 1.0) if total else 1.0
    for label, shown_eta in (("training ", eta), ("", eta), ("", None)):
        info = _words(position, shown_eta, loss, accuracy and f"val acc {accuracy}")
        cells = min(40, width - len(label) - len(info) - 3)  # 3: the brackets and a space
        if cells >= 10:
            filled = int(fraction * cells)
            return f"{label}[{'#' * filled}{'-' * (cells - filled)}] {info}".rstrip()
    for text in (_words(position, loss.rstrip(), accuracy and f"acc {accuracy}"), _words(position, loss.rstrip())):
        if len(text) <= width:
            return text
    return position[:width]


def _words(*parts: str | None) -> str:
    return " ".join(part for part in parts if part)
