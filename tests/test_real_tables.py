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


def warnings_of(stderr):
    """The lines of ``stderr`` that softreg's warnings and errors print (not training's progress notes)."""
    return "".join(line + "\n" for line in stderr.splitlines() if line.startswith("softreg: "))


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
    refuses them naming the line for a run trained with the default; predict ignores the label column
    and copies the row names."""
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
    assert len(stdout.splitlines()) == 61 and stdout.splitlines()[0] == ",label,prob_N,prob_Y"


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


def pandas_rows(n_rows=60, seed=0, unlabelled=()):
    """Rows as pandas' ``DataFrame.to_csv`` writes them with its index: an empty first header cell,
    the index 0..n-1, nothing quoted, a NaN label as an empty cell (rows ``unlabelled``, 0-based)."""
    rng = np.random.default_rng(seed)
    lines = [",x1,x2,party,vote"]
    for row in range(n_rows):
        x1, x2 = rng.normal(size=2)
        vote = "" if row in unlabelled else ("Y" if x1 + x2 > 0 else "N")
        lines.append(f"{row},{x1:.4f},{x2:.4f},{'AB'[row % 2]},{vote}")
    return "\n".join(lines) + "\n"


def test_r_and_pandas_row_names_are_the_id_not_a_feature(tmp_path):
    """The first column under an empty header (R's write.csv, pandas' to_csv) or pandas' 'Unnamed: 0' is
    the id: not a feature, said in one line, and copied into predict's output."""
    texts = {"r.csv": r_rows(unlabelled=()), "pandas.csv": pandas_rows(),
             "unnamed.csv": pandas_rows().replace(",x1", "Unnamed: 0,x1", 1)}
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
        config = write_config(tmp_path / f"{name}.yaml", tmp_path / name)
        code, _, stderr = run("train", "--config", config, "--out", tmp_path / f"{name}-run", *FAST)
        assert code == 0, stderr
        header = "Unnamed: 0" if name == "unnamed.csv" else ""
        assert warnings_of(stderr) == (f"softreg: warning: {tmp_path / name}: the first column {header!r} holds row "
                                       "names: it is the id (copied into predict's output), not a feature\n")
        meta = json.loads((tmp_path / f"{name}-run" / "model.json").read_text())
        assert meta["feature_names"] == ["x1", "x2", "party=A", "party=B"] and meta["input"]["id"] == header
        code, stdout, stderr = run("predict", "--run", tmp_path / f"{name}-run", "--input", tmp_path / name)
        assert code == 0, stderr
        lines = stdout.splitlines()
        first = 1 if name == "r.csv" else 0
        assert lines[0] == f"{header},label,prob_N,prob_Y" and lines[1].split(",")[0] == str(first)


def test_a_nameless_column_that_repeats_or_sits_elsewhere_is_refused(tmp_path):
    """An empty-header first column with repeated cells is no row index, and a nameless column that is
    not first is no feature: each stops with one line, exit 2."""
    repeated = pandas_rows().replace("\n1,", "\n0,", 1)
    (tmp_path / "repeated.csv").write_text(repeated)
    code, _, stderr = run("train", "--config", write_config(tmp_path / "a.yaml", tmp_path / "repeated.csv"),
                          "--out", tmp_path / "a", *FAST)
    assert (code, stderr) == (2, f"softreg: error: {tmp_path / 'repeated.csv'}: the first column '' is named like a "
                              "row index but repeats '0'; name it in the header, or leave it out with data.exclude\n")
    (tmp_path / "middle.csv").write_text("a,,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(30)))
    code, _, stderr = run("train", "--config", write_config(tmp_path / "b.yaml", tmp_path / "middle.csv"),
                          "--out", tmp_path / "b", *FAST)
    assert (code, stderr) == (2, f"softreg: error: {tmp_path / 'middle.csv'}: column 2 has no name in the header; "
                              "a feature needs one (name it, or leave it out with data.exclude)\n")


def test_pandas_empty_labels_are_left_out_under_drop(tmp_path):
    """pandas writes a NaN label as an empty cell: under data.missing: drop those rows are left out and counted."""
    (tmp_path / "p.csv").write_text(pandas_rows(unlabelled=(5, 6)))
    config = write_config(tmp_path / "c.yaml", tmp_path / "p.csv", "  missing: drop\n")
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", *FAST)
    assert code == 0, stderr
    assert f"softreg: warning: {tmp_path / 'p.csv'}: 2 rows without a label were left out\n" in stderr


def continuous_table(n_rows=80):
    """A pandas-written table (no index) whose last column holds continuous floats."""
    rng = np.random.default_rng(3)
    rows = [f"{a:.3f},{b:.3f},{c:.3f}" for a, b, c in rng.normal(size=(n_rows, 3))]
    return "a,b,logpopul\n" + "\n".join(rows) + "\n"


def test_a_continuous_default_label_is_refused_and_an_explicit_one_warns_once(tmp_path):
    """With data.label unset, a last column of continuous floats stops training (exit 2, the issue's message);
    naming it as data.label trains, with one warning."""
    (tmp_path / "t.csv").write_text(continuous_table())
    values = sorted({float(line.split(",")[2]) for line in continuous_table().splitlines()[1:]})
    config = write_config(tmp_path / "c.yaml", tmp_path / "t.csv")
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "a", *FAST)
    shown = ", ".join(f"{value:g}" for value in values[:3])
    assert (code, stderr) == (2, f"softreg: error: {tmp_path / 't.csv'}: the last column 'logpopul' holds continuous "
                              f"values (80 distinct numbers, such as {shown}); softreg classifies: set data.label\n")
    config = write_config(tmp_path / "d.yaml", tmp_path / "t.csv", "  label: logpopul\n  stratify: false\n")
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "b", *FAST)
    assert code == 0, stderr
    assert stderr.count("holds continuous values") == 1


