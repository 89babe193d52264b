"""Location scores with conlleval semantics: exact-span entity P/R/F1 and token P/R/F1."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from nerwin.data.conll import Corpus, location_spans
from nerwin.data.schemes import spans_to_binary


@dataclass(frozen=True)
class PRF:
    """Counts of one comparison (correct, predicted, gold) and their precision, recall and F1."""

    correct: int
    predicted: int
    gold: int

    def __post_init__(self) -> None:
        if not 0 <= self.correct <= min(self.predicted, self.gold):
            raise ValueError(
                f"inconsistent counts: correct={self.correct}, "
                f"predicted={self.predicted}, gold={self.gold}"
            )

    @property
    def precision(self) -> float:
        """correct / predicted, 0.0 without predictions."""
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        """correct / gold, 0.0 without gold items."""
        return self.correct / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall, 2c / (p + g); 0.0 when both are empty."""
        total = self.predicted + self.gold
        return 2 * self.correct / total if total else 0.0

    def to_dict(self) -> dict:
        """Plain dict of the scores and counts (JSON-ready)."""
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "gold": int(self.gold),
            "predicted": int(self.predicted),
            "correct": int(self.correct),
        }


@dataclass(frozen=True)
class Scores:
    """Entity and token scores of one prediction over a corpus."""

    entity: PRF
    token: PRF
    n_tokens: int
    n_sentences: int

    @property
    def accuracy(self) -> float:
        """Token accuracy of the binary labels, 0.0 for an empty corpus."""
        if not self.n_tokens:
            return 0.0
        wrong = self.token.predicted + self.token.gold - 2 * self.token.correct
        return (self.n_tokens - wrong) / self.n_tokens

    def to_dict(self) -> dict:
        """{'entity': {...}, 'token': {...}} as in PRF.to_dict."""
        return {"entity": self.entity.to_dict(), "token": self.token.to_dict()}


class LocationEvaluator:
    """Precomputes gold location spans of a corpus once; scores flat 0/1 predictions fast."""

    def __init__(self, corpus: Corpus, location_types: Sequence[str]):
        spans = location_spans(corpus, location_types)
        n = corpus.n_tokens
        lengths = np.array([len(sentence.words) for sentence in corpus.sentences], dtype=np.int64)
        ends = np.cumsum(lengths)[lengths > 0]
        self.n_tokens, self.n_sentences = n, len(corpus.sentences)
        self._base = n + 1
        self._gold_codes = np.unique(spans[:, 0] * self._base + spans[:, 1])
        self._gold = spans_to_binary(spans, n).astype(bool)
        self._first = np.zeros(n, dtype=bool)
        self._first[ends - lengths[lengths > 0]] = True
        self._last = np.zeros(n, dtype=bool)
        self._last[ends - 1] = True

    def _check(self, predicted: NDArray) -> NDArray[np.bool_]:
        """predicted as a bool vector, after checking its shape and 0/1 values."""
        predicted = np.asarray(predicted)
        if predicted.shape != (self.n_tokens,):
            raise ValueError(f"predicted has shape {predicted.shape}, expected ({self.n_tokens},)")
        if predicted.dtype != bool and not ((predicted == 0) | (predicted == 1)).all():
            raise ValueError("predicted must hold only 0 and 1")
        return predicted.astype(bool)

    def _runs(self, pred: NDArray[np.bool_]) -> NDArray[np.int64]:
        """Runs of True (k, 2) that never cross a sentence boundary."""
        before = np.concatenate(([False], pred[:-1])) & ~self._first
        after = np.concatenate((pred[1:], [False])) & ~self._last
        starts = np.flatnonzero(pred & ~before)
        ends = np.flatnonzero(pred & ~after) + 1
        return np.stack([starts, ends], axis=1).astype(np.int64)

    def score(self, predicted: NDArray) -> Scores:
        """Entity (exact span) and token scores of 0/1 labels (n_tokens,) in corpus order."""
        pred = self._check(predicted)
        spans = self._runs(pred)
        codes = spans[:, 0] * self._base + spans[:, 1]
        correct = int(np.isin(codes, self._gold_codes, assume_unique=True).sum())
        entity = PRF(correct, len(codes), len(self._gold_codes))
        token = PRF(int((pred & self._gold).sum()), int(pred.sum()), int(self._gold.sum()))
        return Scores(entity, token, self.n_tokens, self.n_sentences)


def conlleval_report(scores: Scores, label: str = "LOC") -> str:
    """The three lines conlleval prints for one entity type (no trailing newline)."""
    e = scores.entity
    prf = (
        f"precision: {100 * e.precision:6.2f}%; recall: {100 * e.recall:6.2f}%; "
        f"FB1: {100 * e.f1:6.2f}"
    )
    return "\n".join(
        [
            f"processed {scores.n_tokens} tokens with {e.gold} phrases; "
            f"found: {e.predicted} phrases; correct: {e.correct}.",
            f"accuracy: {100 * scores.accuracy:6.2f}%; {prf}",
            f"{label:>17}: {prf}  {e.predicted}",
        ]
    )
