"""The sweep directory: what makes a folder a sweep, and the processes that own it.

``OUT/sweep.json`` remembers a sweep's grids (the values as given, which name the runs) and
its base config (the config file with the ``--set`` overrides, resolved), so that ``softreg
sweep`` resumes only the same sweep and refuses a folder holding another sweep, or anything
that is not a sweep, unless ``--force``. One sweep at a time holds ``OUT/.softreg-sweep-lock``;
its joblib workers each hold ``OUT/.softreg-sweep-workers`` shared while they train and kill
themselves when the sweep's process is gone (SIGKILL included), so that the next sweep on
``OUT`` waits, boundedly, until no worker of a dead sweep is still writing there.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from softreg import rundir
from softreg.commands.grid import Grid
from softreg.errors import OutputExistsError, RunDirError, cannot_write

SWEEP_FILE = "sweep.json"
SWEEP_CSV = "sweep.csv"
LOCK_FILE = ".softreg-sweep-lock"  # held exclusively by the sweep's own process
WORKERS_FILE = ".softreg-sweep-workers"  # held shared by each worker while it trains a run
FORMAT = "softreg-sweep"
FORMAT_VERSION = 1
WORKERS_WAIT_SECONDS = 30.0  # how long a sweep waits for the workers of a killed one to exit
WATCH_SECONDS = 0.1  # how often a worker checks that its sweep is still there

# the columns of sweep.csv after the grid keys; "seconds" is the only one that depends on timing
RESULT_COLUMNS = (
    "status", "val_accuracy", "val_log_loss", "val_ece", "test_accuracy", "test_log_loss", "test_ece",
    "objective", "epochs", "seconds", "run_dir", "error",
)
TIMING_COLUMNS = ("seconds",)
# sweep.csv's status: what this command did with each run
STATUSES = {
    "trained": "trained by this command",
    "reused": "finished by an earlier command with the same config, and not trained again",
    "failed": "its training failed; the error column says why",
    "not run": "the sweep was interrupted before the run finished",
}
FINISHED = ("trained", "reused")


def identity(grids: Sequence[Grid], base: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """What ``sweep.json`` holds: the grids (values as given), the base config and the run names."""
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "grid": {grid.key: list(grid.texts) for grid in grids},
        "base_config": json.loads(json.dumps(base, default=str)),
        "runs": list(names),
    }


def check_sweep_dir(out: Path, wanted: dict[str, Any], force: bool) -> list[str]:
    """Refuse ``out`` unless it is absent, empty, or holds this same sweep; with ``force``, another
    sweep or a folder that is not a sweep is accepted too. Returns the run names of another sweep
    found there (to remove under ``force``), else []. Raises `OutputExistsError` (exit 2)."""
    if out.is_symlink():
        raise OutputExistsError(f"{out}: is a symbolic link; give the sweep directory itself as --out")
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out}: exists and is not a directory; choose another --out")
    if not out.is_dir():
        return []
    for name, kind in ((SWEEP_CSV, "a file"), (rundir.PLOTS, "a folder"), (SWEEP_FILE, "a file")):
        path = out / name
        wants_folder = kind == "a folder"
        if path.is_symlink() or (path.exists() and path.is_dir() != wants_folder):
            raise OutputExistsError(f"{path}: the sweep writes {kind} here, and something else is there; move it away")
    entries = sorted(entry.name for entry in out.iterdir() if entry.name not in (LOCK_FILE, WORKERS_FILE))
    if not entries:
        return []
    found = read_sweep_file(out) if SWEEP_FILE in entries else None
    if found is None:
        if force:
            return []
        shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
        raise OutputExistsError(
            f"{out}: is not a sweep directory (no {SWEEP_FILE}; it holds {shown}); choose another --out, "
            "or --force to sweep into it"
        )
    if found["grid"] == wanted["grid"] and found["base_config"] == wanted["base_config"]:
        return []
    if not force:
        raise OutputExistsError(f"{out}: holds another sweep ({describe(found, wanted)}); choose another --out, "
                                "or --force to replace it")
    return [name for name in found.get("runs", []) if isinstance(name, str)]


def read_sweep_file(out: Path) -> dict[str, Any]:
    """``sweep.json`` of ``out``, checked to be softreg's (a `RunDirError` otherwise)."""
    path = out / SWEEP_FILE
    document = rundir.read_json_object(path)
    if document.get("format") != FORMAT or not isinstance(document.get("grid"), dict) or "base_config" not in document:
        raise RunDirError(f"{path}: not a softreg sweep file (expected format {FORMAT!r} with grid and base_config)")
    return document


def describe(found: dict[str, Any], wanted: dict[str, Any]) -> str:
    """How the sweep found differs from the one wanted, in one phrase."""
    if found["grid"] != wanted["grid"]:
        grids = " ".join(f"--grid {key}={','.join(map(str, values))}" for key, values in found["grid"].items())
        return f"its grid is {grids}"
    for section, values in wanted["base_config"].items():
        old = found["base_config"].get(section)
        if isinstance(values, dict) and isinstance(old, dict):
            for key, value in values.items():
                if old.get(key) != value:
                    return f"its base config has {section}.{key} = {old.get(key)!r}, this one {value!r}"
        elif old != values:
            return f"its base config has {section} = {old!r}, this one {values!r}"
    return "another base config"


