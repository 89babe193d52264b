"""The library's tagger: raw text or tokens in, documents with located entities out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from nerwin.engine.blas import limited, limited_iterator
from nerwin.model.tagger import FrozenTagger, Tagger
from nerwin.tag.documents import Entity, TaggedDocument, tag_batches

PIPE_BATCH = 256  # documents scored together by pipe()


@dataclass(frozen=True, slots=True)
class Token:
    """A token: `document.text[start:end] == text`, its P(location) and the decision."""

    text: str
    start: int
    end: int
    probability: float
    location: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "probability": self.probability,
            "location": self.location,
        }


@dataclass(frozen=True)
class Document:
    """A tagged document: its text, tokens (by sentence) and location entities.

    Offsets are Unicode code points, i.e. Python string indices: `text[start:end]`.
    """

    text: str
    sentences: tuple[tuple[Token, ...], ...]
    entities: tuple[Entity, ...]
    id: Any = None

    @property
    def tokens(self) -> tuple[Token, ...]:
        """Every token of every sentence, in order."""
        return tuple(t for sentence in self.sentences for t in sentence)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        record: dict[str, Any] = {} if self.id is None else {"id": self.id}
        return {
            **record,
            "text": self.text,
            "entities": [e.to_dict() for e in self.entities],
            "sentences": [[t.to_dict() for t in s] for s in self.sentences],
        }

    def __repr__(self) -> str:
        found = ", ".join(
            f"Entity(text={e.text!r}, start={e.start}, end={e.end}, "
            f"probability={e.probability:.3f})"
            for e in self.entities
        )
        ident = "" if self.id is None else f"id={self.id!r}, "
        return f"Document({ident}text={self.text!r}, entities=[{found}])"


class LocationTagger:
    """A trained model ready to tag: `tag(text)`, `tag_tokens(tokens)`, `pipe(texts)`.

    The model is taken as frozen: the first layer of each distinct word is computed once and
    cached (up to `cache_mb` MB, default $NERWIN_TAG_CACHE_MB or 160; 0 = plain matrix
    products), so make a new LocationTagger after changing the weights of `tagger`. One
    LocationTagger can be shared by threads (its calls take turns).
    """

    def __init__(self, tagger: Tagger, path: str = "", cache_mb: float | None = None):
        self.tagger, self.path = tagger, path
        self.cache_mb = cache_mb
        self._frozen: FrozenTagger | None = None

    @property
    def frozen(self) -> FrozenTagger:
        """The frozen tagger behind every call (made on first use)."""
        if self._frozen is None:
            self._frozen = self.tagger.frozen(self.cache_mb)
        return self._frozen

    @property
    def threshold(self) -> float:
        """The decision threshold on P(location) the model was saved with."""
        return self.tagger.threshold

    def __repr__(self) -> str:
        members = len(self.tagger.models)
        what = f"an ensemble of {members}" if members > 1 else "one model"
        return f"LocationTagger({self.path!r}, {what}, threshold={self.threshold:.2f})"

    @limited
    def tag(self, text: str, threshold: float | None = None) -> Document:
        """Tokenize `text` (sentences are found too) and tag its locations."""
        _expect_text(text, "tag")
        return self._one(TaggedDocument.from_text(text), threshold)

    @limited
    def tag_tokens(
        self, tokens: Sequence[str] | Sequence[Sequence[str]], threshold: float | None = None
    ) -> Document:
        """Tag pre-tokenized input: one sentence (a list of words) or a list of sentences."""
        sentences = _expect_tokens(tokens)
        return self._one(TaggedDocument.from_sentences(sentences), threshold)

    def pipe(
        self,
        texts: Iterable[str] | Iterable[tuple[Any, str]],
        batch_size: int = PIPE_BATCH,
        threshold: float | None = None,
        with_ids: bool = False,
    ) -> Iterator[Document]:
        """Tag a stream of texts lazily, `batch_size` documents per model call, in order.

        With `with_ids`, items are `(id, text)` pairs and each Document carries its id.
        """
        if isinstance(texts, str):  # checked now, not when the first document is pulled
            raise TypeError("pipe() expects an iterable of str (one per document), got a str")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise TypeError(f"batch_size must be a positive int, got {batch_size!r}")
        docs = (_pipe_document(item, with_ids) for item in texts)
        return chain.from_iterable(self._batches(docs, threshold, batch_size))

    def _one(self, doc: TaggedDocument, threshold: float | None) -> Document:
        return next(self._batches([doc], threshold, 1))[0]

    @limited_iterator
    def _batches(
        self, docs: Iterable[TaggedDocument], threshold: float | None, batch_docs: int
    ) -> Iterator[list[Document]]:
        """Scored batches as Documents, each under the BLAS thread limit (not each document)."""
        for batch in tag_batches(self.frozen, docs, threshold, batch_docs=batch_docs):
            yield [to_document(doc) for doc in batch]


def _pipe_document(item: Any, with_ids: bool) -> TaggedDocument:
    """One pipe() input as a document to tag, its type checked."""
    if with_ids:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TypeError(f"pipe(with_ids=True) expects (id, text) pairs, got {item!r:.60}")
        ident, text = item
        _expect_text(text, "pipe")
        return TaggedDocument.from_text(text, ident)
    _expect_text(item, "pipe")
    return TaggedDocument.from_text(item)


def to_document(doc: TaggedDocument) -> Document:
    """The public, plain-Python form of a tagged document."""
    sentences = tuple(
        tuple(
            Token(t.text, t.start, t.end, float(p), bool(label))
            for t, p, label in zip(tokens, probs.tolist(), labels.tolist())
        )
        for tokens, probs, labels in zip(doc.sentences, doc.probs, doc.labels)
    )
    return Document(doc.text, sentences, tuple(doc.entities()), doc.id)


def _expect_text(text: Any, method: str) -> None:
    if not isinstance(text, str):
        hint = "; use tag_tokens() for pre-tokenized input" if isinstance(text, list) else ""
        raise TypeError(f"{method}() expects text as a str, got {type(text).__name__}{hint}")


def _expect_tokens(tokens: Any) -> list[list[str]]:
    """Sentences of words, after checking their types."""
    if isinstance(tokens, str) or not isinstance(tokens, Sequence):
        raise TypeError(
            "tag_tokens() expects a list of str (one sentence) or a list of lists of str, "
            f"got {type(tokens).__name__}; use tag() for raw text"
        )
    sentences = [tokens] if tokens and isinstance(tokens[0], str) else list(tokens)
    for sentence in sentences:
        if isinstance(sentence, str) or not isinstance(sentence, Sequence):
            raise TypeError(f"tag_tokens(): a sentence must be a list of str, got {sentence!r:.60}")
        for word in sentence:
            if not isinstance(word, str) or not word or any(ch.isspace() for ch in word):
                raise TypeError(
                    f"tag_tokens(): tokens must be non-empty str without spaces, got {word!r:.60}"
                )
    return sentences
