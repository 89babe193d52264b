"""Model folders as untrusted input: regular files inside the folder only, sizes bounded before
memory is taken, fields and weights validated, errors one line quoting little; escaped vocab.txt
words; the copy a killed save set aside; folder modes."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import tracemalloc
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from nerwin.config import load_config
from nerwin.data.caps import N_CAPS
from nerwin.data.vocab import Vocab, build_vocab
from nerwin.errors import ModelError
from nerwin.model.classifier import ModelShape, WindowClassifier
from nerwin.model.folder import VOCAB_ESCAPED, load_model, save_model, vocab_text
from nerwin.model.tagger import Tagger

SENTENCES = [["Paris", "is", "in", "France"], ["He", "lives", "in", "Zürich", "."]]
SECRET = "TOP-SECRET-LINE-" + "x" * 200


def _tagger(vocab: Vocab | None = None, seed: int = 0) -> Tagger:
    vocab = vocab or build_vocab(SENTENCES)
    shape = ModelShape(len(vocab), 4, 5, (6,), "relu", 2, N_CAPS)
    return Tagger(WindowClassifier.initialise(shape, np.random.default_rng(seed)), vocab, 0.4)


def _config():
    return load_config(None, ["model.embedding_dim=4", "model.hidden=[6]", "model.caps_dim=2"])


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    save_model(directory, _tagger(), _config(), {"epoch": 3})
    return directory


@contextmanager
def _deadline(seconds: int):
    """Fail instead of hanging (a FIFO opened for reading blocks until a writer comes)."""

    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _error(directory: Path) -> str:
    with _deadline(20), pytest.raises(ModelError) as info:
        load_model(directory)
    message = str(info.value)
    assert "\n" not in message and len(message) < 500 + len(str(directory)), message
    return message


def _arrays(directory: Path) -> dict[str, np.ndarray]:
    with np.load(directory / "weights.npz") as archive:
        return {k: archive[k] for k in archive.files}


def _edit_meta(directory: Path, edit) -> None:
    path = directory / "meta.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    edit(meta)
    path.write_text(json.dumps(meta), encoding="utf-8")


def _peak(call, *args):
    """call(*args) and the peak of Python memory allocated meanwhile (tracemalloc), in bytes."""
    tracemalloc.start()
    try:
        result = call(*args)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- reading only regular files inside the folder ------------------------------------------------


@pytest.mark.parametrize("name", ["vocab.txt", "meta.json", "config.yaml", "weights.npz"])
def test_folder_never_reads_through_a_link(saved: Path, tmp_path: Path, name: str) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes((saved / name).read_bytes() if name != "vocab.txt" else SECRET.encode())
    (saved / name).unlink()
    (saved / name).symlink_to(outside)
    message = _error(saved)
    assert message.startswith(f"{saved / name}: ") and "symbolic link" in message
    assert "TOP-SECRET" not in message


def test_folder_link_to_dev_zero_is_not_read(saved: Path) -> None:
    (saved / "meta.json").unlink()
    (saved / "meta.json").symlink_to("/dev/zero")
    assert "symbolic link" in _error(saved)


@pytest.mark.parametrize("name", ["vocab.txt", "meta.json", "features.json"])
def test_folder_fifo_is_refused_without_blocking(saved: Path, name: str) -> None:
    (saved / name).unlink()
    os.mkfifo(saved / name)
    message = _error(saved)
    assert message.startswith(f"{saved / name}: ") and "not a regular file" in message


def test_folder_bad_vocab_line_is_quoted_short_and_escaped(saved: Path) -> None:
    path = saved / "vocab.txt"
    path.write_text(path.read_text().replace("<unk>\t0", f"<unk>\t{SECRET}\x1b[31m"))
    message = _error(saved)
    assert message.startswith(f"{path}:1: ") and SECRET not in message and "\x1b" not in message


# --- sizes checked before memory is taken --------------------------------------------------------


@pytest.mark.parametrize("name", ["meta.json", "vocab.txt", "config.yaml", "features.json"])
def test_folder_huge_files_are_not_read(saved: Path, name: str) -> None:
    with open(saved / name, "r+b") as handle:
        handle.truncate(2 << 30)  # sparse 2 GiB: the size alone refuses it
    message = _error(saved)
    assert message.startswith(f"{saved / name}: unreadable (too large")


@pytest.mark.parametrize(
    "edit",
    [
        lambda shape: shape.update(hidden=[1 << 40]),
        lambda shape: shape.update(hidden=[60_000, 60_000, 60_000]),
        lambda shape: shape.update(embedding_dim=10**9),
        lambda shape: shape.update(extra=[["suffix", 10**9, 10**3]]),
        lambda shape: shape.update(window=10**7 + 1),
        lambda shape: shape.update(vocab_size=10**12),
    ],
    ids=["hidden-2^40", "hidden-60k-x3", "dim-1e9", "feature-rows-1e9", "window-1e7", "vocab"],
)
def test_folder_huge_shapes_in_meta_are_refused_before_allocating(saved: Path, edit) -> None:
    _edit_meta(saved, lambda meta: edit(meta["shape"]))
    message, peak = _peak(_error, saved)
    assert message.startswith(f"{saved / 'meta.json'}: ") and peak < 50 << 20, (message, peak)


def test_folder_unknown_arrays_are_not_loaded(saved: Path) -> None:
    """An extra zero-filled array compresses to almost nothing but would cost 400 MB."""
    path = saved / "weights.npz"
    arrays = _arrays(saved)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f4", "fortran_order": False, "shape": (100_000_000,)}
        )
        with archive.open("junk.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            zeros = bytes(1 << 22)
            for _ in range(100):
                member.write(zeros)
    assert path.stat().st_size < 2 << 20
    (tagger, _, _), peak = _peak(load_model, saved)
    assert peak < 50 << 20, peak
    np.testing.assert_array_equal(tagger.model.params["E"].data, arrays["E"])


def test_folder_array_header_declaring_a_huge_shape_is_refused(saved: Path) -> None:
    path = saved / "weights.npz"
    arrays = _arrays(saved)
    del arrays["E"]
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w") as member:
                np.lib.format.write_array(member, array)
        with archive.open("E.npy", "w") as member:
            np.lib.format.write_array_header_1_0(
                member, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 4)}
            )
    message = _error(saved)
    assert message.startswith(f"{path}: weight E has shape (1000000000, 4)")


def test_folder_compression_bomb_of_the_right_shape_is_refused(tmp_path: Path) -> None:
    """A vocabulary of 1M words whose embedding table is all zeros compresses 1000-fold."""
    vocab = Vocab(["<unk>", "<s>", "</s>", *(f"w{i}" for i in range(1_000_000))])
    directory = tmp_path / "model"
    tagger = _tagger(vocab)
    tagger.model.params["E"].data[...] = 0
    save_model(directory, tagger, _config())
    arrays = _arrays(directory)
    np.savez_compressed(directory / "weights.npz", **arrays)
    message = _error(directory)
    assert "weight E: compressed" in message and "at most 32" in message


# --- fields and weights validated ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "fill"),
    [
        ("int32", None),
        ("complex64", None),
        ("float16", None),
        ([("a", "<f4"), ("b", "<f4")], None),
        ("float32", np.nan),
        ("float32", np.inf),
        ("float64", -np.inf),
    ],
    ids=["int", "complex", "float16", "structured", "nan", "inf", "minus-inf-float64"],
)
def test_folder_weights_must_be_finite_floats(saved: Path, dtype, fill) -> None:
    arrays = _arrays(saved)
    W = np.zeros(arrays["W"].shape, dtype=dtype)
    if fill is not None:
        W.flat[7] = fill
    np.savez(saved / "weights.npz", **{**arrays, "W": W})
    message = _error(saved)
    assert message.startswith(f"{saved / 'weights.npz'}: weight W"), message


def test_folder_float64_and_fortran_weights_still_load(saved: Path) -> None:
    arrays = _arrays(saved)
    changed = {**arrays, "W": np.asfortranarray(arrays["W"]), "E": arrays["E"].astype("<f8")}
    np.savez(saved / "weights.npz", **changed)
    tagger = load_model(saved)[0]
    for name, array in arrays.items():
        np.testing.assert_array_equal(tagger.model.params[name].data, array)
        assert tagger.model.params[name].data.dtype == np.float32
        assert tagger.model.params[name].data.flags.c_contiguous
        assert tagger.model.params[name].data.flags.writeable


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("epoch", "3", "epoch must be a whole number"),
        ("seed", -1, "seed must be a whole number"),
        ("threshold", float("nan"), "threshold must be a number in (0, 1)"),
        ("members", 10**6, "members must be a whole number in 1..1000"),
        ("member_epochs", "1,2", "member_epochs must be a list"),
        ("train_state", [1], "train_state must be a mapping"),
        ("format_version", 0, "format_version must be 1 or more"),
    ],
)
def test_folder_meta_fields_are_checked(saved: Path, key: str, value, expected: str) -> None:
    _edit_meta(saved, lambda meta: meta.update({key: value}))
    message = _error(saved)
    assert message.startswith(f"{saved / 'meta.json'}: ") and expected in message, message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"window": "5"}, "window must be"),
        ({"window": 4}, "window must be odd"),
        ({"hidden": [6.0]}, "hidden must be"),
        ({"hidden": [True]}, "hidden must be"),
        ({"caps_dim": -1}, "caps_dim must be"),
        ({"n_caps": 2}, "n_caps must be"),
        ({"dtype": ["float32"]}, "unsupported dtype"),
        ({"activation": 3}, "unknown activation"),
        ({"extra": [["nope", 5, 2]]}, "extra must be"),
        ({"aux_types": "ORG"}, "aux_types must be"),
        ({"x" * 5000: 1}, "unknown field"),
    ],
)
def test_folder_shape_fields_are_checked(saved: Path, change: dict, expected: str) -> None:
    _edit_meta(saved, lambda meta: meta["shape"].update(change))
    message = _error(saved)
    assert message.startswith(f"{saved / 'meta.json'}: ") and expected in message, message


def test_folder_vocab_size_must_match_vocab_txt(saved: Path) -> None:
    path = saved / "vocab.txt"
    path.write_text(path.read_text() + "extra\t1\n")
    message = _error(saved)
    assert "shape.vocab_size is" in message and "holds" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<unk>\t0\n<s>\t0\n</s>\t0\nparis\t1\nparis\t2\n", ":5: the word 'paris' repeats line 4"),
        ("<unk>\t0\n<s>\t0\n</s>\t0\nparis\t" + "9" * 30 + "\n", ":4: expected a word, a tab"),
        ("<unk>\t0\n<s>\t0\n</s>\t0\nparis 1\n", ":4: expected a word, a tab"),
        (f"{VOCAB_ESCAPED}\n<unk>\t0\n<s>\t0\n</s>\t0\npa\\qris\t1\n", ":5: unknown escape"),
        (f"{VOCAB_ESCAPED}\n<unk>\t0\n<s>\t0\n</s>\t0\npa\\ud800\t1\n", ":5: unknown escape"),
        ("<s>\t0\n<unk>\t0\n</s>\t0\n", "a vocabulary starts with"),
    ],
    ids=["duplicate", "huge-count", "no-tab", "bad-escape", "surrogate", "specials"],
)
def test_folder_vocab_lines_are_checked(tmp_path: Path, text: str, expected: str) -> None:
    vocab = Vocab(["<unk>", "<s>", "</s>", "paris"] + (["x"] if "paris\t2" in text else []))
    directory = tmp_path / "model"
    save_model(directory, _tagger(vocab), _config())
    (directory / "vocab.txt").write_text(text, encoding="utf-8")
    assert expected in _error(directory)


def test_folder_config_alias_bomb_is_refused(saved: Path) -> None:
    """A billion laughs in config.yaml (as a value the config builder would describe)."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")]
    lines += ["train:", "  lr: *i"]
    (saved / "config.yaml").write_text("\n".join(lines) + "\n")
    message, peak = _peak(_error, saved)
    assert message.startswith(f"{saved / 'config.yaml'}:") and "aliases expand" in message
    assert peak < 20 << 20, peak


