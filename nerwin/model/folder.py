"""Model directories: weights.npz, vocab.txt, features.json, config.yaml, meta.json.

Writing. `save_model` fills a staging folder and swaps it in (nerwin.files.atomic.write_folder):
at every step of a save, `load_model` and `--resume` find either the old or the new folder,
complete (at its own path, or during the fallback swap's one window at `.NAME.old`, which
`load_model` then reads). `recover_save` (run by `--resume`) puts a set-aside copy back and
deletes leftover staging folders. vocab.txt escapes odd words (nerwin.model.vocabfile).

Reading. A model folder is untrusted input. `load_model` reads only regular files inside the
folder (never through a symbolic link, never a FIFO or a device), each opened relative to one
open handle of the folder, so all of them come from the same save. Sizes are checked before
memory is taken: every file has an upper bound (LIMITS); meta.json's fields are checked and its
sizes bounded (nerwin.model.metafile) and must agree with vocab.txt and features.json;
weights.npz's arrays are read under their expected names only, each header checked before its
data is read; an ensemble's members after the first store only the rows of E that differ from
the first member's (format 3; nerwin.model.weightsfile). Every problem is one ModelError line
naming the file and the field; file contents appear only as a short, escaped excerpt.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from nerwin import __version__
from nerwin.config import Config, config_from_dict, save_config
from nerwin.data.features import PAD, UNK, TokenFeature
from nerwin.data.gazetteer import GAZETTEER, Gazetteer
from nerwin.data.placenames import checksum, folder_text, read_folder_text
from nerwin.errors import ConfigError, ModelError
from nerwin.files import atomic, bounded, yamlfile
from nerwin.files.yamlfile import YamlFileError
from nerwin.model.classifier import ModelShape, WindowClassifier
from nerwin.model.metafile import FORMAT_VERSION, excerpt, read_meta, read_shape, shape_dict
from nerwin.model.tagger import Tagger
from nerwin.model.vocabfile import VOCAB_ESCAPED, read_vocab, vocab_text
from nerwin.model.weightsfile import (
    MEMBER_PREFIX,
    ROWS,
    SHARED_ROWS,
    VALUES,
    read_weights,
    shared_rows,
)

__all__ = [
    "FILES",
    "FORMAT_VERSION",
    "VOCAB_ESCAPED",
    "WRITTEN",
    "load_model",
    "recover_save",
    "save_model",
    "vocab_text",
]
FILES = ("weights.npz", "vocab.txt", "config.yaml", "meta.json")
GAZETTEER_FILE = "gazetteer.txt"  # the place names of a model with a gazetteer feature
WRITTEN = (*FILES, "features.json", GAZETTEER_FILE)  # every file save_model may write
LIMITS = {  # bytes read at most from each file (weights.npz: bounded by its expected arrays)
    "meta.json": 1 << 20,
    "config.yaml": yamlfile.MAX_BYTES,
    "features.json": 64 << 20,
    GAZETTEER_FILE: 256 << 20,
    "vocab.txt": 1 << 30,
}


# --- writing -------------------------------------------------------------------------------------


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


def recover_save(directory: Path) -> bool:
    """Clean up after a save of `directory` that was killed: put the previous copy back from
    `.NAME.old` when `directory` is missing, delete leftover staging folders (nerwin's files in
    them only). True when a copy was put back. Call it after rundir.check_outputs passed."""
    try:
        return atomic.recover_folder(Path(directory), WRITTEN, FILES)
    except OSError as err:
        raise ModelError(
            f"{directory}: cannot clean up an interrupted save ({err.strerror or err})"
        ) from None


def _cannot_save(directory: Path, err: OSError) -> str:
    """The one-line message of a save that failed on the file system."""
    where = f"{err.filename}: " if err.filename else ""
    return f"{directory}: cannot save the model ({where}{err.strerror or err})"


def _write_files(
    staging: Path, tagger: Tagger, config: Config, extra: dict[str, Any] | None
) -> None:
    """Every file of the model directory, written into `staging`."""
    np.savez(staging / "weights.npz", **_all_arrays(tagger))
    (staging / "vocab.txt").write_text(vocab_text(tagger.vocab), encoding="utf-8")
    features = {name: f.to_dict() for name, f in tagger.features.items()}
    (staging / "features.json").write_text(json.dumps(features) + "\n", encoding="utf-8")
    gazetteer = {}
    if tagger.gazetteer is not None:
        text = folder_text(tagger.gazetteer)
        (staging / GAZETTEER_FILE).write_text(text, encoding="utf-8")
        gazetteer = {
            "gazetteer": {"names": len(tagger.gazetteer), "sha256": checksum(text.encode("utf-8"))}
        }
    save_config(config, staging / "config.yaml")
    members = len(tagger.models)
    meta = {
        **(extra or {}),
        **gazetteer,
        "format_version": SHARED_ROWS if members > 1 else 1,  # format 1 for older nerwin
        "nerwin_version": __version__,
        "threshold": tagger.threshold,
        "shape": shape_dict(tagger.model.shape),
        "members": members,
        "numpy_version": np.__version__,
    }  # never an old meta's threshold
    (staging / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


# --- reading -------------------------------------------------------------------------------------


def load_model(directory: str | Path) -> tuple[Tagger, Config, dict[str, Any]]:
    """Read a model directory written by `save_model`, checking every file (module docstring).

    A load that fails because a save replaced the folder while it was read (its files were
    removed from under it) is tried once more, on the new folder.
    """
    directory = Path(directory)
    for attempt in (1, 2):
        source = atomic.readable_folder(directory)  # `.NAME.old` while a save swaps NAME
        if not source.is_dir():
            raise ModelError(f"{directory}: model directory not found")
        with _Folder.open(source) as folder:
            try:
                return _load(folder)
            except ModelError:
                if attempt == 2 or not folder.replaced():
                    raise
    raise AssertionError("unreachable")


class _Folder:
    """An open model folder: its files are opened relative to it, never through a link."""

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: Path) -> Iterator[_Folder]:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
        except OSError as err:
            raise ModelError(f"{path}: cannot open the model directory ({err.strerror})") from None
        try:
            yield cls(path, fd)
        finally:
            os.close(fd)

    def replaced(self) -> bool:
        """True when the folder's path no longer names the folder this one opened."""
        try:
            return os.stat(self.path).st_ino != os.fstat(self.fd).st_ino
        except OSError:
            return True

    def exists(self, name: str) -> bool:
        try:
            os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        except OSError as err:
            raise self.error(name, err) from None
        return True

    def read(self, name: str) -> bytes:
        """The bytes of the regular file `name` (at most LIMITS[name])."""
        try:
            return bounded.read_limited(name, LIMITS[name], dir_fd=self.fd, follow_links=False)
        except OSError as err:
            raise self.error(name, err) from None

    def open_file(self, name: str) -> BinaryIO:
        """The regular file `name`, open for binary reading."""
        try:
            return bounded.open_regular(name, dir_fd=self.fd)
        except OSError as err:
            raise self.error(name, err) from None

    def error(self, name: str, err: OSError) -> ModelError:
        path = self.path / name
        if isinstance(err, FileNotFoundError):
            return ModelError(f"{path}: missing; not a complete nerwin model directory")
        return ModelError(f"{path}: unreadable ({err.strerror or type(err).__name__})")


