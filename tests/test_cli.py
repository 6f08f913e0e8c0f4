"""The command line as a user meets it: exit codes, stdout and stderr, run directories."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from softreg import __version__, rundir
from softreg.cli import main
from tests.strategies import run

REPO = Path(__file__).resolve().parent.parent
FAST = ["--set", "optim.epochs=3", "--set", "output.plots=false"]


def make_config(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """One real run of the README default config, shared by the read-only tests."""
    out = tmp_path_factory.mktemp("runs") / "digits"
    code, stdout, stderr = run("train", "--config", REPO / "configs" / "digits.yaml", "--out", out)
    assert code == 0, stderr
    return out, stdout, stderr


def test_version_and_help_with_examples():
    """--version prints the version; every command's --help shows a worked example."""
    code, stdout, _ = run("--version")
    assert code == 0 and stdout.strip() == f"softreg, version {__version__}"
    for command in main.commands:
        code, stdout, _ = run(command, "--help")
        assert code == 0 and "Example" in stdout, command


def test_digits_default_trains_to_95_percent_with_progress_and_summary(digits_run):
    """The README's default run: one `epoch N/E` line per epoch on stderr off a terminal, the summary alone
    on stdout, accuracy >= 0.95, certified converged."""
    out, stdout, stderr = digits_run
    assert not any(line.startswith("epoch ") for line in stdout.splitlines())
    epoch_lines = [line for line in stderr.splitlines() if line.startswith("epoch ")]
    epochs = len(rundir.read_history(out))
    assert [line.split()[1] for line in epoch_lines] == [f"{n}/1000" for n in range(1, epochs + 1)]
    assert f"run directory: {out}" in stdout and "test accuracy" in stdout and "final objective" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.95
    # it converges and says so: stopped by optim.tol before the most epochs, the bound certified
    assert epochs < 1000 and metrics["converged"] is True and metrics["gap_bound"] <= 1e-4
    assert "stopped by optim.tol = 0.0001" in stdout and "converged: yes" in stdout
    for key in ("accuracy", "log_loss", "objective", "grad_norm"):
        assert np.isfinite(metrics[key])


def test_run_directory_layout_and_plain_arrays(digits_run):
    """The SPEC's files exist; model.npz holds plain arrays of the documented shapes."""
    out, _, _ = digits_run
    names = ("config.yaml", "model.npz", "model.json", "history.csv", "metrics.json")
    for name in (*names, "plots/learning_curves.png", "plots/confusion_matrix.png"):
        assert (out / name).is_file(), name
    with np.load(out / "model.npz", allow_pickle=False) as model:
        assert model["coef"].shape == (10, 64) and model["intercept"].shape == (10,)
        assert model["classes"].tolist() == list(range(10))
        assert model["feature_mean"].shape == (64,) and model["feature_scale"].shape == (64,)
    header, *rows = (out / "history.csv").read_text().splitlines()
    assert header == "epoch,lr,train_loss,objective,grad_norm,val_loss,val_accuracy,seconds,comm_seconds,gap_bound"
    epochs_run = rundir.read_model_json(out / "model.json")["training"]["epochs_run"]
    assert len(rows) == epochs_run and rows[-1].split(",")[3] != "" and float(rows[-1].split(",")[-1]) <= 1e-4
    assert not list(out.parent.glob(".*staging*"))


def test_evaluate_json_accuracy_equals_metrics_json(digits_run):
    """evaluate --json on the saved test split reproduces the run's metrics.json accuracy exactly."""
    out, _, _ = digits_run
    code, stdout, _ = run("evaluate", "--run", out, "--json")
    assert code == 0
    assert json.loads(stdout)["accuracy"] == json.loads((out / "metrics.json").read_text())["accuracy"]
    code, stdout, _ = run("evaluate", "--run", out)
    assert code == 0 and "macro avg" in stdout and "most confused" in stdout


@pytest.mark.slow
def test_predict_matches_columns_by_name_and_ignores_the_label(tmp_path):
    """predict reorders columns by the saved feature names, ignores a label column, writes label + prob_<class>."""
    out = tmp_path / "iris"
    code, _, stderr = run("train", "--config", REPO / "configs" / "iris-csv.yaml", "--out", out, "--quiet")
    assert code == 0, stderr
    source = (REPO / "data" / "iris.csv").read_text().splitlines()
    columns = [line.split(",") for line in source]
    shuffled = [",".join([row[4], row[2], row[0], row[3], row[1]]) for row in columns]  # label first, features permuted
    (tmp_path / "new.csv").write_text("\n".join(shuffled) + "\n")
    code, stdout, _ = run("predict", "--run", out, "--input", tmp_path / "new.csv")
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0] == "label,prob_setosa,prob_versicolor,prob_virginica"
    probabilities = np.array([[float(v) for v in line.split(",")[1:]] for line in lines[1:]])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-8)
    predicted = [line.split(",")[0] for line in lines[1:]]
    assert np.mean(np.array(predicted) == np.array([row[4] for row in columns[1:]])) > 0.9
    code, original, _ = run("predict", "--run", out, "--input", REPO / "data" / "iris.csv")
    assert original == stdout  # the column order of the input does not matter


