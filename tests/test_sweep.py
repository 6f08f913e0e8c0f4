"""``softreg sweep``: one run directory per combination, sweep.csv, resuming, parallel runs."""

import csv
import json
from pathlib import Path

import pytest

from softreg.commands.grid import combinations, parse_grid, split_values
from softreg.commands.sweep import TIMING_COLUMNS
from tests.strategies import default_sigint, run

GRIDS = ["--grid", "model.weight_decay=1e-4,1e-3,1e-2", "--grid", "model.loss=cross_entropy,squared_error"]
NAMES = [f"weight_decay-{decay}__loss-{loss}" for decay in ("1e-4", "1e-3", "1e-2")
         for loss in ("cross_entropy", "squared_error")]


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "iris.yaml"
    path.write_text(
        "data: {source: builtin:iris, val: 0.2}\n"
        "optim: {epochs: 4, batch_size: 16}\n"
        "output: {plots: false}\n"
    )
    return path


@pytest.fixture(scope="module")
def swept(config, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "out"
    code, stdout, stderr = run("sweep", "--config", config, *GRIDS, "--out", out)
    assert code == 0, stderr
    return out, stdout, stderr


def read_rows(path, drop=TIMING_COLUMNS):
    with open(path, newline="") as handle:
        return [{key: value for key, value in row.items() if key not in drop} for row in csv.DictReader(handle)]


def without_status(rows):
    """The rows but for status (trained by this command, or reused from an earlier one)."""
    return [{key: value for key, value in row.items() if key != "status"} for row in rows]


def test_one_run_directory_and_one_csv_row_per_combination(swept):
    """2 keys x 3 and 2 values: six run directories named from their values, six rows in grid order."""
    out, _, _ = swept
    assert sorted(path.name for path in out.iterdir() if path.is_dir() and path.name != "plots") == sorted(NAMES)
    for name in NAMES:
        assert (out / name / "model.npz").is_file() and (out / name / "config.yaml").is_file()
    rows = read_rows(out / "sweep.csv", drop=())
    assert [row["run_dir"] for row in rows] == NAMES
    assert [row["model.weight_decay"] for row in rows] == ["0.0001"] * 2 + ["0.001"] * 2 + ["0.01"] * 2
    assert [row["model.loss"] for row in rows] == ["cross_entropy", "squared_error"] * 3
    for row in rows:
        assert row["status"] == "trained" and row["epochs"] == "4" and float(row["seconds"]) > 0
        for column in ("val_accuracy", "val_log_loss", "val_ece", "test_accuracy", "test_log_loss", "test_ece",
                       "objective"):
            assert float(row[column]) >= 0


def test_each_run_is_the_run_train_makes(swept, config):
    """A combination's run directory holds the model `softreg train --set ...` makes, bit for bit."""
    out, _, _ = swept
    single = out.parent / "single"
    code, _, stderr = run("train", "--config", config, "--set", "model.weight_decay=1e-3",
                          "--set", "model.loss=squared_error", "--out", single, "--quiet")
    assert code == 0, stderr
    assert (single / "model.npz").read_bytes() == (out / "weight_decay-1e-3__loss-squared_error" / "model.npz"
                                                   ).read_bytes()


def test_summary_names_the_best_by_validation_loss_and_the_command_to_retrain_it(swept):
    """stdout: a table, the lowest validation log loss, and a train command with its --set values."""
    out, stdout, stderr = swept
    rows = read_rows(out / "sweep.csv")
    best = min(rows, key=lambda row: float(row["val_log_loss"]))
    assert f"best by validation log loss: {best['run_dir']}" in stdout
    assert (f"--set model.weight_decay={best['run_dir'].split('__')[0].removeprefix('weight_decay-')} "
            f"--set model.loss={best['model.loss']}") in stdout
    assert "retrain it with: softreg train --config " in stdout
    assert stderr.count("sweep [") == 6 and "sweep [6/6]" in stderr


def test_plots_show_accuracy_against_the_numeric_key_and_the_learning_curves(swept):
    """plots/sweep_accuracy.png and plots/sweep_curves.png are PNG files."""
    out, _, _ = swept
    for name in ("sweep_accuracy.png", "sweep_curves.png"):
        assert (out / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_rerun_skips_finished_runs_and_an_interrupted_run_is_trained_again(swept, config):
    """Rerunning: finished runs are skipped (their files untouched, status reused); a run without model.npz
    (interrupted) is trained again, and sweep.csv is the same but for timing and status."""
    out, _, _ = swept
    before = read_rows(out / "sweep.csv")
    stamps = {name: (out / name / "model.npz").stat().st_mtime_ns for name in NAMES}
    (out / NAMES[3] / "model.npz").unlink()  # as a kill during training leaves it
    code, _, stderr = run("sweep", "--config", config, *GRIDS, "--out", out)
    assert code == 0, stderr
    assert stderr.count("skipped (finished before)") == 5
    assert f"{NAMES[3]}:  trained 4 epochs" in stderr
    for name in NAMES:
        if name != NAMES[3]:
            assert (out / name / "model.npz").stat().st_mtime_ns == stamps[name]
    after = read_rows(out / "sweep.csv")
    assert [row["status"] for row in after] == ["reused"] * 3 + ["trained"] + ["reused"] * 2
    assert without_status(after) == without_status(before)


@pytest.mark.slow
def test_two_jobs_give_the_same_csv_as_one(swept, config, tmp_path):
    """--jobs 2 (joblib processes) writes the same sweep.csv as --jobs 1, timing columns aside."""
    out, _, _ = swept
    code, _, stderr = run("sweep", "--config", config, *GRIDS, "--jobs", 2, "--out", tmp_path / "parallel")
    assert code == 0, stderr
    parallel = read_rows(tmp_path / "parallel" / "sweep.csv")
    assert [row["status"] for row in parallel] == ["trained"] * len(NAMES)
    assert without_status(parallel) == without_status(read_rows(out / "sweep.csv"))


def test_a_bad_grid_key_gets_did_you_mean_and_exit_2(config, tmp_path):
    """A misspelt key: exit 2, one line with the suggestion, nothing run."""
    code, stdout, stderr = run("sweep", "--config", config, "--grid", "model.weight_decy=1e-4,1e-3",
                               "--out", tmp_path / "out")
    assert code == 2 and stdout == ""
    assert stderr == ("softreg: error: --grid model.weight_decy: unknown config key (did you mean "
                      "'model.weight_decay'?); keys look like model.weight_decay\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("grids", "message"), [
    (["--grid", "model.weight_decay=1e-4,-1"], "--grid model.weight_decay: must be >= 0, got -1.0"),
    (["--grid", "model.normalizer=softmax,sum"], "--grid model.normalizer: sum is refused"),
    (["--grid", "seed=0,1", "--grid", "seed=2"], "--grid: a key is given twice (seed)"),
    (["--grid", "seed=0,0"], "--grid seed: repeats a value"),
    (["--grid", "output.dir=a,b"], "--grid output.dir: cannot be a grid key"),
    (["--grid", "seed"], "--grid 'seed': expected KEY=V1,V2,..."),
    ([], "give at least one --grid"),
])
def test_bad_grids_exit_2_before_any_run(config, tmp_path, grids, message):
    """Bad values, repeated keys or values, and malformed grids: exit 2 naming the grid, nothing run."""
    code, _, stderr = run("sweep", "--config", config, *grids, "--out", tmp_path / "out")
    assert code == 2 and message in stderr and stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_failed_run_is_named_exit_1_and_the_others_finish(config, tmp_path):
    """A diverging learning rate fails its run only: exit 1 naming it, the other run and sweep.csv are written."""
    code, _, stderr = run("sweep", "--config", config, "--grid", "optim.lr=0.1,1e12", "--out", tmp_path / "out")
    assert code == 1
    assert "1 of 2 runs failed: lr-1e12 (training diverged" in stderr
    rows = read_rows(tmp_path / "out" / "sweep.csv")
    assert [row["status"] for row in rows] == ["trained", "failed"]
    assert (tmp_path / "out" / "lr-0.1" / "model.npz").is_file() and not (tmp_path / "out" / "lr-1e12").exists()


def test_a_finished_run_with_another_config_is_not_reused(config, tmp_path):
    """Same --out, different base settings: another sweep, which would reuse the finished runs wrongly,
    so exit 2 says why; --force retrains them."""
    out = tmp_path / "out"
    assert run("sweep", "--config", config, "--grid", "seed=0,1", "--out", out)[0] == 0
    code, _, stderr = run("sweep", "--config", config, "--grid", "seed=0,1", "--set", "optim.epochs=5", "--out", out)
    assert code == 2 and stderr == (
        f"softreg: error: {out}: holds another sweep (its base config has optim.epochs = 4, this one 5); "
        "choose another --out, or --force to replace it\n"
    )
    code, _, stderr = run("sweep", "--config", config, "--grid", "seed=0,1", "--set", "optim.epochs=5", "--out", out,
                          "--force", "--json")
    assert code == 0, stderr


def test_json_document_lists_runs_best_and_retrain(config, tmp_path):
    """--json prints one document with the runs, the best run and the retrain command."""
    code, stdout, _ = run("sweep", "--config", config, "--grid", "seed=0,1", "--out", tmp_path / "out", "--json")
    document = json.loads(stdout)
    assert code == 0 and [row["run_dir"] for row in document["runs"]] == ["seed-0", "seed-1"]
    assert document["best"]["run_dir"] in ("seed-0", "seed-1") and document["retrain"].startswith("softreg train")


def test_grid_values_are_yaml_and_commas_inside_brackets_stay():
    """``[3, 8],[1, 7]`` is two lists; quoted commas stay; run names are file-name safe and distinct."""
    assert split_values("[3, 8],[1, 7]") == ["[3, 8]", "[1, 7]"]
    assert split_values("'a,b',c") == ["'a,b'", "c"]
    grid = parse_grid("data.classes=[3, 8],[1, 7]")
    assert grid.values == ([3, 8], [1, 7])
    names = [combination.name for combination in combinations([grid])]
    assert len(set(names)) == 2 and all(set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789._+-_") for name in
                                        names)


def test_without_a_validation_split_no_best_is_chosen(config, tmp_path):
    """data.val: 0: the runs train, the summary says why no best setting is chosen, the plot shows test accuracy."""
    code, stdout, stderr = run("sweep", "--config", config, "--grid", "model.weight_decay=1e-4,1e-2",
                               "--set", "data.val=0", "--out", tmp_path / "out")
    assert code == 0, stderr
    assert "no validation split (data.val: 0): no best setting is chosen" in stdout
    assert read_rows(tmp_path / "out" / "sweep.csv")[0]["val_accuracy"] == ""
    assert (tmp_path / "out" / "plots" / "sweep_accuracy.png").is_file()


def test_jobs_below_one_is_a_usage_error(config, tmp_path):
    """--jobs 0: exit 2."""
    code, _, stderr = run("sweep", "--config", config, "--grid", "seed=0,1", "--jobs", 0, "--out", tmp_path / "o")
    assert code == 2 and "--jobs must be >= 1, got 0" in stderr


@pytest.mark.slow  # a sweep process stopped by SIGTERM, then resumed
def test_a_sweep_stopped_by_sigterm_resumes_to_the_uninterrupted_result(tmp_path):
    """SIGTERM while the second run trains: exit 130 with the resume hint and the last run not trained;
    the same command then skips exactly the finished runs, trains the rest, and sweep.csv equals an
    uninterrupted sweep's (timing aside)."""
    import signal
    import subprocess
    import sys

    config = tmp_path / "digits.yaml"
    # ~0.6 s per run here, so the third run cannot finish between the first run's line and the signal
    config.write_text("data: {source: builtin:digits, val: 0.1}\noptim: {epochs: 150, batch_size: 16}\n"
                      "output: {plots: false}\n")
    command = [sys.executable, "-m", "softreg", "sweep", "--config", str(config), "--grid", "seed=0,1,2",
               "--out", str(tmp_path / "stopped")]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint
    )
    first = process.stderr.readline()  # the first run's progress line: the second run is training now
    assert first.startswith("sweep [1/3] seed-0:"), first
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Rerun the same command to resume" in stderr
    runs = tmp_path / "stopped"
    assert [row["status"] for row in read_rows(runs / "sweep.csv")][1:] in (["trained", "not run"], ["not run"] * 2)
    assert (runs / "seed-0" / "model.npz").exists() and not (runs / "seed-2" / "model.npz").exists()
    finished = [seed for seed in ("seed-0", "seed-1") if (runs / seed / "model.npz").exists()]
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert [seed for seed in ("seed-0", "seed-1", "seed-2")
            if f"{seed}:  skipped (finished before)" in resumed.stderr] == finished
    whole = subprocess.run([*command[:-1], str(tmp_path / "whole")], capture_output=True, text=True, timeout=120)
    assert whole.returncode == 0
    assert without_status(read_rows(runs / "sweep.csv")) == without_status(read_rows(tmp_path / "whole" / "sweep.csv"))


