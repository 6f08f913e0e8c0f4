"""Facts about the losses and normalizers of `softreg.losses`: finite-difference gradients,
stability, the reduction to the fast path, the refused ``sum``, and training with each option."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from softreg import kernels, losses, softmax
from softreg.cli import main
from softreg.config import load_config
from softreg.errors import ConfigError
from softreg.train import ArrayData, Settings, evaluate_objective, fit, gradients, validation
from tests.strategies import logits, problems

OPTIONS = [(loss, normalizer) for loss in losses.LOSSES for normalizer in losses.NORMALIZERS]
temperatures = st.sampled_from([1.0, 0.5, 2.5])


def softreg(*args):
    """The command line in this process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def central_differences(function, point, step=1e-6):
    """d function / d point by central differences, same shape as ``point``."""
    gradient = np.zeros_like(point)
    for index in np.ndindex(point.shape):
        delta = np.zeros_like(point)
        delta[index] = step
        gradient[index] = (function(point + delta) - function(point - delta)) / (2 * step)
    return gradient


@pytest.mark.parametrize(("loss", "normalizer"), OPTIONS)
@given(problem=problems(max_rows=8, max_features=3, max_classes=4), temperature=temperatures,
       weighted=st.booleans())
def test_gradient_matches_central_finite_differences(loss, normalizer, problem, temperature, weighted):
    """dJ/dW and dJ/db of `losses.loss_gradient` agree with central differences to 1e-6 (relative, float64)."""
    X, y, coef, intercept = problem
    X = X / max(1.0, np.abs(X).max())  # logits of a few units: differences resolve the curvature
    weight = np.linspace(0.5, 2.0, len(y)) if weighted else None

    def objective(coef, intercept):
        return losses.loss_gradient(coef, intercept, X, y, 0.1, loss, normalizer, temperature, weight)[1]

    _, _, grad_coef, grad_intercept = losses.loss_gradient(
        coef, intercept, X, y, 0.1, loss, normalizer, temperature, weight
    )
    numeric_coef = central_differences(lambda c: objective(c, intercept), coef)
    numeric_intercept = central_differences(lambda b: objective(coef, b), intercept)
    scale = max(np.abs(grad_coef).max(), np.abs(grad_intercept).max(), 1e-3)
    assert np.abs(numeric_coef - grad_coef).max() <= 1e-6 * scale
    assert np.abs(numeric_intercept - grad_intercept).max() <= 1e-6 * scale


@pytest.mark.parametrize("normalizer", losses.NORMALIZERS)
def test_normalizer_vector_jacobian_product_matches_finite_differences(normalizer):
    """``proba_vjp(z, g) = (dp/dz)^T g``, with dp/dz taken by central differences of `proba`."""
    rng = np.random.default_rng(1)
    z, g = rng.normal(size=(1, 5)) * 2, rng.normal(size=(1, 5))
    jacobian = np.stack(
        [central_differences(lambda zz, k=k: losses.proba(zz, normalizer, 0.7)[0, k], z)[0] for k in range(5)]
    )  # (K, K): row k is dp_k/dz
    np.testing.assert_allclose(losses.proba_vjp(z, g, normalizer, 0.7)[0], jacobian.T @ g[0], rtol=1e-6, atol=1e-9)


@given(logits(), st.sampled_from(losses.NORMALIZERS), st.sampled_from(losses.LOSSES),
       st.sampled_from([1e-3, 1.0, 1e3]))
def test_every_option_is_finite_for_any_finite_logits(z, normalizer, loss, temperature):
    """p (rows summing to one), log p, losses and gradients stay finite, logits of 1e6 included."""
    p = losses.proba(z, normalizer, temperature)
    assert np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(np.isfinite(losses.log_proba(z, normalizer, temperature)))
    y = np.arange(len(z)) % z.shape[1]
    sample, grad = losses.logit_loss_gradient(z, y, loss, normalizer, temperature)
    assert np.all(np.isfinite(sample)) and np.all(np.isfinite(grad))


