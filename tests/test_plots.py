"""Every figure is drawn as a valid, non-blank PNG, from arrays and from a real run."""

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from click.testing import CliRunner

from softreg import plots
from softreg.cli import main
from softreg.config import PLOT_NAMES
from softreg.evaluate import classification_metrics, expected_calibration_error, reliability_bins
from softreg.softmax import softmax

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


def run(*args):
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def two_feature_config(tmp_path_factory):
    """A CSV with two features and three classes, and a config that trains on it quickly."""
    folder = tmp_path_factory.mktemp("blobs")
    X, y, _, _, _ = problem(240, 3, 2, seed=4)
    names = np.array(["low", "mid", "high"])
    lines = ["height,weight,kind"] + [f"{a:.4f},{b:.4f},{names[label]}" for (a, b), label in zip(X, y)]
    (folder / "blobs.csv").write_text("\n".join(lines) + "\n")
    config = folder / "blobs.yaml"
    config.write_text("data:\n  source: blobs.csv\noptim:\n  epochs: 5\n")
    return config


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
