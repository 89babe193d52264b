"""Model directories: weights.npz, vocab.txt, config.yaml, meta.json; written atomically."""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from nerwin import __version__
from nerwin.config import Config, config_from_dict, save_config
from nerwin.data.features import TokenFeature
from nerwin.data.vocab import Vocab
from nerwin.engine import Tensor
from nerwin.errors import ConfigError, ModelError
from nerwin.files import atomic
from nerwin.files.yamlfile import YamlFileError, read_sections
from nerwin.model.classifier import ModelShape, WindowClassifier
from nerwin.model.tagger import Tagger

FORMAT_VERSION = 2  # 2 added ensembles (meta "members" > 1); a single model is still written as 1
MEMBER_PREFIX = "member{}."  # weights.npz keys of an ensemble's member k >= 1, e.g. member1.W
MEMBER_KEY = re.compile(r"member(\d+)\.")  # the k of a member{k}.NAME key
FILES = ("weights.npz", "vocab.txt", "config.yaml", "meta.json")
WRITTEN = (*FILES, "features.json")  # every file save_model writes into a model directory


def save_model(
    directory: Path, tagger: Tagger, config: Config, extra: dict[str, Any] | None = None
) -> None:
    """Write the model into `directory`, replacing it only once everything is on disk.

    ModelError when the file system fails, or when `directory` (or its staging folders) is a
    link or holds a file save_model did not write.
    """
    directory = Path(directory)
    try:
        atomic.write_folder(
            directory, lambda staging: _write_files(staging, tagger, config, extra), WRITTEN
        )
    except atomic.Refused as err:
        raise ModelError(str(err)) from None
    except OSError as err:
        raise ModelError(_cannot_save(directory, err)) from None


def _cannot_save(directory: Path, err: OSError) -> str:
    """The one-line message of a save that failed on the file system."""
    where = f"{err.filename}: " if err.filename else ""
    return f"{directory}: cannot save the model ({where}{err.strerror or err})"