def test_extreme_logits_near_the_float_limit_stay_finite():
    """Taylor and spherical are computed through hypot: logits of 1e300 do not overflow."""
    z = np.array([[1e300, -1e300, 0.0, -1.0]])
    for normalizer in ("taylor", "spherical"):
        assert np.all(np.isfinite(losses.log_proba(z, normalizer)))
        _, grad = losses.logit_loss_gradient(z, np.array([3]), "squared_error", normalizer, 0.01)
        assert np.all(np.isfinite(grad))


@given(problems())
def test_defaults_are_exactly_the_softmax_page(problem):
    """With the defaults `losses.loss_gradient` returns what `softmax.loss_gradient` returns, bit for bit."""
    X, y, coef, intercept = problem
    expected = softmax.loss_gradient(coef, intercept, X, y, 0.01)
    got = losses.loss_gradient(coef, intercept, X, y, 0.01)
    assert got[:2] == expected[:2]
    np.testing.assert_array_equal(got[2], expected[2])
    np.testing.assert_array_equal(got[3], expected[3])


@given(problems(), st.booleans())
def test_generic_path_with_softmax_and_cross_entropy_agrees_with_the_fast_path(problem, weighted):
    """The generic building block, run with softmax + cross-entropy, equals `softmax.loss_gradient` to rounding."""
    X, y, coef, intercept = problem
    weight = np.linspace(0.2, 3.0, len(y)) if weighted else None
    data_loss, _, grad_coef, grad_intercept = softmax.loss_gradient(coef, intercept, X, y, 0.0, weight)
    row_weight = 1.0 / len(y) if weight is None else weight / weight.sum()
    generic = losses.weighted_loss_gradient(coef, intercept, X, y, row_weight)
    np.testing.assert_allclose(generic[0], data_loss, rtol=1e-12)
    np.testing.assert_allclose(generic[1], grad_coef, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(generic[2], grad_intercept, rtol=1e-10, atol=1e-12)


def test_cross_entropy_gradient_of_the_true_logit_tends_to_minus_one_and_squared_errors_to_zero():
    """As p_y -> 0, dL/dz_y -> -1 for cross-entropy (p_y - 1), -> 0 for squared error (2 p_y (2 p_y - 1 - |p|^2))."""
    z = np.array([[-30.0, 0.0, 0.0, 0.0]])  # p_y ~ 1e-13
    _, ce = losses.logit_loss_gradient(z, np.array([0]), "cross_entropy")
    _, se = losses.logit_loss_gradient(z, np.array([0]), "squared_error")
    p = softmax.softmax(z)[0]
    assert ce[0, 0] == pytest.approx(p[0] - 1.0) and ce[0, 0] < -0.999
    assert se[0, 0] == pytest.approx(2 * p[0] * (2 * p[0] - 1 - p @ p)) and abs(se[0, 0]) < 1e-12


def test_temperature_is_a_rescaling_of_the_logits():
    """softmax at temperature T is softmax of z / T, for the probabilities and the loss."""
    z = np.array([[2.0, -1.0, 0.5]])
    np.testing.assert_allclose(losses.proba(z, "softmax", 4.0), softmax.softmax(z / 4.0), rtol=1e-15)
    sample, _ = losses.sample_losses(z, np.array([1]), "cross_entropy", "softmax", 4.0)
    assert sample[0] == pytest.approx(-softmax.log_softmax(z / 4.0)[0, 1])


def test_taylor_and_spherical_predict_argmax_p_not_argmax_z():
    """f(z) grows again for very negative z: the predicted class is argmax p."""
    z = np.array([[1.0, -5.0, 0.0]])
    assert losses.proba(z, "taylor").argmax() == 1 and losses.proba(z, "spherical").argmax() == 1


def test_sum_is_refused_with_the_reason():
    """The math refuses ``sum`` and says why: negative and undefined outputs."""
    with pytest.raises(ValueError, match=r"sum is refused: p = z / sum\(z\) is not a probability map"):
        losses.proba(np.zeros((1, 2)), "sum")
    with pytest.raises(ValueError, match=r"loss must be one of cross_entropy, squared_error, got 'hinge'"):
        losses.check_options("hinge", "softmax", 1.0)


def test_sum_in_a_config_is_a_config_error_that_explains(tmp_path):
    """model.normalizer: sum fails the config check, naming the file and key, with the example of negative p."""
    path = tmp_path / "c.yaml"
    path.write_text("data: {source: builtin:iris}\nmodel: {normalizer: sum}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: model.normalizer sum is refused")
    assert "negative probability" in message and "divide by zero" in message


def test_sum_on_the_command_line_exits_2_with_one_line(tmp_path):
    """``softreg train --set model.normalizer=sum``: exit 2, one line on stderr, nothing on stdout, no run."""
    code, stdout, stderr = softreg("train", "--config", "configs/iris.yaml", "--set", "model.normalizer=sum",
                                   "--out", tmp_path / "run")
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1
    assert "model.normalizer sum is refused" in stderr and "negative probability" in stderr
    assert stderr == f"softreg: error: --set: model.normalizer {losses.SUM_REFUSED}\n"  # the reason whole, not cut
    assert not (tmp_path / "run").exists()


def test_a_reason_longer_than_a_terminal_line_is_never_cut():
    """The CLI's error line cuts only overlong words (pasted values), never softreg's own sentences."""
    from softreg.cli.group import _short

    reason = " ".join(["a reason of many words"] * 40)  # 919 characters
    assert _short(reason) == reason
    assert _short("x" * 300 + " ok") == "x" * 38 + "..." + "x" * 39 + " ok"


def test_out_of_range_options_are_config_errors(tmp_path):
    """An unknown loss gets "did you mean", a temperature <= 0 the range, spherical without intercept the reason."""
    path = tmp_path / "c.yaml"
    path.write_text("data: {source: builtin:iris}\n")
    with pytest.raises(ConfigError, match=r"model.loss must be one of .* \(did you mean 'squared_error'\?\)"):
        load_config(path, ["model.loss=squared_eror"])
    with pytest.raises(ConfigError, match=r"model.temperature must be > 0, got 0.0"):
        load_config(path, ["model.temperature=0"])
    with pytest.raises(ConfigError, match=r"spherical needs model.fit_intercept: true"):
        load_config(path, ["model.normalizer=spherical", "model.fit_intercept=false"])


def small_problem(seed=0, n_samples=300, n_features=5, n_classes=3):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_classes, n_features)) * 2
    y = rng.integers(0, n_classes, n_samples)
    X = centers[y] + rng.normal(size=(n_samples, n_features))
    return X, y


