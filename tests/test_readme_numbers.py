"""The README's numbers are the ones the code makes: benchmarks/readme_numbers.py remakes the demo's
numbers and the "Measured" table and names every one that differs from what is committed."""

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("readme_numbers", REPO / "benchmarks" / "readme_numbers.py")
readme_numbers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(readme_numbers)

COMMITTED = json.loads((REPO / "benchmarks" / "why-softmax" / "numbers.json").read_text(encoding="utf-8"))
README = (REPO / "README.md").read_text(encoding="utf-8")


def current_blocks():
    return {match["name"]: match["body"] for match in readme_numbers.BLOCK.finditer(README)}


def test_the_readmes_demo_blocks_are_rendered_from_the_committed_numbers():
    """Every generated block of the README but the Measured table is what the committed numbers.json renders,
    and numbers.md is what it writes (the slow test below remakes numbers.json itself)."""
    from softreg.commands.demo import numbers_markdown

    blocks = current_blocks()
    assert sorted(blocks) == sorted([*readme_numbers.DEMO_BLOCKS, "measured"])
    for name, render in readme_numbers.DEMO_BLOCKS.items():
        assert blocks[name] == render(COMMITTED), name
    assert numbers_markdown(COMMITTED) == (REPO / "benchmarks" / "why-softmax" / "numbers.md").read_text()


def test_a_number_that_differs_is_named_and_write_mode_replaces_only_the_blocks():
    """A changed number of the demo (in numbers.json and so in a table) and one of the Measured table: the check
    names the block and the JSON path; with_blocks rewrites the blocks and leaves the prose as it was."""
    from softreg.commands.demo import numbers_markdown

    measured_now = [{"label": "`configs/x.yaml` (λ = 1e-3)", "accuracy": 0.95, "optimum_accuracy": 0.96, "gap": 1e-4,
                     "epochs": 20, "gap_bound": 3e-3, "converged": False}]
    changed = copy.deepcopy(COMMITTED)
    changed["normalizers"]["digits"]["taylor"]["test_log_loss"] += 0.01
    made = readme_numbers.blocks(changed, measured_now)
    found = readme_numbers.differences(README, made, numbers_markdown(changed), numbers_markdown(COMMITTED), changed,
                                       COMMITTED)
    named = [line.split(":")[0] for line in found]
    assert named == ["README.md block 'normalizers'", "README.md block 'measured'",
                     "benchmarks/why-softmax/numbers.md differs from what the demo makes now",
                     "benchmarks/why-softmax/numbers.json /normalizers/digits/taylor/test_log_loss"]
    written = readme_numbers.with_blocks(README, made)
    assert readme_numbers.differences(written, made, "", "", changed, changed) == []
    outside = readme_numbers.BLOCK.sub("", written)
    assert outside == readme_numbers.BLOCK.sub("", README)


@pytest.mark.slow  # the whole demo and three trainings with their exact optima: minutes on two cores
def test_the_committed_numbers_are_what_the_code_makes_now(tmp_path):
    """benchmarks/readme_numbers.py (the check) exits 0: numbers.json, numbers.md, the README's tables and
    sentences marked as generated, and the Measured table all agree with a fresh run."""
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "readme_numbers.py"), "--jobs", "2", "--scratch", str(tmp_path)],
        capture_output=True, text=True, timeout=1800, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
