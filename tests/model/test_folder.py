"""Model directories: round trip, readable load errors, atomic replacement, no pickle."""

from __future__ import annotations

import gc
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from nerwin.config import load_config
from nerwin.data.caps import N_CAPS
from nerwin.data.vocab import build_vocab
from nerwin.errors import ModelError
from nerwin.files import atomic
from nerwin.files.atomic import is_staging
from nerwin.model.classifier import ModelShape, WindowClassifier
from nerwin.model.folder import FORMAT_VERSION, load_model, save_model
from nerwin.model.tagger import Tagger

SENTENCES = [["Paris", "is", "in", "France"], ["He", "lives", "in", "Zürich", "."]]


def _tagger(seed: int = 0, hidden: tuple[int, ...] = (6,), activation: str = "relu") -> Tagger:
    vocab = build_vocab(SENTENCES)
    shape = ModelShape(len(vocab), 4, 5, hidden, activation, 2, N_CAPS)
    model = WindowClassifier.initialise(shape, np.random.default_rng(seed))
    return Tagger(model, vocab, threshold=0.37)


def _config():
    return load_config(
        None,
        [
            "model.embedding_dim=4",
            "model.hidden=[6]",
            "model.caps_dim=2",
            "train.lr=0.05",
            "data.location_types=[LOC, GPE]",
        ],
    )


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    save_model(directory, _tagger(), _config(), {"epoch": 3})
    return directory


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_modelio_round_trip(saved: Path) -> None:
    original = _tagger()
    tagger, config, meta = load_model(saved)
    assert set(tagger.model.params) == set(original.model.params)
    for name, array in original.model.arrays().items():
        loaded = tagger.model.params[name].data
        assert loaded.dtype == array.dtype
        np.testing.assert_array_equal(loaded, array, err_msg=name)
    assert tagger.model.shape == original.model.shape
    assert tagger.vocab.words == original.vocab.words
    np.testing.assert_array_equal(tagger.vocab.counts, original.vocab.counts)
    assert tagger.threshold == 0.37
    assert config == _config()
    assert (
        meta["epoch"] == 3 and meta["format_version"] == 1 and meta["members"] == 1
    )  # a single model stays readable by format-1 nerwin
    np.testing.assert_array_equal(
        tagger.probabilities(SENTENCES), original.probabilities(SENTENCES)
    )


@pytest.mark.parametrize(("hidden", "activation"), [((5, 3), "prelu"), ((4,), "tanh")])
def test_modelio_round_trip_other_shapes(tmp_path: Path, hidden, activation) -> None:
    original = _tagger(1, hidden, activation)
    save_model(tmp_path / "m", original, _config())
    tagger, _, _ = load_model(tmp_path / "m")
    for name, array in original.model.arrays().items():
        np.testing.assert_array_equal(tagger.model.params[name].data, array, err_msg=name)


def test_modelio_directory_holds_plain_files(saved: Path) -> None:
    names = {p.name for p in saved.iterdir()}
    assert names == {"weights.npz", "vocab.txt", "config.yaml", "meta.json", "features.json"}
    json.loads((saved / "meta.json").read_text(encoding="utf-8"))


def _load_error(directory: Path) -> str:
    with pytest.raises(ModelError) as info:
        load_model(directory)
    return str(info.value)


def test_modelio_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    assert str(missing) in _load_error(missing)


def test_modelio_file_instead_of_directory(tmp_path: Path) -> None:
    path = tmp_path / "model.txt"
    path.write_text("x")
    assert str(path) in _load_error(path)


@pytest.mark.parametrize("name", ["weights.npz", "vocab.txt", "config.yaml", "meta.json"])
def test_modelio_missing_file(saved: Path, name: str) -> None:
    (saved / name).unlink()
    assert str(saved / name) in _load_error(saved)


def test_modelio_truncated_weights(saved: Path) -> None:
    path = saved / "weights.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert str(path) in _load_error(saved)


@pytest.mark.parametrize("corrupt", [False, True])
def test_modelio_load_leaves_no_open_file(saved: Path, corrupt: bool) -> None:
    """A failed load must not leak the weights file handle (on Windows it blocks the dir)."""
    path = saved / "weights.npz"
    if corrupt:
        path.write_bytes(path.read_bytes()[:100])
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        try:
            load_model(saved)
        except ModelError:
            assert corrupt
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


def test_modelio_empty_weights(saved: Path) -> None:
    (saved / "weights.npz").write_bytes(b"")
    assert str(saved / "weights.npz") in _load_error(saved)