def _load(folder: _Folder) -> tuple[Tagger, Config, dict[str, Any]]:
    for name in FILES:
        if not folder.exists(name):
            raise folder.error(name, FileNotFoundError())
    path = folder.path
    meta = read_meta(folder.read("meta.json"), path / "meta.json")
    config = _read_config(folder.read("config.yaml"), path / "config.yaml")
    shape = read_shape(meta["shape"], path / "meta.json")
    vocab = read_vocab(
        folder.read("vocab.txt"), path / "vocab.txt", config.data.lowercase, config.data.digits
    )
    if len(vocab) != shape.vocab_size:
        raise ModelError(
            f"{path / 'meta.json'}: shape.vocab_size is {shape.vocab_size:,} but "
            f"{path / 'vocab.txt'} holds {len(vocab):,} words"
        )
    features_data = folder.read("features.json") if folder.exists("features.json") else None
    features = _read_features(features_data, path / "features.json", shape)
    uses_names = any(name == GAZETTEER for name, _, _ in shape.extra)
    gazetteer = _read_gazetteer(folder, shape, config, meta) if uses_names else None
    with folder.open_file("weights.npz") as handle:
        weights = read_weights(handle, path / "weights.npz", shape, meta)
    models = [WindowClassifier(shape, params) for params in weights]
    threshold = float(meta.get("threshold", 0.5))
    tagger = Tagger(models[0], vocab, threshold, features, tuple(models[1:]), gazetteer=gazetteer)
    return tagger, config, meta


