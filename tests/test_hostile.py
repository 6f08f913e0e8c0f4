"""Hostile, concurrent and malformed inputs: exit 0, 1 (a genuine run failure), 2 or 130, one
short line on stderr, no traceback, no internal error, nothing replaced that softreg did not make."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from softreg.cli import main
from tests.strategies import default_sigint

SMALL = "data:\n  source: builtin:iris\noptim:\n  epochs: 2\noutput:\n  plots: false\n"


def run(*args, input=None):
    result = CliRunner().invoke(main, [str(arg) for arg in args], input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def assert_clean_refusal(code, stderr, expected=2):
    """The contract for bad input: the exit code, one line under 300 characters, no traceback."""
    assert code == expected, stderr
    assert stderr.startswith("softreg: error: ") and stderr.count("\n") == 1 and len(stderr) < 300, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    (root / "c.yaml").write_text(SMALL)
    code, _, stderr = run("train", "--config", root / "c.yaml", "--out", root / "run", "--quiet")
    assert code == 0, stderr
    return root / "run"


# -- configs and --set values


@pytest.mark.parametrize(
    "assignment",
    [
        "optim.lr=" + "[" * 500,
        "optim.epochs=" + "9" * 400,
        "optim.lr=" + "9" * 400,
        "data.source=" + "a" * 6000 + ".csv",
        'output.dir="\\ud800"',
        'output.dir="a\\0b"',
        "optim.momentum={a: [1, {b: 2}]}",
    ],
    ids=["nested", "huge-int-epochs", "huge-int-lr", "long-path", "surrogate", "nul", "mapping"],
)
def test_hostile_set_values_are_refused_in_one_short_line(tmp_path, assignment):
    """Deep nesting, 400-digit integers, a 6,000-character path, a lone surrogate, a NUL: exit 2, one line."""
    (tmp_path / "c.yaml").write_text(SMALL)
    code, _, stderr = run("train", "--config", tmp_path / "c.yaml", "--set", assignment, "--out", tmp_path / "r")
    assert_clean_refusal(code, stderr)
    assert not (tmp_path / "r").exists()


def test_billion_laughs_is_refused_quickly(tmp_path):
    """Nine anchors of nine aliases: refused in well under a second, with a short message."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
        previous = name
    lines.append("data: {source: 'builtin:iris', classes: *i}")
    (tmp_path / "c.yaml").write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    code, _, stderr = run("train", "--config", tmp_path / "c.yaml", "--out", tmp_path / "r")
    assert_clean_refusal(code, stderr)
    assert "expands to more than" in stderr and time.perf_counter() - started < 30


def test_special_files_are_refused(tmp_path):
    """A FIFO as data source or config: exit 2 naming it, without blocking."""
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    (tmp_path / "c.yaml").write_text(f"data:\n  source: {fifo}\n")
    code, _, stderr = run("train", "--config", tmp_path / "c.yaml", "--out", tmp_path / "r")
    assert_clean_refusal(code, stderr)
    assert "is not a regular file" in stderr
    code, _, stderr = run("train", "--config", fifo, "--out", tmp_path / "r")
    assert_clean_refusal(code, stderr)


# -- data files


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "maker",
    [
        lambda p: p.write_bytes(write_npz(p, X=np.ones((9, 2)), y=np.arange(9) % 2).read_bytes()[:40]),
        lambda p: np.save(str(p) + ".npy", np.ones((9, 2))) or os.replace(str(p) + ".npy", p),
        lambda p: write_npz(p, X=np.ones((9, 2)), y=np.arange(9) % 2, feature_names=np.array("a")),
        lambda p: write_npz(p, X=np.ones((9, 2)), y=np.arange(9) % 2, feature_names=np.array([["a", "b"]])),
        lambda p: write_npz(p, X=np.ones((9, 2)), y=np.arange(9) % 2, feature_names=np.array(["a", "b", "c"])),
        lambda p: write_npz(p, X=np.ones((9, 2)), y=np.zeros(9, dtype=[("a", int), ("b", float)])),
        lambda p: write_npz(p, X=np.ones((9, 0)), y=np.arange(9) % 2),
    ],
    ids=["truncated", "npy-named-npz", "names-0d", "names-2d", "names-wrong-length", "structured-y", "no-columns"],
)
def test_malformed_npz_sources(tmp_path, maker):
    """Each broken .npz is exit 2 with one line naming the file."""
    path = tmp_path / "d.npz"
    maker(path)
    (tmp_path / "c.yaml").write_text("data:\n  source: d.npz\n  stratify: false\n")
    code, _, stderr = run("train", "--config", tmp_path / "c.yaml", "--out", tmp_path / "r")
    assert_clean_refusal(code, stderr)
    assert "d.npz" in stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 1:1 2147483648:2\n1 1:2\n", "not valid svmlight"),
        ("inf 1:1\n0 1:2\n1 2:1\n", "line 1: the label is not a finite number"),
    ],
)
def test_malformed_svmlight_sources(tmp_path, text, message):
    """A feature index past 2^31 and an infinite label: exit 2, named."""
    (tmp_path / "d.svm").write_text(text)
    (tmp_path / "c.yaml").write_text("data:\n  source: d.svm\n  stratify: false\n  test: 0\n  val: 0\n")
    code, _, stderr = run("train", "--config", tmp_path / "c.yaml", "--out", tmp_path / "r")
    assert_clean_refusal(code, stderr)
    assert message in stderr


