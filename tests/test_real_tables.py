"""Files as R's ``write.csv`` and pandas' ``to_csv`` write them (issue 22): missing labels are
never a class, in every format and command."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from softreg.cli import main

FAST = ["--set", "optim.epochs=3", "--set", "output.plots=false", "--quiet"]


def run(*args):
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    return result.exit_code, result.stdout, result.stderr


def r_rows(n_rows=60, seed=0, unlabelled=(3, 10, 11)):
    """Rows as R's ``write.csv`` writes a data frame: the row names quoted under an empty header,
    numbers bare, strings quoted, NA bare (here in the label of the rows ``unlabelled``, 1-based)."""
    rng = np.random.default_rng(seed)
    lines = ['"","x1","x2","party","vote"']
    for row in range(1, n_rows + 1):
        x1, x2 = rng.normal(size=2)
        vote = "NA" if row in unlabelled else ('"Y"' if x1 + x2 > 0 else '"N"')
        lines.append(f'"{row}",{x1:.4f},{x2:.4f},"{"AB"[row % 2]}",{vote}')
    return "\n".join(lines) + "\n"


def write_config(path, source, extra=""):
    path.write_text(f"data:\n  source: {source}\n  test: 0.25\n{extra}model:\n  weight_decay: 0.01\n")
    return path


def test_an_na_label_is_refused_by_default_naming_line_and_column(tmp_path):
    """Under data.missing: error an R NA label stops training with one line naming its line and column, exit 2."""
    (tmp_path / "r.csv").write_text(r_rows())
    config = write_config(tmp_path / "c.yaml", tmp_path / "r.csv")
    code, stdout, stderr = run("train", "--config", config, "--out", tmp_path / "run", *FAST)
    assert (code, stdout) == (2, "")
    assert stderr == f"softreg: error: {tmp_path / 'r.csv'}: line 4: missing label 'NA' in column 'vote'\n"


def test_drop_and_mean_leave_out_unlabelled_rows_and_count_them(tmp_path):
    """data.missing: drop and mean leave out the 3 NA-label rows: the classes are N and Y, one warning
    counts them, and model.json's training summary keeps the count."""
    (tmp_path / "r.csv").write_text(r_rows())
    for missing in ("drop", "mean"):
        config = write_config(tmp_path / f"{missing}.yaml", tmp_path / "r.csv", f"  missing: {missing}\n")
        code, _, stderr = run("train", "--config", config, "--out", tmp_path / missing, *FAST)
        assert code == 0, stderr
        assert f"softreg: warning: {tmp_path / 'r.csv'}: 3 rows without a label were left out\n" in stderr
        meta = json.loads((tmp_path / missing / "model.json").read_text())
        assert [str(label) for label in meta["classes"]] == ["N", "Y"]
        assert meta["training"]["n_unlabelled"] == 3
        assert sum(meta["training"][key] for key in ("n_train", "n_val", "n_test")) == 57


def test_mean_imputes_features_but_never_a_label(tmp_path):
    """data.missing: mean fills an NA feature and leaves out the row whose label is empty."""
    lines = r_rows(unlabelled=()).splitlines()
    lines[1] = '"1",NA,' + lines[1].split(",", 2)[2]  # row 1: x1 missing
    lines[5] = lines[5].rsplit(",", 1)[0] + ","  # row 5: an empty label
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    config = write_config(tmp_path / "c.yaml", tmp_path / "r.csv", "  missing: mean\n")
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", *FAST)
    assert code == 0, stderr
    assert f"{tmp_path / 'r.csv'}: 1 row without a label was left out" in stderr
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert sum(meta["training"][key] for key in ("n_train", "n_val", "n_test")) == 59


def test_evaluate_data_follows_the_runs_missing_setting(tmp_path):
    """evaluate --data skips and counts unlabelled rows for a run trained with data.missing: drop, and
    refuses them naming the line for a run trained with the default; predict ignores the label column."""
    (tmp_path / "r.csv").write_text(r_rows())
    (tmp_path / "clean.csv").write_text(r_rows(unlabelled=()))
    write_config(tmp_path / "drop.yaml", tmp_path / "r.csv", "  missing: drop\n")
    write_config(tmp_path / "strict.yaml", tmp_path / "clean.csv")
    for name in ("drop", "strict"):
        assert run("train", "--config", tmp_path / f"{name}.yaml", "--out", tmp_path / name, *FAST)[0] == 0
    code, _, stderr = run("evaluate", "--run", tmp_path / "drop", "--data", tmp_path / "r.csv", "--json")
    assert (code, stderr) == (0, f"softreg: warning: {tmp_path / 'r.csv'}: 3 rows without a label were left out\n")
    code, stdout, stderr = run("evaluate", "--run", tmp_path / "strict", "--data", tmp_path / "r.csv")
    assert (code, stdout) == (2, "")
    assert stderr == f"softreg: error: {tmp_path / 'r.csv'}: line 4: missing label 'NA' in column 'vote'\n"
    code, stdout, stderr = run("predict", "--run", tmp_path / "strict", "--input", tmp_path / "r.csv")
    assert code == 0, stderr
    assert len(stdout.splitlines()) == 61 and stdout.splitlines()[0] == "label,prob_N,prob_Y"


def test_null_and_na_parquet_labels_are_missing_labels(tmp_path):
    """A Parquet label that is null or the text 'NA' is a missing label: refused naming its row by default,
    left out and counted under data.missing: drop."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=40)
    labels = ["Y" if value > 0 else "N" for value in x]
    labels[4], labels[7] = None, "NA"
    pq.write_table(pa.table({"x": x, "y": rng.normal(size=40), "vote": labels}), tmp_path / "t.parquet")
    strict = write_config(tmp_path / "strict.yaml", tmp_path / "t.parquet")
    code, _, stderr = run("train", "--config", strict, "--out", tmp_path / "strict", *FAST)
    assert (code, stderr) == (2, f"softreg: error: {tmp_path / 't.parquet'}: row 5: empty label in column 'vote'\n")
    drop = write_config(tmp_path / "drop.yaml", tmp_path / "t.parquet", "  missing: drop\n")
    code, _, stderr = run("train", "--config", drop, "--out", tmp_path / "drop", *FAST)
    assert code == 0, stderr
    assert f"{tmp_path / 't.parquet'}: 2 rows without a label were left out" in stderr
    meta = json.loads((tmp_path / "drop" / "model.json").read_text())
    assert meta["classes"] == ["N", "Y"] and meta["training"]["n_unlabelled"] == 2