def test_the_sweep_file_remembers_the_grid_and_the_base_config(swept, config):
    """sweep.json: softreg's format, the grids as given, the base config without the grid keys, the runs."""
    out, _, _ = swept
    document = json.loads((out / "sweep.json").read_text())
    assert document["format"] == "softreg-sweep" and document["version"] == 1
    assert document["grid"] == {"model.weight_decay": ["1e-4", "1e-3", "1e-2"],
                                "model.loss": ["cross_entropy", "squared_error"]}
    assert document["runs"] == NAMES
    base = document["base_config"]
    assert base["optim"]["epochs"] == 4 and "weight_decay" not in base["model"] and "loss" not in base["model"]


def test_another_sweep_on_the_same_out_is_refused_then_replaced_with_force(config, tmp_path):
    """Another grid on a sweep's --out: exit 2 naming the sweep there, nothing touched; with --force its
    runs are removed and the new sweep's are all that is left."""
    out = tmp_path / "out"
    assert run("sweep", "--config", config, "--grid", "seed=0,1", "--out", out)[0] == 0
    before = (out / "sweep.csv").read_text()
    code, stdout, stderr = run("sweep", "--config", config, "--grid", "optim.lr=0.1", "--out", out)
    assert code == 2 and stdout == ""
    assert stderr == (f"softreg: error: {out}: holds another sweep (its grid is --grid seed=0,1); choose another "
                      "--out, or --force to replace it\n")
    assert (out / "sweep.csv").read_text() == before and not (out / "lr-0.1").exists()
    code, _, stderr = run("sweep", "--config", config, "--grid", "optim.lr=0.1", "--out", out, "--force")
    assert code == 0, stderr
    shown = sorted(path.name for path in out.iterdir() if not path.name.startswith("."))  # but the sweep's locks
    assert shown == ["lr-0.1", "plots", "sweep.csv", "sweep.json"]
    assert json.loads((out / "sweep.json").read_text())["grid"] == {"optim.lr": ["0.1"]}


