"""The code a process actually runs, for the driver and every Dask worker to compare.

Installed metadata (what ``importlib.metadata`` and dask's ``get_versions`` read) says which
distribution was installed, not which code was imported: a worker started with another
softreg checkout on ``PYTHONPATH`` reports the same version and computes other bits. So each
process describes the softreg it imported, its version and a SHA-256 of its source files, and
the numpy it imported.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path


@functools.cache
def source_digest() -> str:
    """SHA-256 (first 16 hex digits) of every ``.py`` file of the imported softreg package, by relative path."""
    package = Path(__file__).resolve().parent.parent  # softreg/, above engine/: the package imported
    hasher = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        hasher.update(path.relative_to(package).as_posix().encode() + b"\0")
        hasher.update(path.read_bytes() + b"\0")
    return hasher.hexdigest()[:16]


def running_code() -> dict[str, str]:
    """``{"softreg": "<version> (source <digest>)", "numpy": "<version>"}`` of this process."""
    import numpy

    from softreg._version import __version__

    return {"softreg": f"{__version__} (source {source_digest()})", "numpy": numpy.__version__}