@pytest.mark.parametrize(("loss", "normalizer"), OPTIONS)
def test_fit_with_each_option_learns_and_logs_its_own_loss(loss, normalizer):
    """SGD with each option reaches a finite model that beats chance; the objective it logs is that loss's J."""
    X, y = small_problem()
    settings = Settings(loss=loss, normalizer=normalizer, temperature=0.8, epochs=5, weight_decay=1e-3)
    result = fit((X, y), 3, settings, np.random.default_rng(0), val=(X, y))
    assert np.all(np.isfinite(result.coef)) and np.all(np.isfinite(result.intercept))
    assert result.history[-1].val_accuracy > 0.8
    expected = losses.loss_gradient(result.coef, result.intercept, X, y, 1e-3, loss, normalizer, 0.8)
    assert result.objective == pytest.approx(expected[1], rel=1e-10)
    val_loss, val_accuracy = validation(
        result.coef, result.intercept, ArrayData(X, y), loss=loss, normalizer=normalizer, temperature=0.8
    )
    assert val_loss == pytest.approx(expected[0], rel=1e-10)
    assert result.history[-1].val_accuracy == val_accuracy


def test_spherical_starts_from_equal_intercepts_of_one():
    """At z = 0 spherical's gradient vanishes; its training starts with intercepts 1 and moves at once."""
    X, y = small_problem()
    _, _, grad_coef, grad_intercept = losses.loss_gradient(np.zeros((3, 5)), np.zeros(3), X, y, 0.0, "cross_entropy",
                                                           "spherical")
    assert np.abs(grad_coef).max() == 0 and np.abs(grad_intercept).max() == 0
    result = fit((X, y), 3, Settings(normalizer="spherical", epochs=1), np.random.default_rng(0))
    assert np.abs(result.coef).max() > 0.1


