"""`softreg report`: one self-contained HTML file with every plot embedded."""

import base64
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from softreg.config import PLOT_NAMES
from tests.strategies import run


class Links(HTMLParser):
    """Every src/href attribute and every tag name of a page."""

    def __init__(self):
        super().__init__()
        self.urls, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls += [value for name, value in attrs if name in ("src", "href", "action", "data")]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A quick two-feature run whose class names need HTML escaping."""
    folder = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(0)
    names = ["a<b>", "c&d", "plain"]
    lines = ["x1,x2,label"]
    for index in range(150):
        label = index % 3
        x1, x2 = rng.normal(loc=(3 * label, -2 * label), scale=1.0)
        lines.append(f"{x1:.4f},{x2:.4f},{names[label]}")
    (folder / "data.csv").write_text("\n".join(lines) + "\n")
    (folder / "c.yaml").write_text("data:\n  source: data.csv\noptim:\n  epochs: 4\n")
    out = folder / "run"
    code, _, stderr = run("train", "--config", folder / "c.yaml", "--out", out, "--quiet")
    assert code == 0, stderr
    return out


def test_report_embeds_every_plot_and_nothing_external(run_dir):
    """report.html holds every plot as a data URI of its PNG, and no URL, script or link leaves the page."""
    code, stdout, stderr = run("report", "--run", run_dir)
    assert code == 0, stderr
    path = run_dir / "report.html"
    assert stdout == f"wrote {path} ({len(PLOT_NAMES)} plots)\n"
    page = path.read_text(encoding="utf-8")
    for name in PLOT_NAMES:
        encoded = base64.b64encode((run_dir / "plots" / f"{name}.png").read_bytes()).decode("ascii")
        assert f'src="data:image/png;base64,{encoded}"' in page, name
    assert "http://" not in page and "https://" not in page
    links = Links()
    links.feed(page)
    assert "script" not in links.tags and "link" not in links.tags and "iframe" not in links.tags
    assert links.urls and all(url.startswith(("data:image/png;base64,", "#")) for url in links.urls)


def test_report_shows_config_data_metrics_and_history(run_dir):
    """The page has the config, n/d/K and class balance, the metrics table and one history row per epoch."""
    run("report", "--run", run_dir)
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "weight_decay: 0.0001" in page and "epochs: 4" in page
    expected = ("training rows", "features (d)", "classes (K)", "Class balance", "balanced accuracy", "macro average")
    for label in expected:
        assert label in page
    assert "a&lt;b&gt;" in page and "c&amp;d" in page and "<b>" not in page
    history = page[page.index('id="history"'):]
    assert len(re.findall(r"<tr><td>\d+</td>", history)) == 4


def test_report_output_elsewhere_needs_force_to_overwrite(run_dir, tmp_path):
    """--output writes another file; an existing one is refused (exit 2) unless --force."""
    target = tmp_path / "r.html"
    assert run("report", "--run", run_dir, "--output", target)[0] == 0
    target.write_text("mine")
    code, stdout, stderr = run("report", "--run", run_dir, "--output", target)
    assert code == 2 and stdout == ""
    assert stderr == f"softreg: error: {target}: exists; use --force to overwrite it\n"
    assert target.read_text() == "mine"
    code, _, _ = run("report", "--run", run_dir, "--output", target, "--force")
    assert code == 0 and target.read_text().startswith("<!DOCTYPE html>")


def test_report_of_a_run_without_plots_says_so(run_dir, tmp_path):
    """A run trained with output.plots: false still gets a report, which says it has no plots."""
    import shutil

    copy = tmp_path / "bare"
    shutil.copytree(run_dir, copy)
    shutil.rmtree(copy / "plots")
    code, stdout, _ = run("report", "--run", copy)
    assert code == 0 and stdout.endswith("(0 plots)\n")
    assert "has no plots" in (copy / "report.html").read_text(encoding="utf-8")


def test_report_of_an_incomplete_run_names_the_missing_file(run_dir, tmp_path):
    """A run directory without metrics.json: exit 2, the file named on stderr."""
    import shutil

    copy = tmp_path / "broken"
    shutil.copytree(run_dir, copy)
    (copy / "metrics.json").unlink()
    code, stdout, stderr = run("report", "--run", copy)
    assert code == 2 and stdout == ""
    assert f"{copy / 'metrics.json'}: missing" in stderr


@pytest.mark.slow
def test_report_of_a_compare_logistic_model_directory(tmp_path):
    """compare-logistic --out writes softmax/ as a run directory: report works on it, with its plots."""
    out = tmp_path / "wine"
    code, _, stderr = run("compare-logistic", "--data", "builtin:wine", "--classes", "class_0,class_1",
                          "--set", "optim.epochs=2", "--out", out, "--json")
    assert code == 0, stderr
    code, stdout, stderr = run("report", "--run", out / "softmax")
    assert code == 0, stderr
    assert stdout == f"wrote {out / 'softmax' / 'report.html'} (5 plots)\n"
    page = (out / "softmax" / "report.html").read_text(encoding="utf-8")
    assert "# compare-logistic: trained on every row" in page and "class_0" in page
