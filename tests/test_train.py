"""The training loop: interruption and resume are exact in every configuration."""

import dataclasses
import math

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler

from softreg import rundir
from softreg.config import resolve
from softreg.errors import Interrupted
from softreg.train import ArrayData, EpochRecord, fit

VARIANTS = {
    "plain": {},
    "nesterov cosine": {"optim": {"nesterov": True, "schedule": "cosine"}},
    "svrg": {"optim": {"variance_reduction": "svrg", "momentum": 0.5, "lr": 0.05}},
    # the defaults' optimiser: SVRG, then full-batch steps (from epoch 11 here)
    "full batch": {"optim": {"variance_reduction": "svrg", "full_batch": "auto", "lr": "auto", "epochs": 16}},
    "early stopping": {"optim": {"early_stopping": {"patience": 3}, "lr": 0.5}},
    "no intercept": {"model": {"fit_intercept": False}},
    "float32": {"model": {"dtype": "float32"}},
    "sparse": {"sparse": True},
}


def problem(variant):
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    settings = VARIANTS[variant]
    optim = {"epochs": 12, "batch_size": 16, "lr": 0.1, "variance_reduction": "none"}
    document = {"data": {"source": "builtin:wine"}, "optim": optim}
    for section in ("optim", "model"):
        document.setdefault(section, {}).update(settings.get(section, {}))
    config = resolve(document)
    dtype = np.dtype(config.model.dtype)
    X = X.astype(dtype)
    if settings.get("sparse"):
        X = sp.csr_matrix(X * (np.abs(X) > 0.5))
    train, val = ArrayData(X[:140], y[:140]), ArrayData(X[140:], y[140:])
    return train, val, config


def run(variant, **kwargs):
    train, val, config = problem(variant)
    return fit(train, 3, config.training_settings(), np.random.default_rng(7), val=val, **kwargs)


def interrupt_at(epoch):
    def on_epoch(record, total):
        if record.epoch == epoch:
            raise KeyboardInterrupt

    return on_epoch


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("checkpoint_every", [1, 4])
def test_interrupt_and_resume_give_the_uninterrupted_model_bit_for_bit(tmp_path, variant, checkpoint_every):
    """Ctrl-C while epoch 6 reports (before its state is taken), the last completed state through a
    checkpoint file, then resume: identical weights and history."""
    reference = run(variant)
    saved = []
    with pytest.raises(Interrupted) as caught:
        run(variant, on_epoch=interrupt_at(6), on_checkpoint=saved.append, checkpoint_every=checkpoint_every)
    state = caught.value.state
    assert state.epoch == 5 and caught.value.saved == (5 % checkpoint_every == 0)
    rundir.save_checkpoint(tmp_path, state)
    resumed = run(variant, start=rundir.load_checkpoint(tmp_path)[0])
    assert resumed.coef.tobytes() == reference.coef.tobytes()
    assert resumed.intercept.tobytes() == reference.intercept.tobytes()
    assert [r.train_loss for r in resumed.history] == [r.train_loss for r in reference.history]
    assert resumed.stopped_early == reference.stopped_early


def test_resume_within_the_full_batch_steps_is_bit_identical(tmp_path):
    """The defaults' optimiser interrupted after its hand-over to full-batch steps resumes through a
    checkpoint file to the uninterrupted run's weights and history, bit for bit."""
    reference = run("full batch")
    assert any(record.lr != reference.lr for record in reference.history[:13])  # full-batch steps by epoch 13
    with pytest.raises(Interrupted) as caught:
        run("full batch", on_epoch=interrupt_at(14))
    state = caught.value.state
    assert state.epoch == 13 and state.full_batch is not None
    rundir.save_checkpoint(tmp_path, state)
    resumed = run("full batch", start=rundir.load_checkpoint(tmp_path)[0])
    assert resumed.coef.tobytes() == reference.coef.tobytes()
    assert resumed.intercept.tobytes() == reference.intercept.tobytes()
    assert [dataclasses.replace(r, seconds=0.0) for r in resumed.history] == [
        dataclasses.replace(r, seconds=0.0) for r in reference.history
    ]


def test_finished_state_continues_from_the_last_weights_not_the_best():
    """Training a finished early-stopping run further continues from its last weights:
    8 epochs then 4 more equal 12 in one go (constant rate, patience never reached)."""
    train, val, config = problem("plain")
    settings = dataclasses.replace(config.training_settings(), patience=100, min_delta=0.0, lr=0.5, batch_size=4)
    short = fit(train, 3, dataclasses.replace(settings, epochs=8), np.random.default_rng(7), val=val)
    longer = fit(train, 3, settings, np.random.default_rng(7), val=val, start=short.state)
    straight = fit(train, 3, settings, np.random.default_rng(7), val=val)
    assert longer.coef.tobytes() == straight.coef.tobytes()
    assert longer.best_epoch == straight.best_epoch


def test_finished_state_result_holds_the_best_weights():
    """A finished state's result() is the model fit returned (best weights restored)."""
    result = run("early stopping")
    again = result.state.result()
    assert again.coef.tobytes() == result.coef.tobytes() and again.objective == result.objective


def test_history_csv_has_one_row_per_epoch_with_the_record_columns(tmp_path):
    """history.csv has the EpochRecord columns in order and reads back as the history."""
    history = run("plain").history
    rundir.write_history(tmp_path, history)
    rows = rundir.read_history(tmp_path)
    assert len(rows) == 12 and all(tuple(row) == rundir.HISTORY_FIELDS for row in rows)
    assert [row["train_loss"] for row in rows] == [record.train_loss for record in history]


