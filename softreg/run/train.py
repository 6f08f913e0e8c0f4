"""A config trained into a run directory: staged config first, checkpoints while it trains,
the finished run last."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from softreg import rundir
from softreg.config import Config, dump_config
from softreg.engine.placed import PlacedPart
from softreg.errors import ClusterError, DivergedError, Interrupted
from softreg.prepare.data import Prepared, random_streams
from softreg.run.finish import TrainOutcome, finish_run
from softreg.run.prepare import data_fingerprint, prepare_for
from softreg.train import AUTO, EpochCallback, FitResult, TrainingData, TrainingState, auto_learning_rate, fit
from softreg.train.state import checkpoint_interval


def train_run(
    config: Config,
    target: str | PathLike[str],
    force: bool = False,
    on_epoch: EpochCallback | None = None,
    on_learning_rate: Callable[[float], None] | None = None,
    on_engine: Callable[[Any], None] | None = None,
) -> TrainOutcome:
    """Load, split and standardize, then train into the run directory ``target``.

    The data are loaded before anything is written, so bad data leave no trace. The
    directory appears with its config.yaml only (made in a hidden staging directory and
    renamed); a checkpoint follows every ``output.checkpoint_every`` epochs, and
    model.npz comes last. A diverged run's directory is removed. ``optim.lr: auto`` is
    chosen from the training part first and saved as that number (so that ``--resume``
    reads it back); ``on_learning_rate(lr)`` hears of it. With ``engine.kind: dask``,
    ``on_engine(info)`` hears of the cluster (`softreg.engine.cluster.EngineInfo`) before epoch 1.
    """
    streams = random_streams(config.seed)
    prepared = prepare_for(config, streams.split)
    chosen = config.optim.lr == AUTO
    with training_parts(config, prepared, on_engine) as parts:  # a cluster that cannot start leaves no trace
        if chosen:
            config = config.with_learning_rate(auto_learning_rate(parts.train, config.training_settings()))
        with rundir.staging_dir(target, force=force, lock=True) as staging:
            rundir.write_text(staging / rundir.CONFIG, dump_config(config))
        if chosen and on_learning_rate is not None:  # said once the run directory is there, before epoch 1
            on_learning_rate(float(config.optim.lr))
        try:
            try:
                result = fit_with_checkpoints(config, prepared, streams.batches, target, on_epoch, parts=parts)
            except DivergedError:
                rundir.release(target)
                shutil.rmtree(target, ignore_errors=True)
                raise
            except (ClusterError, KeyboardInterrupt):  # a run that could not start: rerunning the command must work
                if not (Path(target) / rundir.CHECKPOINT).exists():
                    rundir.release(target)
                    shutil.rmtree(target, ignore_errors=True)
                raise
            return finish(config, prepared, result, target, parts.scored)
        finally:
            rundir.release(target)


def fit_with_checkpoints(
    config: Config,
    prepared: Prepared,
    batch_rng: np.random.Generator,
    run_dir: str | PathLike[str],
    on_epoch: EpochCallback | None,
    start: TrainingState | None = None,
    parts: Parts | None = None,
) -> FitResult:
    """`fit` with a checkpoint every ``output.checkpoint_every`` epochs; on Ctrl-C or
    SIGTERM the last completed epoch is checkpointed before `Interrupted` propagates.
    ``parts``: what `training_parts` yields (default: ``prepared``'s own parts)."""

    fingerprint = data_fingerprint(prepared)

    def save(state: TrainingState) -> None:
        rundir.save_checkpoint(run_dir, state, {"data_fingerprint": fingerprint})

    train, val = (prepared.train, prepared.val) if parts is None else (parts.train, parts.val)
    try:
        return fit(
            train,
            len(prepared.classes),
            config.training_settings(),
            batch_rng,
            val=val,
            on_epoch=on_epoch,
            start=start,
            on_checkpoint=save,
            checkpoint_every=_checkpoint_every(config, train, len(prepared.classes)),
        )
    except Interrupted as interrupted:
        if interrupted.state is not None and not interrupted.saved:
            save(interrupted.state)
        interrupted.run_dir = Path(run_dir)
        raise


class Parts(NamedTuple):
    """The parts `fit` trains on; for a cache on the Dask workers, the part on the engine that the run's
    metrics are summed over (``scored``: test, else validation, else training) and its name."""

    train: TrainingData
    val: TrainingData | None
    scored: tuple[str, TrainingData] | None = None


@contextmanager
def training_parts(config: Config, prepared: Prepared, on_engine: Callable[[Any], None] | None) -> Iterator[Parts]:
    """The parts `fit` trains on: ``prepared``'s own, or their shards on the configured engine
    (``data.shards > 1`` or ``engine.kind: dask``), which stays open until the run is finished."""
    from softreg import engine

    if not engine.sharded(config):
        yield Parts(prepared.train, prepared.val)
        return
    with engine.open_engine(config, prepared.train, prepared.val, on_engine, prepared.test) as sharded:
        scored = None
        if isinstance(prepared.train, PlacedPart):  # as finish_run chooses the evaluated part
            scored = ("test", sharded.test) if sharded.test is not None else (
                ("validation", sharded.val) if sharded.val is not None else ("train", sharded.train))
        yield Parts(sharded.train, sharded.val, scored)


def finish(
    config: Config, prepared: Prepared, result: FitResult, run_dir: str | PathLike[str],
    scored: tuple[str, TrainingData] | None = None,
) -> TrainOutcome:
    """`finish_run`, where an interruption leaves the finished checkpoint for --resume."""
    try:
        return finish_run(config, prepared, result, run_dir, scored)
    except KeyboardInterrupt:
        stop = Interrupted(result.state, saved=True)
        stop.run_dir = Path(run_dir)
        raise stop from None


def _checkpoint_every(config: Config, train: TrainingData, n_classes: int) -> int:
    """``output.checkpoint_every``, its "auto" from the training part's size (`checkpoint_interval`)."""
    every = config.output.checkpoint_every
    if isinstance(every, int):
        return every
    return checkpoint_interval(train.n_samples, train.n_features, n_classes, config.optim.batch_size)
