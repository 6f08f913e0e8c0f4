"""scikit-learn hands parameters over as NumPy scalars (``np.arange``, ``np.int32``, ``np.float32``):
they are read as the Python numbers they hold, by the config's rules and by the estimator."""

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV

from softreg import SoftmaxRegression
from softreg.config import key_spec
from softreg.config.rules import boolean, byte_size, column_ref, number, plain


@pytest.mark.parametrize(
    "value, expected",
    [(np.int64(5), 5), (np.int32(-3), -3), (np.uint8(7), 7), (np.float32(0.5), 0.5), (np.float64(0.1), 0.1),
     (np.True_, True), (np.array(4), 4), ("5", "5"), (None, None)],
)
def test_plain_turns_numpy_scalars_into_python_ones(value, expected):
    """A NumPy scalar or 0-d array becomes the same Python value and type; other values stay."""
    result = plain(value)
    assert result == expected and type(result) is type(expected)


def test_rules_accept_numpy_numbers_wherever_python_numbers_are():
    """The rules behind optim.epochs, optim.batch_size, optim.lr, model.fit_intercept, data.label,
    data.memory_budget take NumPy scalars and return Python ones."""
    _, epochs, _ = key_spec("optim", "epochs")
    _, batch_size, _ = key_spec("optim", "batch_size")
    _, lr, _ = key_spec("optim", "lr")
    assert epochs(np.int64(5)) == 5 and type(epochs(np.int64(5))) is int
    assert batch_size(np.int32(16)) == 16 and type(batch_size(np.int32(16))) is int
    assert lr(np.float32(0.25)) == 0.25 and type(lr(np.float32(0.25))) is float
    assert boolean(np.False_) is False
    assert column_ref(np.int16(2)) == 2 and type(column_ref(np.int16(2))) is int
    assert byte_size(np.int64(2**30)) == 2**30


def test_numpy_values_are_still_checked():
    """A NumPy number out of range or not whole is refused with the same sentence as a Python one."""
    with pytest.raises(ValueError, match=r"^must be an integer, got 2\.5$"):
        number(1, integer=True)(np.float64(2.5))
    with pytest.raises(ValueError, match=r"^must be >= 1, got 0$"):
        number(1, integer=True)(np.int32(0))
    with pytest.raises(ValueError, match=r"^must be true or false, got 1$"):
        boolean(np.int64(1))


def test_grid_search_over_numpy_ranges():
    """GridSearchCV over np.arange epochs, np.int32 batch sizes and np.float32 rates fits; the best
    model is bit-identical to one given the same values as Python numbers."""
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    grid = {"epochs": np.arange(5, 25, 5), "batch_size": [np.int32(16)], "lr": [np.float32(0.05)],
            "validation_fraction": [np.float64(0.2)]}
    search = GridSearchCV(SoftmaxRegression(random_state=0, tol=None), grid, cv=3).fit(X, y)
    best = search.best_params_
    assert best["epochs"] in (5, 10, 15, 20)
    plain_model = SoftmaxRegression(
        random_state=0, epochs=int(best["epochs"]), batch_size=16, lr=float(np.float32(0.05)), validation_fraction=0.2,
        tol=None,
    ).fit(X, y)
    assert np.array_equal(search.best_estimator_.coef_, plain_model.coef_)
    assert np.array_equal(search.best_estimator_.intercept_, plain_model.intercept_)
