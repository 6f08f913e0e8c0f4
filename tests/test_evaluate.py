"""Metrics against scikit-learn's, the calibration error by hand, and `softreg evaluate`."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn import metrics as skm

from softreg.cli import main
from softreg.evaluate import (
    ExactSums,
    MetricSums,
    classification_metrics,
    expected_calibration_error,
    most_confused,
    reliability_bins,
)
from softreg.softmax import softmax
from tests.strategies import run

REPO = Path(__file__).resolve().parent.parent
PINNED_KEYS = {
    "n_samples", "accuracy", "balanced_accuracy", "log_loss", "brier_score", "top_k_accuracy", "ece",
    "macro_precision", "macro_recall", "macro_f1", "per_class", "confusion_matrix", "classes",
}


def predictions(n_samples, n_classes, seed, absent=()):
    """Labels (n,) and informative but imperfect probabilities (n, K); ``absent`` classes never occur in y."""
    rng = np.random.default_rng(seed)
    present = np.setdiff1d(np.arange(n_classes), absent)
    y = rng.choice(present, size=n_samples)
    logits = rng.normal(size=(n_samples, n_classes))
    logits[np.arange(n_samples), y] += 1.5
    return y, softmax(logits)


CASES = {
    "26 classes": dict(n_samples=600, n_classes=26, seed=0),
    "2 classes": dict(n_samples=200, n_classes=2, seed=1),
    "data lack a class": dict(n_samples=150, n_classes=4, seed=2, absent=(2,)),
}


@pytest.mark.parametrize("case", CASES)
def test_metrics_equal_scikit_learn(case):
    """Every metric equals scikit-learn's on the same predictions (26 classes, 2 classes, a class absent)."""
    y, proba = predictions(**CASES[case])
    n_classes = proba.shape[1]
    labels = np.arange(n_classes)
    classes = np.array([f"c{index}" for index in labels])
    predicted = proba.argmax(axis=1)
    metrics = classification_metrics(y, proba, classes)
    assert PINNED_KEYS <= set(metrics)
    assert metrics["n_samples"] == len(y) and metrics["classes"] == list(classes)
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted))
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true" when the data lack a class
        warnings.simplefilter("ignore", UserWarning)
        assert metrics["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, predicted))
    assert metrics["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=labels))
    assert metrics["brier_score"] == pytest.approx(skm.brier_score_loss(y, proba, labels=labels))
    for k, value in metrics["top_k_accuracy"].items():
        assert value == pytest.approx(skm.top_k_accuracy_score(y, proba, k=int(k), labels=labels))
    precision, recall, f1, _ = skm.precision_recall_fscore_support(y, predicted, average="macro", zero_division=0)
    macro = (metrics["macro_precision"], metrics["macro_recall"], metrics["macro_f1"])
    assert macro == pytest.approx((precision, recall, f1))
    report = skm.classification_report(
        y, predicted, labels=labels, target_names=classes, output_dict=True, zero_division=0
    )
    for name in classes:
        row = metrics["per_class"][name]
        expected = report[name]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (expected["precision"], expected["recall"], expected["f1-score"], expected["support"])
        )
    assert metrics["confusion_matrix"] == skm.confusion_matrix(y, predicted, labels=labels).tolist()
    json.dumps(metrics, allow_nan=False)  # plain, standard JSON


def test_counted_metrics_are_scikit_learns_bit_for_bit_and_the_means_to_rounding():
    """Metrics made of counts equal scikit-learn's exactly; log loss and Brier score to 1e-13 (exact sums)."""
    for case in CASES.values():
        y, proba = predictions(**case)
        labels = np.arange(proba.shape[1])
        predicted = proba.argmax(axis=1)
        metrics = classification_metrics(y, proba, labels)
        assert metrics["accuracy"] == skm.accuracy_score(y, predicted)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            assert metrics["balanced_accuracy"] == skm.balanced_accuracy_score(y, predicted)
        precision, recall, f1, _ = skm.precision_recall_fscore_support(y, predicted, average="macro", zero_division=0)
        assert (metrics["macro_precision"], metrics["macro_recall"], metrics["macro_f1"]) == (precision, recall, f1)
        precision, recall, f1, _ = skm.precision_recall_fscore_support(y, predicted, labels=labels, zero_division=0)
        rows = [metrics["per_class"][str(label)] for label in labels]
        assert [row["precision"] for row in rows] == precision.tolist()
        assert [row["recall"] for row in rows] == recall.tolist() and [row["f1"] for row in rows] == f1.tolist()
        for k, value in metrics["top_k_accuracy"].items():
            assert value == skm.top_k_accuracy_score(y, proba, k=int(k), labels=labels)
        assert metrics["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=labels), rel=1e-13)
        assert metrics["brier_score"] == pytest.approx(skm.brier_score_loss(y, proba, labels=labels), rel=1e-13)


def test_top_k_breaks_ties_as_scikit_learn_does():
    """Tied probabilities rank the later class first, as scikit-learn's reversed stable sort does."""
    proba = np.array([[0.25, 0.25, 0.25, 0.25], [0.4, 0.2, 0.2, 0.2], [0.1, 0.3, 0.3, 0.3]])
    y = np.array([0, 1, 3])
    metrics = classification_metrics(y, proba, np.arange(4))
    for k in ("2", "3"):
        assert metrics["top_k_accuracy"][k] == skm.top_k_accuracy_score(y, proba, k=int(k), labels=np.arange(4))


def test_metric_sums_over_chunks_equal_the_metrics_of_the_whole_bit_for_bit():
    """Any chunking of the rows gives the same metrics and reliability bins as one piece, exactly."""
    y, proba = predictions(**CASES["26 classes"])
    whole = classification_metrics(y, proba, np.arange(26))
    bins = reliability_bins(y, proba)
    for cuts in ([1], [7, 8, 300], list(range(5, 600, 37))):
        sums = MetricSums(26)
        for y_part, proba_part in zip(np.split(y, cuts), np.split(proba, cuts), strict=True):
            sums.add(y_part, proba_part)
        assert sums.metrics(np.arange(26)) == whole
        for key, values in sums.reliability().items():
            np.testing.assert_array_equal(values, bins[key])


def test_exact_sums_are_correctly_rounded_whatever_the_order():
    """ExactSums gives math.fsum's correctly rounded sum (tiny, huge, cancelling values) in any order and grouping."""
    import math

    rng = np.random.default_rng(4)
    values = np.concatenate([
        rng.normal(size=500) * 10.0 ** rng.integers(-300, 300, size=500),
        [1e308, -1e308, 5e-324, -2.5e-310, 1.0, 1e-16, 1e-16, 0.0, -0.0],
    ])
    groups = rng.integers(0, 3, size=values.size)
    sums = ExactSums(3)
    order = rng.permutation(values.size)
    for part in np.array_split(order, 7):
        sums.add(values[part], groups[part])
    for group in range(3):
        chosen = values[groups == group].tolist()
        assert sums.sum(group) == math.fsum(chosen)
        assert sums.mean(group, len(chosen)) == float(sum(map(_fraction, chosen)) / len(chosen))
    with pytest.raises(ValueError, match="finite values only"):
        sums.add([np.inf])


def _fraction(value):
    from fractions import Fraction

    return Fraction(value)


def test_two_classes_brier_is_the_binary_brier_score():
    """With K = 2 the Brier score is scikit-learn's binary one on the second column (no factor 2)."""
    y, proba = predictions(**CASES["2 classes"])
    metrics = classification_metrics(y, proba, np.array([0, 1]))
    assert metrics["brier_score"] == pytest.approx(skm.brier_score_loss(y, proba[:, 1]))


def test_absent_class_has_zero_support_and_balanced_accuracy_over_present_classes():
    """A class the data lack gets support 0; balanced accuracy is the mean recall of the classes present."""
    y, proba = predictions(**CASES["data lack a class"])
    metrics = classification_metrics(y, proba, np.array(["a", "b", "c", "d"]))
    assert metrics["per_class"]["c"]["support"] == 0
    assert sum(row["support"] for row in metrics["per_class"].values()) == len(y)
    recalls = [metrics["per_class"][name]["recall"] for name in ("a", "b", "d")]
    assert metrics["balanced_accuracy"] == pytest.approx(np.mean(recalls))


@pytest.mark.parametrize("n_classes, keys", [(2, []), (3, ["2"]), (6, list("2345")), (26, list("2345"))])
def test_top_k_keys_are_k_below_n_classes_up_to_5(n_classes, keys):
    """top_k_accuracy has the keys k = 2 .. min(K - 1, 5)."""
    y, proba = predictions(60, n_classes, seed=3)
    assert list(classification_metrics(y, proba, np.arange(n_classes))["top_k_accuracy"]) == keys


def test_ece_matches_a_hand_computed_example():
    """ECE = sum over 15 equal-width bins of (n_b / n) |accuracy_b - confidence_b|, computed by hand."""
    proba = np.array([
        [0.90, 0.05, 0.05],  # confidence 0.90, bin 13, right
        [0.90, 0.05, 0.05],  # confidence 0.90, bin 13, wrong (y = 1)
        [0.50, 0.30, 0.20],  # confidence 0.50, bin 7, right
        [0.30, 0.45, 0.25],  # confidence 0.45, bin 6, right
        [0.62, 0.18, 0.20],  # confidence 0.62, bin 9, wrong (y = 2)
    ])
    y = np.array([0, 1, 0, 1, 2])
    # bin 13: 2 rows, accuracy 0.5, confidence 0.9; bin 7: 1, 1.0, 0.5; bin 6: 1, 1.0, 0.45; bin 9: 1, 0.0, 0.62
    expected = (2 * 0.4 + 0.5 + 0.55 + 0.62) / 5
    assert expected_calibration_error(y, proba) == pytest.approx(expected)
    bins = reliability_bins(y, proba)
    assert bins["count"].tolist() == [0] * 6 + [1, 1, 0, 1, 0, 0, 0, 2, 0]
    assert bins["accuracy"][13] == 0.5 and bins["confidence"][13] == pytest.approx(0.9)


def test_most_confused_lists_off_diagonal_cells_largest_first():
    """The most confused pairs are the largest off-diagonal cells, named by class."""
    confusion = [[5, 3, 0], [1, 7, 4], [0, 0, 9]]
    assert most_confused(confusion, ["a", "b", "c"]) == [("b", "c", 4), ("a", "b", 3), ("b", "a", 1)]


# -- the command


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    """A converged iris run (configs/iris-csv.yaml: string labels), without plots to keep it quick."""
    out = tmp_path_factory.mktemp("runs") / "iris"
    code, _, stderr = run("train", "--config", REPO / "configs" / "iris-csv.yaml", "--out", out, "--quiet",
                          "--set", "output.plots=false")
    assert code == 0, stderr
    return out


def test_evaluate_json_equals_metrics_json_on_the_saved_test_split(iris_run):
    """`evaluate --json` on the saved test split reproduces the metrics.json written by train."""
    code, stdout, stderr = run("evaluate", "--run", iris_run, "--json")
    assert code == 0, stderr
    evaluated = json.loads(stdout)
    saved = json.loads((iris_run / "metrics.json").read_text())
    assert evaluated["accuracy"] == saved["accuracy"]
    for key in PINNED_KEYS | {"objective", "grad_norm"}:
        assert evaluated[key] == saved[key], key


def test_evaluate_table_has_classes_averages_and_confused_pairs(iris_run):
    """The human table lists each class, the macro average, the headline metrics and the confused pairs."""
    code, stdout, _ = run("evaluate", "--run", iris_run)
    assert code == 0
    expected = ("setosa", "virginica", "macro avg", "balanced accuracy", "ECE (15 bins)", "top-2 accuracy")
    for text in expected:
        assert text in stdout


def test_evaluate_data_missing_a_class_gives_it_zero_support(iris_run, tmp_path):
    """`evaluate --data` on a file without one of the model's classes works; that class has support 0."""
    lines = (REPO / "data" / "iris.csv").read_text().splitlines()
    partial = tmp_path / "no-setosa.csv"
    partial.write_text("\n".join([lines[0]] + [line for line in lines[1:] if "setosa" not in line]) + "\n")
    code, stdout, stderr = run("evaluate", "--run", iris_run, "--data", partial, "--json")
    assert code == 0, stderr
    metrics = json.loads(stdout)
    assert metrics["per_class"]["setosa"]["support"] == 0
    assert metrics["n_samples"] == 100 and metrics["confusion_matrix"][0] == [0, 0, 0]
    code, stdout, _ = run("evaluate", "--run", iris_run, "--data", partial)
    assert code == 0 and "setosa" in stdout


def test_evaluate_optimum_gap_is_small_and_out_writes_metrics_and_plots(iris_run, tmp_path):
    """`--optimum`: J* <= J of a converged run, a small relative gap; `--out` gets metrics.json and the plots."""
    out = tmp_path / "eval"
    code, stdout, stderr = run("evaluate", "--run", iris_run, "--optimum", "--json", "--out", out)
    assert code == 0, stderr
    metrics = json.loads(stdout)
    optimum = metrics["optimum"]
    assert 0 <= optimum["gap"] < 1e-3
    assert optimum["objective"] <= metrics["objective"] * (1 + 1e-9)
    assert 0.9 <= optimum["accuracy"] <= 1.0
    assert json.loads((out / "metrics.json").read_text())["optimum"] == optimum
    drawn = sorted(path.name for path in (out / "plots").iterdir())
    assert drawn == sorted(f"{name}.png" for name in
                           ("learning_curves", "confusion_matrix", "reliability", "weights", "class_probabilities"))
    assert f"wrote metrics.json and plots/ to {out}" in stderr
    code, stdout, _ = run("evaluate", "--run", iris_run, "--optimum")
    assert code == 0 and "exact optimum" in stdout and "relative gap" in stdout


@pytest.mark.slow
def test_evaluate_out_refuses_an_existing_directory_and_the_run_itself(iris_run, tmp_path):
    """`--out` refuses a non-empty directory without --force, and never replaces the run directory."""
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, stdout, stderr = run("evaluate", "--run", iris_run, "--out", out)
    assert code == 2 and stdout == "" and "exists and is not a softreg output directory" in stderr
    code, _, stderr = run("evaluate", "--run", iris_run, "--out", out, "--force")
    assert code == 2 and "is not a softreg output directory" in stderr  # --force spares a user's folder
    assert (out / "keep.txt").read_text() == "mine"
    assert run("evaluate", "--run", iris_run, "--out", tmp_path / "eval")[0] == 0
    code, _, stderr = run("evaluate", "--run", iris_run, "--out", tmp_path / "eval")
    assert code == 2 and "exists and is not empty; use --force" in stderr
    assert run("evaluate", "--run", iris_run, "--out", tmp_path / "eval", "--force")[0] == 0  # its own output
    for target in (iris_run, iris_run.parent):
        code, _, stderr = run("evaluate", "--run", iris_run, "--out", target, "--force")
        assert code == 2 and "would replace the run directory" in stderr
    assert (iris_run / "model.npz").exists()


@pytest.mark.parametrize("command", ["evaluate", "report"])
def test_missing_run_directory_is_a_usage_error(command, tmp_path):
    """A missing run directory: exit 2, one line on stderr naming it, nothing on stdout."""
    missing = tmp_path / "no-such-run"
    code, stdout, stderr = run(command, "--run", missing)
    assert code == 2 and stdout == ""
    assert stderr == f"softreg: error: {missing}: run directory not found\n"


def test_evaluate_optimum_without_config_names_the_file(iris_run, tmp_path):
    """`--optimum` needs config.yaml to rebuild the training part; its absence is named (exit 2)."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(iris_run, copy)
    (copy / "config.yaml").unlink()
    code, stdout, stderr = run("evaluate", "--run", copy, "--optimum")
    assert code == 2 and stdout == ""
    assert f"{copy / 'config.yaml'}: missing" in stderr


def test_streamed_evaluation_equals_one_piece_bit_for_bit(iris_run):
    """`evaluate --data` read 7 rows at a time gives the metrics (and the optimum's accuracy) of the file
    read in one chunk, exactly, and those equal the in-memory metrics of the same rows."""
    from softreg import rundir
    from softreg.commands.evaluate import evaluate_run
    from softreg.io.selection import Selection
    from softreg.io.sources import load_source

    source = str(REPO / "data" / "iris.csv")
    one_chunk = evaluate_run(iris_run, data=source, optimum=True, chunk_rows=10_000)
    assert evaluate_run(iris_run, data=source, optimum=True, chunk_rows=7) == one_chunk
    model = rundir.load_model(iris_run)
    dataset = load_source(source, Selection(label="species"))
    X = dataset.cells.astype(np.float64)
    y = np.searchsorted(model.classes, dataset.labels)
    in_memory = classification_metrics(y, model.predict_proba(X), model.classes)
    assert {key: one_chunk[key] for key in in_memory} == in_memory and one_chunk["n_samples"] == 150


def test_evaluate_reads_standard_input_as_it_reads_the_file(iris_run):
    """`--data -` streams standard input and reports what `--data FILE` reports, but the source."""
    source = REPO / "data" / "iris.csv"
    code, from_file, stderr = run("evaluate", "--run", iris_run, "--data", source, "--json")
    assert code == 0, stderr
    result = CliRunner().invoke(main, ["evaluate", "--run", str(iris_run), "--data", "-", "--json"],
                                input=source.read_text(), catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    from_stdin = json.loads(result.stdout)
    assert from_stdin.pop("source") == "-"
    expected = json.loads(from_file)
    del expected["source"]
    assert from_stdin == expected


# -- numeric data through the fast path (softreg.io.delimited_numbers), the text path from where it declines


def evaluated(run_dir, source, monkeypatch, fast, chunk_rows=7):
    """What `evaluate_run` reports of ``source`` (with --optimum), or the error it stops with; the
    warnings; and how many chunks the fast path read. ``fast`` False makes the fast path decline."""
    from softreg.commands import evaluate as command
    from softreg.commands import evaluated_data as reading
    from softreg.errors import DataError
    from softreg.io import delimited_numbers
    from softreg.io.delimited_numbers import NotNumeric

    numeric = []
    original = reading._numeric_chunk

    def counted(*args):
        numeric.append(original(*args))
        return numeric[-1]

    def declines(*args, **kwargs):
        raise NotNumeric

    with monkeypatch.context() as patch, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        patch.setattr(reading, "_numeric_chunk", counted)
        if not fast:
            patch.setattr(delimited_numbers, "read_layout", declines)
        try:
            result = command.evaluate_run(run_dir, data=str(source), optimum=True, chunk_rows=chunk_rows)
        except DataError as error:
            result = ("error", str(error))
    return result, [str(warning.message) for warning in caught], len(numeric)


def iris_columns(order, rows=None, edit=None):
    """data/iris.csv's rows (three times over: past the 100 rows the text path reads first) with
    its columns in ``order`` (an ``rid`` column numbers the rows); ``edit`` changes a row's cells."""
    lines = (REPO / "data" / "iris.csv").read_text().splitlines()
    names = [*lines[0].split(","), "rid"]
    table = [dict(zip(names, [*line.split(","), f"r{i}"], strict=True)) for i, line in enumerate(lines[1:] * 3)]
    if edit is not None:
        edit(table)
    return "\n".join([",".join(order), *(",".join(row[name] for name in order) for row in table)]) + "\n"


FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.mark.parametrize(
    ("case", "fast_chunks"),
    [
        ("label first, an id, the features out of order", 65),
        ("declined mid-way by a line of blanks", 17),
        ("text labels first, unnamed: the text path warns", 0),
    ],
)
def test_fast_path_evaluates_the_text_paths_metrics(iris_run, tmp_path, monkeypatch, case, fast_chunks):
    """Numeric data read through the fast path give exactly the metrics (and optimum accuracy) of the
    text path over many chunks; where the fast path declines mid-way the text path reads on from there;
    a file whose first column may hold the labels (the label unnamed) is the text path's, which warns."""
    order = ["species", "petal_width", "rid", "sepal_width", "petal_length", "sepal_length"]
    text = iris_columns(order)
    if case.startswith("declined"):
        lines = text.splitlines()
        text = "\n".join([*lines[:121], " , , ,,,", *lines[121:]]) + "\n"
    elif case.startswith("text labels"):
        text = iris_columns(["kind", *FEATURES, "count"], edit=lambda table: [
            row.update(kind=row["species"], count=str(i % 3)) for i, row in enumerate(table)])
    path = tmp_path / "d.csv"
    path.write_text(text)
    fast = evaluated(iris_run, path, monkeypatch, fast=True)
    slow = evaluated(iris_run, path, monkeypatch, fast=False)
    assert fast[2] == fast_chunks and slow[2] == 0
    assert fast[:2] == slow[:2]
    if case.startswith("text labels"):
        assert fast[0] == ("error", f"{path}: label(s) '0', '1', '2' are not classes of the model "
                           "(setosa, versicolor, virginica)")
        assert fast[1] == [f"{path}: data.label is unset, so the last column 'count' is the label, but the first "
                           "column 'kind' holds text labels; if that is the label, set data.label: kind"]
    else:
        assert fast[0]["n_samples"] == 450 and fast[1] == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda row: row.update(petal_length="oops"), "line 302, column 'petal_length': 'oops' is not a number"),
        (lambda row: row.update(sepal_width="1e308"), "line 302, column 'sepal_width': 1e+308 is too large to "
         "standardize with the model's mean and scale (the result overflows)"),
        (lambda row: row.update(species=" "), "line 302: empty label in column 'species'"),
        (lambda row: row.update(species="rose"), "label(s) 'rose' are not classes of the model "
         "(setosa, versicolor, virginica)"),
    ],
)
def test_a_bad_row_after_fast_chunks_stops_as_the_text_path_does(iris_run, tmp_path, monkeypatch, edit, message):
    """A row the fast path cannot read, or whose values overflow the standardizer, on line 302: the fast
    path reads the chunks before it, the text path reads on and names the line (and column) as it does
    reading the whole file; an unknown label is refused with the text path's message."""
    path = tmp_path / "d.csv"
    path.write_text(iris_columns([*FEATURES, "species"], edit=lambda table: edit(table[300])))
    fast = evaluated(iris_run, path, monkeypatch, fast=True, chunk_rows=16)
    slow = evaluated(iris_run, path, monkeypatch, fast=False, chunk_rows=16)
    assert fast == (("error", f"{path}: {message}"), [], 18)  # 18 chunks of 16 rows before line 302
    assert slow == (("error", f"{path}: {message}"), [], 0)
