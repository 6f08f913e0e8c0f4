"""The click group ``main`` and the one place that maps exceptions to messages and exit
codes (`handle_errors`); the command modules register on ``main`` (`softreg.cli`)."""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from types import FrameType
from typing import Any, NoReturn

import click

from softreg._version import __version__
from softreg.errors import EXIT_FAILURE, EXIT_INTERRUPTED, SoftregError, SoftregWarning
from softreg.escape import visible_lines


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"softreg: error: {_short(visible_lines(message))}", err=True)
    sys.exit(code)


def _short(message: str) -> str:
    """A message whose overlong words (a long path, a pasted value) are cut in their middle.

    Nothing else is cut: a sentence of softreg's own (a reason, a hint) always reaches the user
    whole; values from the user are shortened where messages quote them (`softreg.config.shorten`)."""
    from softreg.config import shorten

    lines = []
    for line in message.splitlines() or [""]:
        lines.append(" ".join(shorten(word, 80) if len(word) > 100 else word for word in line.split(" ")))
    return "\n".join(lines)


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """Warnings go to stderr as one line, like errors (results stay alone on stdout)."""
    if issubclass(category, SoftregWarning):
        click.echo(f"softreg: warning: {visible_lines(str(message))}", err=True)
    else:
        click.echo(f"softreg: warning: {category.__name__}: {visible_lines(str(message))}", err=True)


# a write that failed for want of room (a full disk, a quota, a file size limit, /dev/full): the
# machine's state, not a bug and not the user's input
WRITE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _flush(stream: Any) -> None:
    stream.flush()


def _failed_output(error: OSError) -> str:
    """"standard output" when the failed write was to it (a frame of the failing call holds
    ``sys.stdout``: click.echo's, predict's writer, `_flush`), else "the output".

    Standard output is then pointed at /dev/null, so that Python's own flush at exit finds
    nothing to fail on (it would print a second, raw message).
    """
    frames = error.__traceback__
    while frames is not None:
        if any(value is sys.stdout for value in frames.tb_frame.f_locals.values()):
            with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return "standard output"
        frames = frames.tb_next
    return "the output"


def _internal(error: BaseException) -> NoReturn:
    click.echo(
        f"softreg: internal error: {error.__class__.__name__}: {error} (rerun with --debug for the traceback)",
        err=True,
    )
    sys.exit(EXIT_FAILURE)


def _interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    """SIGTERM stops training the way Ctrl-C does: checkpoint, then exit 130."""
    raise KeyboardInterrupt


def handle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Map typed errors to one line on stderr and their exit code; ``--debug`` re-raises."""

    @functools.wraps(command)
    def wrapper(*args: Any, debug: bool = False, **kwargs: Any) -> Any:
        debug = debug or (click.get_current_context().find_root().params.get("debug") or False)
        if threading.current_thread() is threading.main_thread():  # SIGTERM stops any command like Ctrl-C
            signal.signal(signal.SIGTERM, _interrupt)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always", SoftregWarning)
                warnings.showwarning = _show_warning
                result = command(*args, **kwargs)
                _flush(sys.stdout)  # a full disk under stdout shows here, not as Python's exit message
                return result
        except SoftregError as error:
            if debug:
                raise
            _fail(str(error), error.exit_code)
        except BrokenPipeError:  # stdout closed early (`softreg predict ... | head`): the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except MemoryError:
            if debug:
                raise
            _fail("out of memory; try model.dtype: float32, a smaller optim.batch_size, or fewer rows", EXIT_FAILURE)
        except KeyboardInterrupt:
            if debug:
                raise
            click.echo("softreg: interrupted; nothing was written", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except OSError as error:
            if debug:
                raise
            if error.errno not in WRITE_ERRORS:
                _internal(error)
            _fail(f"cannot write {_failed_output(error)}: {os.strerror(error.errno)}", EXIT_FAILURE)
        except Exception as error:  # a bug, not a user error
            if debug:
                raise
            _internal(error)

    return click.option("--debug", is_flag=True, help="Show the Python traceback on errors.")(wrapper)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="softreg")
@click.option("--debug", is_flag=True, help="Show the Python traceback on errors.")
def main(debug: bool) -> None:
    """Softmax (multinomial logistic) regression with weight decay, by minibatch SGD.

    \b
    Train from a YAML config, then evaluate and predict from the run directory:
      softreg train --config configs/digits.yaml --out runs/digits
      softreg evaluate --run runs/digits
      softreg predict --run runs/digits --input new.csv --output predictions.csv
      softreg report --run runs/digits
    """


def label_column(label: str | None) -> str | int | None:
    """A ``--label`` value: a 0-based column index when it is an integer, else a column name."""
    return int(label) if label is not None and label.lstrip("-").isdigit() else label
