"""Outputs that cannot be written and run files that lie: a full standard output, a name too long
for the hidden staging sibling, --resume where nothing can be written, a metrics.json whose
figures are text. One line each, the right exit code, never an internal error."""

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from softreg.rundir import directory
from tests.strategies import run

REPO = Path(__file__).resolve().parent.parent
SMALL = "data:\n  source: builtin:iris\noptim:\n  epochs: 2\noutput:\n  plots: false\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("output")
    (root / "c.yaml").write_text(SMALL)
    code, _, stderr = run("train", "--config", root / "c.yaml", "--out", root / "run", "--quiet")
    assert code == 0, stderr
    header = "sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n"
    (root / "x.csv").write_text(header + "5.1,3.5,1.4,0.2\n" * 5000)  # more than any pipe buffer holds
    (root / "cache.yaml").write_text(SMALL.replace("iris\n", f"iris\n  cache: {root / 'cache'}\n", 1))
    return root


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize(
    "command",
    [
        ["predict", "--run", "{root}/run", "--input", "{root}/x.csv"],
        ["evaluate", "--run", "{root}/run", "--json"],
        ["evaluate", "--run", "{root}/run"],
        ["ingest", "--config", "{root}/cache.yaml", "--json", "--quiet"],
    ],
    ids=["predict", "evaluate-json", "evaluate", "ingest-json"],
)
def test_a_full_standard_output_is_one_line(trained, command):
    """stdout on /dev/full (no space left): exit 1, one line naming standard output, nothing raw after it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "softreg", *(part.format(root=trained) for part in command)],
                              stdout=full, stderr=subprocess.PIPE, text=True, env=env, timeout=300)
    assert done.returncode == 1
    assert done.stderr == "softreg: error: cannot write standard output: No space left on device\n"


@pytest.mark.parametrize("length", [256, 300])
def test_an_out_name_too_long_for_the_file_system_is_exit_2(trained, tmp_path, length):
    """A --out name over the file system's 255 bytes: exit 2, one line, nothing made."""
    name = "r" * length
    code, _, stderr = run("train", "--config", trained / "c.yaml", "--out", tmp_path / name, "--quiet")
    assert code == 2
    assert stderr == (f"softreg: error: --out {'r' * 40}...: a name of {length} bytes; the file system allows at "
                      "most 255\n")
    assert os.listdir(tmp_path) == []


def test_evaluate_out_name_too_long_is_exit_2(trained, tmp_path):
    """evaluate --out refuses the same names, before evaluating."""
    code, _, stderr = run("evaluate", "--run", trained / "run", "--out", tmp_path / ("e" * 260))
    assert code == 2 and stderr.startswith("softreg: error: --out eeee") and stderr.count("\n") == 1
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("length", [231, 255])
def test_a_name_that_fits_still_trains(trained, tmp_path, length):
    """Up to the file system's 255 bytes, the longest that fits, trains (the hidden staging name is shorter)."""
    code, _, stderr = run("train", "--config", trained / "c.yaml", "--out", tmp_path / ("r" * length), "--quiet")
    assert code == 0, stderr
    assert sorted(os.listdir(tmp_path)) == ["r" * length]


def test_resume_where_nothing_can_be_written_is_one_line(trained, tmp_path, monkeypatch):
    """--resume on a read-only file system (the lock file cannot be made: EROFS): exit 2, one line."""
    shutil.copytree(trained / "run", tmp_path / "run")
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(directory.os, "open", read_only)
    code, _, stderr = run("train", "--resume", tmp_path / "run", "--set", "optim.epochs=4")
    assert code == 2
    assert stderr == (f"softreg: error: {tmp_path / 'run'}: cannot write there (Read-only file system); --resume "
                      "writes its checkpoints and model into the run directory: copy it to a writable place and "
                      "resume the copy\n")


@pytest.mark.parametrize(
    "key, value, expected",
    [("accuracy", "0.9", "accuracy must be a number, got '0.9'"),
     ("n_samples", 3.5, "n_samples must be a count of rows, got 3.5"),
     ("per_class", {"setosa": {"f1": "x"}}, "per_class must map names to numbers"),
     ("top_k_accuracy", [0.9], "top_k_accuracy must map names to numbers")],
    ids=["string-accuracy", "float-count", "per-class-text", "top-k-list"],
)
def test_a_metrics_json_with_text_figures_is_refused(trained, tmp_path, key, value, expected):
    """softreg report of a run whose metrics.json holds text where a figure goes: exit 2, one line."""
    shutil.copytree(trained / "run", tmp_path / "run")
    path = tmp_path / "run" / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics[key] = value
    path.write_text(json.dumps(metrics))
    code, _, stderr = run("report", "--run", tmp_path / "run")
    assert code == 2
    assert stderr == f"softreg: error: {path}: {expected}\n"


