"""Every figure is drawn as a valid, non-blank PNG, from arrays and from a real run."""

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from softreg import plots
from softreg.config import PLOT_NAMES
from softreg.evaluate import classification_metrics, expected_calibration_error, reliability_bins
from softreg.plots import _figure
from softreg.softmax import softmax
from tests.strategies import run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    """A PNG file by signature that decodes with matplotlib and is not one flat colour."""
    path = Path(path)
    assert path.exists(), path
    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels[..., :3].var() > 0, f"{path} is blank"


def problem(n_samples, n_classes, n_features, seed=0, absent=()):
    """Raw X (n, d), y (n,), coef (K, d), intercept (K,), probabilities (n, K) of a random linear model."""
    rng = np.random.default_rng(seed)
    present = np.setdiff1d(np.arange(n_classes), absent)
    y = rng.choice(present, size=n_samples)
    centers = rng.normal(scale=3.0, size=(n_classes, n_features))
    X = centers[y] + rng.normal(size=(n_samples, n_features))
    coef = centers - centers.mean(axis=0)
    intercept = -0.5 * (coef**2).sum(axis=1)
    proba = softmax(X @ coef.T + intercept)
    return X, y, coef, intercept, proba


def history(epochs=12, every=1, validation=True):
    rows = []
    for epoch in range(1, epochs + 1):
        evaluated = epoch % every == 0 or epoch in (1, epochs)
        rows.append({
            "epoch": epoch, "lr": 0.1 * (1 - epoch / (epochs + 1)), "train_loss": 1.0 / epoch,
            "objective": 1.0 / epoch + 0.2 if evaluated else None, "grad_norm": 0.1 / epoch if evaluated else None,
            "val_loss": 1.1 / epoch if validation else None, "val_accuracy": 0.8 + 0.01 * epoch if validation else None,
            "seconds": 0.01,
        })
    return rows


@pytest.mark.parametrize("optimum, every, validation", [(None, 1, True), (0.2 - 1e-3, 1, False), (0.19, 5, True)])
def test_learning_curves(tmp_path, optimum, every, validation):
    """Loss, validation accuracy and lr panels; the objective-gap panel when the optimum is known."""
    path = plots.learning_curves(history(every=every, validation=validation), tmp_path / "lc.png", optimum)
    assert_png(path)


@pytest.fixture
def figures(monkeypatch):
    """Keep the figures the plot functions draw instead of saving them; closed afterwards."""
    import matplotlib.pyplot as plt

    kept = []
    monkeypatch.setattr(_figure, "save", lambda figure, path: kept.append(figure) or figure)
    yield kept
    for figure in kept:
        plt.close(figure)


@pytest.mark.parametrize("optimum, validation, titles", [
    (None, True, ["Loss", "Validation accuracy", "Learning rate"]),
    (None, False, ["Loss", "Learning rate"]),
    (0.19, False, ["Loss", "Learning rate", "Relative gap to the exact optimum"]),
    (0.19, True, ["Loss", "Validation accuracy", "Learning rate", "Relative gap to the exact optimum"]),
])
def test_learning_curves_draw_the_validation_panel_only_with_validation(figures, optimum, validation, titles):
    """data.val: 0 leaves out the validation-accuracy panel instead of drawing it empty."""
    figure = plots.learning_curves(history(validation=validation), "unused.png", optimum)
    assert [axis.get_title().split(" (")[0] for axis in figure.axes] == titles


def test_sparse_objective_points_are_large_joined_and_span_every_epoch(figures):
    """J at epochs 1 and 100 only: big joined markers; the gap panel spans epochs 1..100 like the others; a hint."""
    figure = plots.learning_curves(history(epochs=100, every=1000, validation=False), "unused.png", 0.19)
    loss_axis, _, gap_axis = figure.axes
    objective = next(line for line in loss_axis.get_lines() if line.get_label().startswith("train objective J"))
    assert list(objective.get_xdata()) == [1, 100] and "at 2 of 100 epochs" in objective.get_label()
    assert objective.get_marker() == "o" and objective.get_markersize() >= 6 and objective.get_linestyle() != "None"
    (gap,) = gap_axis.get_lines()
    assert gap.get_marker() == "o" and gap.get_linestyle() != "None"
    for axis in figure.axes:
        low, high = axis.get_xlim()
        assert low < 1 < 100 < high and high - low < 110
    assert any("output.eval_every: 1" in text.get_text() for text in figure.texts)


def test_no_eval_every_hint_when_the_objective_is_drawn_every_epoch(figures):
    """With J at every epoch there is nothing to hint at."""
    figure = plots.learning_curves(history(epochs=30), "unused.png", 0.19)
    assert not any("eval_every" in text.get_text() for text in figure.texts)


