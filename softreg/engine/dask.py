"""The Dask engine: each worker's shards one `ShardGroup` actor there, opened by path.

Each step sends the weights to every actor and gathers their `PartialSums` in shard order;
the driver adds them (`softreg.train.sharded`). Nothing but the weights and the sums travel:
the rows never leave the workers' disks. An actor whose worker is lost is made again from
its shards' specs on a live worker, told the epoch, and asked again: its answers depend on
(rows, key, step, weights) only, so the run is unchanged.

The cluster is joined, and this engine made, by `softreg.engine.cluster`, the one module that
imports dask (only when a run asks for it: `pip install 'softreg[dask]'`).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from softreg.engine.shards import ShardGroup, ShardSpec
from softreg.errors import ClusterError, SoftregError, warn
from softreg.evaluate import MetricSums
from softreg.model import Model
from softreg.train import PartialSums

if TYPE_CHECKING:
    from softreg.cache.rows import Manifest
    from softreg.config import Config

Answer = TypeVar("Answer")  # what each shard answers a call with

WORKERS_SECONDS = 30.0  # for engine.workers workers to join (and, after a loss, for one to be left)
REPLAYS = 3  # times one call is replayed on a re-created actor before the run fails
POLL_SECONDS = 1.0  # between looks at whether the worker of a call still waited for is alive
SHARE_STEPS = 32  # steps measured before the communication share is judged (once)


@dataclass
class _Group:
    """A `ShardGroup` actor: the shards it holds, its worker, the future that keeps it alive, its proxy."""

    specs: dict[str, list[ShardSpec]]
    worker: str
    future: Any
    proxy: Any


@dataclass
class Timing:
    """The engine's account of its time: what `comm_seconds` reports and the advice judges."""

    comm: float = 0.0  # seconds of every call not spent computing on the workers
    step_wall: float = 0.0  # seconds of the training steps, round trips included
    step_comm: float = 0.0  # of those, not spent computing
    steps: int = 0
    judged: bool = False
    batch_size: int = 0

    def advice(self) -> str | None:
        """The warning when communication took more than half of the steps so far, else None."""
        if self.steps == 0 or self.step_comm <= 0.5 * self.step_wall:
            return None
        return (
            f"dask: communication takes {self.step_comm / self.step_wall:.0%} of each step "
            f"({1e3 * self.step_wall / self.steps:.2f} ms a step); a larger optim.batch_size (now {self.batch_size}) "
            "or engine.kind: numpy would train faster"
        )


def _worker_lost(error: BaseException) -> bool:
    """Whether an actor's call failed because its worker went away (a closed connection, or
    dask's "Worker holding Actor was lost"), not because the actor raised."""
    return isinstance(error, OSError) or (isinstance(error, RuntimeError) and "was lost" in str(error))