def test_a_folder_that_is_not_a_sweep_is_refused_and_force_keeps_its_files(config, tmp_path):
    """A --out holding a user's files: exit 2 naming them; --force sweeps into it, the files untouched."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    code, _, stderr = run("sweep", "--config", config, "--grid", "seed=0", "--out", out)
    assert code == 2
    assert stderr == (f"softreg: error: {out}: is not a sweep directory (no sweep.json; it holds thesis.tex); "
                      "choose another --out, or --force to sweep into it\n")
    assert sorted(path.name for path in out.iterdir()) == ["thesis.tex"]
    code, _, stderr = run("sweep", "--config", config, "--grid", "seed=0", "--out", out, "--force")
    assert code == 0, stderr
    assert (out / "thesis.tex").read_text() == "precious" and (out / "seed-0" / "model.npz").is_file()


def test_a_second_sweep_at_once_is_refused_by_the_lock(config, tmp_path):
    """While another process holds the sweep's lock: exit 2, one line, no run trained, no csv written."""
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".softreg-sweep-lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        code, _, stderr = run("sweep", "--config", config, "--grid", "seed=0", "--out", out)
    assert code == 2
    assert stderr == f"softreg: error: {out}: another sweep is running there; wait for it or choose another --out\n"
    assert sorted(path.name for path in out.iterdir()) == [".softreg-sweep-lock"]


