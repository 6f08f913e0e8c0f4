"""Interrupt, kill and resume: nothing is lost and the resumed model is bit-identical."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from softreg import rundir
from softreg.cli import main
from softreg.errors import RunDirError
from tests.strategies import default_sigint

REPO = Path(__file__).resolve().parent.parent
# long enough (about two seconds of training) to be killed in the middle
EPOCHS = 120
SLOW = ["--set", f"optim.epochs={EPOCHS}", "--set", "output.plots=false", "--set", "optim.batch_size=32",
        "--set", "optim.tol=null"]  # all 120 epochs
CONFIG = REPO / "configs" / "letters.yaml"
IRIS = ["--config", REPO / "configs" / "iris.yaml", "--quiet", "--set", "output.plots=false"]  # a short run


def cli(*args):
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def spawn(*args):
    """``softreg ARGS`` in a subprocess, its output read as it comes."""
    return subprocess.Popen(
        [sys.executable, "-m", "softreg.cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )


def start(out, *extra):
    return spawn("train", "--config", CONFIG, "--out", out, *SLOW, *extra)


def interrupt(process, at_epoch, signum=signal.SIGINT):
    """Send ``signum`` as soon as the run prints its progress line for epoch ``at_epoch`` (without a
    terminal, one ``epoch N/E`` line per epoch on stderr); return its exit code and the rest of stderr.

    The signal follows the run's own output, never a clock, so it always lands after that epoch.
    """
    seen = []
    for line in process.stderr:
        seen.append(line)
        if line.startswith(f"epoch {at_epoch}/"):
            break
    else:
        _, stderr = process.communicate(timeout=60)
        pytest.fail(f"the run ended (exit {process.returncode}) without reporting epoch {at_epoch}: {''.join(seen)}")
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr


def model_bytes(run_dir):
    with np.load(Path(run_dir) / "model.npz", allow_pickle=False) as archive:
        return {name: archive[name].tobytes() for name in archive.files}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every resumed run must reproduce bit for bit."""
    out = tmp_path_factory.mktemp("ref") / "run"
    code, _, stderr = cli("train", "--config", CONFIG, "--out", out, "--quiet", *SLOW)
    assert code == 0, stderr
    return out


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigkill_after_a_random_epoch_then_resume_is_bit_identical(tmp_path, reference, seed):
    """kill -9 after a seeded random epoch k in [1, E-1]: no model.npz or a complete one is left,
    and --resume finishes the model of the uninterrupted run, bit for bit."""
    out = tmp_path / "run"
    at_epoch = int(np.random.default_rng(seed).integers(1, EPOCHS))
    returncode, stderr = interrupt(start(out), at_epoch, signal.SIGKILL)
    assert returncode == -signal.SIGKILL, stderr  # killed while it ran, not after it finished
    if (out / "model.npz").exists():
        rundir.load_model(out)  # a model that exists is complete and loads
    code, _, stderr = cli("train", "--resume", out, "--quiet")
    assert code == 0, stderr
    assert model_bytes(out) == model_bytes(reference)
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) == EPOCHS + 1
    assert [row.split(",")[0] for row in history[1:]] == [str(n) for n in range(1, EPOCHS + 1)]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_sigint_writes_a_checkpoint_and_says_how_to_resume(tmp_path, reference):
    """Ctrl-C: exit 130, the exact resume command on stderr, a checkpoint, no model.npz; resume is identical."""
    out = tmp_path / "run"
    returncode, stderr = interrupt(start(out), 5, signal.SIGINT)
    assert returncode == 130, stderr
    assert f"softreg train --resume {out}" in stderr and "Traceback" not in stderr
    assert not (out / "model.npz").exists() and (out / "checkpoint.npz").exists()
    with pytest.raises(RunDirError):
        rundir.load_model(out)
    code, _, stderr = cli("train", "--resume", out, "--quiet")
    assert code == 0, stderr
    assert model_bytes(out) == model_bytes(reference)


@pytest.mark.slow
def test_sigterm_is_handled_like_sigint(tmp_path):
    """SIGTERM also checkpoints and exits 130."""
    out = tmp_path / "run"
    returncode, stderr = interrupt(start(out), 3, signal.SIGTERM)
    assert returncode == 130 and "--resume" in stderr
    assert (out / "checkpoint.npz").exists() and not (out / "model.npz").exists()


