"""The capitalisation feature of Collobert et al. (2011): one small id per word."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

CAPS_PAD, ALL_LOWER, ALL_UPPER, FIRST_UPPER, UPPER_INSIDE, NO_LETTERS = range(6)
N_CAPS = 6
CAPS_NAMES = ("pad", "lower", "UPPER", "Title", "mIxed", "no letters")


def caps_id(word: str) -> int:
    """Which capitalisation class `word` belongs to."""
    if not any(ch.isalpha() for ch in word):
        return NO_LETTERS
    if word.islower() or not any(ch.isupper() for ch in word):
        return ALL_LOWER
    if word.isupper():
        return ALL_UPPER
    if word[0].isupper() and not any(ch.isupper() for ch in word[1:]):
        return FIRST_UPPER
    return UPPER_INSIDE


def encode_caps(words: Iterable[str]) -> np.ndarray:
    """Caps ids (int32) of words, computing each distinct word once."""
    words = list(words)
    table = {w: caps_id(w) for w in set(words)}
    return np.fromiter((table[w] for w in words), dtype=np.int32, count=len(words))