def test_integer_and_text_default_labels_are_classes(tmp_path):
    """A last column of few distinct integers, or of text, is the label without a warning."""
    rng = np.random.default_rng(5)
    rows = "".join(f"{a:.3f},{b:.3f},{int(a > 0) + int(b > 0)}\n" for a, b in rng.normal(size=(60, 2)))
    (tmp_path / "i.csv").write_text("a,b,y\n" + rows)
    code, _, stderr = run("train", "--config", write_config(tmp_path / "c.yaml", tmp_path / "i.csv"),
                          "--out", tmp_path / "run", *FAST)
    assert (code, warnings_of(stderr)) == (0, "")


def pets(n_rows=60):
    """A table with a pet ID (distinct text in every row), a number and a colour, and a kind to predict."""
    rng = np.random.default_rng(4)
    lines = ["pet_id,weight,color,kind"]
    for row in range(n_rows):
        weight = rng.normal(10, 3)
        lines.append(f"P{1000 + 7 * row},{weight:.2f},{'red' if row % 3 else 'blue'},{'cat' if weight < 10 else 'dog'}")
    return "\n".join(lines) + "\n"


def test_an_all_distinct_text_column_becomes_the_id(tmp_path):
    """A text column distinct in every row of 60 is not one-hot encoded: it becomes the id (one line says so),
    copied into predict's output, also from headerless input laid out as the training file less its label."""
    (tmp_path / "pets.csv").write_text(pets())
    config = write_config(tmp_path / "c.yaml", tmp_path / "pets.csv")
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", *FAST)
    assert code == 0, stderr
    assert warnings_of(stderr) == (
        f"softreg: warning: {tmp_path / 'pets.csv'}: column 'pet_id' holds a different text in every row: it is the "
        "id (copied into predict's output), not a feature; set data.id to choose another\n"
    )
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert meta["feature_names"] == ["weight", "color=blue", "color=red"] and meta["input"]["id"] == "pet_id"
    headerless = "".join(line.rsplit(",", 1)[0] + "\n" for line in pets().splitlines()[1:])
    (tmp_path / "new.csv").write_text(headerless)
    code, stdout, stderr = run("predict", "--run", tmp_path / "run", "--input", tmp_path / "new.csv", "--no-header")
    assert code == 0, stderr
    assert stdout.splitlines()[0] == "pet_id,label,prob_cat,prob_dog" and stdout.splitlines()[1].startswith("P1000,")


def test_an_identifier_beside_a_given_id_is_refused_with_a_hint(tmp_path):
    """With data.id already set, a text column distinct in every row stops training with a hint, exit 2."""
    (tmp_path / "pets.csv").write_text(pets())
    config = write_config(tmp_path / "c.yaml", tmp_path / "pets.csv", "  id: color\n")
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", *FAST)
    assert (code, stderr) == (2, f"softreg: error: {tmp_path / 'pets.csv'}: column 'pet_id' holds a different text "
                              "in every row, an identifier that one-hot encoding cannot learn from; leave it out with "
                              "data.exclude (or name it in data.categorical to encode it all the same)\n")


