"""The hidden directories ingest builds a cache in, and the removal of those a killed ingest left.

An ingest builds beside its target, in ``.<name>.ingest-<pid>-<random>``, and writes first into
it a marker naming the machine and the process. A process killed with SIGKILL cannot clean up,
so every later ingest, and every run that opens a cache, removes in the cache's folder the
staging directories whose marker names this machine and a process that is gone, whichever
cache they were for. A folder without the marker is not softreg's and is never touched; nor is
one of another machine (its process cannot be looked up from here), nor a running ingest's.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path

from softreg.rundir.files import _umask

MARKER = ".softreg-ingest"


def make_staging(target: Path) -> Path:
    """A fresh staging directory for ``target``, readable as the umask allows, with its marker."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.ingest-{os.getpid()}-", dir=target.parent))
    os.chmod(staging, 0o777 & ~_umask())  # mkdtemp's 0700 would hide the cache from other users
    (staging / MARKER).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    return staging


def unmark(staging: Path) -> None:
    """Remove the marker: the directory is about to become the cache."""
    (staging / MARKER).unlink(missing_ok=True)


def remove_abandoned(folder: Path) -> None:
    """Remove the staging directories in ``folder`` that a killed ingest on this machine left."""
    try:
        entries = list(folder.glob(".*.ingest-*"))
    except OSError:
        return
    for staging in entries:
        if _abandoned(staging):
            shutil.rmtree(staging, ignore_errors=True)


def _abandoned(staging: Path) -> bool:
    try:
        if not stat.S_ISDIR(os.lstat(staging).st_mode) or not stat.S_ISREG(os.lstat(staging / MARKER).st_mode):
            return False
        owner = json.loads((staging / MARKER).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    if not isinstance(owner, dict) or owner.get("host") != socket.gethostname():
        return False
    pid = owner.get("pid")
    return isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 and not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OverflowError:  # a pid no process can have
        return False
    except PermissionError:  # another user's process
        return True
    return True
