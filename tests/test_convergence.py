"""Stop when certified: optim.tol, gap_bound in every run, converged in metrics, model and evaluate."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler

from softreg import rundir
from softreg.cli import main
from softreg.solve import exact_optimum
from softreg.train import Settings, fit

REPO = Path(__file__).resolve().parent.parent
IRIS = ["--config", REPO / "configs" / "iris.yaml", "--quiet", "--set", "output.plots=false"]
SVRG = ["--set", "optim.variance_reduction=svrg", "--set", "optim.lr=auto", "--set", "optim.schedule=constant"]


def cli(*args):
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_fit_stops_at_the_first_certified_epoch_and_the_bound_holds(wine):
    """With tol, fit stops at the first epoch whose gap_bound <= tol, the epochs before it were above
    tol, and the returned model's true relative gap (exact optimum) is at most its bound."""
    X, y = wine
    settings = Settings(weight_decay=1e-2, lr="auto", variance_reduction="svrg", epochs=200, tol=1e-5)
    result = fit((X, y), 3, settings, np.random.default_rng(0))
    bounds = [record.gap_bound for record in result.history]
    assert result.converged and result.stopped_by == "tol"
    assert bounds[-1] <= 1e-5 and all(bound is None or bound > 1e-5 for bound in bounds[:-1])
    assert len(result.history) < 200
    best = exact_optimum(X, y, 3, 1e-2)
    assert (result.objective - best.objective) / best.objective <= result.gap_bound
    assert result.gap_bound == bounds[-1]


def test_fixed_epochs_without_tol_still_report_the_bound(wine):
    """tol=None runs every epoch; the last epoch is always certified, and converged compares with 1e-4."""
    X, y = wine
    result = fit((X, y), 3, Settings(weight_decay=1e-2, epochs=3, tol=None), np.random.default_rng(0))
    assert len(result.history) == 3 and result.stopped_by == "epochs"
    assert result.history[-1].gap_bound == result.gap_bound
    assert result.converged == (result.gap_bound is not None and result.gap_bound <= 1e-4)


def test_no_bound_without_weight_decay(wine):
    """At lambda = 0 there is no bound: gap_bound None, not converged, tol never met."""
    X, y = wine
    result = fit((X, y), 3, Settings(weight_decay=0.0, epochs=2, tol=1e-4), np.random.default_rng(0))
    assert result.gap_bound is None and not result.converged and len(result.history) == 2


def test_uncertified_run_exits_0_keeps_its_model_and_says_so(tmp_path):
    """A run cut short by optim.epochs: exit 0, model saved, converged false in metrics.json and
    model.json, and exactly one stderr line naming the bound, the epochs and tol."""
    out = tmp_path / "run"
    code, stdout, stderr = cli("train", *IRIS, "--out", out, "--set", "optim.epochs=30", "--set", "optim.tol=1e-9")
    assert code == 0
    assert (out / "model.npz").exists()
    lines = stderr.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(
        r"not converged: relative gap ≤ \d\.\d\de[-+]\d\d after 30 epochs \(optim\.tol = 1e-09\); raise optim\.epochs "
        rf"to train further: softreg train --resume {re.escape(str(out))} --set optim\.epochs=60",
        lines[0],
    )
    metrics = json.loads((out / "metrics.json").read_text())
    training = rundir.read_model_json(out / "model.json")["training"]
    assert metrics["converged"] is False and training["converged"] is False
    assert metrics["gap_bound"] == training["gap_bound"] > 1e-9
    assert "converged: no" in stdout


def test_certified_run_stops_and_evaluate_prints_the_certificate(tmp_path):
    """SVRG with tol stops when certified (fewer epochs than the maximum), says so, writes gap_bound per
    certified epoch, and evaluate prints converged and the bound (human and --json)."""
    out = tmp_path / "run"
    code, stdout, stderr = cli(
        "train", *IRIS, "--out", out, *SVRG, "--set", "optim.epochs=300", "--set", "optim.tol=1e-4"
    )
    assert code == 0 and stderr == ""
    assert "stopped by optim.tol = 0.0001" in stdout
    history = rundir.read_history(out)
    assert len(history) < 300 and history[-1]["gap_bound"] <= 1e-4
    assert all(row["gap_bound"] is None or row["gap_bound"] > 1e-4 for row in history[:-1])
    code, stdout, _ = cli("evaluate", "--run", out)
    assert code == 0 and "converged: yes, relative gap (J - J*) / J* <= " in stdout
    code, stdout, _ = cli("evaluate", "--run", out, "--json")
    document = json.loads(stdout)
    assert document["converged"] is True and document["gap_bound"] == history[-1]["gap_bound"]


def test_certified_svrg_run_resumes_bit_identically(tmp_path):
    """SVRG adopts b*(W) every epoch: 3 epochs continued to 6 equal 6 in one go, bit for bit."""
    tight = [*SVRG, "--set", "optim.tol=1e-14"]
    short, straight = tmp_path / "short", tmp_path / "straight"
    assert cli("train", *IRIS, "--out", short, *tight, "--set", "optim.epochs=3")[0] == 0
    assert cli("train", "--resume", short, "--quiet", "--set", "optim.epochs=6")[0] == 0
    assert cli("train", *IRIS, "--out", straight, *tight, "--set", "optim.epochs=6")[0] == 0
    for name in ("coef", "intercept"):
        with np.load(short / "model.npz") as a, np.load(straight / "model.npz") as b:
            assert a[name].tobytes() == b[name].tobytes()
    assert rundir.read_history(short)[-1]["gap_bound"] == rundir.read_history(straight)[-1]["gap_bound"]


def test_estimator_warns_when_not_converged_and_stops_when_certified(wine):
    """SoftmaxRegression(tol=...): ConvergenceWarning when epochs run out first; n_iter_ < epochs when
    certified, with converged_ and gap_bound_ set."""
    from sklearn.exceptions import ConvergenceWarning

    from softreg.estimator import SoftmaxRegression

    X, y = wine
    with pytest.warns(ConvergenceWarning, match=r"did not converge: the relative gap has .* after 2 epochs"):
        short = SoftmaxRegression(weight_decay=1e-2, epochs=2, tol=1e-6, random_state=0).fit(X, y)
    assert short.n_iter_ == 2 and not short.converged_
    model = SoftmaxRegression(
        weight_decay=1e-2, epochs=300, tol=1e-5, lr="auto", variance_reduction="svrg", random_state=0
    ).fit(X, y)
    assert model.converged_ and model.gap_bound_ <= 1e-5 and model.n_iter_ < 300


def test_no_bound_at_zero_weight_decay_is_said_on_stderr(tmp_path):
    """weight_decay 0 with tol set: exit 0, gap_bound null, converged false, and the one stderr line says
    why no bound exists rather than asking for more epochs."""
    out = tmp_path / "run"
    code, stdout, stderr = cli(
        "train", *IRIS, "--out", out, "--set", "model.weight_decay=0", "--set", "optim.epochs=3",
        "--set", "optim.tol=1e-4",
    )
    assert code == 0
    assert stderr == (
        "not converged: no bound on the gap at weight_decay 0, for losses other than cross_entropy, or past "
        "2^25 logits in one process or shard (optim.tol = 0.0001 after 3 epochs)\n"
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["gap_bound"] is None and metrics["converged"] is False
    assert rundir.read_history(out)[-1]["gap_bound"] is None