def test_modelio_weights_wrong_shape(saved: Path) -> None:
    path = saved / "weights.npz"
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["E"] = np.zeros((arrays["E"].shape[0] + 1, arrays["E"].shape[1]), np.float32)
    np.savez(path, **arrays)
    message = _load_error(saved)
    assert str(path) in message and "E" in message


def test_modelio_weights_missing_array(saved: Path) -> None:
    path = saved / "weights.npz"
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files if k != "u"}
    np.savez(path, **arrays)
    message = _load_error(saved)
    assert str(path) in message and "u" in message


def test_modelio_format_version_from_future(saved: Path) -> None:
    path = saved / "meta.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(meta), encoding="utf-8")
    message = _load_error(saved)
    assert str(path) in message and "upgrade" in message


def test_modelio_meta_not_json(saved: Path) -> None:
    (saved / "meta.json").write_text("{not json", encoding="utf-8")
    assert str(saved / "meta.json") in _load_error(saved)


@pytest.mark.parametrize("content", ["[1, 2]", "{}", '{"format_version": "1"}'])
def test_modelio_meta_without_format_version(saved: Path, content: str) -> None:
    (saved / "meta.json").write_text(content, encoding="utf-8")
    assert str(saved / "meta.json") in _load_error(saved)


@pytest.mark.parametrize(
    ("drop", "change"),
    [
        ("hidden", {}),
        (None, {"activation": "relu6"}),
        (None, {"hidden_size": 300}),
        (None, {"hidden": 6}),
    ],
    ids=["no-hidden", "unknown-activation", "unknown-key", "hidden-not-list"],
)
def test_modelio_meta_shape_malformed(saved: Path, drop: str | None, change: dict) -> None:
    path = saved / "meta.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["shape"].update(change)
    meta["shape"].pop(drop, None)
    path.write_text(json.dumps(meta), encoding="utf-8")
    assert str(path) in _load_error(saved)


def test_modelio_bad_config_is_model_error(saved: Path) -> None:
    (saved / "config.yaml").write_text("train:\n  lr: abc\n", encoding="utf-8")
    message = _load_error(saved)
    assert str(saved / "config.yaml") in message and "train.lr" in message


def test_modelio_object_array_rejected(saved: Path) -> None:
    path = saved / "weights.npz"
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    E = arrays["E"]
    as_objects = np.empty(E.shape, dtype=object)  # right shape; loadable only through pickle
    as_objects[...] = E.tolist()
    arrays["E"] = as_objects
    np.savez(path, **arrays)
    assert str(path) in _load_error(saved)


