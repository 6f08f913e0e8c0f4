"""Scoring a table cut into parts (a Parquet folder's files): one task per part, run in this
process (``engine.kind: numpy``) or as one Dask task per part on the workers (``dask``), the
answers returned in part order.

A task is a plain function of one picklable argument that reads its part, scores it and returns
something small (a row count, metric sums): the process that asks reads no rows. Both engines call
the same function on the same part, so their answers are the same; the caller adds them in part
order. A task that fails raises its own error here (a `softreg.errors.DataError` naming its part
stays one). A worker lost mid-task has its task run again by Dask on another worker: a task must
therefore be idempotent (write its output by rename, never append).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

from softreg.config import EngineConfig
from softreg.errors import ConfigError, UsageError
from softreg.io import remote
from softreg.io.kinds import check_file, source_kind
from softreg.io.parquet_files import parquet_files

Task = TypeVar("Task")
Answer = TypeVar("Answer")

ENGINES = ("numpy", "dask")


def saved_engine(
    run_dir: str | os.PathLike[str], kind: str | None = None, scheduler: str | None = None
) -> EngineConfig:
    """The engine that scores with a run: its config's ``engine`` section (numpy for a run saved
    without one), ``kind`` and ``scheduler`` (``--engine``, ``--scheduler``) overriding it."""
    from softreg.config import read_yaml
    from softreg.rundir.names import CONFIG

    try:
        saved = read_yaml(Path(run_dir) / CONFIG).get("engine")
    except ConfigError:
        saved = None
    saved = saved if isinstance(saved, dict) else {}
    default = EngineConfig()
    workers = saved.get("workers", default.workers)
    saved_kind = saved.get("kind")
    return EngineConfig(
        kind=kind or (saved_kind if isinstance(saved_kind, str) and saved_kind in ENGINES else default.kind),
        scheduler=scheduler if scheduler is not None else saved.get("scheduler", default.scheduler),
        workers=workers if isinstance(workers, int) and workers >= 1 else default.workers,
    )


def parquet_parts(source: str, needs: str) -> list[str]:
    """The parts of a Parquet ``source``, as paths or URLs: a file is its one part, a folder its
    ``*.parquet`` files in the order the Parquet reader reads them (`parquet_files`). Anything
    else is refused in one line saying that ``needs`` (what asked) needs Parquet input."""
    refused = UsageError(f"{source}: {needs} needs Parquet input (a Parquet file or a folder of them)")
    if source == "-":
        raise refused
    if remote.is_url(source) or not os.path.isdir(source):
        check_file(source, Path(source))  # a missing file or bucket said as such; a pipe named .parquet refused
    if source_kind(source) != "parquet":
        raise refused
    return [str(path) for path in parquet_files(source)]


def map_parts(engine: EngineConfig, work: Callable[[Task], Answer], tasks: Sequence[Task]) -> list[Answer]:
    """``[work(task) for task in tasks]``, in this process or on the Dask cluster of ``engine``.

    Parameters
    ----------
    engine : `EngineConfig`; ``kind`` ``numpy`` runs here, ``dask`` joins ``scheduler`` (``local``:
        a cluster of ``workers`` processes started for the call) with `softreg.engine.cluster.join`
        and its checks (exit 2 when dask is missing, the scheduler cannot be reached, too few
        workers join or their code differs)
    work : a module-level function (Dask sends it to the workers by reference)
    tasks : one argument per part, in part order

    Returns
    -------
    The answers in the order of ``tasks``.
    """
    if engine.kind != "dask":
        return [work(task) for task in tasks]
    from softreg.engine.cluster import join

    joined = join(engine)
    try:
        # pure=False: each part is its own task even when two arguments compare equal
        futures = joined.client.map(work, list(tasks), pure=False)
        return list(joined.client.gather(futures))
    finally:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            joined.close()


def part_rows(part: str) -> int | None:
    """The rows the footer of Parquet file ``part`` counts (0 for a part a writer left empty, as
    Spark and Dask do); None when it cannot be read, so that the reader says why."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        return None
    with ExitStack() as stack:
        source = stack.enter_context(remote.open_binary(part)) if remote.is_url(part) else part
        try:
            return int(pyarrow.parquet.ParquetFile(source).metadata.num_rows)
        except (pyarrow.ArrowException, OSError):
            return None