def test_folder_features_must_match_the_shape(tmp_path: Path) -> None:
    from nerwin.data.features import TokenFeature

    vocab = build_vocab(SENTENCES)
    features = {"suffix": TokenFeature("suffix", ["<pad>", "<unk>", "is", "in"])}
    shape = ModelShape(len(vocab), 4, 5, (6,), "relu", 2, N_CAPS, extra=(("suffix", 4, 2),))
    model = WindowClassifier.initialise(shape, np.random.default_rng(0))
    directory = tmp_path / "model"
    save_model(directory, Tagger(model, vocab, 0.5, features), _config())
    assert load_model(directory)[0].features["suffix"].values == features["suffix"].values
    path = directory / "features.json"
    good = path.read_text()
    for bad in (
        '{"suffix": {"kind": "shape", "values": ["<pad>", "<unk>", "is", "in"]}}',
        '{"suffix": {"kind": "suffix", "values": ["<pad>", "<unk>", 1, "in"]}}',
        '{"suffix": {"kind": "suffix", "values": ["<pad>", "<unk>", "in", "in"]}}',
        '{"suffix": {"kind": "suffix", "values": ["<pad>", "<unk>", "is", "in"]}, "shape": {}}',
        "[1, 2]",
        "[" * 100_000,
    ):
        path.write_text(bad)
        assert _error(directory).startswith(f"{path}: ")
    path.write_text(good)
    load_model(directory)


