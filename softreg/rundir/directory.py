"""The run directory as a whole: refusing outputs that are not ours, a staging directory
committed by one rename (create-or-fail), and the lock a running run holds."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from softreg.errors import OutputError, OutputExistsError
from softreg.rundir.files import _umask


def default_run_dir(name: str, root: str | os.PathLike[str] = "runs") -> Path:
    """A fresh ``runs/NAME-YYYYmmdd-HHMMSS`` (with ``-2``, ``-3``... if taken)."""
    base = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, counter = base, 1
    while candidate.exists():
        counter += 1
        candidate = base.with_name(f"{base.name}-{counter}")
    return candidate

RUN_MARKERS = ("config.yaml", "model.npz", "metrics.json")

def check_output_dir(path: str | os.PathLike[str], force: bool) -> None:
    """Refuse an existing non-empty directory (or a file) unless ``force``; even with
    ``force``, replace only a directory that softreg wrote (never a user's folder or the
    current directory)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{path}: exists and is not a directory; choose another --out")
    if not path.is_dir() or not any(path.iterdir()):
        return
    if not force:
        raise OutputExistsError(f"{path}: run directory already exists and is not empty; use --force to replace it")
    if Path.cwd().resolve().is_relative_to(path.resolve()):
        raise OutputExistsError(
            f"{path}: is the current directory or contains it; refusing to replace it even with --force"
        )
    if not any((path / name).exists() for name in RUN_MARKERS):
        raise OutputExistsError(
            f"{path}: is not a softreg output directory (no {', '.join(RUN_MARKERS)}); "
            "refusing to replace it even with --force"
        )

@contextmanager
def staging_dir(target: str | os.PathLike[str], force: bool = False, lock: bool = False) -> Iterator[Path]:
    """Yield a fresh hidden directory beside ``target``; on success rename it onto ``target``.

    The rename claims ``target`` atomically: when another process created it meanwhile,
    this one fails (`OutputExistsError`) and the other's directory is untouched. With
    ``lock``, the directory carries a lock held until `release` (or the process ends), so
    that ``--force`` or ``--resume`` elsewhere cannot replace or continue a running run.
    On failure the staging directory is removed and ``target`` is untouched.
    """
    target = Path(target).resolve()  # "." and "runs/.." have no name to stage beside
    check_output_dir(target, force)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
        os.chmod(staging, 0o777 & ~_umask())
    except OSError as error:
        raise OutputError(f"{target}: cannot create the run directory ({error.strerror or error})") from None
    try:
        if lock:
            _LOCKS[str(target)] = _lock(staging, target)
        yield staging
        _commit(staging, target, force)
    except BaseException:
        _unlock(str(target))
        shutil.rmtree(staging, ignore_errors=True)
        raise

LOCK_FILE = ".softreg-lock"
_LOCKS: dict[str, int] = {}  # run directory -> the descriptor holding its lock

def _lock(directory: Path, name: Path) -> int:
    """An exclusive lock on ``directory``'s lock file (it follows the directory through renames)."""
    import fcntl

    descriptor = os.open(directory / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        raise OutputExistsError(
            f"{name}: in use by another softreg process; wait for it or choose another --out"
        ) from None
    return descriptor

def claim(run_dir: str | os.PathLike[str]) -> None:
    """Lock an existing run directory for this process (``--resume``), or refuse if another holds it."""
    path = Path(run_dir).resolve()
    _LOCKS[str(path)] = _lock(path, Path(run_dir))

def release(run_dir: str | os.PathLike[str]) -> None:
    """Give up this process's lock on ``run_dir`` and remove the lock file."""
    key = str(Path(run_dir).resolve())
    if key in _LOCKS:
        Path(key, LOCK_FILE).unlink(missing_ok=True)
    _unlock(key)

def _unlock(key: str) -> None:
    descriptor = _LOCKS.pop(key, None)
    if descriptor is not None:
        os.close(descriptor)

def _commit(staging: Path, target: Path, force: bool) -> None:
    """Move ``staging`` onto ``target``: a new name, an empty directory of the user's (if
    writable), or, with ``force``, a run directory of softreg's not in use (removed last)."""
    retired = None
    try:
        if target.is_dir() and not any(target.iterdir()):
            mode = target.stat().st_mode
            if not os.access(target, os.W_OK) or not mode & 0o200:
                raise OutputExistsError(f"{target}: exists and is not writable; choose another --out")
            target.rmdir()  # an empty directory of the user's gives way to the run directory
        elif target.exists() and force:
            if (target / LOCK_FILE).exists():
                os.close(_lock(target, target))  # refuses a directory in use
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, retired)
        os.rename(staging, target)
    except OSError as error:
        if retired is not None and not target.exists():
            os.rename(retired, target)
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise OutputExistsError(
                f"{target}: was created by another process meanwhile; choose another --out"
            ) from None
        raise OutputError(f"{target}: cannot create the run directory ({error.strerror or error})") from None
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)

def remove_stale_temporaries(directory: str | os.PathLike[str]) -> None:
    """Delete temporary files that a killed process left behind (``.NAME.*.tmp``)."""
    for path in [*Path(directory).glob(".*.tmp"), *Path(directory).glob("plots/.*.tmp")]:
        path.unlink(missing_ok=True)
