"""The run directory as a whole: refusing outputs that are not ours, a staging directory
committed by one rename (create-or-fail), and the lock a running run holds."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from softreg.errors import OutputExistsError, OutputPathError, cannot_write
from softreg.rundir.files import _umask
from softreg.rundir.names import RUN_FILES, RUN_FOLDERS, RUN_MARKER


def default_run_dir(name: str, root: str | os.PathLike[str] = "runs") -> Path:
    """A fresh ``runs/NAME-YYYYmmdd-HHMMSS`` (with ``-2``, ``-3``... if taken)."""
    base = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, counter = base, 1
    while candidate.exists():
        counter += 1
        candidate = base.with_name(f"{base.name}-{counter}")
    return candidate


def _ours(name: str) -> bool:
    """A file name softreg writes in an output directory: a known file, a lock or a temporary."""
    return name in RUN_FILES or name in (RUN_MARKER, LOCK_FILE) or _temporary(name)


def _temporary(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")  # atomic_open's ``.NAME.XXXXXXXX.tmp``


def foreign_entries(path: str | os.PathLike[str]) -> list[str]:
    """The entries of the directory ``path`` that softreg did not write, as paths relative to it
    (a folder of its own looked into, a symbolic link always foreign); empty for a run of softreg's."""
    path = Path(path)
    foreign = []
    for entry in sorted(os.scandir(path), key=lambda entry: entry.name):
        if entry.is_symlink():
            foreign.append(entry.name)
        elif entry.is_dir(follow_symlinks=False) and entry.name in RUN_FOLDERS:
            foreign += [f"{entry.name}/{name}" for name in _foreign_in_folder(Path(entry.path), entry.name)]
        elif not (entry.is_file(follow_symlinks=False) and _ours(entry.name)):
            foreign.append(entry.name + ("/" if entry.is_dir(follow_symlinks=False) else ""))
    return foreign


def _foreign_in_folder(folder: Path, name: str) -> list[str]:
    if name != "plots":
        return foreign_entries(folder)
    return [
        entry.name for entry in sorted(os.scandir(folder), key=lambda entry: entry.name)
        if not entry.is_file(follow_symlinks=False) or not (entry.name.endswith(".png") or _temporary(entry.name))
    ]


def is_softreg_run(path: str | os.PathLike[str]) -> bool:
    """True for a real directory (not a link) that carries softreg's marker and nothing of anyone else's."""
    path = Path(path)
    try:
        return (
            not path.is_symlink() and path.is_dir() and (path / RUN_MARKER).is_file()
            and not (path / RUN_MARKER).is_symlink() and not foreign_entries(path)
        )
    except OSError:
        return False


def write_marker(directory: str | os.PathLike[str], kind: str = "run") -> None:
    """Mark ``directory`` as made by softreg (the first file of every output directory)."""
    from softreg._version import __version__
    from softreg.rundir.files import write_json

    write_json(Path(directory) / RUN_MARKER, {"softreg": kind, "format_version": 1, "softreg_version": __version__})


def refuse_links(path: str | os.PathLike[str]) -> None:
    """Refuse (one line) a run directory that is, or holds, a symbolic link: softreg never writes
    or deletes through one, since the files it would touch belong to someone else."""
    path = Path(path)
    if path.is_symlink():
        raise OutputExistsError(f"{path}: is a symbolic link; softreg does not write through links: give the real path")
    if path.is_dir():
        links = [name for name in foreign_entries(path) if (path / name.rstrip("/")).is_symlink()]
        if links:
            raise OutputExistsError(
                f"{path / links[0]}: is a symbolic link; softreg does not write through links: remove it first"
            )