def remove_runs(out: Path, names: Sequence[str], keep: Sequence[str]) -> None:
    """Remove the run directories ``names`` of a replaced sweep that this one does not plan
    (``keep``): only real directories that softreg wrote, never a symlink or a user's folder."""
    for name in names:
        path = out / name
        if name in keep or Path(name).name != name or path.is_symlink() or not path.is_dir():
            continue
        rundir.check_output_dir(path, force=True)  # refuses what softreg did not write
        shutil.rmtree(path)


class SweepLock:
    """The exclusive lock of one sweep on ``out`` (refusing a second sweep at once), taken after
    every worker of an earlier, killed sweep has exited."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.descriptor = _open_lock(out / LOCK_FILE)
        if not _try_lock(self.descriptor, exclusive=True):
            os.close(self.descriptor)
            raise OutputExistsError(f"{out}: another sweep is running there; wait for it or choose another --out")
        workers = _open_lock(out / WORKERS_FILE)
        try:
            deadline = time.monotonic() + WORKERS_WAIT_SECONDS
            while not _try_lock(workers, exclusive=True):
                if time.monotonic() > deadline:
                    self.release()
                    raise OutputExistsError(
                        f"{out}: workers of an earlier sweep are still training there after "
                        f"{WORKERS_WAIT_SECONDS:g} s; stop them or choose another --out"
                    )
                time.sleep(WATCH_SECONDS)  # a bounded wait for processes that are exiting
        finally:
            os.close(workers)

    def release(self) -> None:
        if self.descriptor >= 0:
            os.close(self.descriptor)
            self.descriptor = -1


def _open_lock(path: Path) -> int:
    try:
        return os.open(path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        if path.is_symlink():
            raise OutputExistsError(f"{path}: is a symbolic link; remove it (softreg writes its lock there)") from None
        raise cannot_write(path, error, "cannot create the sweep's lock") from None


def _try_lock(descriptor: int, exclusive: bool) -> bool:
    import fcntl

    try:
        fcntl.flock(descriptor, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


_WATCHED: dict[str, int] = {}  # in a worker: the sweep process it serves


def worker_start(out: Path, sweep_pid: int) -> int:
    """In a joblib worker, before a run: exit at once if the sweep's process ``sweep_pid`` is gone,
    else watch it (a thread that kills this process when it goes) and hold the workers' lock
    shared. Returns the lock's descriptor, for `worker_end`."""
    if os.getppid() != sweep_pid:
        os.kill(os.getpid(), signal.SIGKILL)
    if _WATCHED.setdefault("pid", sweep_pid) == sweep_pid and "thread" not in _WATCHED:
        _WATCHED["thread"] = 1
        threading.Thread(target=_watch, args=(sweep_pid,), daemon=True, name="softreg-sweep-watch").start()
    descriptor = _open_lock(out / WORKERS_FILE)
    _try_lock(descriptor, exclusive=False)  # never refused: a waiting sweep only tries, never holds it
    return descriptor


def worker_end(descriptor: int) -> None:
    os.close(descriptor)


def _watch(sweep_pid: int) -> None:
    """Kill this worker once its parent is no longer the sweep (the sweep died: the worker was
    adopted by another process), so that no run goes on writing into a sweep nobody owns."""
    while os.getppid() == sweep_pid:
        time.sleep(WATCH_SECONDS)
    os.kill(os.getpid(), signal.SIGKILL)


# -- the sweep's own files


def write_csv(path: Path, keys: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """sweep.csv: the grid keys, then `RESULT_COLUMNS`; empty cells where a figure does not exist."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*keys, *RESULT_COLUMNS], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else _cell(value) for key, value in row.items()})
    rundir.write_text(path, buffer.getvalue())


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def draw_sweep_plots(out_dir: Path, grids: Sequence[Grid], rows: Sequence[dict[str, Any]]) -> list[Path]:
    """``plots/sweep_accuracy.png`` (validation accuracy vs each numeric grid key) and
    ``plots/sweep_curves.png`` (every run's learning curves overlaid)."""
    from softreg import plots

    directory = out_dir / rundir.PLOTS
    directory.mkdir(exist_ok=True)
    finished = [row for row in rows if row["status"] in FINISHED]
    if not finished:
        return []
    keys = [grid.key for grid in grids]
    shown = plots.varying(finished, keys)  # the legend names what differs between the runs
    histories = {
        ", ".join(f"{key.rpartition('.')[2]}={row[key]}" for key in shown) or row["run_dir"]:
            rundir.read_history(out_dir / row["run_dir"])
        for row in finished
    }
    return [
        plots.sweep_accuracy(finished, keys, directory / "sweep_accuracy.png"),
        plots.sweep_curves(histories, directory / "sweep_curves.png"),
    ]
