"""make_windows: one window per token, centre = token, pads only at sentence edges."""

from __future__ import annotations

import time

import numpy as np
import pytest

from nerwin.data.windows import make_windows, window_positions

START, END = 1, 2


def _reference(sentences: list[list[int]], window: int, start: int, end: int) -> np.ndarray:
    """The obvious pure-Python windows: pad each sentence, then slide."""
    half = window // 2
    rows = []
    for sentence in sentences:
        padded = [start] * half + list(sentence) + [end] * half
        rows += [padded[i : i + window] for i in range(len(sentence))]
    return np.array(rows, dtype=np.int64).reshape(-1, window)


def _random_corpus(rng: np.random.Generator, n_sentences: int, max_len: int) -> list[list[int]]:
    lengths = rng.integers(1, max_len + 1, n_sentences)
    return [list(rng.integers(3, 1000, n)) for n in lengths]


def _windows(sentences: list[list[int]], window: int) -> np.ndarray:
    ids = np.array([i for s in sentences for i in s], dtype=np.int32)
    lengths = np.array([len(s) for s in sentences])
    return make_windows(ids, lengths, window, START, END)


@pytest.mark.parametrize("window", [1, 3, 5, 7])
def test_windows_count_equals_tokens_and_centre_is_token(
    rng: np.random.Generator, window: int
) -> None:
    sentences = _random_corpus(rng, 40, 12)
    flat = [i for s in sentences for i in s]
    windows = _windows(sentences, window)
    assert windows.shape == (len(flat), window)
    assert windows.dtype == np.int32
    np.testing.assert_array_equal(windows[:, window // 2], flat)


@pytest.mark.parametrize("window", [1, 3, 5, 7])
def test_windows_pads_only_at_sentence_edges(rng: np.random.Generator, window: int) -> None:
    sentences = _random_corpus(rng, 60, 9)
    windows = _windows(sentences, window)
    half = window // 2
    positions = np.concatenate([np.arange(len(s)) for s in sentences])
    lengths = np.concatenate([np.full(len(s), len(s)) for s in sentences])
    for col in range(window):
        offset = col - half
        target = positions + offset
        want_start = target < 0
        want_end = target >= lengths
        np.testing.assert_array_equal(windows[:, col] == START, want_start, err_msg=f"column {col}")
        np.testing.assert_array_equal(windows[:, col] == END, want_end, err_msg=f"column {col}")
    assert not (windows[:, half:] == START).any()  # start pads only left of the centre
    assert not (windows[:, : half + 1] == END).any()  # end pads only right of it
    assert ((windows == START).sum(axis=1) <= half).all()
    assert ((windows == END).sum(axis=1) <= half).all()


@pytest.mark.parametrize("window", [1, 3, 5, 7])
def test_windows_match_reference_on_random_corpora(rng: np.random.Generator, window: int) -> None:
    for _ in range(10):
        sentences = _random_corpus(rng, int(rng.integers(1, 30)), int(rng.integers(1, 15)))
        np.testing.assert_array_equal(
            _windows(sentences, window), _reference(sentences, window, START, END)
        )


def test_windows_one_token_sentences() -> None:
    sentences = [[10], [11], [12]]
    windows = _windows(sentences, 5)
    np.testing.assert_array_equal(windows, [[1, 1, 10, 2, 2], [1, 1, 11, 2, 2], [1, 1, 12, 2, 2]])
    np.testing.assert_array_equal(_windows(sentences, 1), [[10], [11], [12]])


def test_windows_do_not_cross_sentences() -> None:
    windows = _windows([[10, 11], [20, 21, 22]], 5)
    np.testing.assert_array_equal(
        windows,
        [
            [1, 1, 10, 11, 2],
            [1, 10, 11, 2, 2],
            [1, 1, 20, 21, 22],
            [1, 20, 21, 22, 2],
            [20, 21, 22, 2, 2],
        ],
    )


def test_windows_pad_ids_are_parameters() -> None:
    ids = np.array([7, 8], dtype=np.int32)
    windows = make_windows(ids, np.array([2]), 3, start_id=40, end_id=50)
    np.testing.assert_array_equal(windows, [[40, 7, 8], [7, 8, 50]])


def test_windows_sentence_longer_than_window(rng: np.random.Generator) -> None:
    sentence = list(rng.integers(3, 100, 50))
    np.testing.assert_array_equal(_windows([sentence], 7), _reference([sentence], 7, START, END))


def test_windows_empty_input() -> None:
    windows = make_windows(np.zeros(0, np.int32), np.zeros(0, np.int64), 5, START, END)
    assert windows.shape == (0, 5)


def test_windows_positions_layout() -> None:
    index, is_start_pad, total = window_positions(np.array([2, 1]), 3)
    assert total == 2 + 1 + 2 * 1 * 2
    np.testing.assert_array_equal(is_start_pad, [True, False, False, False, True, False, False])
    np.testing.assert_array_equal(index[:, 1], [1, 2, 5])


def test_windows_conll_sized_input_is_fast(rng: np.random.Generator) -> None:
    n_tokens, n_sentences = 200_000, 14_000
    cuts = np.sort(rng.choice(np.arange(1, n_tokens), n_sentences - 1, replace=False))
    lengths = np.diff(np.concatenate([[0], cuts, [n_tokens]]))
    assert lengths.sum() == n_tokens and (lengths >= 1).all()
    ids = rng.integers(3, 20_000, n_tokens).astype(np.int32)
    started = time.perf_counter()
    windows = make_windows(ids, lengths, 5, START, END)
    seconds = time.perf_counter() - started
    assert windows.shape == (n_tokens, 5)
    np.testing.assert_array_equal(windows[:, 2], ids)
    assert seconds < 2.0, f"make_windows took {seconds:.2f} s for {n_tokens:,} tokens"
