"""Joining a Dask cluster for the Dask engine: a local one, or the scheduler at an address
(probed first, since distributed waits on a silent server forever), then the checks that every
worker runs the same code, and what was found (`EngineInfo`), printed before the first epoch.

Dask is imported here only, and only when a run asks for it (`pip install 'softreg[dask]'`).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from softreg.config import EngineConfig
from softreg.engine import dask as dask_engine
from softreg.engine.dask import DaskEngine
from softreg.engine.identity import running_code
from softreg.engine.joined import Joined
from softreg.engine.probe import NOT_DASK, check_scheduler
from softreg.engine.shards import ShardSpec

if TYPE_CHECKING:
    from softreg.cache.rows import Manifest
    from softreg.config import Config
from softreg.errors import ClusterError, warn

CONNECT_SECONDS = 10.0  # to reach the scheduler
PACKAGES = ("softreg", "numpy")  # the code running them must match on the driver and every worker: the bits do


@dataclass
class EngineInfo:
    """What the run trains on: printed before the first epoch."""

    scheduler: str
    dashboard: str | None
    workers: list[str]
    placement: list[str]  # the worker of each training shard
    local: bool = False


def join(config: EngineConfig) -> Joined:
    """The cluster of ``config``, its versions checked and ``config.workers`` workers joined.

    Raises ClusterError (exit 2) when dask is missing, the scheduler cannot be reached, fewer
    than ``config.workers`` workers join, or versions differ.
    """
    try:
        import distributed
    except ImportError:
        raise ClusterError(
            "engine.kind: dask needs dask: pip install 'softreg[dask]' (from a clone of the repository: "
            "pip install '.[dask]')"
        ) from None
    client, cluster, address = _client(distributed, config)
    joined = Joined(client, cluster, address, [])
    try:
        _check_versions(client, address)
        try:
            client.wait_for_workers(config.workers, timeout=dask_engine.WORKERS_SECONDS)
        except (TimeoutError, distributed.TimeoutError):
            found = len(client.scheduler_info()["workers"])
            raise ClusterError(
                f"engine.scheduler {address}: {found} worker(s) joined within {dask_engine.WORKERS_SECONDS:g} s; "
                f"engine.workers is {config.workers} (start more with: dask worker {address})"
            ) from None
        joined.workers = sorted(client.scheduler_info()["workers"])[: config.workers]
    except BaseException:
        joined.close()
        raise
    return joined


def connect(
    config: EngineConfig, specs: dict[str, list[ShardSpec]], placed: Manifest | None = None,
    run_config: Config | None = None,
) -> tuple[DaskEngine, EngineInfo]:
    """A `DaskEngine` on the cluster of ``config`` holding ``specs``' shards, and what it found;
    for a cache on the workers (``placed``, its manifest; ``run_config`` the config it was ingested
    with, to write lost shards again) each shard on the worker that holds it.

    Raises ClusterError (exit 2) as `join` does, when the workers cannot open the shards, and when
    no live worker holds a shard of ``placed`` (naming the command that writes them again).
    """
    from softreg.engine.placement import locate, lost

    joined = join(config)
    try:
        holders = None
        if placed is not None:
            holders = locate(placed, joined)
            missing = lost(holders, placed)
            if missing is not None:
                raise ClusterError(
                    f"{placed.directory}: {missing}; write them again on the workers: softreg ingest --config "
                    f"{(run_config.path if run_config else None) or 'CONFIG'} (with the same engine settings)"
                )
        engine = DaskEngine(joined.client, joined.cluster, joined.workers, specs, holders)
        if placed is not None and run_config is not None:
            engine.placed = (placed, run_config)
    except BaseException:
        joined.close()
        raise
    info = EngineInfo(joined.address, _dashboard(joined.client), joined.workers, engine.placement("train"),
                      local=joined.cluster is not None)
    return engine, info


def _client(distributed: Any, config: EngineConfig) -> tuple[Any, Any, str]:
    """A connected client, the local cluster it owns (or None) and the scheduler's address."""
    import dask

    if config.scheduler == "local":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "port in use, using another": dashboard_address ":0" asks for any
            cluster = distributed.LocalCluster(
                n_workers=config.workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                silence_logs=logging.CRITICAL,  # a task that raises is the error softreg reports once
            )
        return distributed.Client(cluster, direct_to_workers=True), cluster, cluster.scheduler_address
    address = config.scheduler or dask.config.get("scheduler-address", None)
    if not address:
        raise ClusterError(
            "engine.scheduler is null and dask has no scheduler-address (DASK_SCHEDULER_ADDRESS); "
            "set engine.scheduler: tcp://HOST:8786, or local for a cluster on this machine"
        )
    check_scheduler(address, CONNECT_SECONDS)  # distributed waits on a silent server's handshake forever
    try:
        # the timeout bounds the connection and each of the scheduler's first answers
        client = distributed.Client(address, timeout=CONNECT_SECONDS, direct_to_workers=True)
    except (OSError, TimeoutError, ValueError):  # ValueError: an address dask cannot parse
        raise ClusterError(
            f"engine.scheduler {address}: cannot reach the Dask scheduler within {CONNECT_SECONDS:g} s "
            "(start one with: dask scheduler)"
        ) from None
    except MemoryError:  # a length in a message that no scheduler would send
        raise ClusterError(
            f"engine.scheduler {address}: the server sent a message of impossible length: {NOT_DASK}"
        ) from None
    return client, None, address


def _check_versions(client: Any, address: str) -> None:
    """dask's own check (required packages must match), then the code each worker runs: the
    softreg it imported (version and source digest) and numpy (`softreg.engine.identity`)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            client.get_versions(check=True)
        except ValueError as error:
            raise ClusterError(f"engine.scheduler {address}: {_version_table(str(error))}") from None
    here = running_code()
    try:
        answers = client.run(running_code)
    except ImportError as error:
        raise ClusterError(f"a worker cannot import softreg ({error}); install softreg[dask] on every worker") from None
    for worker, found in sorted(answers.items()):
        for name in PACKAGES:
            theirs = found.get(name) if isinstance(found, dict) else None
            if theirs != here[name]:
                raise ClusterError(
                    f"worker {worker} runs {name} {theirs or 'missing'}, this process {here[name]}: "
                    f"install the same softreg[dask] on every worker"
                )
    for message in caught:  # optional packages that differ: worth knowing, not fatal
        warn(f"engine.scheduler {address}: {_version_table(str(message.message))}")


def _version_table(text: str) -> str:
    """dask's version report (a line, then an ASCII table) on one line: the mismatched packages."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if line.startswith("|")]
    mismatched = [
        f"{row[0]} (client {row[1]}, scheduler {row[2]}, workers {row[3]})"
        for row in rows[1:] if len(row) == 4  # rows[0] is the table's header
    ]
    first = lines[0] if lines else "mismatched versions"
    return f"{first.rstrip(':')}: {'; '.join(mismatched)}" if mismatched else first


def _dashboard(client: Any) -> str | None:
    services = client.scheduler_info().get("services", {})
    if "dashboard" not in services:
        return None
    try:
        return str(client.dashboard_link)
    except (AttributeError, KeyError):
        return None
