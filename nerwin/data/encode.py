"""Sentences of words -> window arrays of word ids and caps ids, ready for the model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from nerwin.data.caps import CAPS_PAD, encode_caps
from nerwin.data.features import PAD_ID, TokenFeature
from nerwin.data.gazetteer import GAZETTEER, Gazetteer
from nerwin.data.vocab import END_ID, START_ID, Vocab
from nerwin.data.windows import make_windows


@dataclass(frozen=True)
class WindowData:
    """One window per token: word ids (n, w), caps ids (n, w) or None, and sentence lengths."""

    words: np.ndarray
    caps: np.ndarray | None
    lengths: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # feature name -> ids (n, w)

    def __len__(self) -> int:
        return len(self.words)


def encode_sentences(
    sentences: Sequence[Sequence[str]],
    vocab: Vocab,
    window: int,
    with_caps: bool,
    features: Mapping[str, TokenFeature] | None = None,
    gazetteer: Gazetteer | None = None,
) -> WindowData:
    """Windows for every token of `sentences`, in order (gazetteer matches within sentences)."""
    lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
    flat = [w for s in sentences for w in s]
    words = make_windows(vocab.encode(flat), lengths, window, START_ID, END_ID)
    caps = (
        make_windows(encode_caps(flat), lengths, window, CAPS_PAD, CAPS_PAD) if with_caps else None
    )
    extra = {
        name: make_windows(feature.encode(flat), lengths, window, PAD_ID, PAD_ID)
        for name, feature in (features or {}).items()
    }
    if gazetteer is not None:
        ids = gazetteer.encode(flat, lengths)
        extra[GAZETTEER] = make_windows(ids, lengths, window, PAD_ID, PAD_ID)
    return WindowData(words, caps, lengths, extra)
