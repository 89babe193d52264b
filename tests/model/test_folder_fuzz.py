"""Fuzzing model folders: load_model raises one-line ModelErrors or loads a working model.

Each example mutates one file of a small saved model (truncated, bytes flipped or inserted, a
JSON or YAML field replaced by a value of another type or a huge number, an array replaced by
one of another dtype, shape or with NaN, a file replaced by a link or a FIFO) and loads it. The
outcome must be a ModelError (a NerwinError) whose message is one line, or a model that tags.
Every file load_model opens must be opened inside the folder and without following a link.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nerwin.config import load_config
from nerwin.data.caps import N_CAPS
from nerwin.data.features import TokenFeature
from nerwin.data.vocab import build_vocab
from nerwin.errors import ModelError, NerwinError
from nerwin.model.classifier import ModelShape, WindowClassifier
from nerwin.model.folder import WRITTEN, load_model, save_model
from nerwin.model.tagger import Tagger

SENTENCES = [["Paris", "is", "in", "France"], ["He", "lives", "in", "Zürich", "."]]
NAMES = ("meta.json", "vocab.txt", "config.yaml", "weights.npz", "features.json")
_OPENS: list[tuple[str, int]] | None = None  # os.open calls seen while a load runs


def _audit(event: str, args: tuple) -> None:
    if _OPENS is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENS.append((os.fsdecode(args[0]), args[2] if len(args) > 2 else 0))


sys.addaudithook(_audit)


@pytest.fixture(scope="module", params=["single", "ensemble"])
def base(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model with every file, features and aux heads included; or an ensemble of three
    such models whose members 2 and 3 change a few rows of member 1's E (format 3)."""
    vocab = build_vocab(SENTENCES)
    features = {"suffix": TokenFeature("suffix", ["<pad>", "<unk>", "ris", "ich"])}
    shape = ModelShape(
        len(vocab), 4, 3, (5, 3), "prelu", 2, N_CAPS, extra=(("suffix", 4, 2),), aux_types=("O",)
    )
    model = WindowClassifier.initialise(shape, np.random.default_rng(0))
    members = []
    if request.param == "ensemble":
        for k, rows in ((1, [0, 5]), (2, [3])):
            E = model.params["E"].data.copy()
            E[rows] += 1.0
            members.append(WindowClassifier.initialise(shape, np.random.default_rng(k), E))
    config = load_config(None, ["model.embedding_dim=4", "model.caps_dim=2", "model.window=3"])
    directory = tmp_path_factory.mktemp("fuzz") / "model"
    tagger = Tagger(model, vocab, 0.4, features, tuple(members))
    save_model(directory, tagger, config, {"epoch": 2, "seed": 0})
    return directory


ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 70), 1 << 70),
    st.sampled_from([0, -1, 1, 10**9, 10**12, 2**63, 1e308, -0.0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(-3, 10**6), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def _json_paths(value, prefix=()):
    """Every path to a value inside parsed JSON."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_paths(item, (*prefix, index))


def _replace(document, path, new):
    if not path:
        return new
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return document


@st.composite
def mutations(draw):
    """(file name, kind, parameters) of one mutation."""
    name = draw(st.sampled_from(NAMES))
    kinds = ["truncate", "flip", "insert", "link", "fifo"]
    if name.endswith(".json") or name == "config.yaml":
        kinds += ["field", "field", "field"]
    if name == "weights.npz":
        kinds += ["array", "array", "array"]
    kind = draw(st.sampled_from(kinds))
    return name, kind, draw(st.randoms(use_true_random=False))


def _mutate(folder: Path, name: str, kind: str, rnd, draw_value) -> None:
    path = folder / name
    data = path.read_bytes()
    if kind == "truncate":
        path.write_bytes(data[: rnd.randrange(len(data) + 1)])
    elif kind == "flip":
        raw = bytearray(data)
        for _ in range(rnd.randint(1, 4)):
            raw[rnd.randrange(len(raw))] ^= rnd.randint(1, 255)
        path.write_bytes(bytes(raw))
    elif kind == "insert":
        at = rnd.randrange(len(data) + 1)
        path.write_bytes(data[:at] + rnd.randbytes(rnd.randint(1, 8)) + data[at:])
    elif kind == "link":
        outside = folder.parent / "outside.txt"
        path.unlink()
        path.symlink_to(outside)
    elif kind == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif kind == "field" and name == "config.yaml":
        document = yaml.safe_load(data)
        where = rnd.choice(list(_json_paths(document)))
        path.write_text(yaml.safe_dump(_replace(document, where, draw_value())))
    elif kind == "field":
        document = json.loads(data)
        where = rnd.choice(list(_json_paths(document)))
        path.write_text(json.dumps(_replace(document, where, draw_value())))
    else:  # an array of another dtype, shape or content, or one more or one less
        with np.load(io.BytesIO(data)) as archive:
            arrays = {k: archive[k] for k in archive.files}
        key = rnd.choice(sorted(arrays))
        change = rnd.choice(["dtype", "shape", "nan", "drop", "add", "member"])
        if change == "dtype":
            arrays[key] = arrays[key].astype(rnd.choice(["int64", "complex64", "float16", "u1"]))
        elif change == "shape":
            arrays[key] = np.zeros((rnd.randint(0, 9), rnd.randint(1, 9)), np.float32)
        elif change == "nan":
            arrays[key] = arrays[key].copy()
            arrays[key].flat[rnd.randrange(arrays[key].size)] = rnd.choice([np.nan, np.inf])
        elif change == "drop":
            del arrays[key]
        elif change == "add":
            arrays["junk"] = np.zeros((1000, 1000), np.float32)
        else:
            arrays[f"member1.{key}"] = arrays[key]
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        path.write_bytes(buffer.getvalue())


@settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(mutation=mutations(), data=st.data())
def test_folder_fuzz_load_is_a_model_error_or_a_working_model(base: Path, mutation, data) -> None:
    global _OPENS
    name, kind, rnd = mutation
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        shutil.copytree(base, folder)
        (Path(tmp) / "outside.txt").write_text("SECRET outside the folder\n")
        _mutate(folder, name, kind, rnd, lambda: data.draw(ODD_VALUES))
        _OPENS = []
        try:
            loaded = load_model(folder)
        except ModelError as err:
            assert isinstance(err, NerwinError)
            message = str(err)
            assert "\n" not in message and "SECRET" not in message, message
            assert len(message) < 600, message
            loaded = None
        finally:
            opens, _OPENS = _OPENS, None
        for path, flags in opens:
            if path.endswith((".py", ".pyc")) or path.startswith(sys.prefix):
                continue  # an import
            if path in WRITTEN:  # opened relative to the folder's handle
                assert flags & os.O_NOFOLLOW, (path, flags)
            else:
                assert Path(path).resolve() == folder.resolve(), path
        if loaded is not None:
            tagger = loaded[0]
            with np.errstate(all="ignore"):
                probs = tagger.probabilities(SENTENCES)
            assert probs.shape == (9,)
