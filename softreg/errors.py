"""Exception types that carry their exit code.

The core raises these and never prints or exits; `softreg.cli` is the one place
that maps them to a message on stderr and an exit status.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for the annotations only: errors stays the lowest layer at run time
    from pathlib import Path

EXIT_OK = 0
EXIT_FAILURE = 1  # the run itself failed (diverged, disk full, a bug)
EXIT_USAGE = 2  # the user must change something (config, data, flags)
EXIT_INTERRUPTED = 130


class SoftregError(Exception):
    """Base class; `exit_code` is what the CLI exits with."""

    exit_code = EXIT_FAILURE


class UsageError(SoftregError):
    """Bad flags or a combination of them."""

    exit_code = EXIT_USAGE


class ConfigError(SoftregError):
    """An invalid, unknown or out-of-range configuration value."""

    exit_code = EXIT_USAGE


class DataError(SoftregError):
    """Input data that cannot be used (missing, empty, non-numeric, ...)."""

    exit_code = EXIT_USAGE


class RunDirError(SoftregError):
    """A run directory that is missing, incomplete, corrupted or incompatible."""

    exit_code = EXIT_USAGE


class DivergedError(SoftregError):
    """Training produced a non-finite loss or weights."""

    exit_code = EXIT_FAILURE

    def __init__(self, epoch: int, lr: float, suggested: float | None = None) -> None:
        self.epoch: int | None = epoch  # None in subclasses that fail outside an epoch
        self.lr = lr
        suggested = lr / 10 if suggested is None else suggested
        if 1e-300 < suggested < float("inf"):  # a rate worth writing: not 0, nan, or a subnormal
            hint = f"Try a smaller optim.lr (now {lr:g}), e.g. {suggested:.2g}."
        else:  # squares of the features overflow: no rate is stable
            hint = (f"No optim.lr is stable for features this large (now {lr:g}): standardize them "
                    "(data.standardize: true) or rescale them.")
        super().__init__(
            f"training diverged at epoch {epoch} (the loss exploded or stopped being finite); "
            f"no model was written. {hint}"
        )


class ClusterError(SoftregError):
    """A Dask cluster that cannot train the run as configured: unreachable, too few workers,
    mismatched versions, or a data cache its workers cannot open."""

    exit_code = EXIT_USAGE


class OutputError(SoftregError):
    """An output that cannot be written (exists, unwritable, disk full)."""

    exit_code = EXIT_FAILURE


class OutputExistsError(OutputError):
    """Refusing to overwrite a user's file or directory without --force."""

    exit_code = EXIT_USAGE


class OutputPathError(OutputError):
    """An output path that cannot be written as given (a missing folder, a file where a folder
    should be, no permission, a read-only file system, a name too long): the user must change it."""

    exit_code = EXIT_USAGE


# errno values that say the path must change; others (a full disk, an I/O error) are run failures
_PATH_ERRNOS = frozenset(
    (errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG, errno.ELOOP)
)


def cannot_write(path: object, error: OSError, what: str = "cannot write") -> OutputError:
    """The error for an OSError writing ``path``: `OutputPathError` (exit 2) when the path must
    change, else `OutputError` (exit 1)."""
    kind = OutputPathError if error.errno in _PATH_ERRNOS else OutputError
    return kind(f"{path}: {what} ({error.strerror or error})")


class Interrupted(SoftregError):
    """Training stopped by Ctrl-C or SIGTERM; ``state`` is the last completed epoch's
    training state (None before the first), checkpointed so that `--resume` continues."""

    exit_code = EXIT_INTERRUPTED

    # state is a `softreg.train.TrainingState`, not named here: train imports errors, not the reverse
    def __init__(self, state: Any, saved: bool = False) -> None:
        self.state = state
        self.saved = saved  # whether that state is already the checkpoint on disk
        self.run_dir: Path | None = None
        super().__init__("interrupted")


class SoftregWarning(UserWarning):
    """Something the user should know that does not stop the work (the CLI prints it on stderr)."""


def warn(message: str) -> None:
    """Issue a `SoftregWarning` (callers of the Python API see a normal Python warning)."""
    import warnings

    warnings.warn(message, SoftregWarning, stacklevel=3)
