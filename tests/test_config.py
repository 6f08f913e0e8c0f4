"""The config validator: defaults, rules, overrides and the messages users see."""

import math

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from softreg.config import SCHEMA, apply_overrides, dump_config, load_config, resolve
from softreg.errors import ConfigError


def write(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(document):
    with pytest.raises(ConfigError) as caught:
        resolve(document, origin="c.yaml", base_dir=".")
    return str(caught.value)


def test_defaults_are_filled_in():
    """Only data.source is required; everything else gets its declared default."""
    config = resolve({"data": {"source": "builtin:iris"}})
    assert config.optim.lr == SCHEMA["optim"]["lr"][0]
    assert config.model.dtype == "float64"
    assert config.seed == 0
    assert config.optim.early_stopping is None


def test_missing_source_is_named():
    """A config without data.source says the key is required."""
    assert error_of({}).startswith("c.yaml: data.source is required")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"data": {"source": "builtin:iris"}, "optim": {"lrr": 0.1}},
            "c.yaml: unknown key optim.lrr (did you mean 'lr'?)",
        ),
        ({"data": {"source": "builtin:iris"}, "optimm": {}}, "c.yaml: unknown key 'optimm' (did you mean 'optim'?)"),
        ({"data": {"source": "builtin:iris", "lable": "y"}}, "c.yaml: unknown key data.lable (did you mean 'label'?)"),
    ],
)
def test_unknown_keys_suggest_the_close_one(document, message):
    """Unknown keys are errors with a did-you-mean suggestion."""
    assert error_of(document).startswith(message)


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("optim", "lr", -0.1, "c.yaml: optim.lr must be > 0, got -0.1"),
        ("optim", "lr", 0, "c.yaml: optim.lr must be > 0, got 0.0"),
        ("model", "weight_decay", -1e-3, "c.yaml: model.weight_decay must be >= 0, got -0.001"),
        ("optim", "batch_size", 0, "c.yaml: optim.batch_size must be >= 1, got 0"),
        ("optim", "batch_size", 2.5, "c.yaml: optim.batch_size must be an integer, got 2.5"),
        ("optim", "epochs", True, "c.yaml: optim.epochs must be an integer, got True"),
        ("data", "val", 1.0, "c.yaml: data.val must be < 1, got 1.0"),
        ("data", "test", -0.2, "c.yaml: data.test must be >= 0, got -0.2"),
        ("optim", "momentum", 1.0, "c.yaml: optim.momentum must be < 1, got 1.0"),
        (
            "optim",
            "schedule",
            "cosin",
            "c.yaml: optim.schedule must be one of constant, step, cosine, inverse_time, got 'cosin' "
            "(did you mean 'cosine'?)",
        ),
        (
            "model",
            "dtype",
            "float16",
            "c.yaml: model.dtype must be one of float64, float32, got 'float16' (did you mean 'float64'?)",
        ),
        ("data", "stratify", "yes please", "c.yaml: data.stratify must be true or false, got 'yes please'"),
        ("optim", "lr", "fast", "c.yaml: optim.lr must be a number > 0 or auto, got 'fast'"),
        ("optim", "lr", "atuo", "c.yaml: optim.lr must be a number > 0 or auto, got 'atuo' (did you mean 'auto'?)"),
    ],
)
def test_out_of_range_and_mistyped_values_name_key_and_value(section, key, value, message):
    """Types and ranges are checked; the message names the file, key, rule and value."""
    document = {"data": {"source": "builtin:iris"}}
    document.setdefault(section, {})[key] = value
    assert error_of(document) == message


def test_yaml_1_1_exponent_strings_are_numbers():
    """`1e-4` (text to YAML 1.1) is accepted as the number users meant."""
    config = resolve(yaml.safe_load("data: {source: 'builtin:iris'}\nmodel: {weight_decay: 1e-4}"))
    assert config.model.weight_decay == 1e-4


def test_unknown_builtin_dataset_is_refused():
    """builtin:NAME must be one of the bundled sets."""
    assert error_of({"data": {"source": "builtin:digit"}}) == (
        "c.yaml: data.source 'builtin:digit' is not a bundled dataset; "
        "expected builtin:iris|digits|wine|breast_cancer (did you mean 'digits'?)"
    )