@pytest.mark.slow
def test_predict_refuses_missing_features_and_existing_output(tmp_path):
    """A file lacking model features names them (exit 2); an existing --output needs --force."""
    out = tmp_path / "iris"
    run("train", "--config", REPO / "configs" / "iris-csv.yaml", "--out", out, "--quiet")
    (tmp_path / "partial.csv").write_text("sepal_length,petal_width\n5.1,0.2\n")
    code, stdout, stderr = run("predict", "--run", out, "--input", tmp_path / "partial.csv")
    assert code == 2 and stdout == ""
    assert stderr.strip() == (
        f"softreg: error: {tmp_path / 'partial.csv'}: "
        "missing feature column(s) 'sepal_width', 'petal_length' that the model needs"
    )
    target = tmp_path / "pred.csv"
    target.write_text("keep me")
    code, _, stderr = run("predict", "--run", out, "--input", REPO / "data" / "iris.csv", "--output", target)
    assert code == 2 and "exists; use --force" in stderr and target.read_text() == "keep me"
    code, _, _ = run("predict", "--run", out, "--input", REPO / "data" / "iris.csv", "--output", target, "--force")
    assert code == 0 and target.read_text().startswith("label,")


def test_same_config_and_seed_give_bit_identical_models(tmp_path):
    """Two runs of one config produce identical model.npz arrays, bit for bit."""
    config = REPO / "configs" / "wine.yaml"
    for name in ("a", "b"):
        assert run("train", "--config", config, "--out", tmp_path / name, "--quiet", *FAST)[0] == 0
    with np.load(tmp_path / "a" / "model.npz") as a, np.load(tmp_path / "b" / "model.npz") as b:
        for key in a.files:
            assert a[key].tobytes() == b[key].tobytes(), key
    assert run("train", "--config", config, "--out", tmp_path / "c", "--quiet", "--set", "seed=1", *FAST)[0] == 0
    with np.load(tmp_path / "a" / "model.npz") as a, np.load(tmp_path / "c" / "model.npz") as c:
        assert a["coef"].tobytes() != c["coef"].tobytes()


def test_lr_auto_is_printed_and_saved_as_the_number_it_chose(tmp_path):
    """optim.lr: auto prints the chosen rate before the first epoch and saves that number in config.yaml
    (and in model.json's training summary); --print-config shows auto, since it needs the data."""
    import yaml

    config = REPO / "configs" / "wine.yaml"
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "a", "--set", "optim.lr=auto", *FAST)
    assert code == 0  # progress, and this line with it, goes to stderr
    first, second = stderr.splitlines()[:2]
    assert first.startswith("optim.lr: auto chose ") and second.startswith("epoch 1/3  lr=")
    saved = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())["optim"]["lr"]
    assert isinstance(saved, float) and saved > 0 and f"chose {saved:.4g} " in first
    assert json.loads((tmp_path / "a" / "model.json").read_text())["training"]["lr"] == saved
    code, stdout, _ = run("train", "--config", config, "--set", "optim.lr=auto", "--print-config")
    assert code == 0 and "  lr: auto\n" in stdout


def test_existing_run_directory_is_refused_without_force(tmp_path):
    """An existing non-empty --out is refused (exit 2) and kept; --force replaces a run directory."""
    out = tmp_path / "run"
    config = REPO / "configs" / "iris.yaml"
    assert run("train", "--config", config, "--out", out, "--quiet", *FAST)[0] == 0
    first = (out / "model.npz").read_bytes()
    code, _, stderr = run("train", "--config", config, "--out", out, *FAST)
    assert code == 2
    assert stderr.strip() == (
        f"softreg: error: {out}: run directory already exists and is not empty; use --force to replace it"
    )
    assert (out / "model.npz").read_bytes() == first
    code, _, _ = run("train", "--config", config, "--out", out, "--force", "--quiet", *FAST, "--set", "seed=3")
    assert code == 0 and (out / "model.npz").read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing left beside it