def test_thirty_digit_svmlight_labels_stay_text(tmp_path):
    """Labels too large for an exact integer are kept as the text they are, not wrapped around."""
    big = "123456789012345678901234567890"
    (tmp_path / "d.svm").write_text(f"{big} 1:1\n0 1:2\n0 2:1\n{big} 2:2\n")
    (tmp_path / "c.yaml").write_text("data:\n  source: d.svm\n  stratify: false\n  test: 0\n  val: 0\n"
                                     "optim:\n  epochs: 1\n")
    code, _, stderr = run("train", "--config", tmp_path / "c.yaml", "--out", tmp_path / "r", "--quiet")
    assert code == 0, stderr
    classes = json.loads((tmp_path / "r" / "model.json").read_text())["classes"]
    assert classes == ["0.0", "1.2345678901234568e+29"] or classes[1].startswith("1.23456789")
    assert "-9223372036854775808" not in classes


def test_wide_header_duplicate_check_is_linear(tmp_path):
    """A 40,000-column header is checked for duplicates in about a second, not tens of seconds."""
    names = [f"c{index}" for index in range(40_000)]
    (tmp_path / "d.csv").write_text(",".join(names + ["c7"]) + "\n" + ",".join(["1"] * 40_001) + "\n")
    (tmp_path / "c.yaml").write_text("data:\n  source: d.csv\n")
    started = time.perf_counter()
    code, _, stderr = run("train", "--config", tmp_path / "c.yaml", "--out", tmp_path / "r")
    assert_clean_refusal(code, stderr)
    assert "duplicate column name(s) 'c7'" in stderr and time.perf_counter() - started < 20


def test_predict_refuses_values_that_overflow_when_standardized(good_run, tmp_path):
    """Rows of 1.7e308: no NaN probabilities; exit 2 naming the row (never a silently wrong output)."""
    (tmp_path / "x.csv").write_text("sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n"
                                    + ",".join(["1.7e308"] * 4) + "\n")
    code, stdout, stderr = run("predict", "--run", good_run, "--input", tmp_path / "x.csv")
    assert_clean_refusal(code, stderr)
    assert "nan" not in stdout.lower()
    code, _, stderr = run("evaluate", "--run", good_run, "--data", tmp_path / "x.csv")
    assert code == 2 and "internal error" not in stderr


# -- run directories are input too


def corrupt(run_dir, name, content):
    path = run_dir / name
    if content is None:
        path.unlink()
    elif callable(content):
        content(path)
    else:
        path.write_bytes(content.encode() if isinstance(content, str) else content)


