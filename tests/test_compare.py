"""compare-logistic: two-class softmax SGD is logistic SGD with decay lambda/2 and rate 2 eta."""

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from sklearn.datasets import dump_svmlight_file

from softreg import compare
from softreg.cli import main
from softreg.commands import compare_logistic
from softreg.compare import logistic
from softreg.prepare.data import random_streams
from softreg.train import ArrayData, Settings
from softreg.train.optim import SCHEDULES

TOLERANCE = 1e-9
PINNED_FIELDS = (
    "weight_decay.softmax",
    "weight_decay.logistic",
    "learning_rate.softmax",
    "learning_rate.logistic",
    "trajectory.max_abs_prob_diff",
    "trajectory.max_abs_coef_diff",
    "optimum.max_abs_prob_diff",
    "optimum.coef_rel_diff",
    "optimum.sum_norm",
    "sklearn.max_abs_prob_diff",
    "sklearn_naive.max_abs_prob_diff",
)


def run(*args):
    result = CliRunner().invoke(main, ["compare-logistic", *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def configs(weight_decay=0.05, fit_intercept=True, **optim):
    """Training settings with train's defaults for everything not given."""
    optim = {"lr": 0.2, "batch_size": 7, "epochs": 4, **optim}
    return Settings(weight_decay=weight_decay, fit_intercept=fit_intercept, **optim)


def random_problem(seed, n_samples=50, n_features=4, sparse=False):
    """Standardized-looking X (n, d), dense or CSR, and 0/1 labels that depend on X."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    if sparse:
        X[rng.random(X.shape) < 0.5] = 0.0
        X = sp.csr_matrix(X)
    y = (np.asarray(X @ rng.normal(size=n_features)) + rng.normal(size=n_samples) > 0).astype(np.int64)
    return X, y


def gaps(trajectory):
    return {
        "prob": trajectory.prob_diff.max(),
        "coef": trajectory.coef_diff.max(),
        "intercept": trajectory.intercept_diff.max(),
        "sum": trajectory.sum_norm.max(),
    }


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no-intercept"])
@pytest.mark.parametrize(
    "momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)], ids=["plain", "momentum", "nesterov"]
)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_softmax_sgd_follows_logistic_sgd_step_by_step(schedule, momentum, nesterov, fit_intercept, sparse):
    """After every step p_softmax(B) = p_logistic and w2 - w1 = w (b2 - b1 = b) to 1e-9, and w1 + w2 stays 0."""
    X, y = random_problem(7, sparse=sparse)
    settings = configs(
        fit_intercept=fit_intercept, schedule=schedule, momentum=momentum, nesterov=nesterov, step_size=2
    )
    trajectory = compare.follow_trajectories(X, y, settings, np.random.default_rng(3), tracked=[0, 1])
    assert len(trajectory.prob_diff) == settings.epochs * math.ceil(50 / 7)
    assert all(value <= TOLERANCE for value in gaps(trajectory).values()), gaps(trajectory)
    mapped_coef, mapped_intercept = logistic.from_softmax(trajectory.softmax_coef, trajectory.softmax_intercept)
    assert np.linalg.norm(trajectory.logistic_coef) > 0.1  # the weights moved: the agreement is not 0 == 0
    np.testing.assert_allclose(mapped_coef, trajectory.logistic_coef, atol=TOLERANCE)
    np.testing.assert_allclose(mapped_intercept, trajectory.logistic_intercept, atol=TOLERANCE)
    assert (
        not np.isnan(trajectory.prob_diff).any() and not np.isnan(trajectory.softmax_path).any()
    )  # every step recorded
    if not fit_intercept:
        assert not trajectory.softmax_intercept.any() and not trajectory.logistic_intercept.any()


@given(
    seed=st.integers(0, 2**32 - 1),
    n_samples=st.integers(2, 40),
    n_features=st.integers(1, 6),
    batch_size=st.integers(1, 16),
    lr=st.floats(0.01, 0.5),
    weight_decay=st.sampled_from([1e-4, 1e-2, 0.5]),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
    nesterov=st.booleans(),
)
def test_identity_holds_on_random_problems(
    seed, n_samples, n_features, batch_size, lr, weight_decay, momentum, nesterov
):
    """Any data, batch size, rate, decay and momentum: the two trajectories agree to 1e-9 at every step."""
    X, y = random_problem(seed, n_samples, n_features)
    settings = configs(weight_decay, lr=lr, batch_size=batch_size, epochs=2, momentum=momentum, nesterov=nesterov)
    trajectory = compare.follow_trajectories(X, y, settings, np.random.default_rng(seed))
    assert all(value <= TOLERANCE for value in gaps(trajectory).values()), gaps(trajectory)


def test_the_comparison_detects_a_wrong_mapping(monkeypatch):
    """With logistic rate eta instead of 2 eta the trajectories part visibly: the check is not vacuous."""
    monkeypatch.setattr(logistic, "logistic_learning_rate", lambda lr: lr)
    X, y = random_problem(8)
    settings = configs()
    trajectory = compare.follow_trajectories(X, y, settings, np.random.default_rng(0))
    assert trajectory.prob_diff.max() > 1e-3


@pytest.fixture(scope="module")
def wine_pair():
    """Two wine cultivars, loaded and standardized the way the command does it."""
    config = compare_logistic.compare_config(data="builtin:wine", classes="class_0,class_1")
    return config, compare_logistic.load_problem(config.data)


def test_exact_optima_agree(wine_pair):
    """Softmax optimum (decay lambda) and logistic optimum (lambda/2): same probabilities, w2 - w1 = w, w1 + w2 = 0."""
    _, problem = wine_pair
    found = compare.exact_optima(problem.X, problem.y, 0.01).gaps()
    assert found["max_abs_prob_diff"] <= 1e-6
    assert found["coef_rel_diff"] <= 1e-5
    assert found["sum_norm"] <= 1e-6
    assert found["objective"]["softmax"] == pytest.approx(found["objective"]["logistic"], rel=1e-10)


def test_exact_optima_agree_without_intercept_on_sparse_data():
    """The optima agree on CSR data without an intercept too."""
    X, y = random_problem(9, n_samples=80, n_features=6, sparse=True)
    found = compare.exact_optima(X, y, 0.05, fit_intercept=False).gaps()
    assert found["max_abs_prob_diff"] <= 1e-6 and found["coef_rel_diff"] <= 1e-5 and found["sum_norm"] <= 1e-6


def test_scikit_learn_needs_C_equal_2_over_n_lambda(wine_pair):
    """LogisticRegression(C=2/(n lambda)) is the optimum to 1e-4; the naive C=1/(n lambda) is off by more than 1e-2."""
    _, problem = wine_pair
    weight_decay, n_samples = 0.01, len(problem.y)
    optima = compare.exact_optima(problem.X, problem.y, weight_decay)
    reference_coef, _ = logistic.from_softmax(optima.softmax.coef, optima.softmax.intercept)
    args = (problem.X, problem.y)
    kwargs = {"fit_intercept": True, "reference_proba": optima.softmax_proba, "reference_coef": reference_coef}
    right = compare.sklearn_gap(*args, C=2 / (n_samples * weight_decay), **kwargs)
    naive = compare.sklearn_gap(*args, C=1 / (n_samples * weight_decay), **kwargs)
    assert right["max_abs_prob_diff"] <= 1e-4 and right["coef_rel_diff"] <= 1e-4
    assert naive["max_abs_prob_diff"] > 1e-2 and naive["coef_rel_diff"] > 0.05


def test_defaults_end_sgd_close_to_the_optimum_on_wine(wine_pair):
    """The --data defaults: every check holds and the SGD model ends within 0.02 in probability of the optimum."""
    config, problem = wine_pair
    report = compare.compare(config, problem).report
    assert report["equivalent"] is True and all(check["ok"] for check in report["checks"])
    assert report["sgd_vs_optimum"]["max_abs_prob_diff"] <= 0.02
    assert report["weight_decay"] == {"softmax": 0.01, "logistic": 0.005}
    json.dumps(report)  # plain data only


def test_the_same_seed_draws_the_same_batches_as_fit():
    """logistic_batches replays the batch order fit draws from the batch generator, at twice the rate."""
    X, y = random_problem(10, n_samples=20)
    settings = configs(epochs=2, batch_size=6, schedule="cosine")
    batch_rng = random_streams(5).batches
    batches = list(compare.logistic_batches(ArrayData(X, y), settings, batch_rng))
    assert len(batches) == 2 * 4
    assert [lr for _, _, lr in batches[:1]] == [2 * settings.lr]
    first_epoch_rows = np.concatenate([batch for _, batch, _ in batches[:4]])
    assert sorted(first_epoch_rows.tolist()) == sorted(y.tolist())


# -- the command


def field(report, dotted):
    section, key = dotted.split(".")
    return report[section][key]


@pytest.mark.slow
def test_cli_breast_cancer_json_has_every_pinned_field():
    """--data builtin:breast_cancer (two classes): exit 0, one JSON document, each pinned field within its threshold."""
    code, stdout, stderr = run("--data", "builtin:breast_cancer", "--json")
    assert code == 0, stderr
    assert stderr == ""
    report = json.loads(stdout)
    assert report["equivalent"] is True
    assert report["classes"] == ["malignant", "benign"] or report["classes"] == ["benign", "malignant"]
    for dotted in PINNED_FIELDS:
        assert isinstance(field(report, dotted), float), dotted
    assert report["weight_decay"]["logistic"] == report["weight_decay"]["softmax"] / 2
    assert report["learning_rate"]["logistic"] == report["learning_rate"]["softmax"] * 2
    assert report["trajectory"]["max_abs_prob_diff"] <= 1e-9 and report["trajectory"]["max_abs_coef_diff"] <= 1e-9
    assert report["optimum"]["max_abs_prob_diff"] <= 1e-6 and report["optimum"]["coef_rel_diff"] <= 1e-5
    assert report["optimum"]["sum_norm"] <= 1e-6 and report["sklearn"]["max_abs_prob_diff"] <= 1e-4
    assert report["sklearn_naive"]["max_abs_prob_diff"] > 1e-2


@pytest.fixture(scope="module")
def digits_out(tmp_path_factory):
    """One `--data builtin:digits --classes 3,8 --json --out DIR` run shared by the tests that read it."""
    out = tmp_path_factory.mktemp("compare") / "digits38"
    code, stdout, stderr = run("--data", "builtin:digits", "--classes", "3,8", "--json", "--out", out)
    return out, code, stdout, stderr


def test_cli_digits_3_8_json(digits_out):
    """--classes 3,8 picks two digits; exit 0, JSON on stdout, the --out note on stderr."""
    out, code, stdout, stderr = digits_out
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["equivalent"] is True and report["classes"] == ["3", "8"] and report["positive_class"] == "8"
    assert report["n_samples"] == 357 and report["n_features"] == 64
    for dotted in PINNED_FIELDS:
        assert isinstance(field(report, dotted), float), dotted
    assert stderr == f"wrote softmax/, logistic/, report.json and plots/ to {out}\n"


def test_cli_out_directory_loads_without_pickle_and_evaluates(digits_out):
    """--out: softmax/ (2, d) and logistic/ (1, d) as plain arrays, report.json, plots; evaluate reads softmax/."""
    out, code, stdout, _ = digits_out
    assert code == 0
    with np.load(out / "softmax" / "model.npz", allow_pickle=False) as archive:
        softmax_arrays = {name: archive[name] for name in archive.files}
    with np.load(out / "logistic" / "model.npz", allow_pickle=False) as archive:
        logistic_arrays = {name: archive[name] for name in archive.files}
    assert softmax_arrays["coef"].shape == (2, 64) and softmax_arrays["intercept"].shape == (2,)
    assert logistic_arrays["coef"].shape == (1, 64) and logistic_arrays["intercept"].shape == (1,)
    for name in ("classes", "feature_mean", "feature_scale"):
        np.testing.assert_array_equal(softmax_arrays[name], logistic_arrays[name])
    mapped_coef, _ = logistic.from_softmax(softmax_arrays["coef"], softmax_arrays["intercept"])
    np.testing.assert_allclose(mapped_coef, logistic_arrays["coef"], atol=1e-9)
    assert json.loads((out / "report.json").read_text()) == json.loads(stdout)
    assert sorted(path.name for path in (out / "plots").iterdir()) == ["coefficient_paths.png", "trajectory_gaps.png"]
    result = CliRunner().invoke(main, ["evaluate", "--run", str(out / "softmax"), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["n_samples"] == 357


def test_cli_human_table_and_refused_existing_out(digits_out):
    """The table shows a check mark per check and the naive C; an existing --out is refused with exit 2."""
    out, _, _, _ = digits_out
    code, stdout, stderr = run("--data", "builtin:digits", "--classes", "3,8", "--out", out, "--set", "optim.epochs=1")
    assert code == 2 and stdout == ""
    assert (
        stderr == f"softreg: error: {out}: run directory already exists and is not empty; use --force to replace it\n"
    )


@pytest.mark.slow
def test_cli_two_feature_data_draws_decision_boundaries_from_a_config(tmp_path):
    """--config with a relative CSV path, two features: the human table, and decision_boundaries.png under --out."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    labels = np.where(X[:, 0] - X[:, 1] + rng.normal(size=60) > 0, "yes", "no")
    rows = "".join(f"{a},{b},{label}\n" for (a, b), label in zip(X, labels, strict=True))
    (tmp_path / "points.csv").write_text("x1,x2,answer\n" + rows)
    (tmp_path / "c.yaml").write_text(
        "data:\n  source: points.csv\noptim:\n  epochs: 5\n  batch_size: 8\nmodel:\n  weight_decay: 0.1\n"
    )
    code, stdout, stderr = run("--config", tmp_path / "c.yaml", "--out", tmp_path / "out")
    assert code == 0, stderr
    assert stdout.count("✓") == 7 and "✗" not in stdout and "✓ equivalent: all 6 checks hold" in stdout
    assert "A = no vs B = yes (60 rows, 2 features" in stdout and "C = 1/(nλ)" in stdout
    assert (tmp_path / "out" / "plots" / "decision_boundaries.png").stat().st_size > 10_000


def test_cli_sparse_svmlight_source(tmp_path):
    """An svmlight source stays sparse end to end and passes every check."""
    X, y = random_problem(11, n_samples=60, n_features=8, sparse=True)
    dump_svmlight_file(X, y, str(tmp_path / "points.svm"))
    code, stdout, stderr = run("--data", tmp_path / "points.svm", "--json", "--set", "optim.epochs=5")
    assert code == 0, stderr
    assert json.loads(stdout)["equivalent"] is True


def test_cli_more_than_two_classes_without_classes_is_exit_2():
    """Three cultivars and no --classes: exit 2, the classes listed and the flag shown."""
    code, stdout, stderr = run("--data", "builtin:wine")
    assert (code, stdout) == (2, "")
    assert stderr == (
        "softreg: error: builtin:wine: has 3 classes (class_0, class_1, class_2); compare-logistic needs two: "
        "pick them with --classes A,B, e.g. --classes class_0,class_1\n"
    )


def test_cli_unknown_class_is_exit_2():
    """A class that is not in the data: exit 2, naming it and the classes there are."""
    code, stdout, stderr = run("--data", "builtin:digits", "--classes", "3,11")
    assert (code, stdout) == (2, "")
    assert stderr == (
        "softreg: error: builtin:digits: class(es) '11' not in the data; "
        "its classes are: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9\n"
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--data", "builtin:digits", "--classes", "3"],
            "--classes takes two class labels separated by a comma, e.g. --classes 3,8; got '3'",
        ),
        ([], "give exactly one of --config FILE or --data SOURCE"),
        (
            ["--data", "builtin:breast_cancer", "--set", "model.weight_decay=0"],
            "compare-logistic needs model.weight_decay > 0 (the optimum is unique only then), got 0",
        ),
        (
            ["--data", "builtin:wine", "--classes", "class_0,class_0"],
            "--classes must name two different classes, got 'class_0,class_0'",
        ),
    ],
    ids=["one-class", "no-source", "no-decay", "same-class-twice"],
)
def test_cli_bad_usage_is_exit_2(args, message):
    """Bad flags: exit 2 and one line on stderr."""
    code, stdout, stderr = run(*args)
    assert (code, stdout, stderr) == (2, "", f"softreg: error: {message}\n")


