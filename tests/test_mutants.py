"""Facts of the core modules that the mutation run (tests/MUTATION.md) found unchecked.

Each test states one fact, against the math page (`softreg.softmax`), a hand computation or
a documented rule, never a detail of how the code computes it.
"""

import dataclasses
import math
import time

import numpy as np
import pytest
import scipy.sparse as sp

from softreg import kernels, softmax
from softreg.errors import DivergedError, Interrupted
from softreg.train import (
    ArrayData,
    Settings,
    TrainingState,
    diverged,
    evaluate_objective,
    fit,
    passes,
    stable_learning_rate,
    validation,
)
from softreg.train.measures import _exploded
from softreg.train.optim import Schedule
from softreg.train.state import (
    CHUNK_OVERHEAD,
    EPOCH_ARITHMETIC,
    EVAL_BUDGET,
    STEP_OVERHEAD,
    evaluation_cost,
    evaluation_interval,
)


def problem(n_samples=60, n_features=4, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    y = (X @ rng.normal(size=(n_classes, n_features)).T + rng.gumbel(size=(n_samples, n_classes))).argmax(axis=1)
    return X, y


def sparse_rows(n_samples=40, n_features=4, seed=0):
    """Rows with many zeros (stored sparse, as scaled data is) and a centre to subtract."""
    X, y = problem(n_samples, n_features, seed=seed)
    rng = np.random.default_rng(seed + 1)
    X[rng.random(X.shape) < 0.5] = 0.0
    return X, y, rng.normal(size=n_features)


# -- the math page


def test_cross_entropy_and_predict_proba_of_a_hand_computed_model():
    """Logits (ln 3, ln 2) and (0, ln 2): probabilities (3/5, 2/5) and (1/3, 2/3); with labels 0 and 1
    the mean cross-entropy is -(ln 3/5 + ln 2/3) / 2."""
    coef, intercept = np.eye(2), np.array([0.0, math.log(2.0)])
    X, y = np.array([[math.log(3.0), 0.0], [0.0, 0.0]]), np.array([0, 1])
    np.testing.assert_allclose(softmax.predict_proba(coef, intercept, X), [[0.6, 0.4], [1 / 3, 2 / 3]], rtol=1e-15)
    expected = -(math.log(0.6) + math.log(2 / 3)) / 2
    assert softmax.cross_entropy(coef, intercept, X, y) == pytest.approx(expected, rel=1e-15)


def test_gradient_norm_counts_coef_and_intercept_together():
    """||(grad W, grad b)|| is the Euclidean norm of all entries: sqrt(1 + 4 + 4) = 3 and sqrt(9 + 16) = 5."""
    assert softmax.gradient_norm(np.array([[1.0, 2.0]]), np.array([2.0])) == 3.0
    assert softmax.gradient_norm(np.array([[3.0]]), np.array([4.0])) == 5.0


# -- the kernels


def test_float32_kernels_leave_a_float32_gradient():
    """The dtype of X is the dtype of the computation: a float32 workspace holds a float32 gradient, equal to
    the float64 page's to float32 rounding."""
    X, y = problem(n_samples=20)
    coef, intercept = 0.1 * np.arange(12.0).reshape(3, 4) - 0.5, np.array([0.1, -0.2, 0.0])
    work = kernels.Workspace(3, 4, 20, np.float32)
    kernels.batch_loss_gradient(
        coef.astype(np.float32), intercept.astype(np.float32), X.astype(np.float32), y, 0.1, work
    )
    assert work.gradient.dtype == work.grad_coef.dtype == work.grad_intercept.dtype == np.float32
    _, _, grad_coef, grad_intercept = softmax.loss_gradient(coef, intercept, X, y, 0.1)
    np.testing.assert_allclose(work.grad_coef, grad_coef, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(work.grad_intercept, grad_intercept, rtol=1e-5, atol=1e-6)


def test_svrg_in_a_workspace_for_more_models_gives_the_same_estimate():
    """variance_reduced_gradient needs a workspace of at least two models; one of three gives the same loss
    and the same estimate, to rounding."""
    X, y = problem(n_samples=24)
    coef, intercept = 0.2 * np.arange(12.0).reshape(3, 4) - 1.0, np.array([0.3, 0.0, -0.3])
    _, _, grad_coef, grad_intercept = softmax.loss_gradient(-coef, intercept, X, y, 0.0)
    snapshot = kernels.Snapshot(-coef, intercept, grad_coef, grad_intercept)
    results = []
    for n_models in (2, 3):
        work = kernels.Workspace(3, 4, 24, np.float64, n_models=n_models)
        loss = kernels.variance_reduced_gradient(coef, intercept, snapshot, X[:16], y[:16], 0.1, work)
        results.append((loss, work.gradient.copy()))
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-12)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-12, atol=1e-15)