def _write_files(
    staging: Path, tagger: Tagger, config: Config, extra: dict[str, Any] | None
) -> None:
    """Every file of the model directory, written into `staging`."""
    np.savez(staging / "weights.npz", **_all_arrays(tagger))
    tagger.vocab.save(staging / "vocab.txt")
    features = {name: f.to_dict() for name, f in tagger.features.items()}
    (staging / "features.json").write_text(json.dumps(features) + "\n", encoding="utf-8")
    save_config(config, staging / "config.yaml")
    members = len(tagger.models)
    meta = {
        **(extra or {}),
        "format_version": 2 if members > 1 else 1,
        "nerwin_version": __version__,
        "threshold": tagger.threshold,
        "shape": _shape_dict(tagger.model.shape),
        "members": members,
        "numpy_version": np.__version__,
    }  # never an old meta's threshold
    (staging / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def load_model(directory: str | Path) -> tuple[Tagger, Config, dict[str, Any]]:
    """Read a model directory written by `save_model`, checking every file."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelError(f"{directory}: model directory not found")
    for name in FILES:
        if not (directory / name).is_file():
            raise ModelError(f"{directory / name}: missing; not a complete nerwin model directory")
    meta = _read_meta(directory / "meta.json")
    try:
        config = config_from_dict(
            _read_yaml(directory / "config.yaml"), str(directory / "config.yaml")
        )
    except ConfigError as err:
        raise ModelError(str(err)) from None
    shape = _read_shape(meta["shape"], directory / "meta.json")
    vocab = _read_vocab(directory / "vocab.txt", config)
    features = _read_features(directory / "features.json", shape)
    weights = _read_weights(directory / "weights.npz", shape, len(vocab), meta)
    models = [WindowClassifier(shape, params) for params in weights]
    tagger = Tagger(
        models[0], vocab, float(meta.get("threshold", 0.5)), features, tuple(models[1:])
    )
    return tagger, config, meta


def _all_arrays(tagger: Tagger) -> dict[str, np.ndarray]:
    """Every member's parameters: the first under plain names, member k under member{k}.NAME."""
    arrays = dict(tagger.model.arrays())
    for k, member in enumerate(tagger.members, start=1):
        arrays.update({MEMBER_PREFIX.format(k) + name: a for name, a in member.arrays().items()})
    return arrays


def _shape_dict(shape: ModelShape) -> dict[str, Any]:
    d = asdict(shape)
    d["hidden"] = list(d["hidden"])
    return d


def _read_features(path: Path, shape: ModelShape) -> dict[str, TokenFeature]:
    """The feature vocabularies (features.json, optional when the model has none)."""
    if not path.is_file():
        if shape.extra:
            raise ModelError(
                f"{path}: missing; the model uses features {[n for n, _, _ in shape.extra]}"
            )
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        features = {name: TokenFeature(d["kind"], list(d["values"])) for name, d in raw.items()}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ModelError(f"{path}: unreadable ({type(err).__name__})") from None
    for name, rows, _ in shape.extra:
        if name not in features or len(features[name]) != rows:
            raise ModelError(f"{path}: feature {name} does not match the weights")
    return features


def _read_shape(raw: dict[str, Any], path: Path) -> ModelShape:
    """The ModelShape recorded in meta.json, validated."""
    from nerwin.engine import ACTIVATIONS

    try:
        extra = tuple((str(n), int(r), int(d)) for n, r, d in raw.get("extra", ()))
        aux_types = tuple(str(t) for t in raw.get("aux_types", ()))
        shape = ModelShape(
            **{
                **raw,
                "hidden": tuple(int(h) for h in raw["hidden"]),
                "extra": extra,
                "aux_types": aux_types,
            }
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ModelError(f"{path}: malformed model shape ({type(err).__name__}: {err})") from None
    ints = (
        shape.vocab_size,
        shape.embedding_dim,
        shape.window,
        shape.caps_dim,
        shape.n_caps,
        *shape.hidden,
    )
    if not all(isinstance(v, int) and v >= 0 for v in ints) or not shape.hidden:
        raise ModelError(f"{path}: malformed model shape (sizes must be non-negative integers)")
    if shape.activation not in ACTIVATIONS:
        raise ModelError(f"{path}: unknown activation {shape.activation!r}")
    if shape.dtype not in ("float32", "float64"):
        raise ModelError(f"{path}: unsupported dtype {shape.dtype!r} (float32 or float64)")
    return shape


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{path}: unreadable ({type(err).__name__})") from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if not isinstance(version, int):
        raise ModelError(f"{path}: no format_version; not a nerwin model")
    if version > FORMAT_VERSION:
        raise ModelError(
            f"{path}: model format {version} is newer than this nerwin "
            f"({__version__}, format {FORMAT_VERSION}); upgrade nerwin"
        )
    if not isinstance(meta.get("shape"), dict):
        raise ModelError(f"{path}: no model shape recorded")
    members = meta.setdefault("members", 1)
    if isinstance(members, bool) or not isinstance(members, int) or members < 1:
        raise ModelError(f"{path}: members must be a whole number >= 1, got {members!r}")
    threshold = meta.get("threshold", 0.5)
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not 0 < threshold < 1
    ):
        raise ModelError(f"{path}: threshold must be a number in (0, 1), got {threshold!r}")
    return meta


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        return read_sections(path)
    except YamlFileError as err:
        raise ModelError(err.brief) from None


def _read_vocab(path: Path, config: Config) -> Vocab:
    try:
        return Vocab.load(path, config.data.lowercase, config.data.digits)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ModelError(f"{path}: unreadable vocabulary ({err})") from None


def _read_weights(
    path: Path, shape: ModelShape, vocab_size: int, meta: dict[str, Any]
) -> list[dict[str, Tensor]]:
    """Each member's parameters, every array checked against the shape the meta records."""
    expected = _expected_shapes(shape, vocab_size)
    arrays = _read_arrays(path)
    _check_members(path, arrays, meta["members"], meta["format_version"])
    out = []
    for member in range(meta["members"]):
        prefix = MEMBER_PREFIX.format(member) if member else ""
        for name, want in expected.items():
            got = arrays.get(prefix + name)
            if got is None:
                raise ModelError(f"{path}: weight {prefix + name} is missing")
            if got.shape != want:
                raise ModelError(
                    f"{path}: weight {prefix + name} has shape {got.shape}, config expects {want}"
                )
        out.append(
            {
                k: Tensor(
                    np.ascontiguousarray(arrays[prefix + k], dtype=shape.dtype),
                    requires_grad=True,
                    name=k,
                )
                for k in expected
            }
        )
    return out


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of a weights.npz, or ModelError when it is not a readable archive."""
    try:
        with open(path, "rb") as handle:
            archive = np.load(handle, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            with archive:
                return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ModelError(f"{path}: corrupt or truncated weights ({type(err).__name__})") from None


def _check_members(path: Path, arrays: dict[str, np.ndarray], members: int, version: int) -> None:
    """The member{k}. arrays must be those of the members 2..N in meta.json (none in format 1)."""
    found = sorted({int(m.group(1)) for m in map(MEMBER_KEY.match, arrays) if m})
    held = ", ".join(f"member{k}" for k in found) or "none"
    if version < 2 and (members > 1 or found):
        raise ModelError(
            f"{path}: format_version {version} is one model, but meta.json records {members} "
            f"member(s) and the weights hold member arrays: {held}"
        )
    if found != list(range(1, members)):
        raise ModelError(
            f"{path}: meta.json records {members} member(s), but the weights hold "
            f"{1 + len(found)} (member arrays: {held})"
        )


def _expected_shapes(shape: ModelShape, vocab_size: int) -> dict[str, tuple[int, ...]]:
    probe = WindowClassifier.initialise(
        ModelShape(**{**asdict(shape), "vocab_size": 1}), np.random.default_rng(0)
    )
    out = {k: t.shape for k, t in probe.params.items()}
    out["E"] = (vocab_size, shape.embedding_dim)
    return out
