"""``softreg train``: a config into a run directory, with checkpoints and ``--resume``."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from softreg import rundir
from softreg.commands.common import save_run
from softreg.config import Config, dump_config, load_config
from softreg.errors import ClusterError, DataError, DivergedError, Interrupted, RunDirError, UsageError, warn
from softreg.evaluate import model_metrics
from softreg.model import Model
from softreg.prepare.data import Prepared, prepare, random_streams
from softreg.train import (
    AUTO,
    EpochCallback,
    FitResult,
    TrainingData,
    TrainingState,
    auto_learning_rate,
    fit,
)
from softreg.train.optim import resumed_schedule_note


@dataclass
class TrainOutcome:
    run_dir: Path
    metrics: dict[str, Any]
    training: dict[str, Any]
    already_finished: bool = False


def output_dir_for(config: Config, out: str | PathLike[str] | None = None) -> Path:
    """``--out``, else ``output.dir``, else a fresh ``runs/<config name>-<time>``."""
    if out is not None:
        return Path(out)
    if config.output.dir is not None:
        return Path(config.output.dir)
    name = Path(config.path).stem if config.path else "run"
    return rundir.default_run_dir(name)


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
    if chosen:
        config = config.with_learning_rate(auto_learning_rate(prepared.train, config.training_settings()))
    with rundir.staging_dir(target, force=force, lock=True) as staging:
        rundir.write_text(staging / "config.yaml", dump_config(config))
    if chosen and on_learning_rate is not None:  # said once the run directory is there, before epoch 1
        on_learning_rate(float(config.optim.lr))
    try:
        try:
            result = _fit_with_checkpoints(config, prepared, streams.batches, target, on_epoch, on_engine=on_engine)
        except DivergedError:
            rundir.release(target)
            shutil.rmtree(target, ignore_errors=True)
            raise
        except (ClusterError, KeyboardInterrupt):  # a run that could not start: rerunning the command must work
            if not (Path(target) / rundir.CHECKPOINT).exists():
                rundir.release(target)
                shutil.rmtree(target, ignore_errors=True)
            raise
        return _finish(config, prepared, result, target)
    finally:
        rundir.release(target)


# engine.scheduler and engine.workers say where the shards are, not what the model is (data.shards fixes that)
RESUMABLE_OVERRIDES = (
    "optim.epochs", "output.plots", "output.eval_every", "output.checkpoint_every", "engine.scheduler",
    "engine.workers",
)


def resume_run(
    run_dir: str | PathLike[str],
    overrides: Sequence[str] = (),
    on_epoch: EpochCallback | None = None,
    on_engine: Callable[[Any], None] | None = None,
) -> TrainOutcome:
    """Continue an interrupted run from its last checkpoint, or finish one killed while saving.

    The result is bit-identical to an uninterrupted run. ``optim.epochs`` may grow to
    train a finished run further; any other override that changes the model is refused.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: run directory not found")
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise RunDirError(f"{run_dir}: no config.yaml; not a softreg run directory")
    try:
        rundir.claim(run_dir)  # one process at a time continues a run
    except OSError as error:  # a read-only file system, a folder of another user's
        raise RunDirError(
            f"{run_dir}: cannot write there ({error.strerror or error}); --resume writes its checkpoints and "
            "model into the run directory: copy it to a writable place and resume the copy"
        ) from None
    try:
        return _resume(run_dir, overrides, on_epoch, on_engine)
    finally:
        rundir.release(run_dir)


def _resume(
    run_dir: Path, overrides: Sequence[str], on_epoch: EpochCallback | None, on_engine: Callable[[Any], None] | None
) -> TrainOutcome:
    config_path = run_dir / "config.yaml"
    rundir.remove_stale_temporaries(run_dir)
    saved = load_config(config_path)
    if not (run_dir / rundir.RUN_MARKER).is_file():
        rundir.write_marker(run_dir)  # a run of a softreg that predates the marker: its config is softreg's
    config = load_config(config_path, overrides)
    checkpoint = rundir.load_checkpoint(run_dir)
    state = checkpoint[0] if checkpoint is not None else None
    _check_resume(saved, config, overrides, state)
    if state is not None and state.finished and _loads(run_dir) and not _extends(state, config):
        return TrainOutcome(run_dir=run_dir, metrics={}, training={"epochs_run": state.epoch}, already_finished=True)
    streams = random_streams(config.seed)
    prepared = prepare_for(config, streams.split)
    if checkpoint is not None and checkpoint[1].get("data_fingerprint") not in (None, data_fingerprint(prepared)):
        raise RunDirError(
            f"{run_dir}: the training data changed since this run started ({config.data.source}); "
            "resuming would mix two datasets. Start a new run with --config"
        )
    if config.to_dict() != saved.to_dict():
        rundir.write_text(config_path, dump_config(config))
    if state is not None and state.finished and not _extends(state, config):
        result = state.result()  # killed while saving the final artifacts: write them, unchanged
    else:
        # a finished run trained further: its old model must not outlive the new epochs
        (run_dir / "model.npz").unlink(missing_ok=True)
        note = resumed_schedule_note(config.optim.schedule, float(config.optim.lr), state.epoch if state else 0,
                                     saved.optim.epochs, config.optim.epochs)
        if note is not None:
            warn(note)
        result = _fit_with_checkpoints(
            config, prepared, streams.batches, run_dir, on_epoch, start=state, on_engine=on_engine
        )
    return _finish(config, prepared, result, run_dir)


