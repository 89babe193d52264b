"""Tag documents: raw text or CoNLL input -> tokens with P(location) and location entities."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nerwin.data.conll import Sentence
from nerwin.data.schemes import binary_to_spans
from nerwin.data.tokenize import Token, tokenize
from nerwin.model.tagger import Tagger, split_flat

BATCH_TOKENS = 20000  # tokens scored together; bounds memory on long streams


@dataclass(frozen=True)
class Entity:
    """A predicted location: its text, character offsets into the document, and probability."""

    text: str
    start: int
    end: int
    probability: float  # mean P(location) of its tokens

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "probability": self.probability,
        }


@dataclass
class TaggedDocument:
    """One input document with its sentences of tokens, their probabilities and 0/1 labels."""

    text: str
    sentences: list[list[Token]]
    probs: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    columns: list[Sentence] | None = None  # the input rows, for pre-tokenized CoNLL input
    id: Any = None  # the caller's document id, carried to the output

    @classmethod
    def from_text(cls, text: str, ident: Any = None) -> TaggedDocument:
        """Raw text split into sentences of tokens."""
        return cls(text, tokenize(text), id=ident)

    @classmethod
    def from_sentences(
        cls, sentences: Sequence[Sequence[str]], ident: Any = None
    ) -> TaggedDocument:
        """Pre-tokenized sentences as one document: words joined by single spaces."""
        tokens, offset = [], 0
        for words in sentences:
            spans = []
            for word in words:
                spans.append(Token(word, offset, offset + len(word)))
                offset += len(word) + 1
            tokens.append(spans)
        return cls(" ".join(w for words in sentences for w in words), tokens, id=ident)

    def entities(self) -> list[Entity]:
        """Maximal runs of location tokens within a sentence, as entities."""
        found = []
        for tokens, probs, labels in zip(self.sentences, self.probs, self.labels):
            for start, end in binary_to_spans(labels):
                first, last = tokens[start], tokens[end - 1]
                found.append(
                    Entity(
                        self.text[first.start : last.end],
                        first.start,
                        last.end,
                        float(probs[start:end].mean()),
                    )
                )
        return found


def sentence_document(sentence: Sentence) -> TaggedDocument:
    """A pre-tokenized sentence as a document: its words joined by single spaces."""
    doc = TaggedDocument.from_sentences([sentence.words])
    doc.columns = [sentence]
    return doc


def text_documents(texts: Iterable[str]) -> Iterator[TaggedDocument]:
    """Raw-text documents split into sentences of tokens."""
    for text in texts:
        yield TaggedDocument.from_text(text)


def tag_documents(
    tagger: Tagger,
    documents: Iterable[TaggedDocument],
    threshold: float | None = None,
    batch_tokens: int = BATCH_TOKENS,
    batch_docs: int | None = None,
) -> Iterator[TaggedDocument]:
    """Fill probs and labels of each document, scoring in batches of about `batch_tokens` tokens
    (or `batch_docs` documents, whichever comes first)."""
    pending: list[TaggedDocument] = []
    size = 0
    for doc in documents:
        pending.append(doc)
        size += max(1, sum(len(s) for s in doc.sentences))  # empty documents still fill a batch
        if size >= batch_tokens or (batch_docs is not None and len(pending) >= batch_docs):
            yield from _score(tagger, pending, threshold)
            pending, size = [], 0
    yield from _score(tagger, pending, threshold)


def _score(
    tagger: Tagger, docs: Sequence[TaggedDocument], threshold: float | None
) -> list[TaggedDocument]:
    sentences = [[t.text for t in s] for doc in docs for s in doc.sentences]
    if not sentences:
        return list(docs)
    probs = tagger.probabilities(sentences)
    per_sentence = iter(list(split_flat(probs, [len(s) for s in sentences])))
    for doc in docs:
        doc.probs = [next(per_sentence) for _ in doc.sentences]
        doc.labels = [tagger.labels(p, threshold) for p in doc.probs]
    return list(docs)