def test_resume_of_a_finished_run_changes_nothing(tmp_path):
    """--resume on a finished run says so and exits 0, touching no file."""
    out = tmp_path / "run"
    assert cli("train", *IRIS, "--out", out)[0] == 0
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir() if p.is_file()}
    code, stdout, _ = cli("train", "--resume", out)
    assert code == 0 and "already finished" in stdout
    assert before == {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir() if p.is_file()}


def test_finished_run_trains_further_with_more_epochs(tmp_path):
    """--resume --set optim.epochs=N continues a finished run; the history records every epoch."""
    out = tmp_path / "run"
    config = REPO / "configs" / "iris.yaml"
    fast = ["--set", "output.plots=false", "--set", "optim.schedule=constant"]
    assert cli("train", "--config", config, "--out", out, "--quiet", "--set", "optim.epochs=5", *fast)[0] == 0
    code, _, stderr = cli("train", "--resume", out, "--quiet", "--set", "optim.epochs=9")
    assert code == 0, stderr
    assert len((out / "history.csv").read_text().splitlines()) == 10
    # with a constant rate, 5 + 4 epochs are the same as 9 in one go
    straight = tmp_path / "straight"
    assert cli("train", "--config", config, "--out", straight, "--quiet", "--set", "optim.epochs=9", *fast)[0] == 0
    assert model_bytes(out) == model_bytes(straight)
    assert json.loads((out / "model.json").read_text())["training"]["epochs_run"] == 9


def test_resume_of_an_lr_auto_run_is_bit_identical(tmp_path):
    """A run with optim.lr: auto interrupted after epoch 3 resumes from the number its config.yaml
    saved, and ends with the uninterrupted run's model, bit for bit."""
    from softreg.config import load_config
    from softreg.errors import Interrupted
    from softreg.run import train_run

    auto = ["optim.lr=auto", "optim.epochs=8", "output.plots=false", "optim.variance_reduction=svrg"]
    config = load_config(REPO / "configs" / "iris.yaml", auto)
    straight = tmp_path / "straight"
    train_run(config, straight)

    def interrupt_after_3(record, total):
        if record.epoch == 4:
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(Interrupted):
        train_run(config, out, on_epoch=interrupt_after_3)
    assert "lr: auto" not in (out / "config.yaml").read_text()
    code, _, stderr = cli("train", "--resume", out, "--quiet")
    assert code == 0, stderr
    assert model_bytes(out) == model_bytes(straight)


def test_resume_refuses_overrides_that_change_the_model(tmp_path):
    """Overrides other than optim.epochs and output.* would change the model: exit 2."""
    out = tmp_path / "run"
    assert cli("train", *IRIS, "--out", out, "--set", "optim.epochs=3")[0] == 0
    code, _, stderr = cli("train", "--resume", out, "--set", "optim.lr=0.5")
    assert code == 2
    assert stderr.strip() == (
        "softreg: error: --set optim.lr: cannot change on --resume (it changes the model); "
        "start a new run with --config"
    )
    code, _, stderr = cli("train", "--resume", out, "--set", "optim.epochs=2")
    assert code == 2 and "optim.epochs must be at least the 3 epochs already run" in stderr


def test_resume_errors(tmp_path):
    """--resume of a missing or foreign directory, and --resume with --config, are refused (exit 2)."""
    code, _, stderr = cli("train", "--resume", tmp_path / "nope")
    assert code == 2 and "run directory not found" in stderr
    (tmp_path / "empty").mkdir()
    code, _, stderr = cli("train", "--resume", tmp_path / "empty")
    assert code == 2 and "no config.yaml" in stderr
    code, _, stderr = cli("train", "--resume", tmp_path / "empty", "--config", CONFIG)
    assert code == 2
    assert stderr.strip() == "softreg: error: give either --config FILE (a new run) or --resume DIR (continue one)"


@pytest.mark.slow
def test_corrupted_checkpoint_is_refused(tmp_path):
    """A checkpoint that was damaged after the fact is named, not read back."""
    out = tmp_path / "run"
    returncode, stderr = interrupt(start(out), 3, signal.SIGINT)
    assert returncode == 130
    checkpoint = out / "checkpoint.npz"
    checkpoint.write_bytes(checkpoint.read_bytes()[:200])
    code, _, stderr = cli("train", "--resume", out)
    assert code == 2 and "checkpoint.npz: corrupted or truncated" in stderr


