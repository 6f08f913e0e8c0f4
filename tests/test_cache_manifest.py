"""The cache's manifest.json is input: an edited manifest, shards from elsewhere, a path out of
the cache, labels out of range are never believed: the cache is rebuilt with a message, or
refused in one line; `evaluate --optimum` refuses a cache that no longer matches the run."""

import json
import shutil

import numpy as np
import pytest

from softreg.cache import read_manifest
from softreg.cache.manifest import digest, problem, shard_ends
from tests.strategies import run

CONFIG = "data:\n  source: builtin:iris\n  cache: {cache}\noptim:\n  epochs: 2\noutput:\n  plots: false\n"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """An iris cache as ingest writes it."""
    root = tmp_path_factory.mktemp("manifest")
    (root / "c.yaml").write_text(CONFIG.format(cache=root / "cache"))
    code, _, stderr = run("ingest", "--config", root / "c.yaml", "--quiet")
    assert code == 0, stderr
    return root / "cache"


@pytest.fixture
def cache(pristine, tmp_path):
    """A copy of the pristine cache and a config that trains from it."""
    copy = tmp_path / "cache"
    shutil.copytree(pristine, copy)
    (tmp_path / "c.yaml").write_text(CONFIG.format(cache=copy))
    return copy


def edit(cache, change, sign=True):
    """Apply ``change`` to the manifest; with ``sign``, write a digest that matches the edit (as
    another program would), so that the checks past the digest are the ones that see it."""
    path = cache / "manifest.json"
    document = json.loads(path.read_text())
    change(document)
    if sign:
        document["digest"] = digest(document)
    path.write_text(json.dumps(document))


def test_a_fresh_cache_checks_out(cache):
    """What ingest wrote has no problem: digest, fields and every shard's size and ends agree."""
    assert problem(read_manifest(cache)) is None


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda d: d["n"].update(train="95"),
         "n must give a count of rows for each of train, val, test, got {'train': '95', 'val': 19, 'test': 36}"),
        (lambda d: d.update(feature_mean=d["feature_mean"][:2]), "feature_mean must be 4 finite numbers (n_features)"),
        (lambda d: d.update(feature_scale=[1, 1, 0, 1]), "feature_scale must be 4 finite numbers > 0 (n_features)"),
        (lambda d: d.update(classes=["setosa", "setosa", "virginica"]),
         "classes must be two or more distinct names, got 3 (2 distinct)"),
        (lambda d: d.update(classes=["setosa"]), "classes must be two or more distinct names, got 1 (1 distinct)"),
        (lambda d: d.update(sparse="yes"), "sparse must be true or false, got 'yes'"),
        (lambda d: d.update(sparse=True), "shards.train must have the files X_data, X_indices, X_indptr, y"),
        (lambda d: d.update(dtype="int8"), "dtype must be one of float32, float64, got 'int8'"),
        (lambda d: d["shards"]["train"]["X"].update(file="../other/train/X.npy"),
         "shards.train.X must be the file train/X.npy with its bytes and ends"),
        (lambda d: d["shards"].pop("test"), "shards must list the parts with rows (train, val, test), got train, val"),
    ],
    ids=["string-count", "short-mean", "zero-scale", "duplicated-classes", "one-class", "sparse-text",
         "sparse-on-dense", "dtype", "path-outside", "missing-part"],
)
def test_each_wrong_field_is_named(cache, change, expected):
    """A manifest whose digest matches but whose fields are wrong: the first wrong field, named."""
    edit(cache, change)
    assert problem(read_manifest(cache)) == f"manifest.json: {expected}"


def test_an_edited_manifest_is_rebuilt_with_a_message(cache):
    """Renamed classes (the digest no longer matches): train rebuilds the cache, says why, and
    trains on the true class names; the manifest is ingest's again."""
    edit(cache, lambda d: d.update(classes=["a", "b", "c"]), sign=False)
    code, _, stderr = run("train", "--config", cache.parent / "c.yaml", "--out", cache.parent / "run", "--quiet",
                          "--set", "optim.tol=null")  # a fixed-epoch run: the warning is all stderr says
    assert code == 0, stderr
    assert stderr == (f"softreg: warning: {cache}: rebuilding the data cache: manifest.json was changed after "
                      "ingest wrote it (its digest differs)\n")
    assert json.loads((cache / "manifest.json").read_text())["classes"] == ["setosa", "versicolor", "virginica"]
    assert problem(read_manifest(cache)) is None


def test_ingest_rebuilds_an_older_format_and_says_why(cache):
    """A cache of format version 1 is softreg's: ingest rebuilds it and names the reason."""
    edit(cache, lambda d: d.update(version=1))
    code, stdout, stderr = run("ingest", "--config", cache.parent / "c.yaml", "--quiet")
    assert code == 0, stderr
    assert "rebuilt because the cache is of format version 1; this softreg writes 2" in stdout