def test_early_stopping_needs_a_validation_split():
    """optim.early_stopping with data.val = 0 is a config error, caught before any work."""
    message = error_of({"data": {"source": "builtin:iris", "val": 0}, "optim": {"early_stopping": {"patience": 3}}})
    assert message == "c.yaml: optim.early_stopping needs a validation split: set data.val > 0 (e.g. 0.1)"


def test_overrides_are_yaml_typed_and_checked(tmp_path):
    """--set values are read as YAML and go through the same rules."""
    path = write(tmp_path, "data:\n  source: builtin:iris\n")
    config = load_config(path, ["optim.lr=0.05", "optim.nesterov=true", "optim.early_stopping.patience=3"])
    assert config.optim.lr == 0.05 and config.optim.nesterov is True
    assert config.optim.early_stopping == {"patience": 3, "min_delta": 0.0}
    with pytest.raises(ConfigError, match=r"^--set: optim.lr must be > 0, got -1.0$"):
        load_config(path, ["optim.lr=-1"])
    with pytest.raises(ConfigError, match=r"expected KEY=VALUE"):
        load_config(path, ["optim.lr"])


def test_relative_data_paths_resolve_against_the_config_file(tmp_path):
    """data.source relative to the config's folder; from --set, relative to the current directory."""
    (tmp_path / "sub").mkdir()
    path = write(tmp_path / "sub", "data:\n  source: ../d.csv\n")
    assert load_config(path).data.source == str((tmp_path / "d.csv").resolve())