def _loads(run_dir: Path) -> bool:
    """Whether the run's saved model is complete and valid (a damaged one is rewritten on resume)."""
    try:
        rundir.load_model(run_dir)
        rundir.read_history(run_dir)
        rundir.read_metrics(run_dir / "metrics.json")
    except RunDirError:
        return False
    return True


def prepare_for(config: Config, split_rng: np.random.Generator) -> Prepared:
    """The parts to train on: from the data cache when ``data.cache`` is set, else loaded into memory."""
    if config.data.cache is not None:
        from softreg.cache import prepare_cached

        return prepare_cached(config)
    if config.data.source == "-":
        return prepare(config.data, np.dtype(config.model.dtype), split_rng)
    from softreg.cache import fingerprint

    before = None  # a file still being written would train on a part of it
    path = Path(config.data.source)
    if config.data.source.startswith("builtin:") or path.is_dir() or path.is_file():
        with contextlib.suppress(DataError):  # unreadable: `prepare` says so in its own words
            before = fingerprint(config.data.source)
    prepared = prepare(config.data, np.dtype(config.model.dtype), split_rng)
    if before is not None and fingerprint(config.data.source) != before:
        raise DataError(f"{config.data.source}: changed while it was being read; train again once it is complete")
    return prepared


FINGERPRINT_ROWS = 65536


def data_fingerprint(prepared: Prepared) -> str:
    """SHA-256 of the standardized training part and its classes: resume refuses other data.

    Dense rows are hashed a block at a time, so that a memory-mapped part is never copied whole.
    """
    digest = hashlib.sha256()
    X = prepared.train.X
    if isinstance(X, np.ndarray):
        release = getattr(prepared.train, "release", None)  # a cache part drops the pages it has read
        for start in range(0, X.shape[0], FINGERPRINT_ROWS):
            digest.update(np.ascontiguousarray(X[start:start + FINGERPRINT_ROWS]).tobytes())
            if release is not None:
                release()
    else:
        for array in (X.data, X.indices, X.indptr):
            digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(prepared.train.y.tobytes())
    digest.update("\x00".join(map(str, prepared.classes)).encode())
    return digest.hexdigest()


def _extends(state: TrainingState, config: Config) -> bool:
    """Whether ``config`` asks a finished run for more epochs (a run stopped early or certified is done)."""
    stopped = state.stopped_early or bool(state.summary and state.summary.get("stopped_by") == "tol")
    return not stopped and config.optim.epochs > state.epoch


def _check_resume(saved: Config, config: Config, overrides: Sequence[str], state: TrainingState | None) -> None:
    for assignment in overrides:
        key = assignment.partition("=")[0].strip()
        # with more than one shard the engines compute the same bits: a run may move between them
        engine_moves = key == "engine.kind" and saved.data.shards > 1
        if ".".join(key.split(".")[:2]) not in RESUMABLE_OVERRIDES and not engine_moves:
            raise UsageError(
                f"--set {key}: cannot change on --resume (it changes the model); start a new run with --config"
            )
    if state is not None and config.optim.epochs < state.epoch:
        raise UsageError(f"--set optim.epochs: optim.epochs must be at least the {state.epoch} epochs already run")


