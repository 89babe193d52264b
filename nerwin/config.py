"""Typed, frozen configuration: defaults, then a YAML file, then `--set key=value` overrides."""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nerwin.engine.activations import ACTIVATIONS
from nerwin.errors import ConfigError
from nerwin.files.paths import PATH_VARIABLE, expand_variables, path_variable
from nerwin.files.typed import build_dataclass, describe, short
from nerwin.files.yamlfile import VALUE_ERRORS as YAML_VALUE_ERRORS
from nerwin.files.yamlfile import TooLarge, YamlFileError, load_text, read_sections

SCHEME_NAMES = ("auto", "IOB1", "IOB2", "BIO", "IOBES", "BIOES", "BILOU", "IO")
MAX_WINDOW = 101  # sane upper bounds, checked before any memory is taken
MAX_WIDTH = 100_000  # embedding_dim and each hidden layer
MAX_LAYERS = 100
MAX_FEATURE_DIM = 10_000
DROPOUT_STEPS = 256  # nerwin.engine.ops.dropout keeps an entry when a random byte is below a cut
DROPOUT_RULE = (
    f"0 (off) or above 1/{2 * DROPOUT_STEPS} = {1 / (2 * DROPOUT_STEPS)} and below 1 "
    f"(rates come in steps of 1/{DROPOUT_STEPS}; smaller ones would drop nothing)"
)


@dataclass(frozen=True)
class DataConfig:
    """Where the corpora and vectors are and how words become ids."""

    train: str | tuple[str, ...] = "data/default/train.txt"  # training corpus (or several)
    dev: str | None = "data/default/dev.txt"  # dev corpus for scores and early stopping
    vectors: str | None = None  # pretrained vectors (GloVe/word2vec/fastText); null = random
    vectors_extend: int = 0  # add the N most frequent vector-file words to the vocab (-1 = all)
    word_column: int = 0  # column of the word
    tag_column: int = -1  # column of the tag (negative counts from the end)
    scheme: str = "auto"  # tag scheme: auto, IOB1, IOB2, IOBES, IO
    location_types: tuple[str, ...] = ("LOC",)  # entity types that count as locations
    lowercase: bool = True  # lowercase words before lookup (case goes to caps)
    digits: bool = True  # map every digit to 0
    min_count: int = 1  # words seen fewer times in train become <unk>
    max_vocab: int | None = None  # keep at most this many training words
    gazetteer: str | tuple[str, ...] | None = None  # place names: geonames, pycountry, files
    gazetteer_lowercase: bool = False  # let all-lowercase spans (bath, reading) match names

    def problems(self) -> list[tuple[str, str]]:
        """Range errors as (key, message)."""
        out = []
        if self.scheme not in SCHEME_NAMES:
            out.append(
                ("scheme", f"expected one of {', '.join(SCHEME_NAMES)}, got {self.scheme!r}")
            )
        if not self.location_types:
            out.append(("location_types", "must name at least one entity type"))
        if self.min_count < 1:
            out.append(("min_count", f"must be >= 1, got {self.min_count}"))
        if self.max_vocab is not None and self.max_vocab < 1:
            out.append(("max_vocab", f"must be >= 1 or null, got {self.max_vocab}"))
        if self.vectors_extend < -1:
            out.append(("vectors_extend", f"must be >= -1, got {self.vectors_extend}"))
        if not self.train_files or any(not f for f in self.train_files):
            out.append(("train", "must name one or more files"))
        if self.gazetteer is not None and (
            not self.gazetteer_sources or any(not g for g in self.gazetteer_sources)
        ):
            out.append(
                ("gazetteer", "must be null, geonames, pycountry, a file, or a list of those")
            )
        return out

    @property
    def gazetteer_sources(self) -> tuple[str, ...]:
        """data.gazetteer as a tuple of sources (none, one or several)."""
        g = self.gazetteer
        return () if g is None else (g,) if isinstance(g, str) else tuple(g)

    @property
    def train_files(self) -> tuple[str, ...]:
        """data.train as a tuple of file names (one or several)."""
        return (self.train,) if isinstance(self.train, str) else tuple(self.train)