CORRUPTIONS = {
    "history-short-row": ("history.csv", lambda p: p.write_text(p.read_text().rstrip("\n").rsplit(",", 2)[0] + "\n")),
    "metrics-no-classes": ("metrics.json", lambda p: p.write_text(json.dumps(
        {k: v for k, v in json.loads(p.read_text()).items() if k != "classes"}))),
    "metrics-ragged-confusion": ("metrics.json", lambda p: p.write_text(json.dumps(
        {**json.loads(p.read_text()), "confusion_matrix": [[1, 2], [3]]}))),
    "model-training-text": ("model.json", lambda p: p.write_text(json.dumps(
        {**json.loads(p.read_text()), "training": "x"}))),
    "test-y-short": ("test.npz", lambda p: np.savez(p, X=np.ones((5, 4)), y=np.zeros(3, dtype=np.int64))),
    "test-nan": ("test.npz", lambda p: np.savez(p, X=np.full((5, 4), np.nan), y=np.zeros(5, dtype=np.int64))),
    "test-sparse-out-of-range": ("test.npz", lambda p: np.savez(
        p, data=np.ones(3), indices=np.array([0, 99999, 2]), indptr=np.array([0, 1, 3]), shape=np.array([2, 4]),
        y=np.zeros(2, dtype=np.int64))),
    "checkpoint-epoch-text": ("checkpoint.npz", lambda p: _rewrite_checkpoint(p, epoch="2")),
    "checkpoint-velocity-count": ("checkpoint.npz", lambda p: _rewrite_checkpoint(p, n_velocity=3)),
    "model-npz-truncated": ("model.npz", lambda p: p.write_bytes(p.read_bytes()[:50])),
    "model-json-garbage": ("model.json", "{not json"),
}


def _rewrite_checkpoint(path, **changes):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files if name != "meta"}
        meta = json.loads(str(archive["meta"]))
    meta.update(changes)
    with open(path, "wb") as handle:
        np.savez(handle, meta=np.array(json.dumps(meta)), **arrays)


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupted_run_directories_are_refused_by_every_command(good_run, tmp_path, corruption):
    """evaluate, predict, report and train --resume on a damaged run: exit 0 (when the damaged file is not
    needed, or resume repairs it) or 2 with one line; never an internal error, a crash or a signal."""
    run_dir = tmp_path / "run"
    shutil.copytree(good_run, run_dir)
    corrupt(run_dir, *CORRUPTIONS[corruption])
    (tmp_path / "x.csv").write_text("sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n1,2,3,4\n")
    commands = [
        ("evaluate", "--run", run_dir),
        ("evaluate", "--run", run_dir, "--json"),
        ("predict", "--run", run_dir, "--input", tmp_path / "x.csv"),
        ("report", "--run", run_dir, "--output", tmp_path / "r.html", "--force"),
        ("train", "--resume", run_dir, "--quiet"),
    ]
    for command in commands:
        code, _, stderr = run(*command)
        if code != 0:
            assert_clean_refusal(code, stderr)


def test_resume_of_a_finished_run_with_a_damaged_model_rewrites_it(good_run, tmp_path):
    """A finished run whose model.npz is truncated is not "already finished": resume rewrites the model
    from the final checkpoint, identical to the original."""
    run_dir = tmp_path / "run"
    shutil.copytree(good_run, run_dir)
    original = (run_dir / "model.npz").read_bytes()
    (run_dir / "model.npz").write_bytes(original[:50])
    code, stdout, stderr = run("train", "--resume", run_dir, "--quiet")
    assert code == 0 and "already finished" not in stdout, stderr
    with np.load(run_dir / "model.npz") as rewritten, np.load(good_run / "model.npz") as reference:
        assert all(np.array_equal(rewritten[name], reference[name]) for name in reference.files)


# -- outputs: claimed atomically, never replaced unasked


def test_an_empty_directory_without_write_permission_is_refused(tmp_path):
    """--out an existing empty directory of mode 500: exit 2, and the directory is left as it was."""
    (tmp_path / "c.yaml").write_text(SMALL)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        code, _, stderr = run("train", "--config", tmp_path / "c.yaml", "--out", locked)
        assert_clean_refusal(code, stderr)
        assert "not writable" in stderr and locked.stat().st_mode & 0o777 == 0o500 and not any(locked.iterdir())
        code, _, stderr = run("evaluate", "--run", tmp_path / "nope", "--out", locked)
        assert code == 2
    finally:
        locked.chmod(0o700)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3))