def test_cli_a_failed_check_is_exit_1(monkeypatch):
    """When a check fails (here: a wrong rate mapping) the table marks it with a cross and the exit is 1."""
    monkeypatch.setattr(logistic, "logistic_learning_rate", lambda lr: lr)
    code, stdout, stderr = run("--data", "builtin:wine", "--classes", "class_0,class_1", "--set", "optim.epochs=2")
    assert code == 1 and stderr == ""
    assert "✗ trajectory  max |p_softmax(B) − p_logistic| over all steps" in stdout
    assert (
        "✗ not equivalent: 2 of 6 checks failed (trajectory.max_abs_prob_diff, trajectory.max_abs_coef_diff)" in stdout
    )


# -- a rate at which SGD amplifies rounding


def test_rounding_amplification_separates_stable_from_unstable_rates(wine_pair):
    """On wine a rounding-sized change of the rate stays that size at lr 0.05 and grows to the weights' at lr 100."""
    config, problem = wine_pair
    measured = {}
    for lr in (0.05, 100.0):
        settings = configs(0.01, lr=lr, batch_size=8, epochs=20, momentum=0.9, schedule="cosine")
        measured[lr] = compare.rounding_amplification(problem.X, problem.y, settings, np.random.default_rng(0))
    assert measured[0.05][1] < 100 and measured[0.05][0] < 1e-9
    assert measured[100.0][1] > 1e9 and measured[100.0][0] > 1.0