@pytest.mark.parametrize("n_classes, absent", [(3, ()), (26, ()), (4, (2,))])
def test_confusion_matrix(tmp_path, n_classes, absent):
    """Counts and row-normalized panels for 3 and 26 classes and with a class the data lack."""
    _, y, _, _, proba = problem(40 * n_classes, n_classes, 3, absent=absent)
    classes = [chr(ord("A") + index) for index in range(n_classes)]
    confusion = classification_metrics(y, proba, np.array(classes))["confusion_matrix"]
    assert_png(plots.confusion_matrix(confusion, classes, tmp_path / "cm.png"))


def test_reliability(tmp_path):
    """The reliability diagram with its bin counts."""
    _, y, _, _, proba = problem(300, 5, 3)
    path = plots.reliability(reliability_bins(y, proba), expected_calibration_error(y, proba), tmp_path / "rel.png")
    assert_png(path)


def test_image_side_recognizes_square_pixel_features_only():
    """8x8 pixel names are an image; 16 letter-box features or 64 named measurements are not."""
    assert plots.image_side([f"pixel_{row}_{column}" for row in range(8) for column in range(8)]) == 8
    assert plots.image_side([f"pixel{index}" for index in range(784)]) == 28
    assert plots.image_side([str(index) for index in range(1, 17)]) is None
    assert plots.image_side([f"x{index}" for index in range(63)]) is None
    assert plots.image_side([f"assay {chr(65 + index % 26)}{index}" for index in range(64)]) is None


@pytest.mark.parametrize("n_classes, names", [
    (10, [f"pixel_{row}_{column}" for row in range(8) for column in range(8)]),
    (3, ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]),
    (26, [str(index) for index in range(1, 17)]),
])
def test_weights(tmp_path, n_classes, names):
    """Per-class images for pixel features, else a class x feature heatmap with the feature names."""
    coef = np.random.default_rng(0).normal(size=(n_classes, len(names)))
    assert_png(plots.weights(coef, [f"class {index}" for index in range(n_classes)], names, tmp_path / "w.png"))


def test_decision_regions(tmp_path):
    """Regions of two raw features with the points and the misclassified ones marked."""
    X, y, coef, intercept, _ = problem(200, 3, 2)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    path = plots.decision_regions(coef * scale, intercept + coef @ mean, mean, scale, X, y, ["a", "b", "c"],
                                  ["height", "weight"], tmp_path / "dr.png")
    assert_png(path)


def test_class_probabilities(tmp_path):
    """The histogram of the true class's probability, with a class the data lack."""
    _, y, _, _, proba = problem(200, 4, 3, absent=(1,))
    assert_png(plots.class_probabilities(proba, y, ["a", "b", "c", "d"], tmp_path / "cp.png"))


# -- drawn by train and evaluate


@pytest.fixture(scope="module")
def two_feature_config(tmp_path_factory):
    """A CSV with two features and three classes, and a config that trains on it quickly."""
    folder = tmp_path_factory.mktemp("blobs")
    X, y, _, _, _ = problem(240, 3, 2, seed=4)
    names = np.array(["low", "mid", "high"])
    lines = ["height,weight,kind"] + [f"{a:.4f},{b:.4f},{names[label]}" for (a, b), label in zip(X, y, strict=True)]
    (folder / "blobs.csv").write_text("\n".join(lines) + "\n")
    config = folder / "blobs.yaml"
    config.write_text("data:\n  source: blobs.csv\noptim:\n  epochs: 5\n")
    return config


@pytest.mark.slow
def test_train_draws_all_six_plots_for_two_features(two_feature_config, tmp_path):
    """A two-feature run gets all six plots in plots/, each a valid, non-blank PNG."""
    out = tmp_path / "run"
    code, _, stderr = run("train", "--config", two_feature_config, "--out", out, "--quiet")
    assert code == 0, stderr
    assert sorted(path.stem for path in (out / "plots").iterdir()) == sorted(PLOT_NAMES)
    for name in PLOT_NAMES:
        assert_png(out / "plots" / f"{name}.png")


def test_output_plots_selects_the_plots(two_feature_config, tmp_path):
    """output.plots: a list draws only those plots; false draws none."""
    out = tmp_path / "some"
    code, _, stderr = run("train", "--config", two_feature_config, "--out", out, "--quiet",
                          "--set", "output.plots=[weights, reliability]")
    assert code == 0, stderr
    assert sorted(path.name for path in (out / "plots").iterdir()) == ["reliability.png", "weights.png"]
    out = tmp_path / "none"
    code, _, stderr = run("train", "--config", two_feature_config, "--out", out, "-q", "--set", "output.plots=false")
    assert code == 0, stderr
    assert not (out / "plots").exists()


