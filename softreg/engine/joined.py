"""`Joined`: a Dask cluster joined (`softreg.engine.cluster.join`), what the engine, the distributed
ingest and the shards' placement use; apart so that they need not import one another."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Joined:
    """A cluster joined: its client, the local cluster it owns (or None), the scheduler's address and
    the ``engine.workers`` workers chosen (sorted by address)."""

    client: Any
    cluster: Any
    address: str
    workers: list[str]

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