def test_cli_unstable_rate_is_exit_1_and_says_why():
    """optim.lr=100 on wine: the trajectories part by rounding alone; exit 1 with the reason, not "not equivalent"."""
    code, stdout, stderr = run(
        "--data", "builtin:wine", "--classes", "class_0,class_1", "--set", "optim.lr=100", "--set", "optim.epochs=20"
    )
    assert (code, stdout) == (1, "")
    first, second = stderr.splitlines()
    assert first.startswith("softreg: error: training is unstable at optim.lr = 100: ")
    assert "rounding alone parts the softmax and logistic runs" in first
    assert second.startswith("The identity is about exact arithmetic: use a smaller optim.lr, e.g. ")
    suggested = float(second.rsplit(" ", 1)[1].rstrip("."))
    assert suggested < 10
    code, stdout, stderr = run(
        "--data", "builtin:wine", "--classes", "class_0,class_1", "--set", f"optim.lr={suggested}",
        "--set", "optim.epochs=20",
    )
    assert code == 0 and "✓ equivalent" in stdout, stderr


def test_cli_lr_auto_is_chosen_once_for_both_sides():
    """optim.lr=auto: the rate is chosen from the two-class data, the logistic side runs at twice it, and
    the identity holds."""
    code, stdout, stderr = run(
        "--data", "builtin:wine", "--classes", "class_0,class_1", "--set", "optim.lr=auto", "--set", "optim.epochs=20",
        "--json",
    )
    assert code == 0, stderr
    report = json.loads(stdout)
    rates = report["learning_rate"]
    assert isinstance(rates["softmax"], float) and rates["logistic"] == 2 * rates["softmax"]
    assert report["equivalent"]