def test_weighted_svrg_returns_the_weighted_batch_loss():
    """With relative weights w the SVRG step returns the batch loss sum w_i l_i / n, as the plain step does
    (the page's weighted mean times the batch's mean weight)."""
    X, y = problem(n_samples=16)
    coef, intercept = 0.2 * np.arange(12.0).reshape(3, 4) - 1.0, np.array([0.3, 0.0, -0.3])
    weight = np.linspace(0.2, 2.0, 16)
    snapshot = kernels.Snapshot(np.zeros((3, 4)), np.zeros(3), np.zeros((3, 4)), np.zeros(3))
    work = kernels.Workspace(3, 4, 16, np.float64, n_models=2)
    loss = kernels.variance_reduced_gradient(coef, intercept, snapshot, X, y, 0.0, work, weight)
    page_loss = softmax.loss_gradient(coef, intercept, X, y, 0.0, weight)[0]
    assert loss == pytest.approx(weight.mean() * page_loss, rel=1e-12)


def test_chunk_rows_keep_the_logits_within_an_eighth_of_X_and_a_batch_at_least():
    """rows <= n; rows >= min(n, at_least); rows <= max(at_least, at_most); and beyond at_least the
    (n_classes, rows) logits hold at most an eighth of X's n * d numbers."""
    for n_samples in (1, 100, 5_000, 16_000, 1_000_000):
        for n_features in (1, 16, 784):
            for n_classes in (2, 10, 26):
                rows = passes.full_pass_rows(n_samples, n_features, n_classes, at_least=64, at_most=4096)
                assert min(n_samples, 64) <= rows <= n_samples and rows <= 4096
                if rows > 64:
                    assert 8 * rows * n_classes <= n_samples * n_features


# -- the data


def test_array_data_keeps_weights_and_centre_in_the_dtype_of_X():
    """float32 X: relative weights (mean 1) and the centre are float32 too; a zero centre is no centre."""
    X = np.ones((4, 2), dtype=np.float32)
    data = ArrayData(X, np.zeros(4, int), [1, 2, 3, 6], center=np.array([0.5, -1.0]))
    assert data.sample_weight.dtype == np.float32 and data.center.dtype == np.float32
    np.testing.assert_allclose(data.sample_weight, [1 / 3, 2 / 3, 1, 2], rtol=1e-7)
    np.testing.assert_array_equal(data.center, [0.5, -1.0])
    assert ArrayData(X, np.zeros(4, int), center=np.zeros(2)).center is None
    assert ArrayData(X, np.zeros(4, int)).center is None


def test_one_row_or_no_rows_have_no_weights_to_keep():
    """A single weight, or none at all, is trivially all-equal: ArrayData keeps None."""
    assert ArrayData(np.ones((1, 2)), np.zeros(1, int), np.array([3.0])).sample_weight is None
    assert ArrayData(np.ones((0, 2)), np.zeros(0, int), np.zeros(0)).sample_weight is None


def test_minibatches_pair_every_row_with_its_label_and_weight():
    """An epoch's batches hold each row once, with its own label and relative weight."""
    n = 23
    X = np.column_stack([np.arange(n, dtype=float), np.ones(n)])  # column 0 names the row
    y, weight = np.arange(n) % 3, np.linspace(0.5, 3.0, n)
    data = ArrayData(X, y, weight)
    seen = []
    for X_batch, y_batch, w_batch in data.minibatches(5, np.random.default_rng(0)):
        rows = X_batch[:, 0].astype(int)
        np.testing.assert_array_equal(y_batch, y[rows])
        np.testing.assert_array_equal(w_batch, data.sample_weight[rows])
        seen.extend(rows)
    assert sorted(seen) == list(range(n))


# -- the training loop against the page


