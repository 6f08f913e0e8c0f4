"""Atomic writes and the model's save/load checks."""

import json

import numpy as np
import pytest

from softreg import rundir
from softreg.errors import OutputExistsError, RunDirError
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
    """An existing non-empty run directory is refused before any work; force replaces it."""
    target = tmp_path / "run"
    target.mkdir()
    (target / "x").write_text("1")
    with pytest.raises(OutputExistsError, match="use --force to replace it"):
        with rundir.staging_dir(target):
            pass
    with pytest.raises(OutputExistsError, match="is not a softreg output directory"):
        with rundir.staging_dir(target, force=True):
            pass
    (target / "config.yaml").write_text("seed: 0\n")
    with rundir.staging_dir(target, force=True) as staging:
        (staging / "y").write_text("2")
    assert [p.name for p in target.iterdir()] == ["y"] and len(list(tmp_path.iterdir())) == 1


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