@pytest.mark.parametrize("name", ["plots", "sweep.csv"])
def test_a_file_or_folder_where_the_sweep_writes_the_other_exits_2(config, tmp_path, name):
    """A plots file where the sweep draws into a folder (or a sweep.csv folder): one line, exit 2, nothing run."""
    out = tmp_path / "out"
    (out / name).mkdir(parents=True) if name == "sweep.csv" else (out.mkdir(), (out / name).write_text("x"))
    code, _, stderr = run("sweep", "--config", config, "--grid", "seed=0", "--out", out, "--force")
    kind = "a folder" if name == "plots" else "a file"
    assert code == 2
    assert stderr == (f"softreg: error: {out / name}: the sweep writes {kind} here, and something else is there; "
                      "move it away\n")
    assert not (out / "seed-0").exists()


def test_ten_grid_keys_train_under_short_names_and_all_failed_is_not_blamed_on_data_val(config, tmp_path):
    """Ten grid keys make a name too long for a file: runs are named by 100 characters and a hash, and all
    train; when every run fails, the summary says no run finished (not data.val: 0)."""
    keys = ["model.weight_decay=0.01", "optim.lr=0.1", "optim.batch_size=16", "optim.momentum=0.5",
            "optim.nesterov=false", "optim.schedule=inverse_time", "model.fit_intercept=true",
            "optim.variance_reduction=none", "model.normalizer=softmax", "model.loss=cross_entropy",
            "data.stratify=true", "output.checkpoint_every=1", "data.standardize=true", "seed=0,1",
            "model.temperature=1.0"]
    grids = [part for key in keys for part in ("--grid", key)]
    code, stdout, stderr = run("sweep", "--config", config, *grids, "--out", tmp_path / "out")
    assert code == 0, stderr
    rows = read_rows(tmp_path / "out" / "sweep.csv")
    assert [row["status"] for row in rows] == ["trained", "trained"]
    assert len({row["run_dir"] for row in rows}) == 2 and all(len(row["run_dir"]) == 114 for row in rows)
    diverging = [part.replace("optim.lr=0.1", "optim.lr=1e12") for part in grids]
    code, stdout, stderr = run("sweep", "--config", config, *diverging, "--out", tmp_path / "diverged")
    assert code == 1 and "no run finished: no best setting is chosen" in stdout and "data.val" not in stdout


