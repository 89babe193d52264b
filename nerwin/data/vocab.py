"""Vocab: word normalisation and word <-> id, with <unk> and sentence-edge padding ids."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

UNK, PAD_START, PAD_END = "<unk>", "<s>", "</s>"
SPECIALS = (UNK, PAD_START, PAD_END)
UNK_ID, START_ID, END_ID = 0, 1, 2
_DIGITS = str.maketrans("0123456789", "0000000000")


class Vocab:
    """Normalised words and their ids; ids 0-2 are <unk>, <s>, </s>."""

    def __init__(
        self,
        words: Sequence[str],
        lowercase: bool = True,
        digits: bool = True,
        counts: Sequence[int] | None = None,
    ):
        if tuple(words[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}")
        self.words = list(words)
        self.lowercase, self.digits = lowercase, digits
        self.index = {w: i for i, w in enumerate(self.words)}
        self.counts = np.zeros(len(self.words), np.int64) if counts is None else np.asarray(counts)

    def __len__(self) -> int:
        return len(self.words)

    def normalise(self, word: str) -> str:
        """The form under which `word` is looked up."""
        if self.lowercase:
            word = word.lower()
        return word.translate(_DIGITS) if self.digits else word

    def encode(self, words: Iterable[str]) -> np.ndarray:
        """Ids (int32) of words; unknown words get UNK_ID."""
        get, norm = self.index.get, self.normalise
        return np.fromiter((get(norm(w), UNK_ID) for w in words), dtype=np.int32)

    def extend(self, words: Iterable[str]) -> Vocab:
        """A vocabulary with the new (normalised) words appended; existing ids unchanged."""
        new = list(dict.fromkeys(w for w in map(self.normalise, words) if w not in self.index))
        counts = np.concatenate([self.counts, np.zeros(len(new), self.counts.dtype)])
        return Vocab(self.words + new, self.lowercase, self.digits, counts)

    def save(self, path: Path) -> None:
        """One word per line, in id order, with its training count."""
        lines = (f"{w}\t{c}" for w, c in zip(self.words, self.counts))
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path, lowercase: bool, digits: bool) -> Vocab:
        """Read a vocabulary written by `save`."""
        words, counts = [], []
        with open(path, encoding="utf-8", newline="") as handle:
            lines = handle.read().split("\n")
        for line in lines[:-1] if lines and lines[-1] == "" else lines:
            word, _, count = line.rpartition("\t")
            words.append(word)
            counts.append(int(count))
        return cls(words, lowercase, digits, counts)


def build_vocab(
    sentences: Iterable[Sequence[str]],
    lowercase: bool = True,
    digits: bool = True,
    min_count: int = 1,
    max_size: int | None = None,
) -> Vocab:
    """Vocabulary of the training words seen at least `min_count` times, most frequent first."""
    probe = Vocab(list(SPECIALS), lowercase, digits)
    counter = Counter(probe.normalise(w) for sentence in sentences for w in sentence)
    for special in SPECIALS:
        counter.pop(special, None)
    kept = [(w, c) for w, c in counter.most_common(max_size) if c >= min_count]
    return Vocab(
        list(SPECIALS) + [w for w, _ in kept], lowercase, digits, [0, 0, 0] + [c for _, c in kept]
    )


def extend_with_vectors(
    vocab: Vocab, words: tuple[str, ...], matrix: np.ndarray
) -> tuple[Vocab, np.ndarray]:
    """Append the vector file's extra words (normalised, first form kept) to vocab and rows."""
    extra_rows = {}
    for row in range(len(vocab), len(words)):
        key = vocab.normalise(words[row])
        if key not in vocab.index and key not in extra_rows:
            extra_rows[key] = row
    if not extra_rows:
        return vocab, matrix[: len(vocab)]
    rows = np.concatenate([np.arange(len(vocab)), np.fromiter(extra_rows.values(), np.int64)])
    return vocab.extend(extra_rows), matrix[rows]
