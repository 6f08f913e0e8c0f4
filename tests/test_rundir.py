"""Atomic writes and the model's save/load checks."""

import json

import numpy as np
import pytest

from softreg import rundir
from softreg.errors import OutputError, OutputExistsError, RunDirError
from softreg.model import Model


def make_model(n_classes=3, n_features=4, classes=None):
    rng = np.random.default_rng(0)
    return Model(
        coef=rng.normal(size=(n_classes, n_features)),
        intercept=rng.normal(size=n_classes),
        classes=np.array(classes if classes is not None else ["a", "b", "c"][:n_classes]),
        feature_mean=rng.normal(size=n_features),
        feature_scale=rng.random(n_features) + 0.5,
        feature_names=[f"f{j}" for j in range(n_features)],
        label_name="y",
    )


def test_save_load_round_trip_with_string_classes(tmp_path):
    """A saved model loads back identical, string classes included, without pickle."""
    model = make_model()
    rundir.save_model(tmp_path, model, {"epochs_run": 3})
    loaded = rundir.load_model(tmp_path)
    np.testing.assert_array_equal(loaded.coef, model.coef)
    assert loaded.classes.tolist() == ["a", "b", "c"] and loaded.feature_names == model.feature_names
    X = np.random.default_rng(1).normal(size=(5, 4))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_failed_atomic_write_leaves_the_old_file(tmp_path):
    """An exception inside the write keeps the previous content and leaves no temporary file."""
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with rundir.atomic_open(target) as handle:
            handle.write("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_failed_staging_leaves_nothing(tmp_path):
    """A run that fails before its commit leaves neither the target nor the staging directory."""
    target = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with rundir.staging_dir(target) as staging:
            (staging / "model.npz").write_text("x")
            raise RuntimeError("failed")
    assert list(tmp_path.iterdir()) == []


def test_staging_refuses_non_empty_target_without_force(tmp_path):
    """An existing run directory of softreg's is refused before any work; force replaces it."""
    target = tmp_path / "run"
    with rundir.staging_dir(target) as staging:
        (staging / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(OutputExistsError, match="use --force to replace it"):
        with rundir.staging_dir(target):
            pass
    with rundir.staging_dir(target, force=True) as staging:
        (staging / "model.json").write_text("{}")
    assert sorted(p.name for p in target.iterdir()) == [".softreg-run", "model.json"]
    assert len(list(tmp_path.iterdir())) == 1


def test_every_output_directory_carries_the_marker_first(tmp_path):
    """The marker is in the staging directory before the caller writes anything, and says who made it."""
    with rundir.staging_dir(tmp_path / "run") as staging:
        assert [p.name for p in staging.iterdir()] == [rundir.RUN_MARKER]
    marker = json.loads((tmp_path / "run" / rundir.RUN_MARKER).read_text())
    assert marker["softreg"] == "run" and marker["format_version"] == 1
    assert rundir.is_softreg_run(tmp_path / "run")


@pytest.mark.parametrize("user_file", ["config.yaml", "metrics.json", "model.npz"])
def test_a_users_folder_holding_a_run_file_name_is_never_replaced(tmp_path, user_file):
    """A folder without the marker is the user's, whatever file names it holds: refused even with force."""
    target = tmp_path / "proj"
    (target / "src").mkdir(parents=True)
    (target / user_file).write_text("x")
    (target / "thesis.tex").write_text("precious")
    for force in (False, True):
        with pytest.raises(OutputExistsError, match=r"proj: exists and is not a softreg output directory "
                           r"\(no \.softreg-run marker\); choose another --out"):
            with rundir.staging_dir(target, force=force):
                pass
    assert sorted(p.name for p in target.iterdir()) == sorted(["src", user_file, "thesis.tex"])
    assert (target / "thesis.tex").read_text() == "precious"


def test_a_run_holding_a_users_file_is_not_replaced_and_the_file_is_named(tmp_path):
    """A marked run into which the user put a file (or a folder, or a link) is refused even with force,
    naming what softreg did not write; nothing is removed."""
    target = tmp_path / "run"
    with rundir.staging_dir(target) as staging:
        (staging / "plots").mkdir()
        (staging / "plots" / "weights.png").write_bytes(b"png")
    (target / "notes.txt").write_text("mine")
    (target / "plots" / "drawing.svg").write_text("mine")
    (target / "data").mkdir()
    (tmp_path / "elsewhere").write_text("mine")
    (target / "model.json").symlink_to(tmp_path / "elsewhere")
    expected = r"run: holds entries softreg did not write \(data/, model.json, notes.txt, plots/drawing.svg\); "
    with pytest.raises(OutputExistsError, match=expected + "refusing to replace it even with --force"):
        with rundir.staging_dir(target, force=True):
            pass
    assert (target / "notes.txt").read_text() == "mine" and (tmp_path / "elsewhere").read_text() == "mine"
    assert not rundir.is_softreg_run(target)


def test_a_link_as_output_is_refused_and_its_target_untouched(tmp_path):
    """--out a symbolic link (even to a run of softreg's) is refused with or without force: no writing through it."""
    real = tmp_path / "real"
    with rundir.staging_dir(real) as staging:
        (staging / "config.yaml").write_text("seed: 0\n")
    link = tmp_path / "link"
    link.symlink_to(real)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    for target in (link, dangling):
        for force in (False, True):
            with pytest.raises(OutputExistsError, match=r": is a symbolic link; softreg does not write through links"):
                with rundir.staging_dir(target, force=force):
                    pass
    assert sorted(p.name for p in real.iterdir()) == [".softreg-run", "config.yaml"]
    assert not (tmp_path / "nowhere").exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        "dangling", "link", "real"]


def test_a_locked_run_with_a_linked_lock_or_plots_is_refused(tmp_path):
    """Claiming a run (resume) refuses a link among its entries: a dangling lock link creates no file
    outside the run, and the folder a linked plots/ points to keeps its files."""
    run = tmp_path / "run"
    with rundir.staging_dir(run) as staging:
        (staging / "config.yaml").write_text("seed: 0\n")
    (run / rundir.LOCK_FILE).symlink_to(tmp_path / "outside-lock")
    with pytest.raises(OutputExistsError, match=r"\.softreg-lock: is a symbolic link"):
        rundir.claim(run)
    assert not (tmp_path / "outside-lock").exists()
    (run / rundir.LOCK_FILE).unlink()
    users = tmp_path / "users"
    users.mkdir()
    (users / ".keep.tmp").write_text("mine")
    (run / "plots").symlink_to(users)
    with pytest.raises(OutputExistsError, match=r"run/plots: is a symbolic link"):
        rundir.claim(run)
    rundir.remove_stale_temporaries(run)
    assert (users / ".keep.tmp").read_text() == "mine"


def test_names_up_to_the_file_systems_limit_stage_and_longer_ones_are_refused(tmp_path):
    """A 250-byte --out name is staged under a shorter hidden name; a 300-byte one is one refusal, not ENAMETOOLONG."""
    with rundir.staging_dir(tmp_path / ("r" * 250)) as staging:
        (staging / "config.yaml").write_text("seed: 0\n")
    assert (tmp_path / ("r" * 250) / "config.yaml").exists()
    with pytest.raises(OutputError, match=r"a name of 300 bytes; the file system allows at most 255"):
        with rundir.staging_dir(tmp_path / ("r" * 300)):
            pass


@pytest.fixture
def saved(tmp_path):
    rundir.save_model(tmp_path, make_model())
    return tmp_path


def test_truncated_npz_is_refused(saved):
    """A truncated model.npz is a RunDirError naming the file."""
    path = saved / "model.npz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(RunDirError, match=r"model.npz: corrupted or truncated"):
        rundir.load_model(saved)


def test_object_arrays_are_never_unpickled(saved):
    """A model.npz with object arrays is refused instead of unpickled."""
    np.savez(saved / "model.npz", coef=np.array([[1, 2]], dtype=object), intercept=np.zeros(1),
             classes=np.array(["a"]), feature_mean=np.zeros(2), feature_scale=np.ones(2))
    with pytest.raises(RunDirError, match=r"holds object arrays or is corrupted .*refusing to unpickle"):
        rundir.load_model(saved)


def test_wrong_shapes_are_refused(saved):
    """Arrays whose shapes disagree with coef are named."""
    with np.load(saved / "model.npz") as archive:
        arrays = dict(archive)
    arrays["intercept"] = np.zeros(5)
    np.savez(saved / "model.npz", **arrays)
    with pytest.raises(RunDirError, match=r"intercept has shape \(5,\), expected \(3,\) to match coef \(3, 4\)"):
        rundir.load_model(saved)


def test_newer_format_version_is_refused(saved):
    """A model written by a newer format says to upgrade."""
    meta = json.loads((saved / "model.json").read_text())
    meta["format_version"] = rundir.OUTPUT_FORMAT_VERSION + 1
    (saved / "model.json").write_text(json.dumps(meta))
    with pytest.raises(RunDirError, match=r"model format version 3 is newer than this softreg .* upgrade softreg"):
        rundir.load_model(saved)


def test_disagreeing_model_json_is_refused(saved):
    """model.json whose classes or feature count disagree with model.npz is refused."""
    meta = json.loads((saved / "model.json").read_text())
    (saved / "model.json").write_text(json.dumps({**meta, "classes": ["a", "b", "z"]}))
    with pytest.raises(RunDirError, match=r"its classes disagree with model.npz"):
        rundir.load_model(saved)
    (saved / "model.json").write_text(json.dumps({**meta, "feature_names": ["f0"]}))
    with pytest.raises(RunDirError, match=r"lists 1 feature names, but model.npz has 4 features"):
        rundir.load_model(saved)
    (saved / "model.json").write_text("{not json")
    with pytest.raises(RunDirError, match=r"model.json: not valid JSON"):
        rundir.load_model(saved)


def test_non_finite_weights_are_refused(saved):
    """A model with NaN weights never loads as if it were valid."""
    with np.load(saved / "model.npz") as archive:
        arrays = dict(archive)
    arrays["coef"][0, 0] = np.nan
    np.savez(saved / "model.npz", **arrays)
    with pytest.raises(RunDirError, match=r"coef contains NaN or inf"):
        rundir.load_model(saved)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ([1, 2], r"written by an incompatible softreg \(format None\)"),
        ({"format_version": 1, "epoch": 3}, r"incomplete checkpoint \(no n_classes, "),
    ],
)
def test_malformed_checkpoint_meta_is_refused(tmp_path, meta, message):
    """A checkpoint whose metadata is not what softreg writes is a RunDirError, not a crash."""
    import json as json_module

    np.savez(tmp_path / "checkpoint.npz", meta=np.array(json_module.dumps(meta)), weights=np.zeros(3))
    with pytest.raises(RunDirError, match=message):
        rundir.load_checkpoint(tmp_path)