def test_two_runs_racing_for_one_out_directory(tmp_path, trial):
    """Two `softreg train` started together on one --out (two configs): exactly one succeeds, the other
    exits 2 naming the directory, and the directory is complete and consistent with the winner's config."""
    for name, epochs in (("a", 2), ("b", 3)):
        (tmp_path / f"{name}.yaml").write_text(SMALL.replace("epochs: 2", f"epochs: {epochs}"))
    out = tmp_path / "shared"
    processes = [
        subprocess.Popen([sys.executable, "-m", "softreg", "train", "--config", tmp_path / f"{name}.yaml",
                          "--out", out, "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    results = []
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        results.append((process.returncode, stderr))
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(stderr for code, stderr in results if code == 2)
    assert str(out) in loser and "Traceback" not in loser
    config = (out / "config.yaml").read_text()
    epochs = int(config.split("epochs:")[1].split()[0])
    model = json.loads((out / "model.json").read_text())
    history = (out / "history.csv").read_text().splitlines()
    assert model["training"]["epochs_run"] == epochs == len(history) - 1


@pytest.mark.slow
def test_sigterm_during_predict_leaves_no_temporary_file(good_run, tmp_path):
    """SIGTERM while predict streams standard input into --output: exit 130 like Ctrl-C, no .tmp file
    left, no output file. The input pipe stays open, so predict is still writing when the signal comes."""
    header = "sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n"
    process = subprocess.Popen([sys.executable, "-m", "softreg", "predict", "--run", good_run, "--input", "-",
                                "--output", tmp_path / "p.csv"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=default_sigint)
    process.stdin.write(header + "5.1,3.5,1.4,0.2\n" * 1000)  # past the rows read to decide on the header
    process.stdin.flush()
    for _ in range(1200):  # until the temporary output file appears: predict has begun writing
        if list(tmp_path.glob(".p.csv.*.tmp")) or process.poll() is not None:
            break
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)  # before communicate closes the pipe: no end of input can race the signal
    _, stderr = process.communicate()
    assert process.returncode == 130, stderr
    assert stderr == "softreg: interrupted; nothing was written\n"
    assert not list(tmp_path.glob(".p.csv.*.tmp"))
    assert not Path(tmp_path / "p.csv").exists()


# -- --force and links never touch a user's files


def test_force_never_replaces_a_users_project_holding_config_yaml(tmp_path):
    """The reported loss: `--out proj --force` on a folder with config.yaml, thesis.tex and src/
    exits 2 naming the folder, and every file of it is still there."""
    (tmp_path / "c.yaml").write_text(SMALL)
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print()")
    (project / "config.yaml").write_text("x")
    (project / "thesis.tex").write_text("precious")
    for extra in ((), ("--force",)):
        code, _, stderr = run("train", "--config", tmp_path / "c.yaml", "--out", project, "--quiet", *extra)
        assert_clean_refusal(code, stderr)
        assert f"{project}: exists and is not a softreg output directory (no .softreg-run marker)" in stderr
        assert "--force" not in stderr  # the message no longer suggests the flag that would lose the files
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*")) == [
        "config.yaml", "src", "src/main.py", "thesis.tex"]
    assert (project / "thesis.tex").read_text() == "precious"
    assert not list(tmp_path.glob(".proj.*"))


def test_force_through_a_link_to_a_users_folder_is_refused(tmp_path):
    """`--out link --force` where link points to a folder with config.yaml: exit 2, the folder untouched."""
    (tmp_path / "c.yaml").write_text(SMALL)
    project = tmp_path / "proj"
    project.mkdir()
    (project / "config.yaml").write_text("x")
    (project / "thesis.tex").write_text("precious")
    (tmp_path / "link").symlink_to(project)
    code, _, stderr = run("train", "--config", tmp_path / "c.yaml", "--out", tmp_path / "link", "--force", "--quiet")
    assert_clean_refusal(code, stderr)
    assert "link: is a symbolic link; softreg does not write through links" in stderr
    assert sorted(p.name for p in project.iterdir()) == ["config.yaml", "thesis.tex"]


def test_force_replaces_a_run_and_refuses_one_holding_a_users_file(tmp_path):
    """--force replaces a run softreg made; once the user has put a file into it, --force names the
    file and replaces nothing."""
    (tmp_path / "c.yaml").write_text(SMALL)
    out = tmp_path / "run"
    assert run("train", "--config", tmp_path / "c.yaml", "--out", out, "--quiet")[0] == 0
    code, _, stderr = run("train", "--config", tmp_path / "c.yaml", "--out", out, "--quiet")
    assert_clean_refusal(code, stderr)
    assert "already exists and is not empty; use --force to replace it" in stderr
    assert run("train", "--config", tmp_path / "c.yaml", "--out", out, "--quiet", "--force")[0] == 0
    (out / "analysis.ipynb").write_text("mine")
    code, _, stderr = run("train", "--config", tmp_path / "c.yaml", "--out", out, "--quiet", "--force")
    assert_clean_refusal(code, stderr)
    assert "holds entries softreg did not write (analysis.ipynb); refusing to replace it even with --force" in stderr
    assert (out / "analysis.ipynb").read_text() == "mine" and (out / "model.npz").exists()


def test_resume_refuses_a_run_whose_plots_folder_is_a_link(good_run, tmp_path):
    """`train --resume` on a run whose plots/ links to a user's folder: exit 2, the folder's files intact."""
    run_dir = tmp_path / "run"
    shutil.copytree(good_run, run_dir)
    users = tmp_path / "figures"
    users.mkdir()
    (users / ".draft.tmp").write_text("mine")
    (users / "learning_curves.png").write_text("mine")
    shutil.rmtree(run_dir / "plots", ignore_errors=True)
    (run_dir / "plots").symlink_to(users)
    code, _, stderr = run("train", "--resume", run_dir, "--set", "optim.epochs=3")
    assert_clean_refusal(code, stderr)
    assert "plots: is a symbolic link; softreg does not write through links" in stderr
    assert sorted(p.name for p in users.iterdir()) == [".draft.tmp", "learning_curves.png"]
    assert all(p.read_text() == "mine" for p in users.iterdir())


def test_resume_of_a_run_predating_the_marker_marks_it(good_run, tmp_path):
    """A run written before the marker existed resumes, and is marked as softreg's from then on."""
    run_dir = tmp_path / "run"
    shutil.copytree(good_run, run_dir)
    (run_dir / ".softreg-run").unlink()
    code, _, stderr = run("train", "--resume", run_dir, "--set", "optim.epochs=3", "--quiet")
    assert code == 0, stderr
    assert json.loads((run_dir / ".softreg-run").read_text())["softreg"] == "run"


@pytest.mark.parametrize("where", ["missing-folder", "under-a-file"])
@pytest.mark.parametrize("command", ["predict", "report"])
def test_an_output_that_cannot_be_written_as_given_exits_2(good_run, tmp_path, command, where):
    """--output in a folder that does not exist, or under a file: the user must change the path, so exit 2
    with one line naming it and the reason (a full disk or an I/O error stays exit 1)."""
    (tmp_path / "file").write_text("x")
    target = tmp_path / ("missing" if where == "missing-folder" else "file") / "out"
    reason = "No such file or directory" if where == "missing-folder" else "Not a directory"
    extra = ["--input", tmp_path / "rows.csv"] if command == "predict" else []
    (tmp_path / "rows.csv").write_text("sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n"
                                       "5.1,3.5,1.4,0.2\n")
    code, _, stderr = run(command, "--run", good_run, *extra, "--output", target)
    assert_clean_refusal(code, stderr)
    assert stderr == f"softreg: error: {target}: cannot write ({reason})\n"


def test_only_path_errors_are_the_users_to_fix():
    """cannot_write: a missing folder, no permission or a read-only file system exit 2; a full disk exits 1."""
    import errno

    from softreg.errors import cannot_write

    assert cannot_write("p", OSError(errno.EROFS, "Read-only file system")).exit_code == 2
    assert cannot_write("p", OSError(errno.EACCES, "Permission denied")).exit_code == 2
    full = cannot_write("p", OSError(errno.ENOSPC, "No space left on device"))
    assert full.exit_code == 1 and str(full) == "p: cannot write (No space left on device)"


@pytest.mark.parametrize("where", ["under a file", "read-only parent"])
def test_an_out_that_cannot_be_created_as_given_exits_2(tmp_path, where):
    """--out under a file, or in a folder that cannot be written: exit 2 (the path must change), one line."""
    (tmp_path / "c.yaml").write_text(SMALL)
    if where == "under a file":
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "run"
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        out = tmp_path / "ro" / "run"
    if where == "read-only parent" and os.geteuid() == 0:
        out = Path("/proc/softreg-run")  # root writes anywhere that is not a pseudo file system
    code, _, stderr = run("train", "--config", tmp_path / "c.yaml", "--out", out, "--quiet")
    assert_clean_refusal(code, stderr)
    assert "cannot create the run directory" in stderr