# -- compare-logistic


def test_coefficient_paths_one_colour_per_feature_and_a_legend_that_matches(figures, tmp_path):
    """Each feature has its own colour (solid softmax line, logistic circles of that colour); the two style
    entries of the legend are black, matching no feature, and nothing grey is left over."""
    from matplotlib.colors import to_rgba

    steps = np.arange(1, 501)[:, None]
    softmax_path = np.array([1.0, 0.5, -0.6, -1.2]) * (1 - np.exp(-steps / 50.0))  # (500, 4)
    names = ["a (w* = 1)", "b (w* = 0.5)", "c (w* = -0.6)", "d (w* = -1.2)"]
    figure = plots.coefficient_paths(softmax_path, softmax_path.copy(), names, tmp_path / "cp.png")
    (axis,) = figure.axes
    legend = axis.get_legend()
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels[:4] == names and len(labels) == 6
    assert labels[4].startswith("softmax SGD") and labels[5].startswith("logistic SGD")
    handles = legend.legend_handles
    feature_colors = [to_rgba(handle.get_color()) for handle in handles[:4]]
    assert len(set(feature_colors)) == 4
    assert to_rgba(handles[4].get_color()) == to_rgba("black") and handles[4].get_linestyle() == "-"
    assert handles[5].get_marker() == "o" and handles[5].get_linestyle() == "None"
    drawn = [line for line in axis.get_lines() if len(line.get_xdata())]  # not the legend's empty style keys
    solid = [line for line in drawn if line.get_linestyle() == "-" and len(line.get_xdata()) == 500]
    circles = [line for line in drawn if line.get_marker() == "o"]
    assert [to_rgba(line.get_color()) for line in solid] == feature_colors
    assert [to_rgba(line.get_markeredgecolor()) for line in circles] == feature_colors
    assert axis.get_xscale() == "log"


def test_coefficient_paths_png(tmp_path):
    """The file itself: a valid, non-blank PNG."""
    path = np.cumsum(np.random.default_rng(0).normal(size=(200, 3)), axis=0)
    assert_png(plots.coefficient_paths(path, path, ["x", "y", "z"], tmp_path / "cp.png"))


def test_names_are_drawn_as_written_and_log_ticks_stay_numbers(tmp_path):
    """A class `$$`, a lone `$` and `price_$$` are plain text (escaped, not mathtext: a pair of dollars
    would be parsed as TeX), while a log axis's tick labels are still mathtext (10^-3, not the raw
    `$\\mathdefault{...}$`): no global switch turns math off."""
    import matplotlib.cbook

    from softreg.plots import _figure

    plt = _figure.pyplot()
    figure, axis = plt.subplots()
    axis.set_yscale("log")
    axis.plot([1, 2, 3], [1e-3, 1e-1, 10], label=_figure.shown("$$"))
    axis.set(title=_figure.shown("tier $ and price_$$"), xlabel=_figure.shown("a\x1b[2J"))
    axis.legend()
    _figure.save(figure, tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert axis.get_title() == "tier \\$ and price_\\$\\$" and axis.get_xlabel() == "a\\x1b[2J"
    assert not matplotlib.cbook.is_math_text(axis.get_title())
    ticks = [label for label in axis.get_yticklabels() if label.get_text()]
    assert ticks and all(label.get_parse_math() and "mathdefault" in label.get_text() for label in ticks)


def test_a_certified_run_gets_its_bound_panel_and_full_batch_rates_a_log_axis(figures):
    """gap_bound at some epochs: a log panel of the certified bound at those epochs, last value in the title;
    rates spanning decades (full-batch Barzilai-Borwein steps) on a log axis, a plain schedule on a linear one."""
    rows = history(epochs=12, validation=False)
    for row in rows:
        row["gap_bound"] = {4: 0.3, 8: 2e-3, 12: 8e-5}.get(row["epoch"])
        row["lr"] = 0.2 if row["epoch"] <= 5 else 10.0 ** (row["epoch"] % 3)
    figure = plots.learning_curves(rows, "unused.png")
    _, lr_axis, bound_axis = figure.axes
    assert bound_axis.get_title() == "Certified bound on (J - J*) / J* (last 8.00e-05)"
    assert bound_axis.get_yscale() == "log" and list(bound_axis.get_lines()[0].get_xdata()) == [4, 8, 12]
    assert lr_axis.get_yscale() == "log"
    plain = plots.learning_curves(history(epochs=12, validation=False), "unused.png")
    assert [axis.get_yscale() for axis in plain.axes] == ["linear", "linear"]