def page_gradient_descent(X, y, n_classes, settings, weight=None, epochs=3):
    """Momentum (or Nesterov) steps on the page's grad J, by hand, in the convention of `optim.SGD`."""
    coef, intercept = np.zeros((n_classes, X.shape[1])), np.zeros(n_classes)
    velocity = [np.zeros_like(coef), np.zeros_like(intercept)]
    m = settings.momentum
    for _ in range(epochs):
        _, _, grad_coef, grad_intercept = softmax.loss_gradient(coef, intercept, X, y, settings.weight_decay, weight)
        if not settings.fit_intercept:
            grad_intercept = np.zeros(n_classes)
        for param, grad, v in zip((coef, intercept), (grad_coef, grad_intercept), velocity, strict=True):
            v *= m
            v += grad
            param -= settings.lr * (grad + m * v if settings.nesterov else v)
    return coef, intercept


CASES = {
    "heavy ball": {},
    "nesterov": {"nesterov": True},
    "no intercept": {"fit_intercept": False},
    "weighted": {},
    "centred sparse": {},
}


@pytest.mark.parametrize("variance_reduction", ["none", "svrg"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_full_batch_training_is_gradient_descent_on_the_page(variance_reduction, case):
    """With one batch of all rows per epoch, fit's weights after 3 epochs are 3 momentum steps on the
    page's grad J of the rows it was given (weighted, or X - centre), and the J and ||grad J|| it
    reports are the page's there (SVRG's full-batch estimate is grad J itself)."""
    X, y, center = sparse_rows()
    weight = np.linspace(0.2, 3.0, len(y)) if case == "weighted" else None
    settings = Settings(
        weight_decay=0.05, lr=0.5, batch_size=len(y), epochs=3, momentum=0.5, variance_reduction=variance_reduction,
        **CASES[case],
    )
    if case == "centred sparse":
        data, rows = ArrayData(sp.csr_matrix(X), y, center=center), X - center
    else:
        data, rows = ArrayData(X, y, weight), X
    result = fit(data, 3, settings, np.random.default_rng(0))
    coef, intercept = page_gradient_descent(rows, y, 3, settings, weight)
    np.testing.assert_allclose(result.coef, coef, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.intercept, intercept, rtol=1e-10, atol=1e-12)
    _, objective, grad_coef, grad_intercept = softmax.loss_gradient(coef, intercept, rows, y, 0.05, weight)
    if not settings.fit_intercept:
        grad_intercept = grad_intercept[:0]
    assert result.objective == pytest.approx(objective, rel=1e-10)
    assert result.grad_norm == pytest.approx(softmax.gradient_norm(grad_coef, grad_intercept), rel=1e-9)


class InOrder:
    """A `TrainingData` of its own: the protocol's members only (a ``center`` only when one is given), and
    the minibatches in row order, so that a test can follow every step."""

    def __init__(self, X, y, weight=None, center=None):
        self.data = ArrayData(X, y, weight, center)
        if center is not None:
            self.center = self.data.center

    n_samples = property(lambda self: self.data.n_samples)
    n_features = property(lambda self: self.data.n_features)
    dtype = property(lambda self: self.data.dtype)

    def minibatches(self, batch_size, rng):
        weight = self.data.sample_weight
        for start in range(0, self.n_samples, batch_size):
            rows = slice(start, start + batch_size)
            yield self.data.X[rows], self.data.y[rows], None if weight is None else weight[rows]

    def chunks(self, rows):
        return self.data.chunks(rows)


def page_batch_gradient(coef, intercept, X, y, weight, rows):
    """grad of sum_{i in batch} w_i l_i / |batch| (w relative, mean 1 over the data) from the page."""
    if weight is None:
        return softmax.loss_gradient(coef, intercept, X[rows], y[rows], 0.0)[2:]
    _, _, grad_coef, grad_intercept = softmax.loss_gradient(coef, intercept, X[rows], y[rows], 0.0, weight[rows])
    scale = weight[rows].mean()
    return scale * grad_coef, scale * grad_intercept


@pytest.mark.parametrize("case", ["plain", "weighted", "centred sparse"])
def test_svrg_steps_are_the_svrg_formula_on_the_page(case):
    """Two batches an epoch in a known order: epoch 1 takes plain steps, later epochs the SVRG estimate
    grad L_B(w) - grad L_B(w~) + grad L(w~) + lambda w at the snapshot w~ of the previous epoch's end, each
    term the page's on the rows fit was given (weighted, or X - centre); fit ends at the hand-made weights."""
    X, y, center = sparse_rows()
    weight = np.linspace(0.2, 3.0, len(y)) if case == "weighted" else None
    relative = None if weight is None else weight / weight.mean()
    if case == "centred sparse":
        data, rows_of = InOrder(sp.csr_matrix(X), y, center=center), X - center
    else:
        data, rows_of = InOrder(X, y, weight), X
    settings = Settings(weight_decay=0.05, lr=0.3, batch_size=20, epochs=3, momentum=0.5, variance_reduction="svrg")
    result = fit(data, 3, settings, np.random.default_rng(0))
    coef, intercept = np.zeros((3, 4)), np.zeros(3)
    velocity = [np.zeros_like(coef), np.zeros_like(intercept)]
    snapshot = None
    for _ in range(3):
        for batch in (slice(0, 20), slice(20, 40)):
            gradient = list(page_batch_gradient(coef, intercept, rows_of, y, relative, batch))
            if snapshot is not None:
                there = page_batch_gradient(*snapshot[:2], rows_of, y, relative, batch)
                gradient = [g - t + full for g, t, full in zip(gradient, there, snapshot[2:], strict=True)]
            gradient[0] = gradient[0] + 0.05 * coef
            for param, grad, v in zip((coef, intercept), gradient, velocity, strict=True):
                v *= 0.5
                v += grad
                param -= 0.3 * v
        full = softmax.loss_gradient(coef, intercept, rows_of, y, 0.0, weight)
        snapshot = (coef.copy(), intercept.copy(), full[2], full[3])
    np.testing.assert_allclose(result.coef, coef, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.intercept, intercept, rtol=1e-10, atol=1e-12)


def test_fit_takes_plain_arrays_as_it_takes_array_data():
    """fit((X, y), ...) is fit(ArrayData(X, y), ...), bit for bit."""
    X, y = problem()
    settings = Settings(epochs=3, batch_size=16)
    from_tuple = fit((X, y), 3, settings, np.random.default_rng(1))
    from_data = fit(ArrayData(X, y), 3, settings, np.random.default_rng(1))
    assert from_tuple.coef.tobytes() == from_data.coef.tobytes()
    assert from_tuple.intercept.tobytes() == from_data.intercept.tobytes()


def test_a_zero_rate_keeps_the_zero_start_whose_loss_is_log_k():
    """lr = 0: the weights stay 0, where every class has probability 1/K: each epoch's training loss, J
    and the validation loss are log K."""
    X, y = problem()
    settings = Settings(lr=0.0, epochs=2, batch_size=16, eval_every=1)
    result = fit(ArrayData(X, y), 3, settings, np.random.default_rng(0), val=ArrayData(X[:10], y[:10]))
    assert not result.coef.any() and not result.intercept.any()
    for record in result.history:
        assert record.train_loss == pytest.approx(math.log(3), rel=1e-14)
        assert record.objective == pytest.approx(math.log(3), rel=1e-14)
        assert record.val_loss == pytest.approx(math.log(3), rel=1e-14)


def test_on_step_sees_the_live_weights_after_every_step():
    """on_step is called once per step (epochs * ceil(n / batch)) with coef and intercept; after the last
    step they are the returned model."""
    X, y = problem()
    seen = []
    result = fit(
        ArrayData(X, y), 3, Settings(epochs=2, batch_size=16), np.random.default_rng(0),
        on_step=lambda coef, intercept: seen.append((coef.copy(), intercept.copy())),
    )
    assert len(seen) == 2 * 4
    np.testing.assert_array_equal(seen[-1][0], result.coef)
    np.testing.assert_array_equal(seen[-1][1], result.intercept)


def test_objective_is_logged_on_the_first_every_eval_every_th_and_the_last_epoch():
    """eval_every = 3 over 7 epochs: J and ||grad J|| in epochs 1, 3, 6 and 7 only, each the page's value
    at the weights that epoch ended with."""
    X, y = problem()
    settings = Settings(epochs=7, batch_size=16, eval_every=3)
    states = []
    result = fit(ArrayData(X, y), 3, settings, np.random.default_rng(0), on_checkpoint=states.append)
    assert [record.epoch for record in result.history if record.objective is not None] == [1, 3, 6, 7]
    for record in result.history:
        if record.objective is not None:
            weights = states[record.epoch - 1].weights
            coef, intercept = weights[:12].reshape(3, 4), weights[12:]
            _, objective, grad_coef, grad_intercept = softmax.loss_gradient(coef, intercept, X, y, 1e-4)
            assert record.objective == pytest.approx(objective, rel=1e-12)
            assert record.grad_norm == pytest.approx(softmax.gradient_norm(grad_coef, grad_intercept), rel=1e-9)


# -- early stopping through fit


def stopping_run():
    """Validation labels shifted by one class: the validation loss rises as training fits the training labels."""
    X, y = problem(n_samples=80)
    settings = Settings(lr=0.5, batch_size=16, epochs=30, patience=3, eval_every=100)
    train, val = ArrayData(X, y), ArrayData(X, (y + 1) % 3)
    return train, val, settings


def test_early_stopping_returns_the_best_epoch_s_weights_and_reports_it():
    """fit stops `patience` epochs after the epoch of the least validation loss, says so, returns that
    epoch's weights with J there, yet keeps J at the last weights in the last history row; the finished
    state holds the same summary, and the seconds are positive and within the call's wall time."""
    train, val, settings = stopping_run()
    states = []
    started = time.perf_counter()
    result = fit(train, 3, settings, np.random.default_rng(0), val=val, on_checkpoint=states.append)
    elapsed = time.perf_counter() - started
    val_losses = [record.val_loss for record in result.history]
    best = int(np.argmin(val_losses)) + 1
    assert result.stopped_early and result.best_epoch == best
    assert len(result.history) == best + settings.patience < settings.epochs
    best_weights = states[best - 1].weights
    np.testing.assert_array_equal(result.coef, best_weights[:12].reshape(3, 4))
    np.testing.assert_array_equal(result.intercept, best_weights[12:])
    assert result.objective == pytest.approx(evaluate_objective(result.coef, result.intercept, train, settings)[0])
    last = result.state.weights  # the last weights, where a longer run would continue
    assert result.history[-1].objective == pytest.approx(
        evaluate_objective(last[:12].reshape(3, 4), last[12:], train, settings)[0], rel=1e-12
    )
    assert result.state.finished and result.state.summary == result.summary()
    assert result.summary()["epochs_run"] == len(result.history) and result.summary()["best_epoch"] == best
    assert 0.0 < result.seconds <= elapsed


def test_a_min_delta_larger_than_any_gain_stops_patience_epochs_after_the_first():
    """No later validation loss is below the first minus min_delta = 1e9: the best epoch is 1 and training
    stops at epoch 1 + patience, though the validation loss keeps falling."""
    X, y = problem(n_samples=80)
    data = ArrayData(X, y)
    settings = Settings(lr=0.02, batch_size=16, epochs=30, patience=2, min_delta=1e9)
    result = fit(data, 3, settings, np.random.default_rng(0), val=data)
    assert result.best_epoch == 1 and len(result.history) == 3 and result.stopped_early
    val_losses = [record.val_loss for record in result.history]
    assert val_losses == sorted(val_losses, reverse=True)


def test_an_unfinished_state_has_no_result():
    """TrainingState.result() of a state that is not finished raises ValueError saying so."""
    state = TrainingState(
        epoch=1, n_classes=2, n_features=1, weights=np.zeros(4), velocity=[], rng_state={}, history=[]
    )
    with pytest.raises(ValueError, match="^the training state is not finished$"):
        state.result()


# -- resuming


def test_svrg_resumed_after_its_first_epoch_equals_the_uninterrupted_run():
    """Stopped after epoch 1, SVRG's snapshot is retaken from the saved weights: the resumed run ends with
    the uninterrupted run's weights, bit for bit."""
    X, y = problem()
    settings = Settings(epochs=3, batch_size=16, variance_reduction="svrg", lr=0.05)
    reference = fit(ArrayData(X, y), 3, settings, np.random.default_rng(7))

    def stop_in_epoch_2(record, total):
        if record.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as caught:
        fit(ArrayData(X, y), 3, settings, np.random.default_rng(7), on_epoch=stop_in_epoch_2)
    assert caught.value.state.epoch == 1
    resumed = fit(ArrayData(X, y), 3, settings, np.random.default_rng(7), start=caught.value.state)
    assert resumed.coef.tobytes() == reference.coef.tobytes()
    assert resumed.intercept.tobytes() == reference.intercept.tobytes()


def test_resuming_an_early_stopped_run_trains_no_further():
    """The finished state of a run that stopped early, resumed with the same settings: no epoch more, the
    same best weights."""
    train, val, settings = stopping_run()
    result = fit(train, 3, settings, np.random.default_rng(0), val=val)
    again = fit(train, 3, settings, np.random.default_rng(0), val=val, start=result.state)
    assert len(again.history) == len(result.history) and again.stopped_early
    assert again.coef.tobytes() == result.coef.tobytes()


def test_resuming_without_early_stopping_ignores_the_saved_stopper():
    """A state saved with early stopping, continued without it: training goes on from the last weights,
    as if the stopper had never been there."""
    X, y = problem()
    train, val = ArrayData(X, y), ArrayData(X[:20], y[:20])
    settings = Settings(epochs=4, batch_size=16, patience=100)
    first = fit(train, 3, settings, np.random.default_rng(7), val=val)
    longer = dataclasses.replace(settings, epochs=8, patience=None)
    continued = fit(train, 3, longer, np.random.default_rng(7), val=val, start=first.state)
    straight = fit(train, 3, longer, np.random.default_rng(7), val=val)
    assert continued.coef.tobytes() == straight.coef.tobytes() and continued.best_epoch is None


def test_a_checkpoint_of_another_shape_is_refused_naming_both_shapes():
    """Resuming a 3-class model on 4 features with data of 3 features: ValueError with both shapes."""
    X, y = problem()
    state = fit(ArrayData(X, y), 3, Settings(epochs=1), np.random.default_rng(0)).state
    with pytest.raises(ValueError, match=r"checkpoint weights have shape \(15,\), the model needs \(12,\)"):
        fit(ArrayData(X[:, :3], y), 3, Settings(epochs=2), np.random.default_rng(0), start=state)


# -- validation and the objective


def test_validation_is_the_mean_loss_and_accuracy_in_any_chunks():
    """coef = I, b = 0 on rows (2, 0), (0, 1), (1, 3) with labels 0, 0, 1: losses ln(1 + e^-2), ln(1 + e),
    ln(1 + e^-2), two of three right; weights (1, 3, 2) give the weighted means; chunks of 1, 2 or all rows agree."""
    X, y, coef, intercept = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 3.0]]), np.array([0, 0, 1]), np.eye(2), np.zeros(2)
    losses = np.log1p(np.exp([-2.0, 1.0, -2.0]))
    weight = np.array([1.0, 3.0, 2.0])
    for rows in (1, 2, 8192):
        loss, accuracy = validation(coef, intercept, ArrayData(X, y), rows=rows)
        assert loss == pytest.approx(losses.mean(), rel=1e-14) and accuracy == pytest.approx(2 / 3, rel=1e-15)
        loss, accuracy = validation(coef, intercept, ArrayData(X, y, weight), rows=rows)
        assert loss == pytest.approx(np.dot(weight, losses) / 6, rel=1e-14) and accuracy == pytest.approx(0.5)