@pytest.mark.parametrize("variance_reduction", ["none", "svrg"])
def test_generic_estimators_agree_with_the_kernels_for_softmax_and_cross_entropy(variance_reduction):
    """Run with cross-entropy + softmax, the generic estimators give the fast kernels' batch loss and
    gradient (SVRG: from the same snapshot) to rounding."""
    from softreg.train import generic

    X, y = small_problem()
    data = ArrayData(X, y, np.linspace(0.5, 1.5, len(y)))
    args = (3, 5, len(y), np.dtype(np.float64), 32, 1e-2, True)
    fast = gradients.ESTIMATORS[variance_reduction](*args)
    general = generic.ESTIMATORS[variance_reduction](*args, loss="cross_entropy", normalizer="softmax",
                                                     temperature=1.0)
    rng = np.random.default_rng(4)
    snapshot_coef, snapshot_intercept = rng.normal(size=(3, 5)), rng.normal(size=3)
    fast.end_epoch(snapshot_coef, snapshot_intercept, data)
    general.end_epoch(snapshot_coef, snapshot_intercept, data)
    coef, intercept = rng.normal(size=(3, 5)), rng.normal(size=3)
    X_batch, y_batch, weight_batch = next(data.minibatches(32, np.random.default_rng(0)))
    expected = fast.batch(coef, intercept, X_batch, y_batch, weight_batch)
    assert general.batch(coef, intercept, X_batch, y_batch, weight_batch) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(general.work.gradient, fast.work.gradient, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("options", [("squared_error", "softmax", 1.0), ("cross_entropy", "taylor", 2.0)])
def test_svrg_with_other_losses_drives_the_gradient_towards_zero(options):
    """The generic SVRG estimator at a constant rate: the full gradient norm falls by three orders of magnitude."""
    X, y = small_problem()
    loss, normalizer, temperature = options
    settings = Settings(loss=loss, normalizer=normalizer, temperature=temperature, variance_reduction="svrg",
                        lr=1.0, momentum=0.5, epochs=100, batch_size=32, weight_decay=1e-2)
    result = fit((X, y), 3, settings, np.random.default_rng(0))
    assert result.grad_norm < 1e-3 * result.history[0].grad_norm
    objective, grad_norm = evaluate_objective(result.coef, result.intercept, ArrayData(X, y), settings)
    assert grad_norm == pytest.approx(result.grad_norm, rel=1e-9)
    assert objective == pytest.approx(result.objective, rel=1e-12)


def test_sparse_and_dense_generic_gradients_agree():
    """The generic gradient of CSR X equals that of the same dense X."""
    X, y = small_problem(n_samples=40)
    X[np.abs(X) < 1] = 0
    coef, intercept = np.random.default_rng(2).normal(size=(3, 5)), np.zeros(3)
    dense = losses.loss_gradient(coef, intercept, X, y, 0.1, "squared_error", "taylor", 1.5)
    sparse = losses.loss_gradient(coef, intercept, sp.csr_matrix(X), y, 0.1, "squared_error", "taylor", 1.5)
    for got, expected in zip(sparse, dense, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_chunked_generic_pass_equals_the_one_shot_weighted_objective():
    """`losses.chunked_loss_gradient` over chunks with relative weights is the weighted J of the whole data."""
    X, y = small_problem(n_samples=50)
    weight = np.linspace(0.1, 2.0, 50)
    data = ArrayData(X, y, weight)
    coef, intercept = np.random.default_rng(3).normal(size=(3, 5)), np.ones(3)
    chunked = losses.chunked_loss_gradient(coef, intercept, data.chunks(7), 50, 0.1, "squared_error", "spherical")
    whole = losses.loss_gradient(coef, intercept, X, y, 0.1, "squared_error", "spherical", 1.0, weight)
    for got, expected in zip(chunked, whole, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-10)
    assert kernels.Workspace  # the fast path's kernels are untouched by these options


@pytest.mark.parametrize(("loss", "normalizer", "temperature"),
                         [("squared_error", "softmax", 1.0), ("cross_entropy", "taylor", 1.0),
                          ("cross_entropy", "spherical", 1.0), ("cross_entropy", "softmax", 2.0)])
def test_train_with_each_option_writes_a_finite_model_that_predicts_with_its_normalizer(
    tmp_path, loss, normalizer, temperature
):
    """``softreg train`` with the option: exit 0, a finite model, model.json records the option, and
    `predict` and `evaluate` use its normalizer at its temperature."""
    from softreg import rundir
    from softreg.estimator import load_run

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"source": "builtin:iris", "val": 0.2},
        "model": {"loss": loss, "normalizer": normalizer, "temperature": temperature, "weight_decay": 1e-3},
        "optim": {"epochs": 15, "batch_size": 16}, "output": {"plots": False},
    }))
    run = tmp_path / "run"
    code, stdout, stderr = softreg("train", "--config", config, "--out", run, "--quiet", "--json")
    assert code == 0, stderr
    model = rundir.load_model(run)
    assert np.all(np.isfinite(model.coef))
    meta = json.loads((run / "model.json").read_text())
    assert (meta["loss"], meta["normalizer"], meta["temperature"]) == (loss, normalizer, temperature)
    assert meta["format_version"] == rundir.OUTPUT_FORMAT_VERSION
    X_raw, y = rundir.load_test_split(run)
    logits = softmax.decision_function(model.coef, model.intercept, model.standardize(X_raw))
    expected = losses.proba(logits, normalizer, temperature)
    np.testing.assert_allclose(model.predict_proba(X_raw), expected, rtol=1e-12)
    np.testing.assert_allclose(load_run(run).predict_proba(X_raw), expected, rtol=1e-12)
    metrics = json.loads(stdout)["metrics"]
    assert metrics["accuracy"] == pytest.approx(np.mean(expected.argmax(axis=1) == y))