def check_output_dir(path: str | os.PathLike[str], force: bool) -> None:
    """Refuse an existing non-empty directory (or a file, or a link) unless ``force``; even with
    ``force``, replace only a directory of softreg's (`is_softreg_run`): never a user's folder, a
    folder with a file softreg did not write, a link or the current directory."""
    path = Path(path)
    check_name_length(path)
    if path.is_symlink():
        raise OutputExistsError(
            f"{path}: is a symbolic link; softreg does not write through links: choose another --out"
        )
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{path}: exists and is not a directory; choose another --out")
    if not path.is_dir() or not any(path.iterdir()):
        return
    if not (path / RUN_MARKER).is_file() or (path / RUN_MARKER).is_symlink():
        raise OutputExistsError(
            f"{path}: exists and is not a softreg output directory (no {RUN_MARKER} marker); "
            "choose another --out (softreg replaces only directories it made)"
        )
    foreign = foreign_entries(path)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise OutputExistsError(
            f"{path}: holds entries softreg did not write ({shown}); refusing to replace it even with --force"
        )
    if not force:
        raise OutputExistsError(f"{path}: run directory already exists and is not empty; use --force to replace it")
    if Path.cwd().resolve().is_relative_to(path.resolve()):
        raise OutputExistsError(
            f"{path}: is the current directory or contains it; refusing to replace it even with --force"
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
    target = _absolute(target)
    check_output_dir(target, force)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # the hidden name carries at most 200 bytes of the target's, so that any name that fits fits staged
        short = os.fsencode(target.name)[:200].decode("utf-8", "ignore") or "run"
        staging = Path(tempfile.mkdtemp(prefix=f".{short}.staging-", dir=target.parent))
        os.chmod(staging, 0o777 & ~_umask())
    except FileExistsError:  # mkdir met a file where a folder of the path should be
        raise OutputPathError(
            f"{target}: cannot create the run directory (a file is in the way of its folder); choose another --out"
        ) from None
    except OSError as error:
        raise cannot_write(target, error, "cannot create the run directory") from None
    try:
        write_marker(staging)  # first: whatever follows, the directory says who made it
        if lock:
            try:
                _LOCKS[str(target)] = _lock(staging, target)
            except OSError as error:
                raise cannot_write(target, error, "cannot lock the run directory") from None
        yield staging
        _commit(staging, target, force)
    except BaseException:
        _unlock(str(target))
        shutil.rmtree(staging, ignore_errors=True)
        raise

def check_name_length(path: str | os.PathLike[str], flag: str = "--out") -> None:
    """Refuse (exit 2, before anything is written) an output name longer than its file system allows.

    Any name that fits is staged: the hidden sibling carries at most 200 bytes of it (`staging_dir`).
    """
    target = Path(os.path.abspath(path))
    existing = next((folder for folder in target.parents if folder.is_dir()), Path("/"))
    try:
        name_max = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    size = len(os.fsencode(target.name))
    if size > name_max:
        raise OutputPathError(
            f"{flag} {target.name[:40]}...: a name of {size} bytes; the file system allows at most {name_max}"
        )


def _absolute(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute without following a link in its last part (which is then refused)."""
    path = Path(path)
    if path.name in ("", ".", ".."):  # "." and "runs/.." have no name to stage beside
        return path.resolve()
    return path.parent.resolve() / path.name


LOCK_FILE = ".softreg-lock"
_LOCKS: dict[str, int] = {}  # run directory -> the descriptor holding its lock

def _lock(directory: Path, name: Path) -> int:
    """An exclusive lock on ``directory``'s lock file (it follows the directory through renames)."""
    import fcntl

    try:  # never through a link: a lock file pointing elsewhere would create or open a file there
        descriptor = os.open(directory / LOCK_FILE, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise OutputExistsError(
                f"{name / LOCK_FILE}: is a symbolic link; softreg does not write through links: remove it first"
            ) from None
        raise  # the caller says what could not be written, and why it matters
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        raise OutputExistsError(
            f"{name}: in use by another softreg process; wait for it or choose another --out"
        ) from None
    return descriptor

def claim(run_dir: str | os.PathLike[str]) -> None:
    """Lock an existing run directory for this process (``--resume``), or refuse if another holds it
    (an OSError where the lock file cannot be made: the caller says what that means)."""
    refuse_links(run_dir)
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

    def make_way(target: Path) -> bool:
        if target.is_dir() and not any(target.iterdir()):
            mode = target.stat().st_mode
            if not os.access(target, os.W_OK) or not mode & 0o200:
                raise OutputExistsError(f"{target}: exists and is not writable; choose another --out")
            target.rmdir()  # an empty directory of the user's gives way to the run directory
            return False
        if target.exists() and force:
            check_output_dir(target, force)  # again: files may have appeared while the run trained
            if (target / LOCK_FILE).exists():
                os.close(_lock(target, target))  # refuses a directory in use
            return True
        return False

    swap_into(staging, target, make_way, "--out", "the run directory")


def swap_into(staging: Path, target: Path, make_way: Callable[[Path], bool], option: str, what: str) -> None:
    """Rename the folder ``staging`` onto ``target``. Where ``target`` is there, ``make_way(target)``
    first checks it may go (raising when not) and either removes it itself (False) or asks for it to
    be retired (True): moved aside, put back if the rename fails, removed only once ``staging`` is in
    place. A name taken meanwhile is an OutputExistsError naming ``option``."""
    retired = None
    try:
        if (target.exists() or target.is_symlink()) and make_way(target):
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, retired)
        os.rename(staging, target)
    except OSError as error:
        if retired is not None and not target.exists():
            os.rename(retired, target)
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise OutputExistsError(f"{target}: was created by another process meanwhile; choose another {option}"
                                    ) from None
        raise cannot_write(target, error, f"cannot create {what}") from None
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> None:
    """Delete temporary files that a killed process left behind (``.NAME.*.tmp``)."""
    directory = Path(directory)
    folders = [directory] + [directory / "plots"] * (not (directory / "plots").is_symlink())
    for path in [path for folder in folders for path in folder.glob(".*.tmp")]:
        path.unlink(missing_ok=True)  # a link among them is removed itself, never what it points to
