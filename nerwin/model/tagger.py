"""Tagger: a trained model with its vocabulary, turning sentences into P(location) per token."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np

from nerwin.data.caps import CAPS_PAD, encode_caps
from nerwin.data.encode import WindowData, encode_sentences
from nerwin.data.features import PAD_ID, TokenFeature
from nerwin.data.gazetteer import GAZETTEER, Gazetteer
from nerwin.data.vocab import END_ID, START_ID, Vocab
from nerwin.errors import ConfigError
from nerwin.model.classifier import WindowClassifier
from nerwin.model.frozen import FrozenScorer

SCORE_BATCH = 4096  # windows per forward at inference (fits the caches better than larger ones)
CACHE_VARIABLE = "NERWIN_TAG_CACHE_MB"  # memory cap of the precomputed first layer, in MB
DEFAULT_CACHE_MB = 160.0  # 1M tokens, shipped 3-member model: peak RSS 331 MB (README)
CODE_LIMIT = 1 << 62  # token codes (int64) stay below this
MEMO_WORDS = 250_000  # distinct words whose ids a FrozenTagger remembers (then it starts over)
# A one-off call builds its first-layer rows from scratch: one row per distinct (word, caps) key
# costs about as much as scoring ROW_COST windows by matrix products (the product E[w] W_p for
# every position, and writing w H fresh floats): 6-7 us against 2-3 us per window, measured with
# the 50-d reference model on CoNLL-2003 (fresh rows were 1.1-1.9x faster than the products
# from 51,362 dev windows with 6,564 keys down to 3,210 windows with 923 keys).
ROW_COST = 3.0


def cache_megabytes(cache_mb: float | None = None) -> float:
    """The memory cap of the precomputed first layer: `cache_mb`, else $NERWIN_TAG_CACHE_MB, else
    160 (MB, over all members of an ensemble); 0 turns the table off (plain matrix products)."""
    if cache_mb is None:
        raw = os.environ.get(CACHE_VARIABLE, "").strip()
        if not raw:
            return DEFAULT_CACHE_MB
        try:
            cache_mb = float(raw)
        except ValueError:
            raise ConfigError(f"{CACHE_VARIABLE} must be a number of MB, got {raw!r}") from None
    if not cache_mb >= 0:  # also rejects NaN
        raise ConfigError(f"the tagging cache must be >= 0 MB, got {cache_mb!r}")
    return float(cache_mb)


@dataclass
class Tagger:
    """Everything needed to tag tokens: model, vocabulary and decision threshold."""

    model: WindowClassifier
    vocab: Vocab
    threshold: float = 0.5
    features: dict[str, TokenFeature] = field(default_factory=dict)  # by model table name
    members: tuple[WindowClassifier, ...] = ()  # an ensemble's other models, averaged with `model`
    cache_mb: float | None = None  # cap of the precomputed first layer (None: see cache_megabytes)
    gazetteer: Gazetteer | None = None  # place names, when the model has a gazetteer feature

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
            sentences,
            self.vocab,
            self.model.shape.window,
            self.uses_caps,
            self.features,
            self.gazetteer,
        )

    def frozen(self, cache_mb: float | None = None) -> FrozenTagger:
        """A tagger for many calls with these weights: first-layer rows and word ids are cached.

        Build a new one after the weights change (the cache is a snapshot of them).
        """
        return FrozenTagger(self, self.cache_mb if cache_mb is None else cache_mb)

    def window_probabilities(
        self, data: WindowData, batch: int = SCORE_BATCH, frozen: bool | None = None
    ) -> np.ndarray:
        """P(location) per window (an ensemble's mean).

        `frozen`: True scores through precomputed first-layer rows (model.frozen), False through
        the matrix products x W in bounded batches; None (default) picks the cheaper for this one
        call: the rows pay off when the windows repeat their words often enough (each call
        builds its rows afresh, since the weights may have changed since the last one). Both
        give the same probabilities to float32 rounding.
        """
        if frozen is None:
            frozen = cache_megabytes(self.cache_mb) > 0 and self._rows_pay_off(data)
        if frozen:
            return self.frozen().window_probabilities(data)
        parts = [
            self._batch_probabilities(
                data.words[i : i + batch],
                None if data.caps is None else data.caps[i : i + batch],
                {k: v[i : i + batch] for k, v in data.extra.items()},
            )
            for i in range(0, len(data), batch)
        ]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def _rows_pay_off(self, data: WindowData) -> bool:
        """True when fresh first-layer rows cost less than the matrix products for `data`."""
        n = len(data)
        if n == 0:
            return False
        shape = self.model.shape
        n_caps = shape.n_caps if shape.caps_dim else 1
        centre = data.words[:, shape.window // 2].astype(np.int64) * n_caps
        if data.caps is not None and n_caps > 1:
            centre += data.caps[:, shape.window // 2]
        space = shape.vocab_size * n_caps
        keys = len(np.unique(centre)) if 8 * n < space else np.count_nonzero(np.bincount(centre))
        return (keys + 2) * ROW_COST < n  # + the two padding keys

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
        _check_sentences(sentences)
        return self.window_probabilities(self.encode(sentences))

    def labels(self, probabilities: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """0/1 location decisions from probabilities."""
        cut = self.threshold if threshold is None else threshold
        return (probabilities >= cut).astype(np.int8)


class FrozenTagger:
    """A Tagger whose weights stay fixed, for tagging many documents: scores come from cached
    first-layer rows (nerwin.model.frozen; memory cap `cache_mb`, 0 = matrix products), and each
    distinct word's ids (word, caps, suffix, shape) are looked up once (up to MEMO_WORDS words).

    Calls are serialised by a lock, so one FrozenTagger can serve several threads.
    """

    def __init__(self, tagger: Tagger, cache_mb: float | None = None):
        self.tagger = tagger
        self.cache_mb = cache_megabytes(cache_mb)
        shape = tagger.model.shape
        self.window = shape.window
        self.n_caps = shape.n_caps if shape.caps_dim else 1
        self.scorer = (
            FrozenScorer(tagger.models, int(self.cache_mb * 2**20)) if self.cache_mb > 0 else None
        )
        # A token's code packs its ids: (word * n_caps + caps) * |f1| + f1, and so on per feature;
        # the gazetteer's id (which depends on the sentence) comes last, after the memo's code.
        self._features = [(name, tagger.features.get(name), rows) for name, rows, _ in shape.extra]
        self._word_features = [f for f in self._features if f[0] != GAZETTEER]
        self._gazetteer_rows = next((r for n, _, r in self._features if n == GAZETTEER), 0)
        self._radix = int(np.prod([rows for _, _, rows in self._features], dtype=np.int64))
        space = shape.vocab_size * self.n_caps * self._radix  # codes are below this
        if space >= CODE_LIMIT:
            raise ValueError(f"{space:,} token codes do not fit in int64; drop a feature")
        # the memo keeps word code * _token_radix + 1 + the word's Gazetteer.token_codes() code,
        # when that fits in int64 (else the gazetteer looks its words up on each call)
        names = tagger.gazetteer if self._gazetteer_rows else None
        packs = names is not None and space // self._gazetteer_rows * names.token_radix < CODE_LIMIT
        self._token_radix = names.token_radix if packs else 0
        self._pads = (self._pad_code(START_ID), self._pad_code(END_ID))
        self._memo: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def threshold(self) -> float:
        """The tagger's decision threshold."""
        return self.tagger.threshold

    def labels(self, probabilities: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """0/1 location decisions from probabilities."""
        return self.tagger.labels(probabilities, threshold)

    def probabilities(self, sentences: Sequence[Sequence[str]]) -> np.ndarray:
        """P(location) for every token of `sentences` (lists of words), flattened in order."""
        _check_sentences(sentences)
        lengths = np.fromiter(map(len, sentences), np.int64, len(sentences))
        return self.token_probabilities([w for sentence in sentences for w in sentence], lengths)

    def token_probabilities(self, words: list[str], lengths: np.ndarray) -> np.ndarray:
        """P(location) for every word of `words`, sentences of `lengths` words one after another."""
        if len(words) != int(np.sum(lengths)):
            raise ValueError(f"{len(words)} words for sentences of {int(np.sum(lengths))} words")
        if not words:
            return np.zeros(0, np.float32)
        lengths = np.asarray(lengths, np.int64)
        with self._lock:
            codes = self._codes(words)
            if self._token_radix:  # the memo's code also holds the word's gazetteer token
                codes, tokens = np.divmod(codes, self._token_radix)
                ids = self.tagger.gazetteer.encode_codes(tokens - 1, lengths)
                codes = codes * self._gazetteer_rows + ids
            elif self._gazetteer_rows:
                codes = codes * self._gazetteer_rows + self._names().encode(words, lengths)
            return self._code_probabilities(self._windows(codes, lengths))

    def window_probabilities(self, data: WindowData) -> np.ndarray:
        """P(location) per window of ids, as Tagger.window_probabilities computes it."""
        if self.scorer is None:
            return self.tagger.window_probabilities(data, frozen=False)
        with self._lock:
            names = data.extra.get(GAZETTEER) if self.scorer.folds_names else None
            keys = self.scorer.keys(data.words, data.caps, names)
            extra = {name: data.extra[name].T for name in self.scorer.extra_names}
            return self.scorer.probabilities(keys, extra)

    # -- token codes -------------------------------------------------------------------------------

    def _pad_code(self, word_id: int) -> int:
        code = word_id * self.n_caps + (CAPS_PAD if self.n_caps > 1 else 0)
        for _, _, rows in self._features:
            code = code * rows + PAD_ID
        return code

    def _codes(self, words: list[str]) -> np.ndarray:
        """Each word's code, from the memo; new words go through the data encoders once."""
        memo = self._memo
        codes = np.fromiter(map(memo.get, words, repeat(-1)), np.int64, len(words))
        missing = np.flatnonzero(codes < 0)
        if len(missing):
            if len(memo) + len(missing) > MEMO_WORDS:
                memo.clear()
            new = list(dict.fromkeys([words[i] for i in missing.tolist()]))
            memo.update(zip(new, self._encode(new).tolist()))
            codes[missing] = np.fromiter(
                map(memo.__getitem__, [words[i] for i in missing.tolist()]),
                np.int64,
                len(missing),
            )
        return codes

    def _encode(self, words: list[str]) -> np.ndarray:
        """Codes of distinct words with the encoders Tagger.encode uses."""
        codes = self.tagger.vocab.encode(words).astype(np.int64) * self.n_caps
        if self.n_caps > 1:
            codes += encode_caps(words)
        for name, feature, rows in self._word_features:
            if feature is None:
                raise ValueError(f"the tagger has no {name!r} feature values to encode words with")
            codes = codes * rows + feature.encode(words)
        if self._token_radix:
            codes = codes * self._token_radix + self._names().token_codes(words) + 1
        return codes

    def _names(self) -> Gazetteer:
        """The tagger's gazetteer (ValueError when the model needs one and it has none)."""
        if self.tagger.gazetteer is None:
            raise ValueError("the model has a gazetteer feature but the tagger has no names")
        return self.tagger.gazetteer

    def _windows(self, codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Position-major windows (w, n) of token codes, padded at sentence edges."""
        half, n = self.window // 2, len(codes)
        blocks = lengths + 2 * half
        starts = np.cumsum(blocks) - blocks
        padded = np.full(int(blocks.sum()), self._pads[1], np.int64)
        for j in range(half):
            padded[starts + j] = self._pads[0]
        positions = np.arange(n) + np.repeat(starts + half - np.cumsum(lengths) + lengths, lengths)
        padded[positions] = codes
        windows = np.empty((self.window, n), np.int64)
        for p in range(self.window):
            padded.take(positions + (p - half), out=windows[p])
        return windows

    def _code_probabilities(self, codes: np.ndarray) -> np.ndarray:
        """P(location) of windows of token codes (w, n)."""
        extra: dict[str, np.ndarray] = {}
        keys = codes
        if self._features:
            keys = codes // self._radix
            rest = codes % self._radix
            for name, _, rows in reversed(self._features):
                rest, extra[name] = np.divmod(rest, rows)
        if self.scorer is not None:
            if self.scorer.folds_names:  # the gazetteer's id joins the key
                keys = keys + extra.pop(GAZETTEER) * self.scorer.words_caps
            return self.scorer.probabilities(keys, extra)
        words, caps = np.divmod(keys, self.n_caps)
        data = WindowData(
            np.ascontiguousarray(words.T, dtype=np.int32),
            np.ascontiguousarray(caps.T, dtype=np.int32) if self.tagger.uses_caps else None,
            np.zeros(0, np.int64),
            {name: np.ascontiguousarray(ids.T, dtype=np.int32) for name, ids in extra.items()},
        )
        return self.tagger.window_probabilities(data, frozen=False)


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