@pytest.mark.slow
def test_interrupted_extension_leaves_no_stale_model(tmp_path):
    """Training a finished run further removes its old model.npz first: an interruption then
    leaves no model that no longer matches the run's config and checkpoint."""
    out = tmp_path / "run"
    code, _, _ = cli(
        "train", "--config", CONFIG, "--out", out, "--quiet", "--set", "optim.epochs=2", "--set", "output.plots=false"
    )
    assert code == 0 and (out / "model.npz").exists()
    returncode, stderr = interrupt(spawn("train", "--resume", out, "--set", "optim.epochs=400"), 6)
    assert returncode == 130, stderr
    assert not (out / "model.npz").exists()
    with pytest.raises(RunDirError):
        rundir.load_model(out)


def test_resume_refuses_changed_training_data(tmp_path):
    """A run whose data file changed since it started is not resumed on the new data."""
    data = tmp_path / "d.csv"
    data.write_text((REPO / "data" / "iris.csv").read_text())
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  source: d.csv\n  val: 0\noutput:\n  plots: false\n")
    out = tmp_path / "run"
    assert cli("train", "--config", config, "--out", out, "--quiet", "--set", "optim.epochs=3")[0] == 0
    lines = data.read_text().splitlines()
    data.write_text("\n".join(lines[:1] + [line.replace("5.1", "5.2") for line in lines[1:]]) + "\n")
    code, _, stderr = cli("train", "--resume", out, "--set", "optim.epochs=5")
    assert code == 2 and "the training data changed since this run started" in stderr


def test_resume_json_of_a_finished_run_is_json(tmp_path):
    """--resume --json on a finished run prints one JSON document saying so."""
    out = tmp_path / "run"
    assert cli("train", *IRIS, "--out", out, "--set", "optim.epochs=2")[0] == 0
    code, stdout, _ = cli("train", "--resume", out, "--json")
    assert code == 0
    assert json.loads(stdout) == {"run_dir": str(out), "already_finished": True, "training": {"epochs_run": 2}}


def test_resume_refuses_flags_of_a_new_run(tmp_path):
    """--resume with --out, --force or --print-config is a usage error (exit 2)."""
    out = tmp_path / "run"
    assert cli("train", *IRIS, "--out", out, "--set", "optim.epochs=2")[0] == 0
    for extra in (["--out", tmp_path / "other"], ["--force"], ["--print-config"]):
        code, _, stderr = cli("train", "--resume", out, *extra)
        assert code == 2
        assert stderr.strip() == (
            "softreg: error: --resume continues the run in place: --out, --force and --print-config do not apply"
        )


def test_more_epochs_on_a_cosine_schedule_say_the_curve_restarts_with_the_rates(tmp_path):
    """--resume --set optim.epochs=9 on a finished 6-epoch cosine run: a warning names both rates, and
    epoch 7 trains at the new curve's rate, lr0 (1 + cos(pi 6/9)) / 2; a step schedule continues silently."""
    import math

    run = tmp_path / "cosine"
    fixed = ["--set", "optim.tol=null"]  # a fixed-epoch run: no "not converged" line beside the warning
    assert cli("train", *IRIS, *fixed, "--set", "optim.epochs=6", "--set", "optim.lr=0.2", "--out", run)[0] == 0
    code, _, stderr = cli("train", "--resume", run, "--set", "optim.epochs=9", "--quiet")
    assert code == 0
    old, new = 0.2 * (1 + math.cos(math.pi * 6 / 6)) / 2, 0.2 * (1 + math.cos(math.pi * 6 / 9)) / 2
    assert stderr == (
        f"softreg: warning: optim.epochs 9 (was 6): the cosine schedule restarts its curve over 9 epochs, so the "
        f"rate goes from {old:.4g} (the old curve after epoch 6) to {new:.4g} at epoch 7; a run of 9 epochs from "
        "the start follows the new curve throughout\n"
    )
    assert math.isclose(rundir.read_history(run)[6]["lr"], new, rel_tol=1e-12)
    stepped = tmp_path / "step"
    assert cli("train", *IRIS, *fixed, "--set", "optim.epochs=6", "--set", "optim.lr=0.2",
               "--set", "optim.schedule=step", "--set", "optim.step_size=4", "--set", "optim.gamma=0.5",
               "--out", stepped)[0] == 0
    code, _, stderr = cli("train", "--resume", stepped, "--set", "optim.epochs=9", "--quiet")
    assert code == 0 and stderr == ""
    assert [row["lr"] for row in rundir.read_history(stepped)] == [0.2] * 4 + [0.1] * 4 + [0.05]