def _fit_with_checkpoints(
    config: Config,
    prepared: Prepared,
    batch_rng: np.random.Generator,
    run_dir: str | PathLike[str],
    on_epoch: EpochCallback | None,
    start: TrainingState | None = None,
    on_engine: Callable[[Any], None] | None = None,
) -> FitResult:
    """`fit` with a checkpoint every ``output.checkpoint_every`` epochs; on Ctrl-C or
    SIGTERM the last completed epoch is checkpointed before `Interrupted` propagates.
    With ``data.shards > 1`` or ``engine.kind: dask`` the parts train through `softreg.engine`."""

    fingerprint = data_fingerprint(prepared)

    def save(state: TrainingState) -> None:
        rundir.save_checkpoint(run_dir, state, {"data_fingerprint": fingerprint})

    try:
        with _training_parts(config, prepared, on_engine) as (train, val):
            return fit(
                train,
                len(prepared.classes),
                config.training_settings(),
                batch_rng,
                val=val,
                on_epoch=on_epoch,
                start=start,
                on_checkpoint=save,
                checkpoint_every=config.output.checkpoint_every,
            )
    except Interrupted as interrupted:
        if interrupted.state is not None and not interrupted.saved:
            save(interrupted.state)
        interrupted.run_dir = Path(run_dir)
        raise


@contextmanager
def _training_parts(
    config: Config, prepared: Prepared, on_engine: Callable[[Any], None] | None
) -> Iterator[tuple[TrainingData, TrainingData | None]]:
    """The parts `fit` trains on: ``prepared``'s own, or their shards on the configured engine."""
    from softreg import engine

    if not engine.sharded(config):
        yield prepared.train, prepared.val
        return
    with engine.open_engine(config, prepared.train, prepared.val, on_engine) as parts:
        yield parts


def _finish(config: Config, prepared: Prepared, result: FitResult, run_dir: str | PathLike[str]) -> TrainOutcome:
    """`finish_run`, where an interruption leaves the finished checkpoint for --resume."""
    try:
        return finish_run(config, prepared, result, run_dir)
    except KeyboardInterrupt:
        stop = Interrupted(result.state, saved=True)
        stop.run_dir = Path(run_dir)
        raise stop from None


def finish_run(config: Config, prepared: Prepared, result: FitResult, run_dir: str | PathLike[str]) -> TrainOutcome:
    """Evaluate the model on the test part (else validation, else training), then save the
    run's files (`save_run`; model.npz last)."""
    model = Model(
        coef=result.coef,
        intercept=result.intercept,
        classes=prepared.classes,
        feature_mean=prepared.feature_mean,
        feature_scale=prepared.feature_scale,
        feature_names=prepared.feature_names,
        label_name=prepared.label_name,
        dtype=config.model.dtype,
        columns=prepared.columns,
        header=prepared.header,
        id_name=prepared.id_name,
        file_columns=prepared.file_columns,
        loss=config.model.loss,
        normalizer=config.model.normalizer,
        temperature=config.model.temperature,
    )
    if prepared.test is not None:
        split_name, part = "test", prepared.test
    elif prepared.val is not None:
        split_name, part = "validation", prepared.val
    else:
        split_name, part = "train", prepared.train
    kept: list[np.ndarray] = []
    if prepared.test is not None:  # the saved test split's raw rows, as `softreg evaluate` reads them
        sums = model_metrics(model, [(prepared.test_raw, part.y)], on_chunk=lambda X, y, proba: kept.append(proba))
    else:
        sums = model_metrics(
            model, [(part.X, part.y)], standardized=True, center=part.center,
            on_chunk=lambda X, y, proba: kept.append(proba),
        )
    proba = kept[0]
    metrics = sums.metrics(prepared.classes)
    metrics.update(split=split_name, objective=result.objective, grad_norm=result.grad_norm)
    metrics.update(converged=result.converged, gap_bound=result.gap_bound)
    training = {
        **result.summary(),
        "n_train": prepared.train.n_samples,
        "n_val": prepared.val.n_samples if prepared.val is not None else 0,
        "n_test": prepared.test.n_samples if prepared.test is not None else 0,
        "n_features": len(prepared.feature_names),
        "source": prepared.source,
        "class_counts": _class_counts(prepared),
        "svmlight_index_base": prepared.index_base,
    }
    test_split = (prepared.test_raw, prepared.test.y) if prepared.test is not None else None
    save_run(
        Path(run_dir), model, result.history, metrics, training, (part.X, part.y, proba),
        plot_selection=config.output.plots, test_split=test_split, points=split_name,
    )
    return TrainOutcome(run_dir=Path(run_dir), metrics=metrics, training=training)


def _class_counts(prepared: Prepared) -> dict[str, dict[str, int]]:
    """Rows per class in each part, ``{"train": {class: count}, ...}`` (the report's class balance)."""
    names = [str(label) for label in prepared.classes]
    parts = {"train": prepared.train, "val": prepared.val, "test": prepared.test}
    return {
        name: dict(zip(names, np.bincount(part.y, minlength=len(names)).tolist(), strict=True))
        for name, part in parts.items()
        if part is not None
    }