def test_every_status_is_documented_in_the_readme():
    """Each status sweep.csv can hold is listed, with its meaning, in the README."""
    from softreg.commands.sweep import STATUSES

    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())  # unwrapped
    for status, meaning in STATUSES.items():
        assert f"`{status}` ({meaning})" in readme, status


def processes():
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def stat(pid):
    """The fields of /proc/PID/stat after the command's name (state, ppid, ...), or None when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def parent(pid):
    fields = stat(pid)
    return int(fields[1]) if fields else None


@pytest.mark.slow  # a sweep process killed with SIGKILL while its joblib workers train
def test_sigkill_of_a_sweep_kills_its_workers_and_a_rerun_at_once_finishes(tmp_path):
    """SIGKILL of `sweep --jobs 2` while both workers train: the workers exit (they watch the sweep's
    process), and the same command run at once trains every run: exit 0, every row trained or reused."""
    import os
    import signal
    import subprocess
    import sys
    import time

    config = tmp_path / "digits.yaml"
    config.write_text("data: {source: builtin:digits, val: 0.1}\noptim: {epochs: 400, batch_size: 16}\n"
                      "output: {plots: false}\n")
    command = [sys.executable, "-m", "softreg", "sweep", "--config", str(config), "--grid", "seed=0,1",
               "--jobs", "2", "--out", str(tmp_path / "out")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    # both runs have written their config.yaml: the workers are training
    while not all((tmp_path / "out" / f"seed-{seed}" / "config.yaml").exists() for seed in (0, 1)):
        assert time.monotonic() < deadline and process.poll() is None, "the sweep never started its runs"
        time.sleep(0.05)
    workers = [pid for pid in processes() if parent(pid) == process.pid]
    assert workers, "the sweep has no worker processes"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    def alive(pid):
        return (stat(pid) or ["Z"])[0] != "Z"  # gone, or a zombie nobody reaped yet

    while any(alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "workers of the killed sweep are still running"
        time.sleep(0.05)
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert {row["status"] for row in read_rows(tmp_path / "out" / "sweep.csv")} <= {"trained", "reused"}


def test_a_run_entry_replaced_by_a_link_to_a_users_folder_is_refused_and_kept(config, tmp_path):
    """Rerunning a finished sweep whose run entry now links to a user's folder (holding a config.yaml, or a
    finished-looking model.npz) exits 2 naming the link, and the user's files are all still there."""
    out = tmp_path / "out"
    grid = ["--grid", "model.weight_decay=1e-4,1e-3"]
    assert run("sweep", "--config", config, *grid, "--out", out)[0] == 0
    users = tmp_path / "users"
    users.mkdir()
    for name in ("config.yaml", "model.npz", "thesis.tex"):
        (users / name).write_text("mine")
    entry = out / "weight_decay-1e-4"
    import shutil

    shutil.rmtree(entry)
    entry.symlink_to(users)
    for extra in ((), ("--force",)):
        code, _, stderr = run("sweep", "--config", config, *grid, "--out", out, *extra)
        assert code == 2 and "weight_decay-1e-4: is a symbolic link; softreg does not write through links" in stderr
    assert sorted(p.name for p in users.iterdir()) == ["config.yaml", "model.npz", "thesis.tex"]
    assert all(p.read_text() == "mine" for p in users.iterdir())