def test_divergence_never_suggests_a_rate_of_zero(tmp_path):
    """Features near 1e200, not standardized: their squares overflow, so no rate is stable; the hint
    says so and how to fix it, never "e.g. 0."."""
    import numpy as np

    rng = np.random.default_rng(0)
    rows = [f"{a:.6e},{b:.6e},{index % 2}" for index, (a, b) in enumerate(rng.normal(size=(60, 2)) * 1e200)]
    (tmp_path / "huge.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    (tmp_path / "c.yaml").write_text(
        "data:\n  source: huge.csv\n  standardize: false\noptim:\n  epochs: 3\n  lr: 0.1\noutput:\n  plots: false\n"
    )
    code, _, stderr = run("train", "--config", tmp_path / "c.yaml", "--out", tmp_path / "run", "--quiet")
    assert code == 1 and stderr.count("\n") == 1
    assert stderr.endswith("no model was written. No optim.lr is stable for features this large (now 0.1): "
                           "standardize them (data.standardize: true) or rescale them.\n")
    assert "e.g." not in stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize("suggested, shown", [(0.0, None), (float("nan"), None), (1e-310, None), (2e-5, "2e-05")])
def test_the_divergence_hint_writes_only_usable_rates(suggested, shown):
    """A suggested rate of 0, nan or a subnormal is not written; a usable one is."""
    from softreg.errors import DivergedError

    message = str(DivergedError(4, 0.5, suggested))
    if shown is None:
        assert "e.g." not in message and "No optim.lr is stable" in message
    else:
        assert message.endswith(f"Try a smaller optim.lr (now 0.5), e.g. {shown}.")


@pytest.mark.parametrize("damage", [b"\x0f" * 16, b"\xff\xfe\x1b[2J\n\x00zz"], ids=["unknown-type", "escape"])
def test_a_damaged_parquet_footer_is_one_line_without_raw_bytes(tmp_path, damage):
    """A footer whose thrift pyarrow cannot read: exit 2, one line, every byte it quotes escaped."""
    import struct

    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0] * 10, "b": [0.0, 1.0, 0.5] * 10, "label": ["x", "y", "z"] * 10}),
                   path)
    data = bytearray(path.read_bytes())
    footer = len(data) - 8 - struct.unpack("<i", data[-8:-4])[0]
    data[footer + 5:footer + 5 + len(damage)] = damage
    path.write_bytes(bytes(data))
    (tmp_path / "c.yaml").write_text("data:\n  source: d.parquet\noptim:\n  epochs: 2\noutput:\n  plots: false\n")
    code, _, stderr = run("train", "--config", tmp_path / "c.yaml", "--out", tmp_path / "run", "--quiet")
    assert code == 2 and stderr.count("\n") == 1 and stderr.endswith(")\n")
    assert stderr.startswith(f"softreg: error: {path}: not a readable Parquet file (")
    assert all(character.isprintable() for character in stderr[:-1]), stderr


def test_training_in_memory_notices_a_source_growing_while_read(tmp_path, monkeypatch):
    """A CSV that a writer appends to while train reads it (in memory, no cache): exit 2, one line, no
    run directory; as ingest does."""
    from softreg.run import prepare as run_prepare

    source = tmp_path / "d.csv"
    source.write_text("a,b,label\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(100)))
    real_prepare = run_prepare.prepare

    def prepare_while_written(*args, **kwargs):
        prepared = real_prepare(*args, **kwargs)
        with open(source, "a") as handle:  # the writer's next rows land while softreg holds the first
            handle.write("100,2,0\n")
        return prepared

    monkeypatch.setattr(run_prepare, "prepare", prepare_while_written)
    (tmp_path / "c.yaml").write_text("data:\n  source: d.csv\noptim:\n  epochs: 2\noutput:\n  plots: false\n")
    code, _, stderr = run("train", "--config", tmp_path / "c.yaml", "--out", tmp_path / "run", "--quiet")
    assert code == 2
    assert stderr == f"softreg: error: {source}: changed while it was being read; train again once it is complete\n"
    assert not (tmp_path / "run").exists()