def test_validation_and_objective_of_centred_sparse_rows_are_those_of_the_dense_rows():
    """Sparse X with a centre c: validation loss and accuracy, J and ||grad J|| equal the dense rows X - c's."""
    X, y, center = sparse_rows()
    coef, intercept = 0.3 * np.arange(12.0).reshape(3, 4) - 1.5, np.array([0.2, -0.1, 0.0])
    centred, dense = ArrayData(sp.csr_matrix(X), y, center=center), ArrayData(X - center, y)
    for got, expected in zip(validation(coef, intercept, centred), validation(coef, intercept, dense), strict=True):
        assert got == pytest.approx(expected, rel=1e-12)
    settings = Settings(weight_decay=0.1)
    got = evaluate_objective(coef, intercept, centred, settings)
    np.testing.assert_allclose(got, evaluate_objective(coef, intercept, dense, settings), rtol=1e-12)


# -- divergence


def test_stable_learning_rate_is_half_the_heavy_ball_bound_by_hand():
    """(1 + momentum) / (lambda + max ||x_i - c||^2 / 2): rows (3, 4), (1, 0) give 1.9 / (0.1 + 12.5), dense or
    sparse; centred at (1, 1) 1.9 / (0.1 + 6.5); rows of norm below 1, (0.3, 0.4) and (0, 0.5), 1.9 / 0.225."""
    X, y = np.array([[3.0, 4.0], [1.0, 0.0]]), np.array([0, 1])
    assert stable_learning_rate(ArrayData(X, y), 0.1, 0.9) == pytest.approx(1.9 / 12.6, rel=1e-15)
    assert stable_learning_rate(ArrayData(sp.csr_matrix(X), y), 0.1, 0.9) == pytest.approx(1.9 / 12.6, rel=1e-15)
    centred = ArrayData(sp.csr_matrix(X), y, center=np.array([1.0, 1.0]))
    assert stable_learning_rate(centred, 0.1, 0.9) == pytest.approx(1.9 / 6.6, rel=1e-15)
    small = np.array([[0.3, 0.4], [0.0, 0.5]])
    assert stable_learning_rate(ArrayData(small, y), 0.1, 0.9) == pytest.approx(1.9 / 0.225, rel=1e-14)
    assert stable_learning_rate(ArrayData(sp.csr_matrix(small), y), 0.1, 0.9) == pytest.approx(1.9 / 0.225, rel=1e-14)