def test_json_is_strict_nan_and_infinity_become_null(tmp_path):
    """write_json never writes NaN or Infinity (invalid JSON): they become null; numpy values are plain."""
    rundir.write_json(tmp_path / "m.json", {"a": float("nan"), "b": [np.float64("inf"), np.int64(3)], "c": 1.5})
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [None, 3], "c": 1.5}


def test_the_readmes_run_directory_listing_names_every_file_a_run_holds(tmp_path):
    """train (two features: every plot), report: each file and folder of the run directory (the hidden
    lock and staging names aside) is in the README's listing under "### The run directory"."""
    import re
    from pathlib import Path

    from click.testing import CliRunner

    from softreg.cli import main

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    listing = readme.split("### The run directory", 1)[1].split("\n\n", 2)[1]
    listed = set(re.findall(r"^ {6}(\S+)", listing, flags=re.MULTILINE))
    config = tmp_path / "c.yaml"
    config.write_text("data: {source: builtin:iris, features: [0, 1]}\noptim: {epochs: 2}\n")
    for args in (["train", "--config", config, "--out", tmp_path / "run", "--quiet"],
                 ["report", "--run", tmp_path / "run"]):
        result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
    written = {path.name for path in (tmp_path / "run").iterdir() if not path.name.startswith(".")}
    assert written >= {"config.yaml", "model.npz", "checkpoint-seconds.json", "plots", "report.html"}
    shown = {name.removesuffix("/*.png") for name in listed}
    assert written <= shown, written - shown
