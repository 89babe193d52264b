"""Per-word features beyond the word itself (suffix, word shape), each a small learned table."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
SUFFIX_LENGTH = 3
_SHAPE_RUNS = re.compile(r"(.)\1+")


def word_suffix(word: str) -> str:
    """The last three characters, lowercased (the whole word if shorter)."""
    return word.lower()[-SUFFIX_LENGTH:]


def word_shape(word: str) -> str:
    """Letters as X/x, digits as d, runs collapsed: Paris -> Xx, U.S. -> X.X., 1996-08 -> d-d"""
    mapped = "".join(
        "X" if ch.isupper() else "x" if ch.isalpha() else "d" if ch.isdigit() else ch for ch in word
    )
    return _SHAPE_RUNS.sub(r"\1", mapped)


EXTRACTORS: dict[str, Callable[[str], str]] = {"suffix": word_suffix, "shape": word_shape}


@dataclass
class TokenFeature:
    """A feature's values seen in training (id 0 = padding, 1 = unseen) and how to compute it."""

    kind: str
    values: list[str] = field(default_factory=lambda: [PAD, UNK])

    def __post_init__(self) -> None:
        self.index = {v: i for i, v in enumerate(self.values)}
        self.extract = EXTRACTORS[self.kind]

    def __len__(self) -> int:
        return len(self.values)

    @classmethod
    def fit(cls, kind: str, words: Iterable[str], min_count: int = 2) -> TokenFeature:
        """Values of `kind` seen at least `min_count` times in `words`, most frequent first."""
        extract = EXTRACTORS[kind]
        counts = Counter(extract(w) for w in words)
        kept = [v for v, c in counts.most_common() if c >= min_count and v not in (PAD, UNK)]
        return cls(kind, [PAD, UNK, *kept])

    def encode(self, words: list[str]) -> np.ndarray:
        """Feature ids (int32) of words, computing each distinct word once."""
        table = {w: self.index.get(self.extract(w), UNK_ID) for w in set(words)}
        return np.fromiter((table[w] for w in words), dtype=np.int32, count=len(words))

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"kind": self.kind, "values": self.values}