def _read_gazetteer(
    folder: _Folder, shape: ModelShape, config: Config, meta: dict[str, Any]
) -> Gazetteer:
    """The model's place names (gazetteer.txt), checked against the feature table's rows."""
    path = folder.path / GAZETTEER_FILE
    if not folder.exists(GAZETTEER_FILE):
        raise ModelError(f"{path}: missing; the model has a gazetteer feature")
    data = folder.read(GAZETTEER_FILE)
    recorded = (
        meta.get("gazetteer", {}).get("sha256") if isinstance(meta.get("gazetteer"), dict) else None
    )
    if recorded is not None and checksum(data) != recorded:
        raise ModelError(f"{path}: changed since training (its sha256 differs from meta.json's)")
    try:
        gazetteer = read_folder_text(data, path, config.data.gazetteer_lowercase)
    except (UnicodeDecodeError, ValueError) as err:
        message = f"{path}: not UTF-8" if isinstance(err, UnicodeDecodeError) else str(err)
        raise ModelError(_cut(message)) from None
    rows = next(r for name, r, _ in shape.extra if name == GAZETTEER)
    if gazetteer.n_values != rows:
        raise ModelError(
            f"{path}: {len(gazetteer.kinds)} kinds of names give {gazetteer.n_values} feature "
            f"values but the weights have {rows}"
        )
    return gazetteer


def _cut(message: str, limit: int = 400) -> str:
    """An error message (built from a file's content) on one line, at most `limit` characters."""
    flat = " ".join(message.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _read_config(data: bytes, path: Path) -> Config:
    try:
        return config_from_dict(yamlfile.parse_sections(data, path), str(path))
    except YamlFileError as err:
        raise ModelError(_cut(err.brief)) from None
    except ConfigError as err:
        raise ModelError(_cut(str(err))) from None


def _read_features(data: bytes | None, path: Path, shape: ModelShape) -> dict[str, TokenFeature]:
    """The feature vocabularies (features.json, optional when the model has none)."""
    names = [name for name, _, _ in shape.extra if name != GAZETTEER]
    if data is None:
        if names:
            raise ModelError(f"{path}: missing; the model uses features {names}")
        return {}
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ModelError(f"{path}: unreadable ({type(err).__name__})") from None
    if not isinstance(raw, dict):
        raise ModelError(f"{path}: expected a mapping of features, got {excerpt(raw)}")
    features = {}
    for name, item in raw.items():
        ok = (
            isinstance(item, dict)
            and set(item) == {"kind", "values"}
            and item["kind"] == name
            and isinstance(item["values"], list)
            and item["values"][:2] == [PAD, UNK]
            and all(isinstance(v, str) for v in item["values"])
            and len(set(item["values"])) == len(item["values"])
        )
        if not ok:
            raise ModelError(
                f"{path}: feature {excerpt(name)} must be {{kind: its name, values: distinct "
                f'strings starting with "{PAD}", "{UNK}"}}'
            )
        features[name] = TokenFeature(name, list(item["values"]))
    if sorted(features) != sorted(names):
        raise ModelError(
            f"{path}: features {sorted(features)} do not match the weights' {sorted(names)}"
        )
    for name, rows, _ in shape.extra:
        if name != GAZETTEER and len(features[name]) != rows:
            raise ModelError(f"{path}: feature {name} does not match the weights")
    return features


def _all_arrays(tagger: Tagger) -> dict[str, np.ndarray]:
    """Every member's parameters: the first under plain names, member k under member{k}.NAME,
    its E as the rows that differ from the first member's (member{k}.E.rows and .values)."""
    arrays = dict(tagger.model.arrays())
    for k, member in enumerate(tagger.members, start=1):
        prefix = MEMBER_PREFIX.format(k)
        own = dict(member.arrays())
        rows, values = shared_rows(arrays["E"], own.pop("E"))
        arrays.update({prefix + name: a for name, a in own.items()})
        arrays.update({prefix + ROWS: rows, prefix + VALUES: values})
    return arrays
