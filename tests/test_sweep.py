"""``softreg sweep``: one run directory per combination, sweep.csv, resuming, parallel runs."""

import csv
import json

import pytest
from click.testing import CliRunner

from softreg.cli import main
from softreg.commands.grid import combinations, parse_grid, split_values
from softreg.commands.sweep import TIMING_COLUMNS
from tests.strategies import default_sigint

GRIDS = ["--grid", "model.weight_decay=1e-4,1e-3,1e-2", "--grid", "model.loss=cross_entropy,squared_error"]
NAMES = [f"weight_decay-{decay}__loss-{loss}" for decay in ("1e-4", "1e-3", "1e-2")
         for loss in ("cross_entropy", "squared_error")]


def run(*args):
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


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
        assert row["status"] == "ok" and row["epochs"] == "4" and float(row["seconds"]) > 0
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
    """Rerunning: finished runs are skipped (their files untouched); a run without model.npz (interrupted)
    is trained again, and sweep.csv is the same but for timing."""
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
    assert read_rows(out / "sweep.csv") == before


@pytest.mark.slow
def test_two_jobs_give_the_same_csv_as_one(swept, config, tmp_path):
    """--jobs 2 (joblib processes) writes the same sweep.csv as --jobs 1, timing columns aside."""
    out, _, _ = swept
    code, _, stderr = run("sweep", "--config", config, *GRIDS, "--jobs", 2, "--out", tmp_path / "parallel")
    assert code == 0, stderr
    assert read_rows(tmp_path / "parallel" / "sweep.csv") == read_rows(out / "sweep.csv")


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
    assert [row["status"] for row in rows] == ["ok", "failed"]
    assert (tmp_path / "out" / "lr-0.1" / "model.npz").is_file() and not (tmp_path / "out" / "lr-1e12").exists()


def test_a_finished_run_with_another_config_is_not_reused(config, tmp_path):
    """Same --out, different base settings: the finished run would be reused wrongly, so exit 2 says why."""
    out = tmp_path / "out"
    assert run("sweep", "--config", config, "--grid", "seed=0,1", "--out", out)[0] == 0
    code, _, stderr = run("sweep", "--config", config, "--grid", "seed=0,1", "--set", "optim.epochs=5", "--out", out)
    assert code == 2 and "was trained with optim.epochs = 4, this sweep asks for 5" in stderr
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
    assert (runs / "seed-0" / "model.npz").exists() and not (runs / "seed-2" / "model.npz").exists()
    finished = [seed for seed in ("seed-0", "seed-1") if (runs / seed / "model.npz").exists()]
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert [seed for seed in ("seed-0", "seed-1", "seed-2")
            if f"{seed}:  skipped (finished before)" in resumed.stderr] == finished
    whole = subprocess.run([*command[:-1], str(tmp_path / "whole")], capture_output=True, text=True, timeout=120)
    assert whole.returncode == 0
    assert read_rows(tmp_path / "stopped" / "sweep.csv") == read_rows(tmp_path / "whole" / "sweep.csv")


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