# --- vocab.txt: words with control and line-break characters -------------------------------------


ODD_WORDS = ["new\nline", "tab\there", "cr\rhere", "back\\slash", "nel\x85", "ls\u2028", "\x00"]


def test_folder_odd_words_round_trip_escaped(tmp_path: Path) -> None:
    vocab = build_vocab(SENTENCES).extend(ODD_WORDS)
    directory = tmp_path / "model"
    save_model(directory, _tagger(vocab), _config())
    text = (directory / "vocab.txt").read_text(encoding="utf-8")
    assert text.startswith(VOCAB_ESCAPED + "\n") and "new\\nline\t0\n" in text
    assert "back\\\\slash" in text and len(text.splitlines()) == len(vocab) + 1
    loaded = load_model(directory)[0]
    assert loaded.vocab.words == vocab.words


def test_folder_plain_vocab_is_written_as_before(tmp_path: Path) -> None:
    """Without odd words vocab.txt is byte for byte what Vocab.save writes (older nerwin reads
    it); a backslash alone needs no escaping."""
    vocab = build_vocab([*SENTENCES, ["a\\b", "C:\\x41"]])
    vocab.save(tmp_path / "plain.txt")
    assert vocab_text(vocab) == (tmp_path / "plain.txt").read_text(encoding="utf-8")
    save_model(tmp_path / "model", _tagger(vocab), _config())
    assert load_model(tmp_path / "model")[0].vocab.words == vocab.words


