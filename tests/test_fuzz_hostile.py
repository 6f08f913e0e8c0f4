"""A seeded fuzzer over the hostile families: --set values, data files (CSV, TSV, svmlight, npz) and
corrupted run directories. Every case must end with exit 0, 1 (a genuine run failure), 2 or 130, its
error on one line under 300 characters, no traceback and no internal error."""

import io
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from softreg.cli import main

pytestmark = pytest.mark.slow  # a few hundred CLI runs

BASE = "data:\n  source: builtin:iris\noptim:\n  epochs: 1\noutput:\n  plots: false\n"
KEYS = [
    "data.source", "data.label", "data.test", "data.val", "data.header", "data.features", "data.exclude",
    "data.id", "data.missing", "data.categorical", "data.encoding", "data.classes", "model.weight_decay",
    "model.loss", "model.normalizer", "model.temperature", "optim.lr", "optim.batch_size", "optim.epochs",
    "optim.momentum", "optim.schedule", "optim.early_stopping", "output.dir", "output.plots", "seed", "bogus.key",
]


def run(*args, input=None):
    result = CliRunner().invoke(main, [str(arg) for arg in args], input=input)
    return result


def assert_clean(result, case):
    stderr = result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), (case, repr(result.exception))
    assert result.exit_code in (0, 1, 2, 130), (case, result.exit_code, stderr)
    assert "Traceback" not in stderr and "internal error" not in stderr, (case, stderr)
    if result.exit_code == 1:
        assert "diverged" in stderr or "cannot" in stderr, (case, stderr)
    errors = [line for line in stderr.splitlines() if line.startswith("softreg: error: ")]
    if result.exit_code != 0:
        assert len(errors) == 1 and len(errors[0]) < 300, (case, stderr)


def hostile_value(rng):
    """A --set value: nesting, huge or odd numbers, long or strange text, YAML tricks."""
    choices = [
        lambda: "[" * int(rng.integers(1, 400)),
        lambda: "9" * int(rng.integers(1, 500)),
        lambda: "-" + "9" * int(rng.integers(1, 40)) + ".5e" + str(rng.integers(-400, 400)),
        lambda: "a" * int(rng.integers(1, 8000)),
        lambda: '"\\ud800"',
        lambda: '"x\\0y"',
        lambda: "{a: " * int(rng.integers(1, 50)) + "1" + "}" * int(rng.integers(0, 50)),
        lambda: "&a [*a]",
        lambda: rng.choice(["nan", ".inf", "-.inf", "null", "~", "yes", "no", "0x1f", "1e999", "''"]),
        lambda: "".join(chr(int(c)) for c in rng.integers(32, 0x2FFF, size=int(rng.integers(1, 30)))),
        lambda: str(rng.normal() * 10.0 ** int(rng.integers(-30, 30))),
        lambda: "[" + ", ".join(str(v) for v in rng.integers(-5, 5, size=int(rng.integers(0, 6)))) + "]",
    ]
    return choices[int(rng.integers(len(choices)))]()


def test_fuzzed_set_values(tmp_path):
    """200 random --set assignments on random keys: a clean exit every time."""
    rng = np.random.default_rng(2024)
    (tmp_path / "c.yaml").write_text(BASE)
    for case in range(200):
        key = KEYS[int(rng.integers(len(KEYS)))]
        result = run("train", "--config", tmp_path / "c.yaml", "--set", f"{key}={hostile_value(rng)}",
                     "--out", tmp_path / f"r{case}", "--quiet")
        assert_clean(result, (case, key))


def random_table(rng):
    n_rows, n_columns = int(rng.integers(1, 30)), int(rng.integers(1, 6))
    cells = []
    for _ in range(n_rows):
        row = []
        for _ in range(n_columns):
            kind = rng.integers(8)
            row.append(["", "NA", "x", "1e308", "-inf", str(rng.normal()), str(int(rng.integers(0, 3))),
                        "\"q,uoted\""][kind])
        cells.append(row)
    return cells


