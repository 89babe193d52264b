"""Vocab: specials, frequency order, cut-offs, normalisation, extend and save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nerwin.data.vocab import END_ID, SPECIALS, START_ID, UNK_ID, Vocab, build_vocab

CORPUS = [
    ["Paris", "is", "in", "France", "."],
    ["paris", "is", "big", "."],
    ["He", "went", "to", "PARIS", "in", "1996", "."],
]


def test_vocab_specials_at_fixed_ids() -> None:
    vocab = build_vocab(CORPUS)
    assert (UNK_ID, START_ID, END_ID) == (0, 1, 2)
    assert vocab.words[:3] == ["<unk>", "<s>", "</s>"] == list(SPECIALS)
    assert [vocab.index[w] for w in SPECIALS] == [0, 1, 2]
    assert list(vocab.counts[:3]) == [0, 0, 0]


def test_vocab_specials_in_corpus_not_duplicated() -> None:
    vocab = build_vocab([["<s>", "<unk>", "</s>", "<S>", "word"]])
    assert vocab.words == ["<unk>", "<s>", "</s>", "word"]


def test_vocab_rejects_words_without_specials() -> None:
    with pytest.raises(ValueError):
        Vocab(["a", "b", "c"])


def test_vocab_most_frequent_first() -> None:
    sentences = [["c"] * 1 + ["a"] * 5 + ["b"] * 3 + ["d"] * 2]
    vocab = build_vocab(sentences)
    assert vocab.words[3:] == ["a", "b", "d", "c"]
    assert list(vocab.counts[3:]) == [5, 3, 2, 1]


def test_vocab_counts_after_normalisation() -> None:
    vocab = build_vocab(CORPUS)
    assert vocab.words[3] == "paris"  # Paris, paris, PARIS counted together
    assert vocab.counts[vocab.index["paris"]] == 3
    assert vocab.counts[vocab.index["."]] == 3


def test_vocab_min_count() -> None:
    sentences = [["a"] * 5 + ["b"] * 3 + ["d"] * 2 + ["c"]]
    vocab = build_vocab(sentences, min_count=2)
    assert vocab.words[3:] == ["a", "b", "d"]
    assert build_vocab(sentences, min_count=4).words[3:] == ["a"]
    assert build_vocab(sentences, min_count=6).words == list(SPECIALS)


def test_vocab_max_size() -> None:
    sentences = [["a"] * 5 + ["b"] * 3 + ["d"] * 2 + ["c"]]
    vocab = build_vocab(sentences, max_size=2)
    assert vocab.words == [*list(SPECIALS), "a", "b"]
    assert len(build_vocab(sentences, max_size=100)) == 3 + 4


def test_vocab_min_count_and_max_size_together() -> None:
    sentences = [["a"] * 5 + ["b"] * 3 + ["d"] * 2 + ["c"]]
    assert build_vocab(sentences, min_count=3, max_size=3).words[3:] == ["a", "b"]
    assert build_vocab(sentences, min_count=1, max_size=3).words[3:] == ["a", "b", "d"]


def test_vocab_lowercase_and_digit_normalisation() -> None:
    vocab = build_vocab(CORPUS)
    assert vocab.normalise("1996") == "0000"
    assert vocab.normalise("Route66") == "route00"
    assert vocab.normalise("1,234.5") == "0,000.0"
    assert "0000" in vocab.index and "1996" not in vocab.index
    assert "france" in vocab.index and "France" not in vocab.index
    ids = vocab.encode(["PARIS", "Paris", "paris", "2024", "FRANCE"])
    assert list(ids) == [vocab.index["paris"]] * 3 + [vocab.index["0000"], vocab.index["france"]]


def test_vocab_normalisation_can_be_turned_off() -> None:
    vocab = build_vocab(CORPUS, lowercase=False, digits=False)
    assert {"Paris", "paris", "PARIS", "1996"} <= set(vocab.words)
    assert vocab.encode(["pArIs"])[0] == UNK_ID
    digits_only = build_vocab(CORPUS, lowercase=False, digits=True)
    assert "0000" in digits_only.index and "Paris" in digits_only.index


def test_vocab_encode_unknown_is_zero() -> None:
    vocab = build_vocab(CORPUS)
    ids = vocab.encode(["Paris", "Atlantis", "", "in"])
    assert ids.dtype == np.int32
    assert ids[1] == UNK_ID == 0 and ids[2] == UNK_ID
    assert ids[0] == vocab.index["paris"] and ids[3] == vocab.index["in"]
    assert vocab.encode([]).shape == (0,)


def test_vocab_extend_keeps_ids_and_appends_once() -> None:
    vocab = build_vocab(CORPUS)
    before = list(vocab.words)
    bigger = vocab.extend(["Berlin", "berlin", "BERLIN", "Paris", "Rome", "1990", "2001"])
    assert bigger.words[: len(before)] == before
    assert bigger.words[len(before) :] == ["berlin", "rome"]  # 1990/2001 -> 0000, already present
    assert len(bigger.counts) == len(bigger)
    assert list(bigger.counts[: len(before)]) == list(vocab.counts)
    assert list(bigger.counts[len(before) :]) == [0, 0]
    assert bigger.encode(["BERLIN"])[0] == len(before)
    assert vocab.words == before and "berlin" not in vocab.index  # the original is untouched


def test_vocab_extend_keeps_normalisation_flags() -> None:
    vocab = build_vocab(CORPUS, lowercase=False, digits=False)
    bigger = vocab.extend(["Berlin", "berlin"])
    assert bigger.words[-2:] == ["Berlin", "berlin"]
    assert (bigger.lowercase, bigger.digits) == (False, False)


def _round_trip(vocab: Vocab, tmp_path: Path) -> Vocab:
    path = tmp_path / "vocab.txt"
    vocab.save(path)
    return Vocab.load(path, vocab.lowercase, vocab.digits)


def test_vocab_save_load_round_trip(tmp_path: Path) -> None:
    vocab = build_vocab(CORPUS * 3 + [["rare"]])
    loaded = _round_trip(vocab, tmp_path)
    assert loaded.words == vocab.words
    assert loaded.index == vocab.index
    np.testing.assert_array_equal(loaded.counts, vocab.counts)
    assert (loaded.lowercase, loaded.digits) == (True, True)


UNUSUAL = [
    "café",
    "e\u0301",
    "👍🏽",
    "\u200d",
    "שלום",
    "北京",
    "a\u00a0b",
    "ǆ",
    "i̇",
    "#",
    "\\t",
    "x y",
]


def test_vocab_save_load_unusual_unicode(tmp_path: Path) -> None:
    vocab = build_vocab([UNUSUAL, UNUSUAL[:3]])
    loaded = _round_trip(vocab, tmp_path)
    assert loaded.words == vocab.words
    np.testing.assert_array_equal(loaded.counts, vocab.counts)


def test_vocab_save_load_line_separator_characters(tmp_path: Path) -> None:
    """Vector-file words (cut at the first space) may hold U+2028, U+0085, U+001C, \\r, \\f."""
    odd = ["a\u2028b", "x\x85y", "p\u2029q", "\x1c", "f\x0cg", "v\x0bw", "c\rd"]
    vocab = build_vocab([["plain"]]).extend(odd)
    loaded = _round_trip(vocab, tmp_path)
    assert loaded.words == vocab.words
    np.testing.assert_array_equal(loaded.counts, vocab.counts)
