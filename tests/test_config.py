"""Config: defaults, YAML then --set precedence, strict typed validation, round trip."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from nerwin.config import Config, config_from_dict, config_to_dict, load_config, save_config
from nerwin.errors import ConfigError, NerwinError

ROOT = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path | None = None, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return str(info.value)


def test_config_defaults_load() -> None:
    assert load_config(None) == Config()
    assert load_config(None, ()) == Config()


def test_config_empty_yaml_is_defaults(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, "")) == Config()


def test_config_yaml_then_set_precedence(tmp_path: Path) -> None:
    path = _write(tmp_path, "train:\n  lr: 0.1\n  epochs: 3\nmodel:\n  window: 3\n")
    from_file = load_config(path)
    assert (from_file.train.lr, from_file.train.epochs, from_file.model.window) == (0.1, 3, 3)
    assert from_file.train.batch_size == Config().train.batch_size  # untouched keys keep defaults

    cfg = load_config(path, ["train.lr=0.2", "model.window=7"])
    assert cfg.train.lr == 0.2  # --set beats the file
    assert cfg.model.window == 7
    assert cfg.train.epochs == 3  # the file beats the default
    assert cfg.data == Config().data


def test_config_later_set_wins() -> None:
    assert load_config(None, ["train.lr=0.2", "train.lr=0.05"]).train.lr == 0.05


def test_config_yaml_exponent_string_parses_as_float(tmp_path: Path) -> None:
    text = "train:\n  lr: 1e-3\n"
    assert isinstance(yaml.safe_load(text)["train"]["lr"], str)  # the PyYAML quirk being handled
    cfg = load_config(_write(tmp_path, text))
    assert isinstance(cfg.train.lr, float)
    assert cfg.train.lr == pytest.approx(0.001, rel=0, abs=0)


def test_config_set_exponent_parses_as_float() -> None:
    cfg = load_config(None, ["train.lr=1e-3"])
    assert type(cfg.train.lr) is float and cfg.train.lr == 0.001


def test_config_int_accepted_for_float() -> None:
    cfg = load_config(None, ["train.lr=1", "train.pos_weight=3"])
    assert type(cfg.train.lr) is float and cfg.train.lr == 1.0
    assert type(cfg.train.pos_weight) is float and cfg.train.pos_weight == 3.0


def test_config_float_not_accepted_for_int() -> None:
    assert "train.epochs: expected int, got float 2.5" in _error(overrides=("train.epochs=2.5",))


def test_config_bool_not_accepted_for_number() -> None:
    message = _error(overrides=("train.lr=true", "train.epochs=true"))
    assert "train.lr: expected float, got bool True" in message
    assert "train.epochs: expected int, got bool True" in message


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("train.epoch", "train.epochs"),
        ("model.activaton", "model.activation"),
        ("train.learning_rat", None),
    ],
)
def test_config_unknown_key_suggests_nearest(key: str, suggestion: str | None) -> None:
    message = _error(overrides=(f"{key}=1",))
    assert f"{key}: unknown key" in message
    if suggestion is not None:
        assert f"did you mean {suggestion}?" in message


def test_config_unknown_key_in_yaml_suggests_nearest(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, "train:\n  epoch: 3\n"))
    assert "train.epoch: unknown key (did you mean train.epochs?)" in message


def test_config_unknown_section_reported() -> None:
    message = _error(overrides=("trian.lr=0.1",))
    assert "trian: unknown key (did you mean train?)" in message


def test_config_wrong_type_names_key() -> None:
    message = _error(overrides=("train.lr=abc",))
    assert "train.lr: expected float, got str 'abc'" in message


def test_config_error_is_nerwin_error() -> None:
    with pytest.raises(NerwinError):
        load_config(None, ["train.lr=abc"])


def test_config_several_problems_reported_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, "train:\n  lr: abc\n  epoch: 3\nmodel:\n  window: 4\n")
    message = _error(path, ("model.activaton=relu", "train.threshold=2"))
    for part in (
        "train.lr: expected float, got str 'abc'",
        "train.epoch: unknown key (did you mean train.epochs?)",
        "model.window: must be a positive odd number up to 101, got 4",
        "model.activaton: unknown key (did you mean model.activation?)",
        "train.threshold: must be in (0, 1)",
    ):
        assert part in message, part
    assert str(path) in message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.lr=-0.1", "train.lr: must be > 0"),
        ("train.lr=0", "train.lr: must be > 0"),
        ("model.window=4", "model.window: must be a positive odd number"),
        ("model.window=0", "model.window: must be a positive odd number"),
        ("model.hidden=[]", "model.hidden: must be 1 to 100 sizes in 1..100000, got []"),
        ("model.hidden=[100, 0]", "model.hidden: must be 1 to 100 sizes in 1..100000"),
        (
            "model.activation=reluu",
            "model.activation: unknown activation 'reluu' (did you mean relu?)",
        ),
        ("train.threshold=0", "train.threshold: must be in (0, 1)"),
        ("train.threshold=1", "train.threshold: must be in (0, 1)"),
        ("train.threshold=1.5", "train.threshold: must be in (0, 1)"),
        ("train.threshold=-0.2", "train.threshold: must be in (0, 1)"),
        ("train.epochs=0", "train.epochs: must be in 1..100000, got 0"),
        ("model.hidden=[1000000000]", "model.hidden: must be 1 to 100 sizes in 1..100000"),
        ("model.window=1000001", "model.window: must be a positive odd number up to 101"),
        ("model.embedding_dim=1000000", "model.embedding_dim: must be in 1..100000"),
        ("train.unk_prob=1", "train.unk_prob: must be in [0, 1)"),
        ("data.min_count=0", "data.min_count: must be >= 1"),
    ],
)
def test_config_range_checks(override: str, expected: str) -> None:
    assert expected in _error(overrides=(override,))


@pytest.mark.parametrize(
    "override",
    [
        "train.lr=inf",
        "train.lr=.inf",
        "train.lr=nan",
        "train.pos_weight=inf",
        "train.lr_decay=.inf",
    ],
)
def test_config_non_finite_numbers_rejected(override: str) -> None:
    key = override.split("=")[0]
    assert f"{key}: " in _error(overrides=(override,))


@pytest.mark.parametrize("threshold", [0.01, 0.5, 0.99])
def test_config_threshold_inside_range_accepted(threshold: float) -> None:
    assert load_config(None, [f"train.threshold={threshold}"]).train.threshold == threshold


def test_config_hidden_scalar_becomes_tuple() -> None:
    assert load_config(None, ["model.hidden=100"]).model.hidden == (100,)


def test_config_hidden_list_becomes_tuple() -> None:
    hidden = load_config(None, ["model.hidden=[100, 50]"]).model.hidden
    assert hidden == (100, 50) and isinstance(hidden, tuple)


def test_config_hidden_from_yaml_is_tuple(tmp_path: Path) -> None:
    hidden = load_config(_write(tmp_path, "model:\n  hidden: [64, 32]\n")).model.hidden
    assert hidden == (64, 32) and isinstance(hidden, tuple)


def test_config_null_accepted_for_optional_fields() -> None:
    cfg = load_config(None, ["data.vectors=null", "data.dev=null", "data.max_vocab=null"])
    assert cfg.data.vectors is None and cfg.data.dev is None and cfg.data.max_vocab is None


def test_config_null_rejected_for_required_fields() -> None:
    message = _error(overrides=("train.lr=null", "data.train=null"))
    assert "train.lr: expected float, got null" in message
    assert "data.train: expected str or a list of str, got null" in message


def test_config_optional_field_still_type_checked() -> None:
    assert "data.max_vocab: expected int or null" in _error(overrides=("data.max_vocab=abc",))


def test_config_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "train:\n  lr: 0.1\n  epochs: [1, 2\nmodel:\n  window: 5\n")
    message = _error(path)
    assert f"{path}:4" in message
    assert "YAML" in message


def test_config_yaml_indentation_error_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "train:\n  lr: 0.1\n   epochs: 3\n")
    assert f"{path}:3" in _error(path)


def test_config_non_mapping_yaml_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, "- train\n- model\n")
    message = _error(path)
    assert str(path) in message and "mapping" in message


def test_config_non_mapping_section_rejected() -> None:
    assert "train: expected a mapping, got int 5" in _error(overrides=("train=5",))


def test_config_missing_file_named(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    assert str(path) in _error(path)


@pytest.mark.parametrize("item", ["train.lr", "train.lr 0.1", "=0.1", " =1"])
def test_config_override_without_key_value_rejected(item: str) -> None:
    message = _error(overrides=(item,))
    assert repr(item) in message and "key=value" in message


def test_config_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().train.lr = 1.0  # type: ignore[misc]


def test_config_to_dict_is_plain_yaml() -> None:
    raw = config_to_dict(Config())
    assert raw["model"]["hidden"] == [300] and isinstance(raw["model"]["hidden"], list)
    assert isinstance(raw["data"]["location_types"], list)
    yaml.safe_dump(raw)  # only plain types: safe_dump raises on tuples or objects
    assert config_from_dict(raw) == Config()


def test_config_save_round_trip(tmp_path: Path) -> None:
    original = load_config(
        None,
        [
            "train.lr=1e-5",
            "model.hidden=[100, 50]",
            "data.location_types=[LOC, GPE]",
            "data.vectors=vec/glove.6B.50d.txt",
            "data.max_vocab=20000",
            "model.activation=prelu",
            "train.tune_threshold=true",
            "data.train=null.txt",
            "train.threshold=0.35",
        ],
    )
    path = tmp_path / "config.yaml"
    save_config(original, path)
    assert load_config(path) == original
    assert load_config(path).model.hidden == (100, 50)


def test_config_default_yaml_equals_defaults() -> None:
    path = ROOT / "configs" / "default.yaml"
    if not path.is_file():
        pytest.skip(f"{path} not written yet")
    assert load_config(path) == Config()


def _keys(tree: dict) -> set[str]:
    """Dotted keys (section.key) of nested config sections."""
    return {f"{section}.{key}" for section, values in tree.items() for key in values}


def test_config_default_yaml_spells_out_every_key_and_default() -> None:
    raw = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text(encoding="utf-8"))
    defaults = config_to_dict(Config())
    assert _keys(raw) == _keys(
        defaults
    )  # load_config alone would fill a missing key with its default
    for section, values in defaults.items():
        for key, value in values.items():
            assert raw[section][key] == value, f"{section}.{key}"


def test_config_readme_table_lists_every_key() -> None:
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", readme, flags=re.MULTILINE))
    assert rows == _keys(config_to_dict(Config()))


@pytest.mark.parametrize("rate", [1e-6, 0.001, 1 / 512, 1.0, 1.5, -0.1])
def test_config_dropout_that_drops_nothing_or_everything_rejected(rate: float) -> None:
    message = _error(overrides=(f"train.dropout={rate!r}",))
    assert "train.dropout: must be 0 (off) or above 1/512 = 0.001953125" in message
    assert message.endswith(f"got {float(rate)}")


@pytest.mark.parametrize("rate", [0.0, 0.00196, 1 / 256, 0.3, 0.999])
def test_config_dropout_accepted(rate: float) -> None:
    assert load_config(None, [f"train.dropout={rate!r}"]).train.dropout == rate


@pytest.mark.parametrize("rate", [0.0015, 1 / 512, 0.00196, 1 / 256, 0.5])
def test_config_dropout_accepted_exactly_when_ops_dropout_drops(rate: float) -> None:
    import numpy as np

    from nerwin.config import TrainConfig
    from nerwin.engine import Tensor
    from nerwin.engine.ops import dropout

    x = Tensor(np.ones((4, 8)))
    drops = dropout(x, rate, np.random.default_rng(0)) is not x
    accepted = not TrainConfig(dropout=rate).problems()
    assert accepted == drops


def test_config_paths_fill_data_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from nerwin.config import config_to_dict, data_file

    config = load_config(None, ["paths.corpus=/data/c", "data.train=${corpus}/train.txt"])
    assert dict(config.paths) == {"corpus": "/data/c"}
    assert data_file(config, config.data.train) == "/data/c/train.txt"
    monkeypatch.setenv("NERWIN_CORPUS", "/elsewhere")
    assert data_file(config, config.data.train) == "/elsewhere/train.txt"
    assert config_to_dict(config)["paths"] == {"corpus": "/data/c"}  # saved as written


def test_config_undefined_path_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NERWIN_NOPE", raising=False)
    message = _error(overrides=("data.train=${nope}/train.txt",))
    assert "data.train: ${nope} is not defined; add paths.nope" in message
    assert "NERWIN_NOPE" in message


def test_config_train_may_list_several_files() -> None:
    config = load_config(None, ["data.train=[a.txt, b.txt]"])
    assert config.data.train_files == ("a.txt", "b.txt")
    assert load_config().data.train_files == ("data/default/train.txt",)
    assert "data.train: must name one or more files" in _error(overrides=("data.train=[]",))


def test_config_tune_threshold_needs_dev() -> None:
    message = _error(overrides=("train.tune_threshold=true", "data.dev=null"))
    assert "train.tune_threshold: needs a dev set" in message


def test_config_error_never_prints_a_huge_value() -> None:
    message = _error(overrides=("data.scheme=[" + ",".join(["x"] * 100_000) + "]",))
    assert len(message) < 300, message[:300]


def test_config_override_alias_bomb_is_refused() -> None:
    levels = ["&a [x,x,x,x,x,x,x,x,x]"] + [
        f"&{n} [{','.join([f'*{p}'] * 9)}]" for p, n in zip("abcd", "bcde")
    ]
    bomb = "[" + ", ".join(levels) + "]"  # 9**5 = 59,049 values from ~170 bytes

    message = _error(overrides=(f"data.location_types={bomb}",))
    assert message.startswith("override data.location_types:") and len(message) < 300