def hostile_file(rng, path_stem):
    """A data file: delimited text with odd cells and ragged rows, svmlight lines, or an npz of odd arrays."""
    kind = rng.choice(["csv", "tsv", "svm", "npz"])
    if kind in ("csv", "tsv"):
        separator = "," if kind == "csv" else "\t"
        rows = random_table(rng)
        if rng.random() < 0.3 and rows:
            rows[int(rng.integers(len(rows)))].append("extra")
        header = [] if rng.random() < 0.3 else [separator.join(f"c{j}" for j in range(len(rows[0])))]
        text = "\n".join(header + [separator.join(row) for row in rows]) + "\n"
        path = path_stem.with_suffix(f".{kind}")
        path.write_bytes(text.encode("utf-8") if rng.random() < 0.9 else text.encode("utf-16"))
        return path
    if kind == "svm":
        lines = []
        for _ in range(int(rng.integers(1, 20))):
            label = rng.choice(["0", "1", "inf", "1" * 30, "x", "-2"])
            pairs = " ".join(f"{int(rng.integers(0, 2**32 if rng.random() < 0.1 else 20))}:{rng.normal():.3g}"
                             for _ in range(int(rng.integers(0, 4))))
            lines.append(f"{label} {pairs}".strip() + (" qid:1" if rng.random() < 0.1 else ""))
        path = path_stem.with_suffix(".svm")
        path.write_text("\n".join(lines) + "\n")
        return path
    arrays = {}
    n = int(rng.integers(0, 12))
    shape = rng.choice(["ok", "1d", "3d", "empty"])
    arrays["X"] = {"ok": rng.normal(size=(n, 3)), "1d": rng.normal(size=n), "3d": rng.normal(size=(n, 2, 2)),
                   "empty": np.zeros((n, 0))}[shape]
    if rng.random() < 0.9:
        labels = [np.arange(n) % 2, np.arange(n + 1) % 2, np.array(["a"] * n), np.zeros(n, dtype=[("a", int)])]
        arrays["y"] = labels[int(rng.integers(len(labels)))]
    if rng.random() < 0.3:
        names = [np.array("a"), np.array(["a", "b"]), np.array([["a", "b", "c"]])]
        arrays["feature_names"] = names[int(rng.integers(len(names)))]
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    if rng.random() < 0.2:
        data = data[: int(rng.integers(0, len(data)))]
    path = path_stem.with_suffix(".npz")
    path.write_bytes(data)
    return path


def test_fuzzed_data_files(tmp_path):
    """150 random CSV/TSV/svmlight/npz files, trained on: a clean exit every time."""
    rng = np.random.default_rng(7)
    for case in range(150):
        path = hostile_file(rng, tmp_path / f"d{case}")
        config = tmp_path / f"c{case}.yaml"
        config.write_text(f"data:\n  source: {path.name}\n  stratify: {str(rng.random() < 0.5).lower()}\n"
                          "optim:\n  epochs: 1\noutput:\n  plots: false\n")
        assert_clean(run("train", "--config", config, "--out", tmp_path / f"r{case}", "--quiet"), (case, path.name))


def corrupt_randomly(rng, run_dir):
    """One random corruption of one file of a run directory."""
    files = sorted(path for path in run_dir.rglob("*") if path.is_file())
    path = files[int(rng.integers(len(files)))]
    operation = rng.choice(["truncate", "flip", "delete", "json", "npz"])
    data = path.read_bytes()
    if operation == "truncate":
        path.write_bytes(data[: int(rng.integers(0, max(1, len(data))))])
    elif operation == "flip" and data:
        position = int(rng.integers(len(data)))
        path.write_bytes(data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1:])
    elif operation == "delete":
        path.unlink()
    elif operation == "json" and path.suffix == ".json":
        document = json.loads(data)
        if isinstance(document, dict) and document:
            key = sorted(document)[int(rng.integers(len(document)))]
            replacements = ["x", -1, None, [], {}, 1e300, [[1], [2, 3]]]
            document[key] = replacements[int(rng.integers(len(replacements)))]
            path.write_text(json.dumps(document))
    elif operation == "npz" and path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        name = sorted(arrays)[int(rng.integers(len(arrays)))]
        replacements = [np.array([np.nan]), np.zeros((2, 2, 2)), np.array(["s"]), np.array(99999)]
        arrays[name] = replacements[int(rng.integers(len(replacements)))]
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)
    return path.name, operation


def test_fuzzed_run_directories(tmp_path):
    """120 randomly corrupted copies of a run directory, each used by evaluate, predict, report and
    train --resume: a clean exit every time."""
    (tmp_path / "c.yaml").write_text(BASE.replace("plots: false", "plots: [weights]"))
    good = tmp_path / "good"
    assert run("train", "--config", tmp_path / "c.yaml", "--out", good, "--quiet").exit_code == 0
    (tmp_path / "x.csv").write_text("sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n1,2,3,4\n")
    rng = np.random.default_rng(11)
    for case in range(120):
        run_dir = tmp_path / f"run{case}"
        shutil.copytree(good, run_dir)
        damage = corrupt_randomly(rng, run_dir)
        for command in (("evaluate", "--run", run_dir, "--json"),
                        ("predict", "--run", run_dir, "--input", tmp_path / "x.csv"),
                        ("report", "--run", run_dir, "--output", tmp_path / f"r{case}.html"),
                        ("train", "--resume", run_dir, "--quiet")):
            assert_clean(run(*command), (case, damage, command[0]))