def test_modelio_save_replaces_existing_directory(tmp_path: Path) -> None:
    directory = tmp_path / "model"
    save_model(directory, _tagger(0), _config())
    save_model(directory, _tagger(1), _config(), {"epoch": 2})
    tagger, _, meta = load_model(directory)
    np.testing.assert_array_equal(tagger.model.params["W"].data, _tagger(1).model.params["W"].data)
    assert meta["epoch"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging or .old folder left


def test_modelio_failed_save_keeps_old_model(tmp_path: Path, monkeypatch) -> None:
    directory = tmp_path / "model"
    save_model(directory, _tagger(0), _config(), {"epoch": 1})
    before = _snapshot(directory)

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(ModelError, match="disk full") as info:
        save_model(directory, _tagger(1), _config(), {"epoch": 2})
    assert str(info.value).startswith(f"{directory}: cannot save the model")
    monkeypatch.undo()
    assert _snapshot(directory) == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    _, _, meta = load_model(directory)
    assert meta["epoch"] == 1


def test_modelio_failed_first_save_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(ModelError, match="disk full"):
        save_model(tmp_path / "model", _tagger(), _config())
    assert list(tmp_path.iterdir()) == []


def test_modelio_failed_swap_is_one_error_line(tmp_path: Path, monkeypatch) -> None:
    import errno
    import os

    directory = tmp_path / "model"
    save_model(directory, _tagger(0), _config(), {"epoch": 1})
    before = _snapshot(directory)

    def broken_replace(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link", str(src))

    monkeypatch.setattr(os, "replace", broken_replace)
    monkeypatch.setattr(atomic, "exchange", lambda a, b: broken_replace(a, b))
    with pytest.raises(ModelError) as info:
        save_model(directory, _tagger(1), _config(), {"epoch": 2})
    monkeypatch.undo()
    message = str(info.value)
    assert message.startswith(f"{directory}: cannot save the model") and "cross-device" in message
    assert "\n" not in message and _snapshot(directory) == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_modelio_staging_names_are_only_its_own(tmp_path: Path, monkeypatch) -> None:
    made = []
    real_new_folder = atomic._new_folder
    monkeypatch.setattr(
        atomic, "_new_folder", lambda target: made.append(real_new_folder(target)) or made[-1]
    )
    save_model(tmp_path / "model", _tagger(), _config())
    assert len(made) == 1 and is_staging(Path(made[0]).name, "model")
    assert is_staging(".model.old", "model") and is_staging(".last.old", "last")
    for name in (
        ".model.backup-v1",
        ".model.keep",
        ".last.old",
        ".model.old.1",
        "model",
        ".model.nerwin-new-",
    ):
        assert not is_staging(name, "model"), name


def test_modelio_save_keeps_a_file_it_did_not_write(tmp_path: Path) -> None:
    directory = tmp_path / "model"
    save_model(directory, _tagger(0), _config(), {"epoch": 1})
    (directory / "notes.txt").write_text("mine")
    before = _snapshot(directory)
    with pytest.raises(ModelError, match="not a file nerwin writes") as info:
        save_model(directory, _tagger(1), _config(), {"epoch": 2})
    assert str(info.value).startswith(f"{directory / 'notes.txt'}: ")
    assert _snapshot(directory) == before and [p.name for p in tmp_path.iterdir()] == ["model"]
    (directory / "notes.txt").unlink()
    (directory / "sub").mkdir()  # a folder is not nerwin's either
    with pytest.raises(ModelError, match="sub"):
        save_model(directory, _tagger(1), _config(), {"epoch": 2})
    (directory / "sub").rmdir()
    (tmp_path / ".model.old").mkdir()
    (tmp_path / ".model.old" / "mine.txt").write_text("mine")  # nor one in its staging folder
    with pytest.raises(ModelError, match="mine.txt"):
        save_model(directory, _tagger(1), _config(), {"epoch": 2})
    assert (tmp_path / ".model.old" / "mine.txt").read_text() == "mine"


def test_modelio_save_does_not_write_through_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    save_model(outside, _tagger(0), _config(), {"epoch": 1})
    (outside / "keep.txt").write_text("mine")
    before = _snapshot(outside)
    run = tmp_path / "run"
    run.mkdir()
    (run / "model").symlink_to(outside)
    with pytest.raises(ModelError, match="symbolic link") as info:
        save_model(run / "model", _tagger(1), _config(), {"epoch": 2})
    assert str(info.value).startswith(f"{run / 'model'}: ")
    assert _snapshot(outside) == before and [p.name for p in run.iterdir()] == ["model"]


def test_modelio_save_creates_parents(tmp_path: Path) -> None:
    directory = tmp_path / "runs" / "a" / "model"
    save_model(directory, _tagger(), _config())
    assert load_model(directory)[0].threshold == 0.37


def _ensemble(directory: Path, members: int = 3) -> Path:
    first = _tagger(0)
    others = tuple(_tagger(seed).model for seed in range(1, members))
    save_model(directory, Tagger(first.model, first.vocab, 0.37, first.features, others), _config())
    return directory


def _edit_meta(directory: Path, **changes: object) -> None:
    path = directory / "meta.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**meta, **changes}), encoding="utf-8")


def _drop_arrays(directory: Path, prefix: str) -> None:
    with np.load(directory / "weights.npz") as archive:
        arrays = {k: archive[k] for k in archive.files if not k.startswith(prefix)}
    np.savez(directory / "weights.npz", **arrays)


def test_modelio_ensemble_meta_members_more_than_arrays(tmp_path: Path) -> None:
    model = _ensemble(tmp_path / "model")
    assert len(load_model(model)[0].models) == 3
    _drop_arrays(model, "member2.")  # meta still says 3 members; the weights hold 2
    message = _load_error(model)
    assert (
        str(model / "weights.npz") in message and "3 member(s)" in message and "hold 2" in message
    )


def test_modelio_ensemble_meta_members_fewer_than_arrays(tmp_path: Path) -> None:
    model = _ensemble(tmp_path / "model")
    _edit_meta(model, members=2)  # member2.* arrays would be silently ignored
    message = _load_error(model)
    assert "2 member(s)" in message and "member2" in message


def test_modelio_format_1_with_member_arrays(tmp_path: Path) -> None:
    model = _ensemble(tmp_path / "model", members=2)
    _edit_meta(model, format_version=1, members=1)  # a single-model format, yet member1.* arrays
    message = _load_error(model)
    assert str(model / "weights.npz") in message and "format_version 1" in message
    _edit_meta(model, format_version=1, members=2)
    assert "format_version 1" in _load_error(model)