def test_a_divergence_suggests_the_smaller_of_a_tenth_of_the_rate_and_the_stable_rate():
    """Stable rate 1.9 / 12.6 ~ 0.15 here: from lr 1000 the advice is 0.15, from lr 0.15 it is a tenth, 0.015."""
    data = ArrayData(np.array([[3.0, 4.0], [1.0, 0.0]]), np.array([0, 1]))
    stable = 1.9 / 12.6
    for lr, advice in ((1000.0, "0.15"), (stable, "0.015")):
        error = diverged(3, data, Settings(lr=lr, weight_decay=0.1, momentum=0.9))
        assert error.epoch == 3 and str(error).endswith(f"e.g. {advice}.")


def test_weights_that_overflow_within_an_epoch_stop_it_with_diverged_error():
    """Two copies of x = 1 with labels 0 and 1, one row per step, lr 1e308: the first step puts the logit gap
    at 2e308 = inf, the second row's loss is infinite, and epoch 1 raises DivergedError advising the
    stable rate 1 / (1/2) = 2."""
    data = ArrayData(np.array([[1.0], [1.0]]), np.array([0, 1]))
    settings = Settings(lr=1e308, batch_size=1, momentum=0.0, weight_decay=0.0)
    with pytest.raises(DivergedError) as caught:
        fit(data, 2, settings, np.random.default_rng(0))
    assert caught.value.epoch == 1 and str(caught.value).endswith("e.g. 2.")