class DaskEngine:
    """The shards on ``workers``, shard s of each part on worker s mod W, each worker's as one
    `ShardGroup` actor (one round trip per worker a step); answers in shard order."""

    def __init__(self, client: Any, cluster: Any, workers: list[str], specs: dict[str, list[ShardSpec]],
                 holders: dict[str, list[str | None]] | None = None) -> None:
        self.client, self.cluster, self.workers = client, cluster, workers
        self.epochs: dict[str, tuple[int, int]] = {}  # part -> its epoch's (key, rows), told to new actors
        self.samples: dict[str, tuple[int, int, bool, float]] = {}  # part -> lr: auto's sample, taken by new actors
        self.held: dict[str, tuple[Any, ...]] = {}  # part -> the last cert_begin, made again by new actors
        self.timing = Timing()
        self.lost: set[str] = set()  # workers whose actors failed: not chosen again
        self.warned: set[str] = set()
        self.n_shards = {part: len(part_specs) for part, part_specs in specs.items()}
        self.placed: tuple[Manifest, Config] | None = None  # a cache on the workers: lost shards are written again
        self.groups: list[_Group] = []
        if holders is not None:  # a cache on the workers: each shard where its files are
            workers = sorted({worker for part in holders.values() for worker in part if worker is not None})
        for index, worker in enumerate(workers):
            held = {part: [spec for spec in part_specs
                           if (holders[part][spec.shard] == worker if holders is not None
                               else spec.shard % len(workers) == index)]
                    for part, part_specs in specs.items()}
            self.groups.append(self._create(held, worker))

    def placement(self, part: str) -> list[str]:
        """The worker of each shard of ``part``, in shard order."""
        where = {spec.shard: group.worker for group in self.groups for spec in group.specs[part]}
        return [where[shard] for shard in range(self.n_shards[part])]

    def _create(self, specs: dict[str, list[ShardSpec]], worker: str) -> _Group:
        future = self.client.submit(
            ShardGroup, specs, actor=True, workers=[worker], allow_other_workers=False, pure=False
        )
        try:
            proxy = future.result(timeout=WORKERS_SECONDS)
        except (OSError, ValueError) as error:
            path = next(spec.X_path for part_specs in specs.values() for spec in part_specs)
            raise ClusterError(
                f"worker {worker} cannot open the data cache at {path} ({error.__class__.__name__}): "
                "every worker must see data.cache at the same path"
            ) from None
        except ImportError as error:
            raise ClusterError(f"worker {worker} cannot import softreg ({error}); install softreg[dask]") from None
        return _Group(specs, worker, future, proxy)

    def begin_epoch(self, part: str, key: int, rows: int) -> None:
        self._judge_share()
        self.epochs[part] = (key, rows)
        if part == "train":
            self.timing.batch_size = rows * self.n_shards[part]
        self._gather(part, "begin_epoch", (key, rows))

    def step(self, part: str, step: int, coef: np.ndarray, intercept: np.ndarray) -> list[PartialSums]:
        started = time.perf_counter()
        answers = self._gather(part, "step", (step, coef, intercept))
        wall = time.perf_counter() - started
        comm = self._comm(answers, wall)
        if part == "train":
            timing = self.timing
            timing.step_wall += wall
            timing.step_comm += comm
            timing.steps += 1
            if timing.steps == SHARE_STEPS:
                self._judge_share()
        return self._in_shard_order(part, answers)

    def full(self, part: str, coef: np.ndarray, intercept: np.ndarray) -> list[PartialSums]:
        started = time.perf_counter()
        answers = self._gather(part, "full", (coef, intercept))
        self._comm(answers, time.perf_counter() - started)
        return self._in_shard_order(part, answers)

    def sample(self, part: str, rows: int, n_total: int, whole: bool, intercept: float) -> list[tuple[int, float]]:
        self.samples[part] = (rows, n_total, whole, intercept)
        return self._in_shard_order(part, self._gather(part, "sample", (rows, n_total, whole, intercept)))

    def gram(self, part: str, vector: np.ndarray, intercept: float) -> list[np.ndarray]:
        return self._in_shard_order(part, self._gather(part, "gram", (vector, intercept)))

    def metrics(self, part: str, model: Model, keep: int) -> list[tuple[MetricSums, np.ndarray, np.ndarray]]:
        return self._in_shard_order(part, self._gather(part, "metrics", (model, keep)))

    def each(self, part: str, method: str, args: tuple[Any, ...]) -> list[Any]:
        if method == "cert_begin":
            self.held[part] = args
        return self._in_shard_order(part, self._gather(part, "each", (method, args)))

    def comm_seconds(self) -> float | None:
        return self.timing.comm

    def close(self) -> None:
        self.groups.clear()
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()

    def _in_shard_order(self, part: str, answers: list[list[Answer]]) -> list[Answer]:
        ordered: list[Answer | None] = [None] * self.n_shards[part]
        for group, sums in zip(self.groups, answers, strict=True):
            for spec, partial in zip(group.specs[part], sums, strict=True):
                ordered[spec.shard] = partial
        return [partial for partial in ordered if partial is not None]

    def _comm(self, answers: list[list[PartialSums]], wall: float) -> float:
        """The call's seconds not spent computing: the shards of one worker compute one after
        another, the workers side by side, so the computing takes the busiest worker's sum."""
        busy: dict[str, float] = {}
        for group, sums in zip(self.groups, answers, strict=True):
            busy[group.worker] = busy.get(group.worker, 0.0) + sum(partial.seconds for partial in sums)
        comm = max(0.0, wall - max(busy.values(), default=0.0))
        self.timing.comm += comm
        return comm

    def _judge_share(self) -> None:
        """Once, after SHARE_STEPS steps (or the first epoch, if shorter): warn when communication
        takes more than half of each step."""
        timing = self.timing
        if timing.judged or timing.steps == 0:
            return
        timing.judged = True
        advice = timing.advice()
        if advice is not None:
            warn(advice)

    def _gather(self, part: str, method: str, args: tuple[Any, ...]) -> list[Any]:
        """Call ``method`` on every group at once for ``part``; their answers in the groups' order."""
        calls = [self._start(group, method, (part, *args)) for group in self.groups]
        return [self._answer(index, call, method, (part, *args)) for index, call in enumerate(calls)]

    @staticmethod
    def _start(group: _Group, method: str, args: tuple[Any, ...]) -> Any:
        """The call in flight, or None when the actor is known lost already (`_answer` replaces it)."""
        try:
            return getattr(group.proxy, method)(*args)
        except (OSError, RuntimeError) as error:
            if not _worker_lost(error):
                raise
            return None

    def _answer(self, index: int, call: Any, method: str, args: tuple[Any, ...]) -> Any:
        """Group ``index``'s answer; when its worker is lost, the same call to the group made again."""
        for replay in range(REPLAYS + 1):
            try:
                if call is None:
                    call = getattr(self.groups[index].proxy, method)(*args)
                return self._wait(call, self.groups[index].worker)
            except (OSError, RuntimeError) as error:
                if not _worker_lost(error):
                    raise
                if replay == REPLAYS:
                    raise SoftregError(
                        f"dask: the shards of worker {self.groups[index].worker} were lost {REPLAYS + 1} times; "
                        "stopping (the last checkpoint resumes the run: train --resume)"
                    ) from error
            self._replace(index)
            call = None
        raise AssertionError("unreachable: the loop returns or raises")

    def _wait(self, call: Any, worker: str) -> Any:
        """The call's answer. A call sent to a worker that just died waits out dask's connect
        timeout (30 s) before it fails: every POLL_SECONDS the worker is looked up instead, and
        a worker the scheduler no longer has counts as lost at once."""
        while True:
            try:
                return call.result(timeout=POLL_SECONDS)
            except TimeoutError:
                if worker not in self.client.scheduler_info()["workers"]:
                    raise OSError(f"worker {worker} left the cluster") from None

    def _replace(self, index: int) -> None:
        """Make group ``index`` again, from its specs, on the live worker holding the fewest
        shards, and tell it the current epochs: it then answers as the lost one would have."""
        old = self.groups[index]
        old.future.release()
        self.lost.add(old.worker)
        live = self._live_workers()
        held = {worker: 0 for worker in live}
        for group in self.groups:
            if group.worker in held:
                held[group.worker] += sum(len(part_specs) for part_specs in group.specs.values())
        worker = min(live, key=lambda name: (held[name], name))
        specs, how = old.specs, "opened again"
        if self.placed is not None:
            specs, how = self._rewritten(old.specs, worker, live)
        group = self.groups[index] = self._create(specs, worker)
        for part, (key, rows) in self.epochs.items():
            group.proxy.begin_epoch(part, key, rows).result()
        for part, sample in self.samples.items():  # lr: auto's sample, which gram calls read
            group.proxy.sample(part, *sample).result()
        for part, began in self.held.items():  # the certificate's logits, which its later calls read
            group.proxy.each(part, "cert_begin", began).result()
        if old.worker not in self.warned:
            self.warned.add(old.worker)
            warn(f"dask: worker {old.worker} was lost; its shards are {how} on {worker} "
                 "and the step is replayed (the result is unchanged)")

    def _rewritten(self, specs: dict[str, list[ShardSpec]], worker: str, live: list[str]
                   ) -> tuple[dict[str, list[ShardSpec]], str]:
        """``specs`` as ``worker`` opens them: the shards it holds as they are, the others written
        again there from the source (`softreg.engine.ingest.rebuild_shards`) and recorded in the
        manifest; and how, for the warning."""
        from softreg.engine.ingest import rebuild_shards
        from softreg.engine.joined import Joined
        from softreg.engine.placed import placed_specs
        from softreg.engine.placement import held_shards, record

        assert self.placed is not None
        manifest, config = self.placed
        placement = manifest.document["placement"]
        found = self.client.run(held_shards, {part: placement[part] for part in specs}, workers=[worker])
        held = {tuple(item) for item in found.get(worker, [])}
        lost = {part: [spec.shard for spec in part_specs if (part, spec.shard) not in held]
                for part, part_specs in specs.items()}
        lost = {part: shards for part, shards in lost.items() if shards}
        if not lost:
            return specs, "opened again"
        rebuilt = rebuild_shards(config, Joined(self.client, None, "", live), manifest, lost, worker)
        for part, entries in rebuilt.items():
            for shard, entry in zip(lost[part], entries, strict=True):
                record(manifest, part, shard, entry)
        now = placed_specs(manifest)
        return {part: [now[part][spec.shard] for spec in part_specs] for part, part_specs in specs.items()}, (
            "written again from the source")

    def _live_workers(self) -> list[str]:
        deadline = time.monotonic() + WORKERS_SECONDS
        while True:
            live = sorted(set(self.client.scheduler_info()["workers"]) - self.lost)
            if live:
                return live
            if time.monotonic() > deadline:
                raise SoftregError(f"dask: no worker left after {WORKERS_SECONDS:g} s; the last checkpoint resumes "
                                   "the run (train --resume)")
            time.sleep(0.2)
