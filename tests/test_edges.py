"""Edge facts of the schedules and the metrics that mutation testing found unchecked (tests/MUTATION.md)."""

import numpy as np
import pytest

from softreg import evaluate
from softreg.config import load_config
from softreg.train import optim

# -- learning-rate schedules


def test_schedule_parameters_default_to_the_config_defaults(tmp_path):
    """learning_rate without step_size, gamma and decay uses the config's defaults (10, 0.1 and 1)."""
    path = tmp_path / "c.yaml"
    path.write_text("data: {source: 'builtin:iris'}\n")
    defaults = load_config(path).optim
    for schedule in ("step", "inverse_time"):
        for progress in (0.0, 9.5, 10.0, 11.0, 25.0):
            explicit = optim.learning_rate(
                schedule, 1.0, progress, 40, step_size=defaults.step_size, gamma=defaults.gamma, decay=defaults.decay
            )
            assert optim.learning_rate(schedule, 1.0, progress, 40) == explicit
    # by hand: step 1.0 * 0.1 ** floor(10 / 10) = 0.1; inverse_time 1.0 / (1 + 1.0 * 3) = 0.25
    assert optim.learning_rate("step", 1.0, 10.0, 40) == pytest.approx(0.1)
    assert optim.learning_rate("inverse_time", 1.0, 3.0, 40) == 0.25


def test_cosine_stays_at_zero_past_the_last_epoch():
    """Progress beyond total_epochs (a run trained further) keeps the cosine rate at 0, not rising again."""
    for progress in (10.0, 12.5, 15.0, 20.0):
        assert optim.learning_rate("cosine", 0.3, progress, 10) == pytest.approx(0.0, abs=1e-15)


def test_unknown_schedule_names_itself_and_the_choices():
    """An unknown schedule raises ValueError naming it and the known schedules."""
    with pytest.raises(ValueError) as error:
        optim.learning_rate("cyclic", 0.1, 1.0, 10)
    assert str(error.value) == "unknown schedule 'cyclic'; expected one of constant, step, cosine, inverse_time"


# -- calibration error


def test_ece_uses_the_number_of_bins_it_is_given():
    """Confidence 0.55 right and 0.95 wrong: 15 bins keep them apart, ECE = (0.45 + 0.95) / 2 = 0.7;
    2 bins put both in (0.5, 1], ECE = |1/2 - 0.75| = 0.25."""
    proba = np.array([[0.45, 0.55], [0.05, 0.95]])
    y = np.array([1, 0])
    assert evaluate.expected_calibration_error(y, proba) == pytest.approx(0.7, rel=1e-12)
    assert evaluate.expected_calibration_error(y, proba, n_bins=2) == pytest.approx(0.25, rel=1e-12)


# -- classification metrics


def test_a_class_neither_present_nor_predicted_keeps_its_row():
    """Class c is in no label and no prediction: per_class still lists every class in order (c with zeros),
    the confusion matrix is 4 x 4, and the macro averages are over a, b, d (hand-computed)."""
    classes = np.array(["a", "b", "c", "d"])
    y = np.array([0, 0, 1, 3, 3])
    predicted = np.array([0, 1, 1, 3, 0])
    proba = np.full((5, 4), 0.1)
    proba[np.arange(5), predicted] = 0.7
    metrics = evaluate.classification_metrics(y, proba, classes)
    # a: predicted on rows 0, 4 (row 0 right), true on rows 0, 1: precision 1/2, recall 1/2
    # b: predicted on rows 1, 2 (row 2 right), true on row 2: precision 1/2, recall 1, f1 2/3
    # d: predicted on row 3 (right), true on rows 3, 4: precision 1, recall 1/2, f1 2/3
    expected = {
        "a": (0.5, 0.5, 0.5, 2),
        "b": (0.5, 1.0, 2 / 3, 1),
        "c": (0.0, 0.0, 0.0, 0),
        "d": (1.0, 0.5, 2 / 3, 2),
    }
    assert list(metrics["per_class"]) == ["a", "b", "c", "d"]
    for name, values in expected.items():
        row = metrics["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(values)
    assert metrics["confusion_matrix"] == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 1]]
    assert metrics["macro_precision"] == pytest.approx(2 / 3)  # (1/2 + 1/2 + 1) / 3
    assert metrics["macro_recall"] == pytest.approx(2 / 3)  # (1/2 + 1 + 1/2) / 3


# -- the most confused pairs


def test_most_confused_lists_ten_pairs_by_default():
    """A confusion matrix with 20 distinct off-diagonal counts gives its 10 largest by default."""
    matrix = np.zeros((5, 5), dtype=int)
    off_diagonal = ~np.eye(5, dtype=bool)
    matrix[off_diagonal] = np.arange(1, 21)  # row-major: (0, 1) = 1, ..., (2, 3) = 11, ..., (4, 3) = 20
    pairs = evaluate.most_confused(matrix.tolist(), list("abcde"))
    assert [count for _, _, count in pairs] == list(range(20, 10, -1))
    assert pairs[0] == ("e", "d", 20) and pairs[-1] == ("c", "d", 11)


def test_most_confused_breaks_ties_by_position_from_the_last_cell():
    """Equal counts come out in a fixed order, the last cell (row-major) first, whatever the matrix size."""
    n_classes = 26
    matrix = np.ones((n_classes, n_classes), dtype=int)
    names = [chr(ord("a") + index) for index in range(n_classes)]
    pairs = evaluate.most_confused(matrix.tolist(), names, top=5)
    assert pairs == [("z", "y", 1), ("z", "x", 1), ("z", "w", 1), ("z", "v", 1), ("z", "u", 1)]