def test_a_loss_that_doubles_from_the_first_epoch_is_no_explosion():
    """Same two rows, lr 500: each step flips the logit gap between +-1000, so the first epoch's loss is
    (ln 2 + 1000) / 2 and a later one 1000, above 1000 ln 2 but far below 1000 times the first: no divergence."""
    data = ArrayData(np.array([[1.0], [1.0]]), np.array([0, 1]))
    settings = Settings(lr=500.0, batch_size=1, epochs=4, momentum=0.0, weight_decay=0.0)
    later = []
    for seed in range(3):
        history = fit(data, 2, settings, np.random.default_rng(seed)).history
        assert history[0].train_loss == pytest.approx((math.log(2) + 1000) / 2)
        later.extend(record.train_loss for record in history[1:])
    assert max(later) == pytest.approx(1000.0)  # the case this test is about did occur


def test_the_first_epoch_of_two_classes_is_measured_against_1000_ln_2():
    """Without a history the reference loss is log K even when it is below 1: 800 > 1000 ln 2 has exploded."""
    assert _exploded(800.0, [], 2)
    assert not _exploded(600.0, [], 2)


def test_a_loss_of_exactly_the_factor_times_the_reference_has_not_exploded():
    """The rule is "above" EXPLOSION_FACTOR times the first epoch's loss: exactly 1000 * 2.0 is not."""
    from softreg.train import EpochRecord

    assert not _exploded(2000.0, [EpochRecord(epoch=1, lr=1.0, train_loss=2.0)], 3)


