"""Tag documents: raw text or CoNLL input -> tokens with P(location) and location entities.

Offsets (`Token.start`/`end`, `Entity.start`/`end`) are Unicode code points into the document's
text, i.e. Python string indices: `text[start:end]`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, pairwise
from operator import attrgetter
from typing import Any

import numpy as np

from nerwin.data.conll import Sentence
from nerwin.data.schemes import binary_to_spans
from nerwin.data.tokenize import Token, tokenize
from nerwin.model.tagger import FrozenTagger, Tagger

_text = attrgetter("text")
BATCH_TOKENS = 20000  # tokens scored together; bounds memory on long streams
O, B, I = 0, 1, 2  # noqa: E741  (IOB2 codes of TaggedDocument.iob)


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
    # Filled by tag_documents (recomputed from `labels` when absent):
    found: list[Entity] | None = None  # the entities
    iob: list[int] | None = None  # IOB2 code (O, B, I) of every token, flat over the sentences
    last_in_batch: bool = False  # the last document of a scored batch: output may be flushed

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
        if self.found is not None:
            return self.found
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

    def iob_codes(self) -> list[int]:
        """IOB2 code (O=0, B=1, I=2) of every token, flat over the sentences."""
        if self.iob is not None:
            return self.iob
        codes: list[int] = []
        for labels in self.labels:
            on = np.asarray(labels, dtype=bool)
            before = np.concatenate([[False], on[:-1]])
            codes += np.where(on, np.where(before, I, B), O).tolist()
        return codes


def sentence_document(sentence: Sentence) -> TaggedDocument:
    """A pre-tokenized sentence as a document: its words joined by single spaces."""
    doc = TaggedDocument.from_sentences([sentence.words])
    doc.columns = [sentence]
    return doc


def text_documents(
    texts: Iterable[str] | Iterable[tuple[Any, str]], with_ids: bool = False
) -> Iterator[TaggedDocument]:
    """Raw-text documents split into sentences of tokens; with `with_ids`, items are
    `(id, text)` pairs and each document carries its id."""
    if not with_ids:
        yield from map(TaggedDocument.from_text, texts)
        return
    for item in texts:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], str)):
            raise TypeError(f"expected (id, text) pairs, got {item!r:.60}")
        yield TaggedDocument.from_text(item[1], item[0])


def tag_batches(
    tagger: Tagger | FrozenTagger,
    documents: Iterable[TaggedDocument],
    threshold: float | None = None,
    batch_tokens: int = BATCH_TOKENS,
    batch_docs: int | None = None,
    idle: Callable[[], bool] | None = None,
    cache_mb: float | None = None,
) -> Iterator[list[TaggedDocument]]:
    """Lists of documents with probs, labels and entities filled, scored together.

    A batch closes at about `batch_tokens` tokens, at `batch_docs` documents, or when `idle()`
    says no more input is ready without waiting (so interactive input is answered line by
    line while a large file is still scored in large batches). A Tagger is frozen for the
    stream (`Tagger.frozen(cache_mb)`): its first-layer rows are kept from batch to batch.
    """
    session = tagger if isinstance(tagger, FrozenTagger) else tagger.frozen(cache_mb)
    pending: list[TaggedDocument] = []
    size = 0
    for doc in documents:  # an input error drops the batch it falls in (no partial batch)
        pending.append(doc)
        size += max(1, sum(map(len, doc.sentences)))  # empty documents still fill a batch
        if (
            size >= batch_tokens
            or (batch_docs is not None and len(pending) >= batch_docs)
            or (idle is not None and idle())
        ):
            yield _score(session, pending, threshold)
            pending, size = [], 0
    if pending:
        yield _score(session, pending, threshold)


def tag_documents(
    tagger: Tagger | FrozenTagger,
    documents: Iterable[TaggedDocument],
    threshold: float | None = None,
    batch_tokens: int = BATCH_TOKENS,
    batch_docs: int | None = None,
    idle: Callable[[], bool] | None = None,
    cache_mb: float | None = None,
) -> Iterator[TaggedDocument]:
    """Fill probs and labels of each document, scoring in batches (see tag_batches)."""
    for batch in tag_batches(
        tagger, documents, threshold, batch_tokens, batch_docs, idle, cache_mb
    ):
        yield from batch


def _score(
    session: FrozenTagger, docs: list[TaggedDocument], threshold: float | None
) -> list[TaggedDocument]:
    """Score a batch at once; labels, IOB2 codes and entities come from flat arrays, and the
    per-document work is slicing (entities are placed by the token they start at)."""
    sentences = [s for doc in docs for s in doc.sentences]
    lengths = np.fromiter(map(len, sentences), np.int64, len(sentences))
    tokens = list(chain.from_iterable(sentences))
    n = len(tokens)
    probs = session.token_probabilities(list(map(_text, tokens)), lengths)
    labels = session.labels(probs, threshold)
    on = labels.astype(bool)
    ends = np.cumsum(lengths)  # each sentence's end (token index)
    first = np.zeros(n + 1, bool)  # a sentence starts here (or the batch ends)
    first[ends - lengths] = True
    first[n] = True
    before = np.zeros(n, bool)  # the previous token of the same sentence is a location
    before[1:] = on[:-1]
    before[first[:-1]] = False
    after = np.zeros(n, bool)  # the next token of the same sentence is a location
    after[:-1] = on[1:]
    after[first[1:]] = False
    starts = np.flatnonzero(on & ~before)
    lasts = np.flatnonzero(on & ~after)
    means: list[float] = []
    if len(starts):  # each entity's mean probability, in the probabilities' dtype
        bounds = np.stack([starts, lasts + 1], 1).reshape(-1)
        sums = np.add.reduceat(np.append(probs, probs.dtype.type(0)), bounds)[::2]
        means = (sums / (lasts - starts + 1).astype(probs.dtype)).tolist()
    iob = np.where(on, np.where(before, I, B), O).tolist()
    cuts = [0, *ends.tolist()]
    sentence_probs = [probs[a:b] for a, b in pairwise(cuts)]
    sentence_labels = [labels[a:b] for a, b in pairwise(cuts)]
    counts = np.fromiter((len(doc.sentences) for doc in docs), np.int64, len(docs))
    last_sentence = np.cumsum(counts)  # each document's sentences end here
    doc_ends = np.asarray(cuts, np.int64)[last_sentence]  # and its tokens here
    bounds_list = zip((last_sentence - counts).tolist(), last_sentence.tolist())
    offset = 0
    for doc, (a, b), end in zip(docs, bounds_list, doc_ends.tolist()):
        doc.probs, doc.labels = sentence_probs[a:b], sentence_labels[a:b]
        doc.iob = iob[offset:end]
        doc.found = []
        doc.last_in_batch = False
        offset = end
    owners = np.searchsorted(doc_ends, starts, side="right").tolist()  # the entities' documents
    for k, (start, last, owner) in enumerate(zip(starts.tolist(), lasts.tolist(), owners)):
        doc, a, b = docs[owner], tokens[start], tokens[last]
        doc.found.append(Entity(doc.text[a.start : b.end], a.start, b.end, means[k]))
    if docs:
        docs[-1].last_in_batch = True
    return docs