def test_resolved_config_round_trips(tmp_path):
    """The saved resolved config loads back to the same config."""
    path = write(tmp_path, "data:\n  source: builtin:wine\noptim:\n  lr: 0.3\n")
    config = load_config(path)
    again = write(tmp_path, dump_config(config), "again.yaml")
    assert load_config(again).to_dict() == config.to_dict()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data: [1, 2", "invalid YAML"),
        ("- just\n- a list\n", "a config must be a YAML mapping of sections, got list"),
        ("data: 3\n", "c.yaml: data must be a mapping of keys, got 3"),
    ],
)
def test_malformed_files_are_config_errors(tmp_path, text, message):
    """Broken YAML or a wrong shape is a one-line ConfigError naming the file."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value) and str(path.name) in str(caught.value)


def test_missing_config_file_is_named(tmp_path):
    """A config path that does not exist is named in the error."""
    with pytest.raises(ConfigError, match=r"nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6)
)
numeric_keys = [
    ("optim", "lr"),
    ("optim", "batch_size"),
    ("optim", "epochs"),
    ("optim", "momentum"),
    ("model", "weight_decay"),
    ("data", "val"),
]


@given(st.sampled_from(numeric_keys), values)
def test_validator_accepts_only_in_range_values_or_names_the_key(key, value):
    """Any value either resolves to an in-range number or raises a ConfigError naming the key."""
    section, name = key
    document = {"data": {"source": "builtin:iris"}, section: {name: value}}
    if section == "data":
        document["data"]["source"] = "builtin:iris"
    try:
        config = resolve(document, origin="c.yaml")
    except ConfigError as error:
        assert f"{section}.{name}" in str(error)
        return
    resolved = getattr(getattr(config, section), name)
    if key == ("optim", "lr") and value == "auto":  # chosen from the data when training starts
        assert resolved == "auto"
        return
    assert isinstance(resolved, (int, float)) and not isinstance(resolved, bool) and math.isfinite(resolved)
    checks = {"lr": resolved > 0, "batch_size": resolved >= 1, "epochs": resolved >= 1,
              "momentum": 0 <= resolved < 1, "weight_decay": resolved >= 0, "val": 0 <= resolved < 1}
    assert checks[name]


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.integers(), max_size=3))
def test_unknown_sections_never_pass(extra):
    """A document with any top-level key outside the schema is refused."""
    document = {"data": {"source": "builtin:iris"}, **{k: v for k, v in extra.items() if k not in SCHEMA}}
    if len(document) == 1:
        return
    with pytest.raises(ConfigError, match="unknown key"):
        resolve(document)


def test_apply_overrides_does_not_mutate_the_document():
    """Overrides return a new document; the parsed file is untouched."""
    document = {"optim": {"lr": 0.1}}
    new, keys = apply_overrides(document, ["optim.lr=0.2"])
    assert document == {"optim": {"lr": 0.1}} and new["optim"]["lr"] == 0.2 and keys == {"optim.lr"}


def test_overrides_fill_an_empty_section(tmp_path):
    """`optim:` with nothing under it is an empty section that --set can fill."""
    path = write(tmp_path, "data:\n  source: builtin:iris\noptim:\n")
    config = load_config(path, ["optim.lr=0.05", "optim.early_stopping.patience=3", "data.val=0.2"])
    assert config.optim.lr == 0.05 and config.optim.early_stopping["patience"] == 3


def test_unknown_key_from_set_is_blamed_on_set(tmp_path):
    """A typo in --set is reported as coming from --set, not from the config file."""
    path = write(tmp_path, "data:\n  source: builtin:iris\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, ["optim.lrr=1"])
    assert str(caught.value) == "--set: unknown key optim.lrr (did you mean 'lr'?)"


@pytest.mark.parametrize("name", ["digits", "iris", "iris-csv", "wine", "letters", "letters-fast", "letters-cache"])
def test_every_example_config_resolves_and_names_an_existing_source(name):
    """The bundled configs are valid, and their file sources exist (relative to the config)."""
    from pathlib import Path

    config = load_config(Path(__file__).resolve().parent.parent / "configs" / f"{name}.yaml")
    source = config.data.source
    assert source.startswith("builtin:") or Path(source).is_file()


def test_the_example_configs_are_all_listed_above():
    """A new config in configs/ gets its check."""
    from pathlib import Path

    names = sorted(path.stem for path in (Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))
    assert names == sorted(["digits", "iris", "iris-csv", "wine", "letters", "letters-fast", "letters-cache"])


def _every_key():
    for section, spec in SCHEMA.items():
        if isinstance(spec, dict):
            yield from ((section, key) for key in spec)
        else:
            yield None, section


@pytest.mark.parametrize(("section", "key"), list(_every_key()), ids=lambda value: str(value))
def test_every_key_misspelt_gets_did_you_mean_it(section, key):
    """Each key of the schema with its last letter doubled is unknown, and the message suggests that key."""
    typo = key + key[-1]
    document = {"data": {"source": "builtin:iris"}}
    if section is None:
        document[typo] = 1
        expected = f"c.yaml: unknown key {typo!r} (did you mean {key!r}?)"
    else:
        document.setdefault(section, {})[typo] = 1
        expected = f"c.yaml: unknown key {section}.{typo} (did you mean {key!r}?)"
    assert error_of(document).startswith(expected)


@pytest.mark.parametrize(("section", "key", "suggested"), [
    ("optim", "learning_rate", "'lr'"),  # another tool's name: too far in spelling for a close match
    ("model", "lambda", "'weight_decay'"),
    ("optim", "max_iter", "'epochs'"),
    ("data", "test_size", "'test'"),
    ("model", "lr", "'optim.lr'"),  # the right name in the wrong section
    ("optim", "weight_decay", "'model.weight_decay'"),
    ("data", "random_state", "'seed'"),
    (None, "learning_rate", "'optim.lr'"),
    (None, "optimizer", "'optim'"),
])
def test_other_tools_names_and_keys_in_the_wrong_section_get_did_you_mean(section, key, suggested):
    """scikit-learn's or PyTorch's name for a key, or a key under the wrong section: the message names ours."""
    document = {"data": {"source": "builtin:iris"}}
    if section is None:
        document[key] = 1
    else:
        document.setdefault(section, {})[key] = 1
    assert f"(did you mean {suggested}?)" in error_of(document)


def test_a_misspelt_grid_key_from_another_tool_suggests_the_dotted_key(tmp_path):
    """--grid optim.learning_rate=...: the suggestion is the dotted key a grid takes."""
    from softreg.commands.grid import check_grid, parse_grid

    with pytest.raises(ConfigError, match=r"unknown config key \(did you mean 'optim.lr'\?\)"):
        check_grid(parse_grid("optim.learning_rate=0.1,0.2"))


def test_a_misspelt_section_given_by_set_is_blamed_on_set(tmp_path):
    """--set optm.lr=0.1 (the section misspelt) names --set, not the config file that has no such key."""
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  source: builtin:iris\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, ["optm.lr=0.1"])
    assert str(caught.value).startswith("--set: unknown key 'optm' (did you mean 'optim'?)")