# -- the schedules


def test_schedule_passes_its_own_step_size_gamma_and_decay():
    """step_size 3, gamma 0.5: after 7 epochs 0.5 ** 2 = 0.25; decay 0.5 from 2.0: after 6 epochs 2 / (1 + 3)."""
    assert Schedule("step", 1.0, 40, 5, step_size=3, gamma=0.5).at(7.0) == 0.25
    assert Schedule("inverse_time", 2.0, 40, 5, decay=0.5).at(6.0) == 0.5


def test_rate_of_a_step_is_the_schedule_at_its_progress():
    """Step 2 of 4 in epoch 3 is at progress 2.5: inverse_time gives 1 / (1 + 2.5)."""
    assert Schedule("inverse_time", 1.0, 10, 4).rate(3, 2) == pytest.approx(1 / 3.5, rel=1e-15)


def test_with_base_lr_scales_every_rate_and_keeps_the_rest():
    """with_base_lr(2 lr) doubles every step's rate and changes nothing else."""
    schedule = Schedule("cosine", 0.3, 10, 4)
    doubled = schedule.with_base_lr(0.6)
    assert doubled == dataclasses.replace(schedule, base_lr=0.6)
    for epoch, step in ((1, 0), (4, 3), (10, 2)):
        assert doubled.rate(epoch, step) == pytest.approx(2 * schedule.rate(epoch, step), rel=1e-15)