def test_a_model_json_without_the_options_means_the_defaults(tmp_path):
    """model.json written before the options existed loads as cross-entropy + softmax at T = 1."""
    from softreg import rundir
    from softreg.model import Model

    model = Model(coef=np.zeros((3, 2)), intercept=np.zeros(3), classes=np.array(["a", "b", "c"]),
                  feature_mean=np.zeros(2), feature_scale=np.ones(2), feature_names=["u", "v"])
    rundir.save_model(tmp_path, model)
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["format_version"] == rundir.FORMAT_VERSION  # default models stay readable by older softreg
    for key in ("loss", "normalizer", "temperature"):
        del meta[key]
    (tmp_path / "model.json").write_text(json.dumps(meta))
    loaded = rundir.load_model(tmp_path)
    assert (loaded.loss, loaded.normalizer, loaded.temperature) == ("cross_entropy", "softmax", 1.0)


def test_evaluate_optimum_solves_a_temperature_and_refuses_non_convex_objectives(tmp_path):
    """--optimum at T = 2 solves the (convex) objective, the SGD model's gap is >= 0; squared error exits 2."""
    runs = {}
    for name, model in (("hot", {"temperature": 2.0}), ("squared", {"loss": "squared_error"})):
        config = tmp_path / f"{name}.yaml"
        config.write_text(yaml.safe_dump({
            "data": {"source": "builtin:iris"}, "model": {"weight_decay": 1e-2, **model},
            "optim": {"epochs": 30, "batch_size": 16, "schedule": "cosine"}, "output": {"plots": False},
        }))
        runs[name] = tmp_path / name
        assert softreg("train", "--config", config, "--out", runs[name], "--quiet")[0] == 0
    code, stdout, stderr = softreg("evaluate", "--run", runs["hot"], "--optimum", "--json")
    assert code == 0, stderr
    optimum = json.loads(stdout)["optimum"]
    assert -1e-9 <= optimum["gap"] < 0.05 and optimum["grad_norm"] < 1e-6
    code, _, stderr = softreg("evaluate", "--run", runs["squared"], "--optimum")
    assert code == 2 and "--optimum solves convex objectives only" in stderr