@pytest.mark.parametrize("where", ["user folder", "current directory"])
def test_force_never_replaces_a_folder_softreg_did_not_write(tmp_path, monkeypatch, where):
    """--force replaces only softreg's own directories: a user's folder (or the cwd) is refused."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "precious.txt").write_text("mine")
    if where == "current directory":
        (folder / "config.yaml").write_text("not ours, but looks like it")
        monkeypatch.chdir(folder)
        out = "."
    else:
        out = folder
    code, _, stderr = run("train", "--config", REPO / "configs" / "iris.yaml", "--out", out, "--force", *FAST)
    assert code == 2 and "exists and is not a softreg output directory (no .softreg-run marker)" in stderr
    assert (folder / "precious.txt").read_text() == "mine"


def test_force_never_replaces_the_current_directory_even_a_run(tmp_path, monkeypatch):
    """`--out . --force` inside a run directory of softreg's is refused: the shell's cwd would vanish."""
    config = REPO / "configs" / "iris.yaml"
    assert run("train", "--config", config, "--out", tmp_path / "run", "--quiet", *FAST)[0] == 0
    monkeypatch.chdir(tmp_path / "run")
    code, _, stderr = run("train", "--config", config, "--out", ".", "--force", *FAST)
    assert code == 2 and "is the current directory or contains it; refusing to replace it even with --force" in stderr
    assert (tmp_path / "run" / "model.npz").exists()


def test_divergence_exits_1_and_writes_no_model(tmp_path):
    """A rate so large that training diverges: exit 1, says so with a smaller lr, no model.npz."""
    out = tmp_path / "run"
    code, _, stderr = run("train", "--config", REPO / "configs" / "iris.yaml", "--out", out, "--quiet",
                          "--set", "optim.lr=100", "--set", "model.weight_decay=1")
    assert code == 1
    assert stderr.startswith("softreg: error: training diverged at epoch ")
    assert "Try a smaller optim.lr (now 100), e.g. 0.26." in stderr and "Traceback" not in stderr
    assert not out.exists() and not list(tmp_path.glob(".*"))
    # the suggested rate trains
    code, _, _ = run("train", "--config", REPO / "configs" / "iris.yaml", "--out", out, "--quiet",
                     "--set", "optim.lr=0.26", "--set", "model.weight_decay=1", "--set", "output.plots=false")
    assert code == 0


@pytest.mark.parametrize(
    ("yaml_text", "extra", "message"),
    [
        ("data:\n  source: builtin:iris\noptim:\n  lr: -0.1\n", [], "c.yaml: optim.lr must be > 0, got -0.1"),
        (
            "data:\n  source: builtin:iris\noptim:\n  learning_rate: 0.1\n",
            [],
            "c.yaml: unknown key optim.learning_rate",
        ),
        ("data:\n  source: missing.csv\n", [], "missing.csv: data file not found"),
        (
            "data:\n  source: builtin:iris\n  label: nope\n",
            [],
            "builtin:iris: data.label applies to delimited text only; this source carries its own labels",
        ),
        (
            "data:\n  source: builtin:iris\n  classes: [setosa, rose]\n",
            [],
            "class(es) 'rose' not in the data; its classes are: setosa, versicolor, virginica",
        ),
        (
            "data:\n  source: builtin:iris\n",
            ["--set", "optim.batch_size=0"],
            "--set: optim.batch_size must be >= 1, got 0",
        ),
    ],
)
def test_bad_config_exits_2_with_one_line_and_no_traceback(tmp_path, yaml_text, extra, message):
    """Config and data errors: exit 2, one line on stderr naming the culprit, nothing on stdout."""
    config = make_config(tmp_path, yaml_text)
    code, stdout, stderr = run("train", "--config", config, "--out", tmp_path / "out", *extra)
    assert code == 2 and stdout == ""
    assert message in stderr and stderr.startswith("softreg: error: ") and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_missing_config_file(tmp_path):
    """A config path that does not exist: exit 2 naming it."""
    code, _, stderr = run("train", "--config", tmp_path / "nope.yaml")
    assert code == 2 and stderr.strip() == f"softreg: error: {tmp_path / 'nope.yaml'}: config file not found"


def test_print_config_prints_resolved_yaml_and_exits(tmp_path):
    """--print-config shows defaults filled in and the override, and trains nothing."""
    code, stdout, _ = run(
        "train", "--config", REPO / "configs" / "iris.yaml", "--print-config", "--set", "optim.lr=0.05",
        "--out", tmp_path / "x",
    )
    assert code == 0 and "lr: 0.05" in stdout and "eval_every: null" in stdout
    assert not (tmp_path / "x").exists()


def test_json_is_one_document_and_quiet_is_quiet(tmp_path):
    """--json prints exactly one JSON document on stdout; --quiet prints no epoch lines."""
    code, stdout, _ = run("train", "--config", REPO / "configs" / "iris.yaml", "--out", tmp_path / "j", "--json", *FAST)
    document = json.loads(stdout)
    assert code == 0 and document["run_dir"] == str(tmp_path / "j") and "accuracy" in document["metrics"]
    code, stdout, _ = run(
        "train", "--config", REPO / "configs" / "iris.yaml", "--out", tmp_path / "q", "--quiet", *FAST
    )
    assert code == 0 and not any(line.startswith("epoch") for line in stdout.splitlines())


def test_float32_runs_in_float32(tmp_path):
    """model.dtype=float32 trains and saves float32 weights."""
    code, _, _ = run(
        "train", "--config", REPO / "configs" / "wine.yaml", "--out", tmp_path / "f", "--quiet",
        "--set", "model.dtype=float32", *FAST,
    )
    with np.load(tmp_path / "f" / "model.npz") as model:
        assert code == 0 and model["coef"].dtype == np.float32


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "run directory not found"),
        (lambda d: d.mkdir(), "no model.npz (the run did not finish, or this is not a softreg run directory)"),
    ],
)
def test_evaluate_bad_run_directory(tmp_path, setup, message):
    """evaluate on a missing or empty run directory: exit 2 naming it."""
    run_dir = tmp_path / "r"
    setup(run_dir)
    code, stdout, stderr = run("evaluate", "--run", run_dir)
    assert code == 2 and stdout == "" and stderr.strip() == f"softreg: error: {run_dir}: {message}"


def test_unexpected_exception_is_an_internal_error_not_a_user_error(tmp_path, monkeypatch):
    """A bug surfaces as 'internal error ... --debug' with exit 1; --debug shows the traceback."""
    import softreg.run

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(softreg.run, "train_run", broken)
    code, _, stderr = run("train", "--config", REPO / "configs" / "iris.yaml", "--out", tmp_path / "x")
    assert code == 1
    assert stderr.strip() == "softreg: internal error: ZeroDivisionError: boom (rerun with --debug for the traceback)"
    arguments = ["train", "--config", str(REPO / "configs" / "iris.yaml"), "--out", str(tmp_path / "x"), "--debug"]
    with pytest.raises(ZeroDivisionError):
        CliRunner().invoke(main, arguments, catch_exceptions=False)


def test_unwritable_outputs_exit_naming_the_path(tmp_path):
    """An output that cannot be written (a file where a folder should be) names the path and exits 2 (the
    path must change): train's --out and predict's --output."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    code, _, stderr = run("train", "--config", REPO / "configs" / "iris.yaml", "--out", blocker / "run", *FAST)
    assert code == 2 and stderr == (f"softreg: error: {blocker / 'run'}: cannot create the run directory "
                                    "(a file is in the way of its folder); choose another --out\n")
    assert blocker.read_text() == "a file, not a folder"
    out = tmp_path / "iris"
    assert run("train", "--config", REPO / "configs" / "iris-csv.yaml", "--out", out, "--quiet", *FAST)[0] == 0
    code, _, stderr = run("predict", "--run", out, "--input", REPO / "data" / "iris.csv", "--output", blocker / "p.csv")
    assert code == 2 and stderr == f"softreg: error: {blocker / 'p.csv'}: cannot write (Not a directory)\n"