# --- a save killed between its two renames; modes ------------------------------------------------


def test_folder_load_takes_the_copy_set_aside(saved: Path) -> None:
    os.replace(saved, saved.with_name(".model.old"))
    tagger, _, meta = load_model(saved)
    assert meta["epoch"] == 3 and tagger.threshold == 0.4
    saved.mkdir()  # a folder at the path (even an empty one) is what is read
    assert "missing" in _error(saved)


def test_folder_model_folder_has_the_usual_mode(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        save_model(tmp_path / "model", _tagger(), _config())
        save_model(tmp_path / "model", _tagger(seed=1), _config())
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o755
    for path in (tmp_path / "model").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_folder_run_with_odd_vector_words_saves_a_loadable_model(tmp_path: Path, monkeypatch):
    """A word2vec binary file whose words hold a newline, a tab and a control character, added
    to the vocabulary: the run's model and checkpoint load with those words intact."""
    from _trained import invoke

    table = {
        "paris": [1, 2, 3],
        "new\nline": [4, 5, 6],
        "tab\there": [7, 8, 9],
        "bel\x07": [1, 1, 1],
    }
    records = [f"{len(table)} 3\n".encode()]
    records += [w.encode() + b" " + np.asarray(v, "<f4").tobytes() for w, v in table.items()]
    (tmp_path / "v.bin").write_bytes(b"".join(records))
    monkeypatch.setenv("NERWIN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    settings = [
        f"data.vectors={tmp_path / 'v.bin'}",
        "model.embedding_dim=3",
        "data.vectors_extend=-1",
        "train.epochs=1",
        "model.hidden=[8]",
    ]
    result = invoke(["train", "--out", out, *(x for s in settings for x in ("--set", s))])
    assert result.exit_code == 0, (result.stderr, result.exception)
    for folder in ("model", "last"):
        words = load_model(out / folder)[0].vocab.words
        assert {"new\nline", "tab\there", "bel\x07"} <= set(words), folder


def test_folder_load_racing_a_save_reads_one_whole_folder(saved: Path, monkeypatch) -> None:
    """A save that replaces the folder while it is read: the load never mixes the two saves'
    files; it fails on the old folder's vanished files and reads the new folder whole."""
    from nerwin.model import folder as folder_module

    real_read_vocab, calls = folder_module.read_vocab, []

    def read_vocab_then_save(*args):
        calls.append(args[1])
        if len(calls) == 1:  # the folder is swapped after vocab.txt was read
            save_model(saved, _tagger(seed=9), _config(), {"epoch": 4})
        return real_read_vocab(*args)

    monkeypatch.setattr(folder_module, "read_vocab", read_vocab_then_save)
    tagger, _, meta = load_model(saved)
    assert len(calls) == 2 and meta["epoch"] == 4
    expected = _tagger(seed=9).model.params["W"].data
    np.testing.assert_array_equal(tagger.model.params["W"].data, expected)
