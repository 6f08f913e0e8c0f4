"""Hand-computed oracles: each expected value is worked out in the test, not taken from the code.

Momentum and Nesterov steps, the epoch at which early stopping stops, which rows the splits put
where and what the standardizer is fitted on, and the calibration bins of confidences that fall
exactly on bin edges.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.special import softmax as scipy_softmax

from softreg import evaluate
from softreg.config import load_config
from softreg.prepare import data
from softreg.train import optim

# -- SGD with momentum, PyTorch's convention: v <- m v + g; heavy ball w <- w - lr v;
#    Nesterov w <- w - lr (g + m v). Two parameters, two steps, momentum 0.9, lr 0.1.
#    The gradients are given, not computed, so the arithmetic stays on paper.

MOMENTUM, LR = 0.9, 0.1
GRADIENTS = [  # (gradient of param a, gradient of param b) at steps 1 and 2
    (np.array([2.0, -4.0]), np.array([1.0])),
    (np.array([-1.0, 3.0]), np.array([0.5])),
]


def two_steps(momentum, nesterov):
    params = [np.array([1.0, 0.0]), np.array([-2.0])]
    sgd = optim.SGD(momentum=momentum, nesterov=nesterov)
    for grads in GRADIENTS:
        sgd.step(params, grads, LR)
    return params, sgd


def test_two_heavy_ball_steps_match_the_hand_computed_values():
    """Heavy ball, m=0.9, lr=0.1: v1 = g1, w1 = w0 - lr g1; v2 = m v1 + g2, w2 = w1 - lr v2 (worked out by hand)."""
    # a[0]: w0 = 1,   g1 = 2,  g2 = -1: v1 = 2,    w1 = 1 - 0.2 = 0.8;    v2 = 1.8 - 1 = 0.8,  w2 = 0.8 - 0.08 = 0.72
    # a[1]: w0 = 0,   g1 = -4, g2 = 3:  v1 = -4,   w1 = 0 + 0.4 = 0.4;    v2 = -3.6 + 3 = -0.6, w2 = 0.4 + 0.06 = 0.46
    # b[0]: w0 = -2,  g1 = 1,  g2 = .5: v1 = 1,    w1 = -2 - 0.1 = -2.1;  v2 = 0.9 + 0.5 = 1.4, w2 = -2.1 - 0.14 = -2.24
    params, sgd = two_steps(MOMENTUM, nesterov=False)
    np.testing.assert_allclose(params[0], [0.72, 0.46], rtol=1e-14)
    np.testing.assert_allclose(params[1], [-2.24], rtol=1e-14)
    np.testing.assert_allclose(sgd.velocity[0], [0.8, -0.6], rtol=1e-14)
    np.testing.assert_allclose(sgd.velocity[1], [1.4], rtol=1e-14)


def test_two_nesterov_steps_match_the_hand_computed_values():
    """Nesterov, m=0.9, lr=0.1: w_t = w_{t-1} - lr (g_t + m v_t) with v_t = m v_{t-1} + g_t (worked out by hand)."""
    # a[0]: v1 = 2,  w1 = 1 - 0.1 (2 + 1.8)    = 0.62;  v2 = 0.8,  w2 = 0.62 - 0.1 (-1 + 0.72)  = 0.648
    # a[1]: v1 = -4, w1 = 0 - 0.1 (-4 - 3.6)   = 0.76;  v2 = -0.6, w2 = 0.76 - 0.1 (3 - 0.54)   = 0.514
    # b[0]: v1 = 1,  w1 = -2 - 0.1 (1 + 0.9)   = -2.19; v2 = 1.4,  w2 = -2.19 - 0.1 (0.5 + 1.26) = -2.366
    # (swapping v and g in the step, w -= lr (v + m g), gives the same w1 but w2[0] = 0.63: step 2 tells them apart)
    params, sgd = two_steps(MOMENTUM, nesterov=True)
    np.testing.assert_allclose(params[0], [0.648, 0.514], rtol=1e-14)
    np.testing.assert_allclose(params[1], [-2.366], rtol=1e-14)
    np.testing.assert_allclose(sgd.velocity[0], [0.8, -0.6], rtol=1e-14)
    np.testing.assert_allclose(sgd.velocity[1], [1.4], rtol=1e-14)


@pytest.mark.parametrize("nesterov", [False, True])
def test_zero_momentum_is_plain_sgd_without_velocity(nesterov):
    """Momentum 0 (Nesterov or not): w2 = w0 - lr (g1 + g2) exactly, and no velocity is kept."""
    # a: 1 - 0.1 (2 - 1) = 0.9, 0 - 0.1 (-4 + 3) = 0.1;  b: -2 - 0.1 (1 + 0.5) = -2.15
    params, sgd = two_steps(0.0, nesterov)
    np.testing.assert_allclose(params[0], [0.9, 0.1], rtol=1e-14)
    np.testing.assert_allclose(params[1], [-2.15], rtol=1e-14)
    assert sgd.velocity == []


def test_momentum_updates_the_caller_arrays_in_place():
    """The step writes into the arrays it is given (the training loop keeps references to them)."""
    a, b = np.array([1.0, 0.0]), np.array([-2.0])
    sgd = optim.SGD(momentum=MOMENTUM)
    sgd.step([a, b], GRADIENTS[0], LR)
    np.testing.assert_allclose(a, [0.8, 0.4], rtol=1e-14)  # w1 of the heavy-ball oracle
    np.testing.assert_allclose(b, [-2.1], rtol=1e-14)


# -- early stopping on a scripted validation loss

#           epoch:  1    2    3    4     5    6     7     8     9    10
SCRIPT = [1.0, 0.8, 0.9, 0.85, 0.7, 0.75, 0.72, 0.71, 0.9, 0.6]


def run_script(losses, patience, min_delta=0.0):
    """Feed ``losses`` (epoch 1, 2, ...) with params that hold the epoch number; return the stop epoch
    (None if it never says stop) and the stopper. The params are changed in place each epoch, as in training."""
    stopper = optim.EarlyStopping(patience=patience, min_delta=min_delta)
    coef, intercept = np.zeros((2, 2)), np.zeros(2)
    for epoch, loss in enumerate(losses, start=1):
        coef[...] = epoch
        intercept[...] = -epoch
        if stopper.update(epoch, loss, (coef, intercept)):
            return epoch, stopper
    return None, stopper


@pytest.mark.parametrize(
    ("patience", "stop_epoch", "best_epoch"),
    [
        # best 0.8 at epoch 2; epochs 3 (0.9) and 4 (0.85) are no better: waited 1 at 3, 2 at 4
        (1, 3, 2),
        (2, 4, 2),
        # patience 3: epoch 5 (0.7) resets the count before it reaches 3; then 6, 7, 8 wait 1, 2, 3
        (3, 8, 5),
    ],
)
def test_early_stopping_stops_at_the_hand_counted_epoch(patience, stop_epoch, best_epoch):
    """Patience p stops at the p-th consecutive epoch without improvement: epochs 3, 4 and 8 for p = 1, 2, 3."""
    stopped, stopper = run_script(SCRIPT, patience)
    assert stopped == stop_epoch
    assert stopper.best_epoch == best_epoch
    assert stopper.waited == patience
    np.testing.assert_array_equal(stopper.best_params[0], np.full((2, 2), best_epoch))
    np.testing.assert_array_equal(stopper.best_params[1], np.full(2, -best_epoch))


def test_early_stopping_with_a_patience_longer_than_the_stall_never_stops():
    """Patience 5 on the script: the longest stall is 4 epochs (6 to 9), so it never says stop; best is epoch 10."""
    stopped, stopper = run_script(SCRIPT, 5)
    assert stopped is None
    assert (stopper.best_epoch, stopper.best_loss, stopper.waited) == (10, 0.6, 0)
    np.testing.assert_array_equal(stopper.best_params[0], np.full((2, 2), 10.0))


def test_early_stopping_counts_improvements_smaller_than_min_delta_as_waiting():
    """min_delta 0.05, patience 3: only drops of more than 0.05 below the best reset the count; stop at epoch 8."""
    losses = [1.0, 0.9, 0.87, 0.86, 0.84, 0.83, 0.82, 0.80]
    # epoch 1: best 1.0 | 2: 0.9 < 0.95, best | 3: 0.87 >= 0.85, waited 1 | 4: 0.86, waited 2
    # 5: 0.84 < 0.85, best, waited 0 | 6: 0.83 >= 0.79, 1 | 7: 0.82, 2 | 8: 0.80 >= 0.79, 3: stop
    stopped, stopper = run_script(losses, 3, min_delta=0.05)
    assert stopped == 8
    assert (stopper.best_epoch, stopper.best_loss) == (5, 0.84)
    np.testing.assert_array_equal(stopper.best_params[0], np.full((2, 2), 5.0))
    assert run_script(losses, 3)[0] is None  # without min_delta every epoch improves


def test_early_stopping_needs_a_strict_improvement():
    """A loss equal to the best (min_delta 0), or exactly min_delta below it, is not an improvement."""
    # 0.75 = 1.0 - 0.25 exactly in binary floating point
    assert run_script([1.0, 1.0], 1)[0] == 2
    stopped, stopper = run_script([1.0, 0.75], 1, min_delta=0.25)
    assert stopped == 2 and stopper.best_epoch == 1 and stopper.best_loss == 1.0


# -- splits and the standardizer, followed row by row


N_ROWS, TEST_ROWS = 60, 20


def write_rows(path, ids, seed):
    """CSV rows ``id, signal, constant, label``: the first feature is a unique row id, so the row of
    any standardized part can be recovered as X * scale + mean. Labels a, b, c in turn."""
    rng = np.random.default_rng(seed)
    lines = ["id,signal,constant,label"]
    for row_id in ids:
        lines.append(f"{row_id},{rng.normal(3.0, 2.0)!r},7.5,{'abc'[row_id % 3]}")
    path.write_text("\n".join(lines) + "\n")
    return np.loadtxt(path, delimiter=",", skiprows=1, usecols=(0, 1, 2))


def prepared_from(tmp_path, extra):
    raw = write_rows(tmp_path / "rows.csv", range(N_ROWS), seed=1)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(f"data:\n  source: rows.csv\n  val: 0.25\n{extra}seed: 3\n")
    config = load_config(config_path)
    split_rng = data.random_streams(config.seed).split
    return data.prepare(config.data, np.dtype("float64"), split_rng), raw


def row_ids(prepared, part):
    """The ids of a standardized part, recovered through the saved standardizer."""
    raw = part.X * prepared.feature_scale + prepared.feature_mean
    ids = np.rint(raw[:, 0])
    np.testing.assert_allclose(raw[:, 0], ids, atol=1e-9)
    return ids.astype(int)


def check_standardizer_is_the_training_rows(prepared, raw_by_id, train_ids):
    """feature_mean/feature_scale are the mean and population std (ddof 0) of exactly the training rows;
    the constant column gets scale 1."""
    train_raw = raw_by_id[train_ids]
    np.testing.assert_allclose(prepared.feature_mean, train_raw.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(prepared.feature_scale[:2], train_raw[:, :2].std(axis=0, ddof=0), rtol=1e-12)
    assert prepared.feature_scale[2] == 1.0


def check_labels_follow_their_rows(prepared, part, ids):
    assert [prepared.classes[index] for index in part.y] == ["abc"[row_id % 3] for row_id in ids]


def test_random_stratified_split_is_a_partition_and_standardizer_sees_only_training_rows(tmp_path):
    """split: random (stratified): train/val/test ids are disjoint and cover all 60 rows, each class is
    held out in proportion, and mean/scale are those of the 36 training rows alone."""
    prepared, raw = prepared_from(tmp_path, "  test: 0.2\n  split: random\n  stratify: true\n")
    train, val, test = (row_ids(prepared, part) for part in (prepared.train, prepared.val, prepared.test))
    # test = ceil(0.2 * 60) = 12 rows, val = ceil(0.25 * 48) = 12 rows, train the other 36
    assert (len(train), len(val), len(test)) == (36, 12, 12)
    assert len(set(train) | set(val) | set(test)) == N_ROWS
    assert sorted(np.concatenate([train, val, test])) == list(range(N_ROWS))
    np.testing.assert_array_equal(prepared.test_raw[:, 0].astype(int), test)
    for ids in (val, test):  # stratified: 4 of each of the 3 classes
        assert np.bincount(ids % 3).tolist() == [4, 4, 4]
    for part, ids in ((prepared.train, train), (prepared.val, val), (prepared.test, test)):
        check_labels_follow_their_rows(prepared, part, ids)
    check_standardizer_is_the_training_rows(prepared, raw, train)


def test_ordered_split_holds_out_the_last_rows_and_standardizer_sees_only_training_rows(tmp_path):
    """split: ordered: test = ids 48-59, val = ids 36-47, train = ids 0-35; mean/scale of ids 0-35 only."""
    prepared, raw = prepared_from(tmp_path, "  test: 0.2\n  split: ordered\n")
    assert row_ids(prepared, prepared.train).tolist() == list(range(36))
    assert row_ids(prepared, prepared.val).tolist() == list(range(36, 48))
    assert row_ids(prepared, prepared.test).tolist() == list(range(48, 60))
    check_standardizer_is_the_training_rows(prepared, raw, np.arange(36))


@pytest.mark.parametrize("split", ["random", "ordered"])
def test_separate_test_file_is_the_test_part_and_never_fitted(tmp_path, split):
    """data.test: a file: its 20 rows (ids 1000-1019) are the test part, train and val split the 60 rows
    of the source between them, and mean/scale come from the training rows alone."""
    test_raw = write_rows(tmp_path / "held.csv", range(1000, 1000 + TEST_ROWS), seed=2)
    prepared, raw = prepared_from(tmp_path, f"  test: held.csv\n  split: {split}\n")
    train, val, test = (row_ids(prepared, part) for part in (prepared.train, prepared.val, prepared.test))
    assert test.tolist() == list(range(1000, 1000 + TEST_ROWS))
    np.testing.assert_array_equal(prepared.test_raw, test_raw)
    # val = ceil(0.25 * 60) = 15 rows of the source, train the other 45
    assert (len(train), len(val)) == (45, 15)
    assert sorted(np.concatenate([train, val])) == list(range(N_ROWS))
    check_labels_follow_their_rows(prepared, prepared.test, test)
    check_standardizer_is_the_training_rows(prepared, raw, train)


# -- calibration bins: (lo, hi], with confidences exactly on the edges k/15


def two_class_rows(confidences):
    """Rows (1 - c, c): the top class is 1 and its probability c (every c here is above 1/2)."""
    confidences = np.asarray(confidences)
    return np.column_stack([1.0 - confidences, confidences])


EDGE_CONFIDENCES = [8 / 15, 8 / 15, 9 / 15, 0.55, 12 / 15, 12 / 15, 12 / 15, 1.0, 1.0]
EDGE_LABELS = np.array([1, 0, 1, 0, 1, 1, 0, 1, 1])  # 1 = the predicted class is right


def test_confidences_on_bin_edges_fall_in_the_bin_they_close():
    """15 bins (lo, hi]: confidence k/15 counts in bin k-1, so 8/15 -> bin 7, 9/15 and 0.55 -> bin 8,
    12/15 -> bin 11 and 1 -> bin 14; the per-bin accuracy and mean confidence follow."""
    bins = evaluate.reliability_bins(EDGE_LABELS, two_class_rows(EDGE_CONFIDENCES), n_bins=15)
    np.testing.assert_array_equal(bins["edges"], np.arange(16) / 15)
    assert bins["count"].tolist() == [0] * 7 + [2, 2, 0, 0, 3, 0, 0, 2]
    filled = [7, 8, 11, 14]
    # bin 7: rows 8/15 right and wrong; bin 8: 9/15 right, 0.55 wrong; bin 11: 2 of 3 right; bin 14: both right
    np.testing.assert_allclose(bins["accuracy"][filled], [1 / 2, 1 / 2, 2 / 3, 1.0], rtol=1e-15)
    np.testing.assert_allclose(bins["confidence"][filled], [8 / 15, (0.6 + 0.55) / 2, 0.8, 1.0], rtol=1e-15)
    empty = np.setdiff1d(np.arange(15), filled)
    assert np.all(np.isnan(bins["accuracy"][empty])) and np.all(np.isnan(bins["confidence"][empty]))


def test_ece_with_confidences_on_bin_edges_matches_the_hand_computed_value():
    """ECE = sum_b (n_b / n) |acc_b - conf_b| = (2/30 + 2 * 0.075 + 3 * 2/15 + 0) / 9 = 37/540."""
    # bin 7:  |1/2 - 8/15| = 1/30,  weight 2 -> 4/60
    # bin 8:  |1/2 - 0.575| = 0.075, weight 2 -> 9/60
    # bin 11: |2/3 - 4/5| = 2/15,   weight 3 -> 24/60
    # bin 14: |1 - 1| = 0;  total 37/60 over n = 9 rows -> 37/540
    ece = evaluate.expected_calibration_error(EDGE_LABELS, two_class_rows(EDGE_CONFIDENCES), n_bins=15)
    assert ece == pytest.approx(37 / 540, rel=1e-12)


def test_low_confidences_fill_the_first_bin_and_ece_uses_the_default_15_bins():
    """Twenty classes at probability 1/20 each: confidence 0.05 lies in bin 0 = (0, 1/15]; with the
    class-0 prediction right for 1 row of 4, ECE = |1/4 - 1/20| = 0.2, and the default is 15 bins."""
    proba = np.full((4, 20), 1 / 20)
    y = np.array([0, 3, 5, 7])  # argmax of a uniform row is class 0
    bins = evaluate.reliability_bins(y, proba)
    assert len(bins["edges"]) == 16 and bins["count"].tolist() == [4] + [0] * 14
    assert evaluate.expected_calibration_error(y, proba) == pytest.approx(0.2, rel=1e-12)


# -- the CLI's metrics.json against the function


def test_cli_metrics_ece_equals_expected_calibration_error_recomputed(tmp_path):
    """`softreg train` on a separate test file: metrics.json's ece equals expected_calibration_error of
    the saved model's probabilities on those test rows."""
    rng = np.random.default_rng(5)

    def write_blobs(path, n_rows):
        labels = rng.integers(0, 3, size=n_rows)
        X = rng.normal(size=(n_rows, 2)) + np.array([[0.0, 0.0], [1.5, 0.0], [0.0, 1.5]])[labels]
        rows = [f"{float(a)!r},{float(b)!r},{'xyz'[label]}" for (a, b), label in zip(X, labels, strict=True)]
        path.write_text("f1,f2,label\n" + "\n".join(rows) + "\n")
        return X, labels

    write_blobs(tmp_path / "train.csv", 150)
    X_test, labels_test = write_blobs(tmp_path / "test.csv", 80)
    (tmp_path / "config.yaml").write_text(
        "data: {source: train.csv, test: test.csv, val: 0}\noptim: {epochs: 5, batch_size: 16}\n"
        "output: {plots: false}\n"
    )
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "softreg.cli", "train", "--config", str(tmp_path / "config.yaml"), "--out", str(out),
         "--quiet"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with np.load(out / "model.npz", allow_pickle=False) as model:
        assert model["classes"].tolist() == ["x", "y", "z"]
        standardized = (X_test - model["feature_mean"]) / model["feature_scale"]
        proba = scipy_softmax(standardized @ model["coef"].T + model["intercept"], axis=1)
    saved = json.loads((out / "metrics.json").read_text())["ece"]
    assert saved == pytest.approx(evaluate.expected_calibration_error(labels_test, proba), rel=1e-9, abs=1e-12)
