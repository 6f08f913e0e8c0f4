"""Files the way users have them: headers or none, id and extra columns, missing values, text
categories, many classes, other formats and standard input for predict."""

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner
from sklearn.datasets import dump_svmlight_file, load_iris
from sklearn.impute import SimpleImputer

from softreg.cli import main
from softreg.io.header import looks_like_header
from softreg.prepare.columns import MISSING_HINT


def run(*args, input=None):
    result = CliRunner().invoke(main, [str(arg) for arg in args], input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def config(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def iris_rows(header=True, delimiter=","):
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    rows = [delimiter.join([*(f"{v:g}" for v in row), label]) for row, label in zip(X, names, strict=True)]
    head = [delimiter.join(["sepal_length", "sepal_width", "petal_length", "petal_width", "species"])]
    return "\n".join((head if header else []) + rows) + "\n"


# -- the header rule


@pytest.mark.parametrize(
    ("first", "below", "expected"),
    [
        (["5.1", "3.5", "setosa"], [["4.9", "3", "setosa"], ["6.3", "3.3", "virginica"]], False),
        (["a", "b", "species"], [["4.9", "3", "setosa"], ["6.3", "3.3", "virginica"]], True),
        (["Letter", "1", "2"], [["T", "2", "8"], ["I", "5", "12"]], True),  # numeric names, one text column
        (["x", "y"], [["3", "2"]], True),
        (["u1", "red"], [["u2", "blue"], ["u3", "green"]], True),  # no evidence either way: a header
        (["7", "red"], [["8", "blue"], ["9", "green"]], False),  # a number over a numeric column: data
        (["", "y"], [["0.0", "A"], ["0.0", "B"]], True),  # no evidence: a header (an unnamed index column)
        (["1", "2"], [], False),
        (["a", "NA"], [["NA", "1"], ["2", "3"]], True),
    ],
)
def test_header_rule(first, below, expected):
    """A first row is a header when a text cell sits over a numeric column (or over text of one other
    length); a number over a numeric column makes it data (headerless rows with text labels); with no
    evidence either way it is a header unless all its cells are numbers."""
    assert looks_like_header(first, below) is expected


def test_headerless_csv_with_text_labels_trains_and_predicts_every_row(tmp_path):
    """The iris rows without a header: 120 training rows (not 119), features col0..col3, and predict gives
    one line per input row; model.json records that training saw no header."""
    (tmp_path / "h.csv").write_text(iris_rows(header=False))
    path = config(tmp_path, "data:\n  source: h.csv\n  val: 0\noptim:\n  epochs: 3\n")
    code, stdout, stderr = run("train", "--config", path, "--out", tmp_path / "r", "--json")
    assert code == 0, stderr
    document = json.loads(stdout)
    assert document["training"]["n_train"] + document["training"]["n_test"] == 150
    model = json.loads((tmp_path / "r" / "model.json").read_text())
    assert model["feature_names"] == ["col0", "col1", "col2", "col3"] and model["input"]["header"] is False
    code, stdout, stderr = run("predict", "--run", tmp_path / "r", "--input", tmp_path / "h.csv")
    assert code == 0, stderr
    assert len(stdout.splitlines()) == 151 and stdout.startswith("label,prob_setosa")
    (tmp_path / "named.csv").write_text(iris_rows(header=True))
    code, stdout, stderr = run("predict", "--run", tmp_path / "r", "--input", tmp_path / "named.csv", "--header")
    assert code == 0 and len(stdout.splitlines()) == 151  # with --header its names are read, then position...
    code, _, stderr = run("predict", "--run", tmp_path / "r", "--input", tmp_path / "named.csv", "--no-header")
    assert code == 2 and "'sepal_length' is not a number" in stderr  # ...and without, the names are a data row


# -- columns: id, features, exclude


def shop(tmp_path, n=240, seed=0):
    rng = np.random.default_rng(seed)
    colors = rng.choice(["red", "green", "blue"], size=n)
    kind = np.where(colors == "red", "a", np.where(colors == "green", "b", rng.choice(["a", "b"], size=n)))
    size = rng.normal(np.where(kind == "a", 3.0, 5.0), 1.0)
    lines = ["id,color,size,notes,kind"]
    for index in range(n):
        cell = "NA" if index % 17 == 3 else f"{size[index]:.3f}"
        lines.append(f"u{index},{colors[index]},{cell},note {index},{kind[index]}")
    (tmp_path / "shop.csv").write_text("\n".join(lines) + "\n")
    return size


def test_id_exclude_missing_and_categories_travel_to_predict(tmp_path):
    """data.id is not a feature and leads predict's output; data.exclude drops a column; color becomes
    color=blue|green|red; a missing size takes the training part's median; an unseen category gives
    all-zero indicators and a warning naming the column and count."""
    size = shop(tmp_path)
    path = config(tmp_path, "data:\n  source: shop.csv\n  id: id\n  exclude: [notes]\n  missing: median\n"
                  "optim:\n  epochs: 8\n")
    code, _, stderr = run("train", "--config", path, "--out", tmp_path / "r", "--quiet")
    assert code == 0, stderr
    model = json.loads((tmp_path / "r" / "model.json").read_text())
    assert model["feature_names"] == ["color=blue", "color=green", "color=red", "size"]
    fill = model["input"]["columns"]["columns"][1]["fill"]
    train_ids = set(range(240))  # the fill is a median of training rows only: between the extremes
    assert min(size) < fill < max(size) and train_ids
    (tmp_path / "new.csv").write_text("kind,size,color,id\na,3.1,red,n1\nb,NA,purple,n2\na,4.0,purple,n3\n")
    code, stdout, stderr = run("predict", "--run", tmp_path / "r", "--input", tmp_path / "new.csv")
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0] == "id,label,prob_a,prob_b" and [line.split(",")[0] for line in lines[1:]] == ["n1", "n2", "n3"]
    assert "color: 2 cells" in stderr and stderr.startswith("softreg: warning:")


@pytest.mark.slow
def test_missing_values_error_drop_and_mean(tmp_path):
    """data.missing error names the line and column; drop trains on the complete rows; mean equals
    scikit-learn's SimpleImputer on the training rows."""
    shop(tmp_path)
    base = "data:\n  source: shop.csv\n  exclude: [id, notes]\n  test: 0.25\n  val: 0\n  split: ordered\n"
    code, _, stderr = run("train", "--config", config(tmp_path, base), "--out", tmp_path / "e")
    assert code == 2 and stderr == (
        f"softreg: error: {tmp_path / 'shop.csv'}: line 5, column 'size': 'NA' is not a number; {MISSING_HINT}\n"
    )
    assert not (tmp_path / "e").exists()
    code, stdout, stderr = run("train", "--config", config(tmp_path, base + "  missing: drop\n", "d.yaml"),
                               "--out", tmp_path / "d", "--json")
    assert code == 0, stderr
    training = json.loads(stdout)["training"]
    assert training["n_train"] + training["n_test"] == 240 - len(range(3, 240, 17))
    code, _, stderr = run("train", "--config", config(tmp_path, base + "  missing: mean\n", "m.yaml"),
                          "--out", tmp_path / "m", "--quiet")
    assert code == 0, stderr
    fill = json.loads((tmp_path / "m" / "model.json").read_text())["input"]["columns"]["columns"][1]["fill"]
    cells = [line.split(",")[2] for line in (tmp_path / "shop.csv").read_text().splitlines()[1:181]]
    values = np.array([[np.nan if cell == "NA" else float(cell)] for cell in cells])
    assert fill == pytest.approx(SimpleImputer(strategy="mean").fit(values).statistics_[0], rel=1e-12)


def test_unknown_columns_get_a_suggestion(tmp_path):
    """A data.features or data.id name that is not a column: exit 2, the name, a did-you-mean, the columns."""
    shop(tmp_path)
    path = config(tmp_path, "data:\n  source: shop.csv\n  id: ID\n")
    code, _, stderr = run("train", "--config", path, "--out", tmp_path / "r")
    assert code == 2 and "id column 'ID' not found (did you mean 'id'?); columns are: id, color" in stderr


# -- svmlight, npz and standard input for predict and evaluate


def test_predict_and_evaluate_accept_every_training_format(tmp_path):
    """One line per input row, in order, for CSV, TSV output, standard input, svmlight and .npz."""
    X, y = load_iris(return_X_y=True)
    np.savez(tmp_path / "iris.npz", X=X, y=y)
    path = config(tmp_path, "data:\n  source: iris.npz\noptim:\n  epochs: 3\n")
    assert run("train", "--config", path, "--out", tmp_path / "r", "--quiet")[0] == 0
    dump_svmlight_file(X, y, str(tmp_path / "iris.svm"), zero_based=True)
    (tmp_path / "iris.csv").write_text("x0,x1,x2,x3\n" + "\n".join(",".join(map(str, row)) for row in X) + "\n")
    outputs = {}
    for name in ("iris.npz", "iris.svm", "iris.csv"):
        code, stdout, stderr = run("predict", "--run", tmp_path / "r", "--input", tmp_path / name)
        assert code == 0, (name, stderr)
        outputs[name] = stdout.splitlines()
        assert len(outputs[name]) == 151
    assert outputs["iris.npz"] == outputs["iris.svm"] == outputs["iris.csv"]
    code, stdout, _ = run("predict", "--run", tmp_path / "r", "--input", "-",
                          input=(tmp_path / "iris.csv").read_text())
    assert code == 0 and stdout.splitlines() == outputs["iris.csv"]
    tsv = tmp_path / "p.tsv"
    assert run("predict", "--run", tmp_path / "r", "--input", tmp_path / "iris.csv", "--output", tsv)[0] == 0
    assert (tmp_path / "p.tsv").read_text().splitlines()[0] == "label\tprob_0\tprob_1\tprob_2"
    code, stdout, stderr = run("evaluate", "--run", tmp_path / "r", "--data", tmp_path / "iris.svm", "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["accuracy"] > 0.8


def test_predict_validates_the_whole_input_before_the_first_line(tmp_path):
    """A bad cell near the end of stdin input: exit 2, nothing on stdout."""
    (tmp_path / "h.csv").write_text(iris_rows())
    path = config(tmp_path, "data:\n  source: h.csv\noptim:\n  epochs: 2\n")
    assert run("train", "--config", path, "--out", tmp_path / "r", "--quiet")[0] == 0
    broken = iris_rows() + "1,2,x,4,setosa\n"
    code, stdout, stderr = run("predict", "--run", tmp_path / "r", "--input", "-", input=broken)
    assert code == 2 and stdout == ""
    assert "line 152, column 'petal_length': 'x' is not a number" in stderr


@pytest.mark.slow
def test_predict_into_head_exits_0(tmp_path):
    """`softreg predict ... | head -1` ends quietly with status 0."""
    (tmp_path / "h.csv").write_text(iris_rows() + iris_rows(header=False) * 40)
    path = config(tmp_path, "data:\n  source: h.csv\n  header: true\noptim:\n  epochs: 1\n")
    assert run("train", "--config", path, "--out", tmp_path / "r", "--quiet")[0] == 0
    command = f"{sys.executable} -m softreg predict --run {tmp_path / 'r'} --input {tmp_path / 'h.csv'} | head -1; " \
              "exit ${PIPESTATUS[0]}"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("label,") and done.stderr == ""


# -- labels, classes and encodings


def test_stratified_split_names_the_classes_with_one_row(tmp_path):
    """Classes with one row: the error names them and the rule, exit 2."""
    rows = "a,y\n" + "\n".join(f"{i},{'common' if i < 20 else f'rare{i}'}" for i in range(22)) + "\n"
    (tmp_path / "d.csv").write_text(rows)
    code, _, stderr = run("train", "--config", config(tmp_path, "data:\n  source: d.csv\n"), "--out", tmp_path / "r")
    assert code == 2 and stderr == (
        "softreg: error: each class needs at least 2 rows for a stratified split; classes with 1 row: "
        "'rare20', 'rare21'; set data.stratify: false\n"
    )


def test_label_in_the_first_column_gets_a_hint(tmp_path):
    """data.label unset, text labels first and a numeric last column: a warning says to set data.label."""
    rows = "letter,f1,f2\n" + "\n".join(f"{'ab'[i % 2]},{i},{i % 7}" for i in range(40)) + "\n"
    (tmp_path / "d.csv").write_text(rows)
    path = config(tmp_path, "data:\n  source: d.csv\n  stratify: false\noptim:\n  epochs: 1\n")
    code, _, stderr = run("train", "--config", path, "--out", tmp_path / "r", "--quiet")
    assert code == 0 and "set data.label: letter" in stderr


def test_latin_1_files_with_data_encoding(tmp_path):
    """A latin-1 file is refused as not UTF-8 (naming data.encoding) and reads with data.encoding: latin-1."""
    text = "café,size,y\n" + "\n".join(f"{'élan' if i % 2 else 'noël'},{i},{i % 2}" for i in range(30)) + "\n"
    (tmp_path / "d.csv").write_bytes(text.encode("latin-1"))
    code, _, stderr = run("train", "--config", config(tmp_path, "data:\n  source: d.csv\n"), "--out", tmp_path / "a")
    assert code == 2 and "not UTF-8 text" in stderr and "data.encoding" in stderr
    path = config(tmp_path, "data:\n  source: d.csv\n  encoding: latin-1\noptim:\n  epochs: 1\n", "l.yaml")
    code, _, stderr = run("train", "--config", path, "--out", tmp_path / "b", "--quiet")
    assert code == 0, stderr
    assert json.loads((tmp_path / "b" / "model.json").read_text())["feature_names"][:2] == ["café=noël", "café=élan"]


def test_yaml_that_is_not_a_mapping_and_duplicate_keys(tmp_path):
    """A top-level list and a repeated key each get their own one-line error, exit 2."""
    code, _, stderr = run("train", "--config", config(tmp_path, "- a\n- b\n"))
    assert code == 2 and stderr.endswith("a config must be a YAML mapping of sections, got list\n")
    code, _, stderr = run("train", "--config", config(tmp_path, "data:\n  source: a\n  source: b\n", "d.yaml"))
    assert code == 2 and "duplicate key 'source'; each key may appear once" in stderr


@pytest.mark.slow
def test_many_classes_plots_stay_readable(tmp_path):
    """200 classes: every plot at most 4000 px a side; a warning names classes absent from training."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(200, 8)) * 3
    y = np.repeat(np.arange(200), 6)
    X = centres[y] + rng.normal(size=(len(y), 8))
    np.savez(tmp_path / "many.npz", X=X, y=np.array([f"c{v:03d}" for v in y]))
    path = config(tmp_path, "data:\n  source: many.npz\n  val: 0\noptim:\n  epochs: 2\n")
    code, _, stderr = run("train", "--config", path, "--out", tmp_path / "r", "--quiet")
    assert code == 0, stderr
    import matplotlib.image

    for png in (tmp_path / "r" / "plots").glob("*.png"):
        height, width = matplotlib.image.imread(png).shape[:2]
        assert max(height, width) <= 4000, png.name


def test_python_dash_m_softreg():
    """`python -m softreg --version` works like `softreg --version`."""
    done = subprocess.run([sys.executable, "-m", "softreg", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("softreg, version ")


def test_sparse_is_not_densified(tmp_path):
    """svmlight input trains as CSR (the saved test split stays sparse)."""
    X = sp.random(300, 50, density=0.05, random_state=0, format="csr")
    y = (X.sum(axis=1).A1 > np.median(X.sum(axis=1).A1)).astype(int)
    dump_svmlight_file(X, y, str(tmp_path / "s.svm"))
    path = config(tmp_path, "data:\n  source: s.svm\noptim:\n  epochs: 2\n")
    assert run("train", "--config", path, "--out", tmp_path / "r", "--quiet")[0] == 0


@pytest.mark.slow
def test_svmlight_is_standardized_exactly_and_reaches_the_csv_optimum(tmp_path):
    """wine as svmlight (sparse, centred implicitly) and as CSV (dense): the saved means agree, the exact
    optima agree to 1e-8 relative objective, and SGD on the sparse copy ends where the dense one does."""
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    dump_svmlight_file(X, y, str(tmp_path / "wine.svm"), zero_based=True)
    (tmp_path / "wine.csv").write_text(
        ",".join([f"x{j}" for j in range(13)] + ["y"]) + "\n"
        + "\n".join(",".join([*(repr(float(v)) for v in row), str(label)]) for row, label in zip(X, y, strict=True))
        + "\n"
    )
    results = {}
    for name in ("wine.svm", "wine.csv"):
        path = config(tmp_path, f"data:\n  source: {name}\noptim:\n  epochs: 30\n  lr: 0.05\n", f"{name}.yaml")
        code, _, stderr = run("train", "--config", path, "--out", tmp_path / name.replace(".", "-"), "--quiet")
        assert code == 0, stderr
        code, stdout, stderr = run("evaluate", "--run", tmp_path / name.replace(".", "-"), "--optimum", "--json")
        assert code == 0, stderr
        results[name] = json.loads(stdout)
        with np.load(tmp_path / name.replace(".", "-") / "model.npz") as model:
            results[name]["mean"] = model["feature_mean"]
    np.testing.assert_allclose(results["wine.svm"]["mean"], results["wine.csv"]["mean"], rtol=1e-12)
    sparse_star, dense_star = (results[name]["optimum"]["objective"] for name in ("wine.svm", "wine.csv"))
    assert abs(sparse_star - dense_star) <= 1e-8 * abs(dense_star)
    sparse_model, dense_model = (results[name]["optimum"]["model_objective"] for name in ("wine.svm", "wine.csv"))
    assert sparse_model == pytest.approx(dense_model, rel=1e-10)  # SGD on both follows one trajectory
