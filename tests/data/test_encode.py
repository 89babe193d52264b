"""encode_sentences: word and caps windows aligned with the sentences' tokens."""

from __future__ import annotations

import numpy as np
import pytest

from nerwin.data.caps import CAPS_PAD, encode_caps
from nerwin.data.encode import WindowData, encode_sentences
from nerwin.data.vocab import END_ID, START_ID, build_vocab

SENTENCES = [["Paris", "is", "in", "France", "."], ["He", "left", "in", "1996"], ["Oslo"]]


@pytest.mark.parametrize("window", [1, 3, 5])
def test_encode_words_and_caps_aligned(window: int) -> None:
    vocab = build_vocab(SENTENCES)
    data = encode_sentences(SENTENCES, vocab, window, with_caps=True)
    flat = [w for s in SENTENCES for w in s]
    assert isinstance(data, WindowData)
    assert len(data) == len(flat) == 10
    assert data.words.shape == data.caps.shape == (10, window)
    np.testing.assert_array_equal(data.lengths, [5, 4, 1])
    half = window // 2
    np.testing.assert_array_equal(data.words[:, half], vocab.encode(flat))
    np.testing.assert_array_equal(data.caps[:, half], encode_caps(flat))


def test_encode_pads_words_with_edges_and_caps_with_pad() -> None:
    vocab = build_vocab(SENTENCES)
    data = encode_sentences(SENTENCES, vocab, 5, with_caps=True)
    oslo = data.words[-1]
    np.testing.assert_array_equal(oslo, [START_ID, START_ID, vocab.index["oslo"], END_ID, END_ID])
    np.testing.assert_array_equal(
        data.caps[-1], [CAPS_PAD, CAPS_PAD, encode_caps(["Oslo"])[0], CAPS_PAD, CAPS_PAD]
    )
    pads = (data.words == START_ID) | (data.words == END_ID)
    np.testing.assert_array_equal(data.caps == CAPS_PAD, pads)  # caps pad exactly where words pad


def test_encode_window_neighbours() -> None:
    vocab = build_vocab(SENTENCES)
    data = encode_sentences(SENTENCES, vocab, 3, with_caps=True)
    in_ = vocab.index["in"]
    # token 2 of sentence 0 ("in"): neighbours "is" and "France"
    np.testing.assert_array_equal(data.words[2], [vocab.index["is"], in_, vocab.index["france"]])
    np.testing.assert_array_equal(data.caps[2], encode_caps(["is", "in", "France"]))


def test_encode_without_caps() -> None:
    vocab = build_vocab(SENTENCES)
    data = encode_sentences(SENTENCES, vocab, 5, with_caps=False)
    assert data.caps is None
    assert data.words.shape == (10, 5)


def test_encode_unknown_words_are_unk() -> None:
    vocab = build_vocab(SENTENCES)
    data = encode_sentences([["Atlantis", "is", "lost"]], vocab, 5, with_caps=True)
    np.testing.assert_array_equal(data.words[:, 2], [0, vocab.index["is"], 0])


def test_encode_no_sentences() -> None:
    data = encode_sentences([], build_vocab(SENTENCES), 5, with_caps=True)
    assert len(data) == 0 and data.words.shape == (0, 5) and data.caps.shape == (0, 5)
