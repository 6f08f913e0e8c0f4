"""Fuzzing the command line: whatever config or file a user brings, softreg answers with
exit 0 or 2 (1 only for a run that diverges), never with a traceback."""

import string

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from softreg.cli import main
from softreg.config import SCHEMA

SMALL = {"optim": {"epochs": 2}, "output": {"plots": False}}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 6),
    st.floats(-10, 10),
    st.just(float("nan")),
    st.sampled_from(["", "x", "1e-3", "cosine", "ordered", "float32"]),
    st.lists(st.integers(0, 3), max_size=3),
)


@st.composite
def config_documents(draw):
    document = {"data": {"source": "builtin:iris"}, "output": {"plots": False}}
    for _ in range(draw(st.integers(0, 4))):
        sections = [name for name, spec in SCHEMA.items() if isinstance(spec, dict)]
        section = draw(st.sampled_from(sections + ["seed", "bogus"]))
        if section in ("seed", "bogus"):
            document[section] = draw(scalars)
            continue
        key = draw(st.sampled_from(sorted(SCHEMA.get(section, {})) + ["typo_key"]))
        document.setdefault(section, {})[key] = draw(scalars)
    optim = document.setdefault("optim", {})
    if not isinstance(optim.get("epochs"), int) or optim.get("epochs", 0) > 3:
        optim["epochs"] = 2  # keep each example fast; the validator is fuzzed on every other key
    return document


def invoke(tmp_path, config_text, data_name=None):
    config = tmp_path / "c.yaml"
    config.write_text(config_text)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["train", "--config", str(config), "--out", str(out), "--force", "--quiet"])
    return result


def assert_clean_exit(result):
    stderr = result.stderr
    event(f"exit {result.exit_code}")
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 1:
        assert "diverged" in stderr, stderr
    else:
        assert result.exit_code in (0, 2), (result.exit_code, stderr)
    if result.exit_code != 0:  # warnings may come first; the error is the last one or two lines
        errors = [line for line in stderr.strip().splitlines() if not line.startswith("softreg: warning: ")]
        assert errors[0].startswith("softreg: error: ") and len(errors) <= 2, stderr


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config_documents())
def test_any_config_exits_cleanly(tmp_path, document):
    """Random configs (wrong types, ranges, unknown keys) exit 0/2 with one clean line."""
    assert_clean_exit(invoke(tmp_path, yaml.safe_dump(document)))


cell = st.one_of(
    st.integers(-5, 5).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=string.ascii_letters + string.digits + ' ,;"\t.-', max_size=5),
    st.sampled_from(["", " ", "1e400", "nan", "﻿", "é"]),
)


@st.composite
def delimited_files(draw):
    """A valid numeric table (header, features, a two-class label), then zero to two corruptions."""
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    n_features = draw(st.integers(1, 3))
    n_rows = draw(st.integers(0, 14))
    header = [f"f{j}" for j in range(n_features)] + ["y"]
    rows = [
        [repr(draw(st.floats(-1e3, 1e3))) for _ in range(n_features)] + [draw(st.sampled_from(["A", "B", "7"]))]
        for _ in range(n_rows)
    ]
    table = [header, *rows]
    for _ in range(draw(st.integers(0, 2))):
        row = draw(st.integers(0, len(table) - 1))
        column = draw(st.integers(0, len(table[row]) - 1)) if table[row] else 0
        mutation = draw(st.sampled_from(["cell", "drop", "extra", "quote", "blank_line"]))
        if mutation == "cell" and table[row]:
            table[row][column] = draw(cell)
        elif mutation == "drop" and table[row]:
            del table[row][column]
        elif mutation == "extra":
            table[row].append(draw(cell))
        elif mutation == "quote" and table[row]:
            table[row][column] = '"' + table[row][column] + '"'
        else:
            table.insert(row, [])
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return bom + newline.join(delimiter.join(row) for row in table) + draw(st.sampled_from(["", newline, newline * 3]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delimited_files(), st.sampled_from([0.0, 0.25]), st.booleans())
def test_any_delimited_file_exits_cleanly(tmp_path, content, test_fraction, stratify):
    """Random delimited files (ragged, non-numeric, NaN, blanks, quotes) train or get exit 2 naming the problem."""
    (tmp_path / "d.csv").write_text(content, encoding="utf-8", newline="")
    document = {"data": {"source": "d.csv", "test": test_fraction, "val": 0.0, "stratify": stratify}, **SMALL}
    assert_clean_exit(invoke(tmp_path, yaml.safe_dump(document)))