def test_estimator_trains_and_predicts_with_its_normalizer_and_checks_the_options():
    """SoftmaxRegression(normalizer=..., temperature=...): predict_proba is that normalizer at T and
    predict its argmax; bad options are ValueErrors naming the config key."""
    from softreg import SoftmaxRegression

    X, y = small_problem()
    clf = SoftmaxRegression(normalizer="taylor", temperature=2.0, loss="squared_error", epochs=3,
                            standardize=False, random_state=0).fit(X, y)  # logits of X as given
    logits = X @ clf.coef_.T + clf.intercept_
    np.testing.assert_allclose(clf.predict_proba(X), losses.proba(logits, "taylor", 2.0), rtol=1e-12)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), clf.predict_proba(X), rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[clf.predict_proba(X).argmax(axis=1)])
    with pytest.raises(ValueError, match=r"normalizer sum is refused.*\(model.normalizer in a config\)"):
        SoftmaxRegression(normalizer="sum").fit(X, y)
    with pytest.raises(ValueError, match=r"normalizer='spherical' needs fit_intercept=True"):
        SoftmaxRegression(normalizer="spherical", fit_intercept=False).fit(X, y)


def test_compare_logistic_refuses_other_losses():
    """The two-class identity is about cross-entropy + softmax: other options are a usage error."""
    from softreg.commands.compare_logistic import compare_config
    from softreg.errors import UsageError

    with pytest.raises(UsageError, match=r"set model.loss: cross_entropy, model.normalizer: softmax"):
        compare_config(data="builtin:wine", classes="class_0,class_1", overrides=["model.normalizer=taylor"])


@pytest.mark.parametrize("variance_reduction", ["none", "svrg"])
def test_a_run_with_other_options_resumes_bit_for_bit(tmp_path, variance_reduction):
    """Taylor + squared error at T = 1.5: 3 epochs, then --resume to 6, gives the 6-epoch run's model exactly."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"source": "builtin:iris", "val": 0.2},
        "model": {"loss": "squared_error", "normalizer": "taylor", "temperature": 1.5},
        "optim": {"epochs": 6, "batch_size": 16, "schedule": "constant", "variance_reduction": variance_reduction},
        "output": {"plots": False},
    }))
    assert softreg("train", "--config", config, "--out", tmp_path / "whole", "--quiet")[0] == 0
    part = softreg("train", "--config", config, "--set", "optim.epochs=3", "--out", tmp_path / "part", "--quiet")
    assert part[0] == 0
    code, _, stderr = softreg("train", "--resume", tmp_path / "part", "--set", "optim.epochs=6", "--quiet")
    assert code == 0, stderr
    assert (tmp_path / "part" / "model.npz").read_bytes() == (tmp_path / "whole" / "model.npz").read_bytes()
