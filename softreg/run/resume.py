"""``--resume``: an interrupted run continued from its last checkpoint, a finished one trained
further, bit-identical to a run that was never stopped."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from softreg import rundir
from softreg.config import Config, dump_config, load_config
from softreg.errors import RunDirError, UsageError, warn
from softreg.prepare.data import random_streams
from softreg.run.finish import TrainOutcome
from softreg.run.prepare import data_fingerprint, prepare_for
from softreg.run.train import finish, fit_with_checkpoints, training_parts
from softreg.train import EpochCallback, TrainingState
from softreg.train.optim import resumed_schedule_note

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
    config_path = run_dir / rundir.CONFIG
    if not config_path.is_file():
        raise RunDirError(f"{run_dir}: no {rundir.CONFIG}; not a softreg run directory")
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
    config_path = run_dir / rundir.CONFIG
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
    with training_parts(config, prepared, on_engine) as parts:
        if state is not None and state.finished and not _extends(state, config):
            result = state.result()  # killed while saving the final artifacts: write them, unchanged
        else:
            # a finished run trained further: its old model must not outlive the new epochs
            (run_dir / rundir.MODEL).unlink(missing_ok=True)
            note = resumed_schedule_note(config.optim.schedule, float(config.optim.lr), state.epoch if state else 0,
                                         saved.optim.epochs, config.optim.epochs)
            if note is not None:
                warn(note)
            result = fit_with_checkpoints(config, prepared, streams.batches, run_dir, on_epoch, start=state,
                                          parts=parts)
        return finish(config, prepared, result, run_dir, parts.scored)


def _loads(run_dir: Path) -> bool:
    """Whether the run's saved model is complete and valid (a damaged one is rewritten on resume)."""
    try:
        rundir.load_model(run_dir)
        rundir.read_history(run_dir)
        rundir.read_metrics(run_dir / rundir.METRICS)
    except RunDirError:
        return False
    return True


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
