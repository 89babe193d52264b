"""Capitalisation classes, including non-ASCII words, and the vectorised encoder."""

from __future__ import annotations

import numpy as np
import pytest

from nerwin.data.caps import (
    ALL_LOWER,
    ALL_UPPER,
    CAPS_NAMES,
    CAPS_PAD,
    FIRST_UPPER,
    N_CAPS,
    NO_LETTERS,
    UPPER_INSIDE,
    caps_id,
    encode_caps,
)


def test_caps_ids_distinct_and_named() -> None:
    ids = [CAPS_PAD, ALL_LOWER, ALL_UPPER, FIRST_UPPER, UPPER_INSIDE, NO_LETTERS]
    assert sorted(ids) == list(range(N_CAPS))
    assert len(CAPS_NAMES) == N_CAPS


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("paris", ALL_LOWER),
        ("in", ALL_LOWER),
        ("3rd", ALL_LOWER),
        ("e-mail", ALL_LOWER),
        ("'s", ALL_LOWER),
        ("NATO", ALL_UPPER),
        ("USA", ALL_UPPER),
        ("U.S.", ALL_UPPER),
        ("A", ALL_UPPER),
        ("F-16", ALL_UPPER),
        ("Paris", FIRST_UPPER),
        ("London", FIRST_UPPER),
        ("I'm", FIRST_UPPER),
        ("iPhone", UPPER_INSIDE),
        ("McDonald", UPPER_INSIDE),
        ("eBay", UPPER_INSIDE),
        ("NaN", UPPER_INSIDE),
        ("1996", NO_LETTERS),
        (",", NO_LETTERS),
        ("3.14", NO_LETTERS),
        ("--", NO_LETTERS),
        ("", NO_LETTERS),
    ],
)
def test_caps_classes(word: str, expected: int) -> None:
    assert caps_id(word) == expected, CAPS_NAMES[caps_id(word)]


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("Zürich", FIRST_UPPER),
        ("Ölberg", FIRST_UPPER),
        ("ÉCOLE", ALL_UPPER),
        ("ZÜRICH", ALL_UPPER),
        ("zürich", ALL_LOWER),
        ("straße", ALL_LOWER),
        ("Москва", FIRST_UPPER),
        ("МОСКВА", ALL_UPPER),
        ("αθήνα", ALL_LOWER),
        ("McDÖNALD", UPPER_INSIDE),
        ("éCOLE", UPPER_INSIDE),
        ("北京", ALL_LOWER),
        ("٣٤", NO_LETTERS),
    ],
)
def test_caps_non_ascii(word: str, expected: int) -> None:
    assert caps_id(word) == expected, CAPS_NAMES[caps_id(word)]


def test_caps_pad_never_assigned_to_a_word() -> None:
    words = ["a", "A", "Aa", "aA", "1", "", " ", "Ä", "ä"]
    assert CAPS_PAD not in {caps_id(w) for w in words}


def test_caps_encode_equals_per_word(rng: np.random.Generator) -> None:
    pool = ["paris", "Paris", "PARIS", "iPhone", "1996", ",", "Zürich", "ÉCOLE", "McDonald", "the"]
    words = [pool[i] for i in rng.integers(0, len(pool), 500)]
    encoded = encode_caps(words)
    assert encoded.dtype == np.int32 and encoded.shape == (500,)
    np.testing.assert_array_equal(encoded, [caps_id(w) for w in words])


def test_caps_encode_empty_and_generator() -> None:
    assert encode_caps([]).shape == (0,)
    np.testing.assert_array_equal(encode_caps(w for w in ["Ab", "ab"]), [FIRST_UPPER, ALL_LOWER])