def test_the_history_does_not_depend_on_the_clock(monkeypatch):
    """A clock that jumps at random (a loaded machine) changes only the seconds column: which epochs
    log the objective is decided from the data's size, never from timings."""
    import softreg.train

    reference = run("plain")
    jumps = np.random.default_rng(0)
    clock = iter(np.cumsum(jumps.exponential(5.0, size=100_000)))
    monkeypatch.setattr(softreg.train.time, "perf_counter", lambda: float(next(clock)))
    loaded = run("plain")
    assert [dataclasses.replace(r, seconds=0.0) for r in loaded.history] == [
        dataclasses.replace(r, seconds=0.0) for r in reference.history
    ]
    assert any(r.objective is None for r in reference.history)  # the schedule skips some epochs here


@pytest.mark.parametrize(
    ("n", "d", "k", "batch"), [(16000, 16, 26, 64), (1293, 64, 10, 32), (60000, 784, 10, 64), (150, 4, 3, 16)]
)
@pytest.mark.parametrize("epochs", [3, 20, 100, 400])
def test_the_default_evaluation_schedule_keeps_logging_within_the_budget(n, d, k, batch, epochs):
    """The evaluated epochs (the last always) cost at most EVAL_BUDGET of training in the cost model
    whenever more than the last is evaluated, and the interval is the smallest that does."""
    from softreg.train.state import EVAL_BUDGET, evaluation_cost, evaluation_due, evaluation_interval

    cost = evaluation_cost(n, d, k, batch)
    assert 0 < cost < 2
    due = [evaluation_due(e, epochs, None, n, d, k, batch) for e in range(1, epochs + 1)]
    assert due[-1]
    interval = evaluation_interval(n, d, k, batch, epochs)
    assert due == [e % interval == 0 or e == epochs for e in range(1, epochs + 1)]
    if sum(due) > 1:
        assert sum(due) * cost <= EVAL_BUDGET * epochs + 1e-12
    if interval > 1:  # one epoch less between evaluations would break the budget
        assert (epochs / (interval - 1) + 1) * cost > EVAL_BUDGET * epochs


def test_a_loss_that_explodes_without_overflowing_is_a_divergence():
    """A training loss past EXPLOSION_FACTOR times the first epoch's (or log K in the first) counts as
    exploded, and a rate of 1e4 on wine stops training in its first epoch with DivergedError."""
    from softreg.errors import DivergedError
    from softreg.train.measures import EXPLOSION_FACTOR, _exploded

    history = [EpochRecord(epoch=1, lr=1.0, train_loss=2.0)]
    assert not _exploded(2.0 * EXPLOSION_FACTOR * 0.99, history, 3)
    assert _exploded(2.0 * EXPLOSION_FACTOR * 1.01, history, 3)
    assert _exploded(math.log(3) * EXPLOSION_FACTOR * 1.01, [], 3)  # the first epoch against log K
    train, val, config = problem("plain")
    settings = dataclasses.replace(config.training_settings(), lr=1e4, momentum=0.9)
    with pytest.raises(DivergedError, match="training diverged at epoch 1"):
        fit(train, 3, settings, np.random.default_rng(7), val=val)


def test_settings_from_config_keys_carry_every_number():
    """A config's model and optim keys become Settings by name: early stopping as patience and min_delta,
    output.eval_every included, dtype (not a training number) left out."""
    config = resolve({
        "data": {"source": "builtin:iris"},
        "model": {"weight_decay": 0.03, "dtype": "float32", "loss": "squared_error"},
        "optim": {"lr": 0.2, "batch_size": 7, "nesterov": True, "early_stopping": {"patience": 4, "min_delta": 0.01}},
        "output": {"eval_every": 3},
    })
    settings = config.training_settings()
    assert (settings.weight_decay, settings.loss, settings.lr, settings.batch_size, settings.nesterov) == (
        0.03, "squared_error", 0.2, 7, True
    )
    assert (settings.patience, settings.min_delta, settings.eval_every) == (4, 0.01, 3)
    assert resolve({"data": {"source": "builtin:iris"}}).training_settings().patience is None


def test_checkpoint_every_auto_keeps_checkpoints_within_a_tenth_of_training_by_the_cost_model():
    """output.checkpoint_every: auto is every epoch where an epoch dwarfs a checkpoint (900000 x 100),
    rarer on small data (digits), and always the fewest epochs whose cost covers one checkpoint 10x."""
    from softreg.train.state import CHECKPOINT_BUDGET, CHECKPOINT_COST, STEP_OVERHEAD, checkpoint_interval

    assert checkpoint_interval(900_000, 100, 20, 64) == 1
    assert checkpoint_interval(1437, 64, 10, 64) > 100
    for n_samples, n_features, n_classes, batch_size in [(120, 4, 3, 16), (16_000, 16, 26, 64), (60_000, 784, 10, 256)]:
        every = checkpoint_interval(n_samples, n_features, n_classes, batch_size)
        epoch = math.ceil(n_samples / batch_size) * STEP_OVERHEAD + n_samples * n_features * n_classes
        assert CHECKPOINT_COST <= CHECKPOINT_BUDGET * every * epoch
        assert every == 1 or CHECKPOINT_COST > CHECKPOINT_BUDGET * (every - 1) * epoch
