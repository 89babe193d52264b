"""Tagger: a trained model with its vocabulary, turning sentences into P(location) per token."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from nerwin.data.encode import WindowData, encode_sentences
from nerwin.data.features import TokenFeature
from nerwin.data.vocab import Vocab
from nerwin.model.classifier import WindowClassifier

SCORE_BATCH = 4096  # windows per forward at inference (fits the caches better than larger ones)


@dataclass
class Tagger:
    """Everything needed to tag tokens: model, vocabulary and decision threshold."""

    model: WindowClassifier
    vocab: Vocab
    threshold: float = 0.5
    features: dict[str, TokenFeature] = field(default_factory=dict)  # by model table name
    members: tuple[WindowClassifier, ...] = ()  # an ensemble's other models, averaged with `model`

    @property
    def models(self) -> tuple[WindowClassifier, ...]:
        """Every model whose probabilities are averaged: `model`, then the other members."""
        return (self.model, *self.members)

    @property
    def uses_caps(self) -> bool:
        """True when the model has a capitalisation feature."""
        return self.model.shape.caps_dim > 0

    def encode(self, sentences: Sequence[Sequence[str]]) -> WindowData:
        """Windows of ids for every token of `sentences` (a list of lists of words)."""
        _check_sentences(sentences)
        return encode_sentences(
            sentences, self.vocab, self.model.shape.window, self.uses_caps, self.features
        )

    def window_probabilities(self, data: WindowData, batch: int = SCORE_BATCH) -> np.ndarray:
        """P(location) per window (an ensemble's mean), scored in bounded batches."""
        parts = [
            self._batch_probabilities(
                data.words[i : i + batch],
                None if data.caps is None else data.caps[i : i + batch],
                {k: v[i : i + batch] for k, v in data.extra.items()},
            )
            for i in range(0, len(data), batch)
        ]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def _batch_probabilities(
        self, words: np.ndarray, caps: np.ndarray | None, extra: dict[str, np.ndarray]
    ) -> np.ndarray:
        probs = self.model.predict_proba(words, caps, extra)
        for member in self.members:
            probs += member.predict_proba(words, caps, extra)
        if self.members:
            probs /= np.float32(len(self.models))
        return probs

    def probabilities(self, sentences: Sequence[Sequence[str]]) -> np.ndarray:
        """P(location) for every token of `sentences`, flattened in order."""
        return self.window_probabilities(self.encode(sentences))

    def labels(self, probabilities: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """0/1 location decisions from probabilities."""
        cut = self.threshold if threshold is None else threshold
        return (probabilities >= cut).astype(np.int8)


def _check_sentences(sentences: object) -> None:
    """TypeError unless `sentences` is a sequence of word sequences (a str would pass silently)."""
    if isinstance(sentences, str) or not isinstance(sentences, Sequence):
        raise TypeError(
            f"expected a list of sentences (lists of words), got {type(sentences).__name__}"
        )
    if sentences and isinstance(sentences[0], str):
        raise TypeError(
            "expected a list of sentences (lists of words), got a list of str; "
            "wrap one sentence as [words]"
        )


def split_flat(values: np.ndarray, lengths: Sequence[int]) -> Iterator[np.ndarray]:
    """Cut a flat per-token array back into sentences."""
    start = 0
    for n in lengths:
        yield values[start : start + n]
        start += n