def test_settings_schedule_has_ceil_n_over_batch_steps_and_the_settings_parameters():
    """100 rows in batches of 32 are 4 steps an epoch: inverse_time with decay 2 is 1 / (1 + 2 * 0.5) at
    step 2 of epoch 1; step with step_size 2, gamma 0.5 is 0.5 from epoch 3 on."""
    inverse = Settings(schedule="inverse_time", lr=1.0, decay=2.0, batch_size=32).schedule_for(100)
    assert inverse.rate(1, 2) == pytest.approx(0.5, rel=1e-15)
    step = Settings(schedule="step", lr=1.0, step_size=2, gamma=0.5, decay=3.0, batch_size=32).schedule_for(100)
    assert step.rate(2, 3) == 1.0 and step.rate(3, 0) == 0.5


# -- the evaluation schedule's cost model


@dataclasses.dataclass
class RecordingData(ArrayData):
    """ArrayData that records the rows per chunk each full pass asks for."""

    asked: list = dataclasses.field(default_factory=list)

    def chunks(self, rows):
        self.asked.append(rows)
        return super().chunks(rows)


@pytest.mark.parametrize("variance_reduction", ["none", "svrg"])
@pytest.mark.parametrize(("n", "d", "k", "batch"), [(513, 2, 3, 16), (900, 2, 3, 300)])
def test_the_cost_model_counts_the_chunks_fit_reads(variance_reduction, n, d, k, batch):
    """evaluation_cost is (c CHUNK_OVERHEAD + n d K) / (s STEP_OVERHEAD + EPOCH_ARITHMETIC n d K) with s =
    ceil(n / batch) steps and c the number of chunks fit's full passes really read."""
    X, y = problem(n_samples=n, n_features=d, n_classes=k)
    data = RecordingData(X, y)
    fit(data, k, Settings(epochs=2, batch_size=batch, eval_every=1, variance_reduction=variance_reduction),
        np.random.default_rng(0))
    assert len(set(data.asked)) == 1
    chunks, steps, arithmetic = math.ceil(n / data.asked[0]), math.ceil(n / batch), n * d * k
    expected = (chunks * CHUNK_OVERHEAD + arithmetic) / (steps * STEP_OVERHEAD + EPOCH_ARITHMETIC * arithmetic)
    assert evaluation_cost(n, d, k, batch) == pytest.approx(expected, rel=1e-15)


def test_the_default_interval_is_the_smallest_within_the_budget_for_every_run_length():
    """For every run length E up to 400: evaluations every m = evaluation_interval epochs plus the last fit in
    EVAL_BUDGET of training whenever m < E, and every m - 1 epochs would not."""
    n, d, k, batch = 150, 4, 3, 16
    cost = evaluation_cost(n, d, k, batch)
    for epochs in range(1, 401):
        interval = evaluation_interval(n, d, k, batch, epochs)
        assert 1 <= interval <= epochs
        if interval < epochs:
            assert (epochs / interval + 1) * cost <= EVAL_BUDGET * epochs * (1 + 1e-12)
        if interval > 1:
            assert (epochs / (interval - 1) + 1) * cost > EVAL_BUDGET * epochs