@dataclass(frozen=True)
class ModelConfig:
    """The window classifier's shape."""

    window: int = 5  # words per window (odd): centre +- (window - 1) / 2
    embedding_dim: int = 50  # word vector size (must match data.vectors)
    embedding_init: float | None = None  # std of random word vectors (null = 1/sqrt(embedding_dim))
    hidden: tuple[int, ...] = (300,)  # hidden layer sizes
    activation: str = "relu"  # non-linearity (see ACTIVATIONS)
    caps_dim: int = 5  # capitalisation feature vector size (0 = off)
    suffix_dim: int = 0  # vector size of the word's last 3 letters (0 = off)
    shape_dim: int = 0  # vector size of the word shape, e.g. Xx, X.X., d-d (0 = off)
    gazetteer_dim: int = 5  # vector size of the place-name match feature (with data.gazetteer)

    def problems(self) -> list[tuple[str, str]]:
        """Range errors as (key, message)."""
        out = []
        if self.window < 1 or self.window % 2 == 0 or self.window > MAX_WINDOW:
            out.append(
                ("window", f"must be a positive odd number up to {MAX_WINDOW}, got {self.window}")
            )
        if self.embedding_init is not None and not 0 <= self.embedding_init < math.inf:
            out.append(("embedding_init", f"must be >= 0 or null, got {self.embedding_init}"))
        if not 1 <= self.embedding_dim <= MAX_WIDTH:
            out.append(("embedding_dim", f"must be in 1..{MAX_WIDTH}, got {self.embedding_dim}"))
        if (
            not self.hidden
            or len(self.hidden) > MAX_LAYERS
            or any(not 1 <= h <= MAX_WIDTH for h in self.hidden)
        ):
            out.append(
                (
                    "hidden",
                    f"must be 1 to {MAX_LAYERS} sizes in 1..{MAX_WIDTH}, got "
                    f"{short(list(self.hidden))}",
                )
            )
        if self.activation not in ACTIVATIONS:
            close = difflib.get_close_matches(self.activation, ACTIVATIONS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            out.append(
                (
                    "activation",
                    f"unknown activation {self.activation!r}{hint}; "
                    f"choose from {', '.join(ACTIVATIONS)}",
                )
            )
        for key in ("caps_dim", "suffix_dim", "shape_dim", "gazetteer_dim"):
            if not 0 <= getattr(self, key) <= MAX_FEATURE_DIM:
                out.append((key, f"must be in 0..{MAX_FEATURE_DIM}, got {getattr(self, key)}"))
        return out


@dataclass(frozen=True)
class TrainConfig:
    """How SGD runs."""

    epochs: int = 10  # passes over the training windows
    batch_size: int = 32  # windows per SGD step
    lr: float = 0.3  # learning rate alpha
    lr_decay: float = 0.0  # epoch e uses lr / (1 + lr_decay * (e - 1))
    embedding_lr_scale: float = 1.0  # word vectors learn at lr * this (0 = frozen)
    pos_weight: float = 1.0  # loss weight of location windows
    unk_prob: float = 0.0  # chance a once-seen training word is shown as <unk>
    dropout: float = 0.0  # chance each hidden unit is zeroed in a training step
    aux_weight: float = 0.0  # loss weight of a head per other entity type (0 = no heads)
    ensemble: int = 1  # train this many models (seeds seed, seed + 1000, ...) and average them
    patience: int = 3  # stop after this many epochs without a better dev F1
    threshold: float = 0.5  # decision threshold on P(location)
    tune_threshold: bool = False  # pick the threshold that maximises dev F1
    seed: int = 0  # seeds every random choice

    def problems(self) -> list[tuple[str, str]]:
        """Range errors as (key, message)."""
        checks = [
            ("epochs", 1 <= self.epochs <= 100_000, "in 1..100000"),
            ("batch_size", 1 <= self.batch_size <= 1_000_000, "in 1..1000000"),
            ("lr", 0 < self.lr < math.inf, "> 0 and finite"),
            ("lr_decay", 0 <= self.lr_decay < math.inf, ">= 0 and finite"),
            ("embedding_lr_scale", 0 <= self.embedding_lr_scale < math.inf, ">= 0 and finite"),
            ("pos_weight", 0 < self.pos_weight < math.inf, "> 0 and finite"),
            ("unk_prob", 0 <= self.unk_prob < 1, "in [0, 1)"),
            ("dropout", _dropout_ok(self.dropout), DROPOUT_RULE),
            ("aux_weight", 0 <= self.aux_weight < math.inf, ">= 0 and finite"),
            ("ensemble", 1 <= self.ensemble <= 20, "in 1..20"),
            ("patience", 1 <= self.patience <= 100_000, "in 1..100000"),
            ("seed", self.seed >= 0, ">= 0"),
            ("threshold", 0 < self.threshold < 1, "in (0, 1)"),
        ]
        return [
            (key, f"must be {rule}, got {getattr(self, key)}") for key, ok, rule in checks if not ok
        ]


def _dropout_ok(rate: float) -> bool:
    """0, or a rate below 1 that still drops something in steps of 1/256 (as ops.dropout rounds)."""
    return rate == 0 or (0 < rate < 1 and round((1.0 - rate) * DROPOUT_STEPS) < DROPOUT_STEPS)


@dataclass(frozen=True)
class Config:
    """Everything a training run needs."""

    paths: tuple[tuple[str, str], ...] = ()  # named folders: data paths may use ${name}
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Defaults, updated by the YAML file at `path`, then by `key=value` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _read_yaml(Path(path))
    apply_overrides(raw, overrides)
    return config_from_dict(raw, source=str(path) if path else "config")


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> None:
    """Set each `key=value` (the value read as YAML, bounded) in the nested dict `raw`."""
    for item in overrides:
        key, value = _parse_override(item)
        _set_dotted(raw, key, value)


def config_from_dict(raw: dict[str, Any], source: str = "config") -> Config:
    """Build and validate a Config from nested dicts, reporting every problem at once."""
    problems: list[str] = []
    raw = dict(raw) if isinstance(raw, dict) else raw
    paths = _paths(raw.pop("paths", None) if isinstance(raw, dict) else None, problems)
    config = dataclasses.replace(build_dataclass(Config, raw, "", problems), paths=paths)
    for section in ("data", "model", "train"):  # fields with type errors hold their defaults here
        problems += [f"{section}.{k}: {m}" for k, m in getattr(config, section).problems()]
    problems += _cross_problems(config)
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
    return config


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain nested dict (lists, not tuples; paths as a mapping) for YAML."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return list(value) if isinstance(value, tuple) else value

    out = plain(dataclasses.asdict(config))
    paths = out.pop("paths")
    return {"paths": dict(paths), **out} if paths else out


def data_file(config: Config, template: str) -> str:
    """A data path with its ${name} variables filled in: $NERWIN_<NAME>, else paths.<name>."""
    return expand_variables(template, dict(config.paths))


def _paths(raw: Any, problems: list[str]) -> tuple[tuple[str, str], ...]:
    """The `paths` section: names of folders (or files) that data paths refer to as ${name}."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        problems.append(f"paths: expected a mapping of names to paths, got {describe(raw)}")
        return ()
    good = []
    for name, value in raw.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
            problems.append(f"paths: {describe(name)} is not a name (letters, digits, _ and -)")
        elif not isinstance(value, str) or not value:
            problems.append(f"paths.{name}: expected a path, got {describe(value)}")
        else:
            good.append((name, value))
    return tuple(good)


def _cross_problems(config: Config) -> list[str]:
    """Problems between keys: undefined ${name} variables, threshold tuning without dev data."""
    out = []
    named = dict(config.paths)
    d = config.data
    for key, value in [("train", f) for f in d.train_files] + [
        ("dev", d.dev),
        ("vectors", d.vectors),
        *[("gazetteer", g) for g in d.gazetteer_sources],
    ]:
        for name in PATH_VARIABLE.findall(value or ""):
            if name not in named and not os.environ.get(path_variable(name)):
                out.append(
                    f"data.{key}: ${{{name}}} is not defined; add paths.{name} to the config "
                    f"or set {path_variable(name)}"
                )
    if d.gazetteer_sources and config.model.gazetteer_dim == 0:
        out.append("model.gazetteer_dim: is 0 but data.gazetteer names place names; set a size")
    if config.train.tune_threshold and not d.dev:
        out.append("train.tune_threshold: needs a dev set to tune on, but data.dev is null")
    return out


def save_config(config: Config, path: Path) -> None:
    """Write the resolved config as YAML."""
    path.write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False), encoding="utf-8")


def _read_yaml(path: Path) -> dict[str, Any]:
    """The config file's sections ({} when empty), or ConfigError naming the file and line."""
    try:
        return read_sections(path, empty_ok=True)
    except YamlFileError as err:
        raise ConfigError(str(err)) from None


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r}: expected key=value, e.g. train.lr=0.1")
    try:
        value = load_text(text) if text.strip() else None
    except TooLarge as err:
        raise ConfigError(f"override {key.strip()}: {err.problem}") from None
    except (yaml.YAMLError, *YAML_VALUE_ERRORS):
        value = text
    return key.strip(), value


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value