def test_another_caches_shard_is_seen(cache, tmp_path):
    """A shard of the same size from another cache (same rows, not standardized): its ends differ,
    so it is not believed."""
    (tmp_path / "other.yaml").write_text(CONFIG.format(cache=tmp_path / "other"))
    code, _, stderr = run("ingest", "--config", tmp_path / "other.yaml", "--set", "data.standardize=false", "--quiet")
    assert code == 0, stderr
    other = tmp_path / "other" / "val" / "X.npy"
    assert other.stat().st_size == (cache / "val" / "X.npy").stat().st_size
    shutil.copyfile(other, cache / "val" / "X.npy")
    assert problem(read_manifest(cache)) == (
        "manifest.json: shards.val.X: val/X.npy is not the shard ingest wrote (other size or ends)"
    )


def test_a_linked_shard_is_refused(cache, tmp_path):
    """A shard replaced by a symbolic link (to a copy of itself, even): not a file of the cache."""
    shutil.copyfile(cache / "train" / "y.npy", tmp_path / "y.npy")
    (cache / "train" / "y.npy").unlink()
    (cache / "train" / "y.npy").symlink_to(tmp_path / "y.npy")
    assert problem(read_manifest(cache)) == (
        "manifest.json: shards.train.y: train/y.npy must be a file inside the cache, not a link"
    )


def test_a_label_out_of_range_is_refused_in_one_line(cache):
    """A label -1 (numpy would read it as the last class) in a shard whose manifest matches it: exit 2."""
    path = cache / "train" / "y.npy"
    y = np.load(path)
    y[3] = -1
    np.save(path, y)

    def sign_shard(document):
        document["shards"]["train"]["y"]["ends"] = shard_ends(path)

    edit(cache, sign_shard)
    code, _, stderr = run("train", "--config", cache.parent / "c.yaml", "--out", cache.parent / "run", "--quiet")
    assert code == 2
    assert stderr == f"softreg: error: {cache}: the train labels do not index the manifest's 3 classes; ingest again\n"
    assert not (cache.parent / "run").exists()


def test_evaluate_optimum_refuses_a_cache_ingested_under_another_config(cache, tmp_path):
    """A run's cache re-ingested with another seed: evaluate --optimum exit 2, the cache untouched."""
    root = cache.parent
    assert run("train", "--config", root / "c.yaml", "--out", root / "run", "--quiet")[0] == 0
    assert run("ingest", "--config", root / "c.yaml", "--set", "seed=7", "--quiet")[0] == 0
    before = (cache / "manifest.json").read_bytes()
    code, _, stderr = run("evaluate", "--run", root / "run", "--optimum")
    assert code == 2
    assert stderr == (
        f"softreg: error: {cache}: the data cache no longer holds this run's data (the data options, model.dtype "
        "or seed differ from the cache's); it is not rebuilt here: ingest it again with the run's config "
        "(softreg ingest --config RUN/config.yaml)\n"
    )
    assert (cache / "manifest.json").read_bytes() == before


# -- staging directories of killed ingests


def staging(folder, name, owner):
    """A staging directory as ingest makes one, with ``owner`` as its marker (None: no marker)."""
    path = folder / name
    path.mkdir()
    (path / "bucket-0.bin").write_bytes(b"\0" * 64)
    if owner is not None:
        (path / ".softreg-ingest").write_text(json.dumps(owner))
    return path


def test_killed_ingests_of_any_cache_in_the_folder_are_removed(cache):
    """An up-to-date ingest (nothing to rebuild) removes the staging directories that killed ingests
    of other caches in the same folder left; an unmarked folder of that name, another machine's
    and a running ingest's stay."""
    import os
    import socket

    folder, host = cache.parent, socket.gethostname()
    gone = staging(folder, ".other.ingest-999999999-abc", {"host": host, "pid": 999999999})
    gone_too = staging(folder, ".cache.ingest-999999998-xyz", {"host": host, "pid": 999999998})
    users = staging(folder, ".notes.ingest-999999999-abc", None)
    remote = staging(folder, ".other.ingest-999999997-abc", {"host": host + "-elsewhere", "pid": 999999997})
    running = staging(folder, f".other.ingest-{os.getpid()}-abc", {"host": host, "pid": os.getpid()})
    code, stdout, stderr = run("ingest", "--config", folder / "c.yaml", "--quiet")
    assert code == 0, stderr
    assert stdout.startswith("up to date:")
    assert not gone.exists() and not gone_too.exists()
    assert users.exists() and remote.exists() and running.exists()


def test_training_from_a_cache_removes_killed_ingests_too(cache):
    """train with data.cache cleans the folder the same way."""
    import socket

    gone = staging(cache.parent, ".old.ingest-999999999-abc", {"host": socket.gethostname(), "pid": 999999999})
    code, _, stderr = run("train", "--config", cache.parent / "c.yaml", "--out", cache.parent / "run", "--quiet")
    assert code == 0, stderr
    assert not gone.exists()


def test_a_built_cache_carries_no_staging_marker(pristine):
    """The marker is the staging directory's alone: the cache it becomes does not keep it."""
    assert not (pristine / ".softreg-ingest").exists()
