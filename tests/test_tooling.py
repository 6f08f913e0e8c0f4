"""The README's development commands work as written: mutmut's copy of the project has what
the tests it runs read."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # runs mutmut's whole test selection (about 20 s)
def test_mutmuts_test_selection_passes_in_a_copy_laid_out_as_mutmut_lays_it_out(tmp_path):
    """mutmut runs the tests in mutants/, a copy of source_paths, tests/ and also_copy: the selection
    passes there (it failed with "config file not found" before configs/ was copied)."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    copy = tmp_path / "mutants"
    for name in [*settings["source_paths"], "tests/", *settings.get("also_copy", [])]:
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, copy / name)
    shutil.copy2(ROOT / "pyproject.toml", copy / "pyproject.toml")  # pytest's settings (mutmut copies it too)
    environment = {**os.environ, "PYTHONPATH": str(copy), "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         *settings["pytest_add_cli_args_test_selection"]],
        cwd=copy, env=environment, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "passed" in done.stdout