def test_tracked_features_skip_paths_that_end_together():
    """The largest |w*| first, but not one within 15% of the largest |w*| of a feature already taken."""
    coef = np.array([1.0, 0.97, -0.9, 0.5, 0.45, 0.05, -0.3])
    assert compare.tracked_features(coef).tolist() == [0, 2, 3, 6]
    assert compare.tracked_features(coef, count=2).tolist() == [0, 2]
    assert compare.tracked_features(np.zeros(5)).tolist() == [0, 1, 2, 3]  # all zero: nothing to separate


# -- --out is a run directory report accepts, and --force replaces it


@pytest.fixture(scope="module")
def small_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("small") / "wine"
    code, _, stderr = run(
        "--data", "builtin:wine", "--classes", "class_0,class_1", "--set", "optim.epochs=3", "--out", out
    )
    assert code == 0, stderr
    return out


def test_cli_out_softmax_is_a_complete_run_directory(small_out):
    """softmax/ has the config, history, metrics (on every row) and plots a train run has."""
    softmax_dir = small_out / "softmax"
    for name in ("config.yaml", "history.csv", "metrics.json", "model.npz", "model.json", "test.npz"):
        assert (softmax_dir / name).is_file(), name
    assert (softmax_dir / "config.yaml").read_text().startswith("# compare-logistic: trained on every row")
    metrics = json.loads((softmax_dir / "metrics.json").read_text())
    assert metrics["split"] == "train" and metrics["n_samples"] == 130
    assert len((softmax_dir / "history.csv").read_text().splitlines()) == 1 + 3
    assert sorted(path.stem for path in (softmax_dir / "plots").iterdir()) == sorted(
        ["learning_curves", "confusion_matrix", "reliability", "weights", "class_probabilities"]
    )


@pytest.mark.slow
def test_cli_force_replaces_an_earlier_comparison(small_out, tmp_path):
    """An --out directory compare-logistic wrote is recognized as softreg's: --force replaces it."""
    import shutil

    out = tmp_path / "again"
    shutil.copytree(small_out, out)
    (out / "report.json").write_text("{}")
    code, _, stderr = run("--data", "builtin:wine", "--classes", "class_0,class_1", "--set", "optim.epochs=1",
                          "--out", out, "--force", "--json")
    assert code == 0, stderr
    assert json.loads((out / "report.json").read_text())["optim"]["epochs"] == 1