def test_unseen_category_warnings_name_the_part(tmp_path):
    """A category met only in the validation or test split is named by the part, never by its fraction."""
    lines = ["x,country,y"] + [f"{i % 7},{'ab'[i % 2]},{'PQ'[i % 3 == 0]}" for i in range(80)]
    lines[58] = "1,yy,Q"  # ordered split: data rows 0-53 train, 54-59 validation, 60-79 test
    lines[71] = "1,zz,P"
    (tmp_path / "u.csv").write_text("\n".join(lines) + "\n")
    config = write_config(tmp_path / "c.yaml", tmp_path / "u.csv", "  split: ordered\n  val: 0.1\n")
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", *FAST)
    assert code == 0, stderr
    assert warnings_of(stderr) == (
        "softreg: warning: validation split: categories unseen in training get all-zero indicators (country: 1 cells)\n"
        "softreg: warning: test split: categories unseen in training get all-zero indicators (country: 1 cells)\n"
    )


def test_a_cache_leaves_out_and_counts_unlabelled_rows(tmp_path):
    """Built through a data cache, a run leaves out R's NA-label rows as in memory, says how many in one
    line, and keeps the count in model.json."""
    (tmp_path / "r.csv").write_text(r_rows())
    config = write_config(tmp_path / "c.yaml", tmp_path / "r.csv", f"  missing: drop\n  cache: {tmp_path / 'cache'}\n")
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", *FAST)
    assert code == 0, stderr
    assert f"softreg: warning: {tmp_path / 'r.csv'}: 3 rows without a label were left out\n" in stderr
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert meta["classes"] == ["N", "Y"] and meta["training"]["n_unlabelled"] == 3


def test_a_cache_refuses_a_continuous_default_label_and_an_identifier_column(tmp_path):
    """Through data.cache the same tables are refused as in memory (exit 2, one line): the continuous
    last column with the in-memory message, and the pet ID, which a cache cannot make the id itself."""
    (tmp_path / "t.csv").write_text(continuous_table())
    values = sorted({float(line.split(",")[2]) for line in continuous_table().splitlines()[1:]})
    shown = ", ".join(f"{value:g}" for value in values[:3])
    config = write_config(tmp_path / "c.yaml", tmp_path / "t.csv", f"  cache: {tmp_path / 'cache-t'}\n")
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "a", *FAST)
    assert (code, stderr) == (2, f"softreg: error: {tmp_path / 't.csv'}: the last column 'logpopul' holds continuous "
                              f"values (80 distinct numbers, such as {shown}); softreg classifies: set data.label\n")
    (tmp_path / "pets.csv").write_text(pets())
    config = write_config(tmp_path / "d.yaml", tmp_path / "pets.csv", f"  cache: {tmp_path / 'cache-p'}\n")
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "b", *FAST)
    assert (code, stderr) == (2, f"softreg: error: {tmp_path / 'pets.csv'}: column 'pet_id' holds a different text "
                              "in every row, an identifier that one-hot encoding cannot learn from; set data.id: "
                              "pet_id (a cache does not choose the id itself) or leave it out with data.exclude\n")
    config = write_config(tmp_path / "e.yaml", tmp_path / "pets.csv",
                          f"  cache: {tmp_path / 'cache-q'}\n  id: pet_id\n")
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "c", *FAST)
    assert code == 0, stderr


def test_a_cache_reads_r_row_names_as_the_id_and_says_so(tmp_path):
    """R's row-name column through data.cache: the id, not a feature, with the in-memory load's line."""
    (tmp_path / "r.csv").write_text(r_rows(unlabelled=()))
    config = write_config(tmp_path / "c.yaml", tmp_path / "r.csv", f"  cache: {tmp_path / 'cache'}\n")
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", *FAST)
    assert code == 0, stderr
    assert warnings_of(stderr) == (f"softreg: warning: {tmp_path / 'r.csv'}: the first column '' holds row "
                                   "names: it is the id (copied into predict's output), not a feature\n")
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert meta["feature_names"] == ["x1", "x2", "party=A", "party=B"] and meta["input"]["id"] == ""