def test_failed_predict_keeps_the_previous_output(tmp_path):
    """predict --force onto an existing file that then fails midway leaves the old file intact."""
    out = tmp_path / "iris"
    assert run("train", "--config", REPO / "configs" / "iris-csv.yaml", "--out", out, "--quiet", *FAST)[0] == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("sepal_length,sepal_width,petal_length,petal_width\n" + "1,2,3,4\n" * 70000 + "1,2,x,4\n")
    target = tmp_path / "pred.csv"
    target.write_text("previous predictions")
    code, _, stderr = run("predict", "--run", out, "--input", bad, "--output", target, "--force")
    assert code == 2 and "line 70002, column 'petal_length': 'x' is not a number" in stderr
    assert target.read_text() == "previous predictions"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "iris", "pred.csv"]


@pytest.mark.slow
def test_predict_into_a_closed_pipe_stops_quietly(tmp_path):
    """`softreg predict ... | head -1`: the closed pipe ends predict without a traceback."""
    import subprocess
    import sys

    out = tmp_path / "iris"
    assert run("train", "--config", REPO / "configs" / "iris-csv.yaml", "--out", out, "--quiet", *FAST)[0] == 0
    big = tmp_path / "big.csv"
    big.write_text("sepal_length,sepal_width,petal_length,petal_width\n" + "5.1,3.5,1.4,0.2\n" * 200000)
    predict = subprocess.Popen([sys.executable, "-m", "softreg.cli", "predict", "--run", str(out), "--input", str(big)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = predict.stdout.readline()
    predict.stdout.close()
    stderr = predict.stderr.read().decode()
    predict.stderr.close()
    predict.wait(timeout=60)
    assert first.startswith(b"label,prob_setosa") and "Traceback" not in stderr and "internal error" not in stderr
