"""Output formats for tagged documents: inline markup, CoNLL columns, JSON lines.

Every format works with `with_probs` (`nerwin predict --probs`), and a document id (JSON-lines
input) is carried by every format. Per document:

- inline: the text with each entity marked, `The museums in [Paris]LOC are amazing.`; with
  probabilities `[Paris]LOC(0.98)` (the entity's mean P(location), 2 decimals); with an id the
  line starts with the id as JSON and a tab: `"doc-1"<TAB>The museums in [Paris]LOC ...`.
- conll: a document marker line `-DOCSTART-` (CoNLL-2003's; with an id, `-DOCSTART- <id as
  JSON>`, e.g. `-DOCSTART- "doc-1"`) and a blank line, then one token per line with its IOB2
  tag last (`Paris B-LOC`), a blank line after each sentence; with probabilities a column
  before the tag, `Paris 0.9812 B-LOC` (4 decimals). nerwin's CoNLL reader (and `nerwin
  evaluate`) skips `-DOCSTART-` lines. Pre-tokenized input (`--pretokenized`) keeps its input
  columns first and gets no marker: each of its sentences is a document of its own, separated by
  the blank line.
- json: one object per line, `{"id" (when given), "text", "entities": [{"text", "start", "end",
  "probability"}]}`, plus `"tokens": [{"text", "start", "end", "probability"}]` with
  probabilities (4 decimals). Offsets are Unicode code points into `text` (Python string
  indices: `text[start:end]` is the entity), not bytes.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterable
from itertools import chain
from operator import attrgetter
from typing import TextIO

import numpy as np

from nerwin.tag.documents import TaggedDocument

FORMATS = ("inline", "conll", "json")
DOCSTART = "-DOCSTART-"
GC_BATCHES = 50  # write_documents: scored batches between two garbage collections


_JSON = json.JSONEncoder(ensure_ascii=False)  # made once: json.dumps builds one per call
_string = json.encoder.encode_basestring  # a str as JSON (what _JSON uses, non-ASCII kept)
_DECIMALS: dict[str, list[str]] = {}
_text = attrgetter("text")
_CONLL_ENDS = (" O\n", " B-LOC\n", " I-LOC\n", " O\n\n", " B-LOC\n\n", " I-LOC\n\n")  # + 3: last


def _json(value: object) -> str:
    return _JSON.encode(value)


def _decimals(kind: str) -> list[str]:
    """Strings of k / 10,000 for k = 0 ... 10,000: `f"{p:.4f}"` ("conll"; "conll " with a space
    first) or the JSON number of round(p, 4) ("json"), looked up as table[rint(p * 10,000)]
    (exact for float32 p: the product is exact in float64, and both round half to even)."""
    if kind not in _DECIMALS:
        values = [k / 10_000 for k in range(10_001)]
        if kind == "conll ":  # with the space before it on a CoNLL line
            _DECIMALS[kind] = [f" {v:.4f}" for v in values]
        else:
            _DECIMALS[kind] = [f"{v:.4f}" if kind == "conll" else repr(v) for v in values]
    return _DECIMALS[kind]


def _probability_strings(probs: np.ndarray, kind: str) -> list[str]:
    keys = np.rint(probs.astype(np.float64) * 10_000).astype(np.intp).tolist()
    return list(map(_decimals(kind).__getitem__, keys))


def render_inline(doc: TaggedDocument, label: str = "LOC", with_probs: bool = False) -> str:
    """The text with each entity marked as [text]LOC (or [text]LOC(0.98) with probabilities)."""
    out, cursor = [], 0
    for entity in doc.entities():
        mark = f"[{entity.text}]{label}"
        if with_probs:
            mark += f"({entity.probability:.2f})"
        out += [doc.text[cursor : entity.start], mark]
        cursor = entity.end
    out.append(doc.text[cursor:])
    prefix = "" if doc.id is None else _json(doc.id) + "\t"
    return prefix + "".join(out)


def render_conll(doc: TaggedDocument, label: str = "LOC", with_probs: bool = False) -> str:
    """One token per line with its IOB2 tag last (after the input columns, and the probability
    with `with_probs`); a blank line after each sentence."""
    tags = (" O\n", f" B-{label}\n", f" I-{label}\n")
    codes = doc.iob_codes()
    blocks, at = [], 0
    for i, tokens in enumerate(doc.sentences):
        end = at + len(tokens)
        if doc.columns and doc.columns[i].columns:
            words = [" ".join(row) for row in doc.columns[i].columns]
        else:
            words = [t.text for t in tokens]
        if with_probs:
            probs = _probability_strings(doc.probs[i], "conll")
            lines = [
                f"{w} {p}{tags[c]}" for w, p, c in zip(words, probs, codes[at:end], strict=True)
            ]
        else:
            lines = [w + tags[c] for w, c in zip(words, codes[at:end], strict=True)]
        lines.append("\n")
        blocks.append("".join(lines))
        at = end
    return "".join(blocks)


def document_marker(doc: TaggedDocument) -> str:
    """The CoNLL line that opens a document (with its id as JSON), then a blank line."""
    return DOCSTART + ("" if doc.id is None else " " + _json(doc.id)) + "\n\n"


def json_record(doc: TaggedDocument, with_probs: bool = False) -> dict:
    """The JSON object of a document: id (when given), text, entities (and tokens)."""
    record: dict = {} if doc.id is None else {"id": doc.id}
    record["text"] = doc.text
    record["entities"] = [
        {"text": e.text, "start": e.start, "end": e.end, "probability": round(e.probability, 4)}
        for e in doc.entities()
    ]
    if with_probs:
        record["tokens"] = [
            {"text": t.text, "start": t.start, "end": t.end, "probability": round(p, 4)}
            for tokens, probs in zip(doc.sentences, doc.probs)
            for t, p in zip(tokens, probs.tolist())
        ]
    return record


def render_json(doc: TaggedDocument, with_probs: bool = False) -> str:
    """One JSON object (one line): id, text, entities and (optionally) every token's probability;
    the text of json.dumps(json_record(doc, with_probs), ensure_ascii=False), built directly."""
    head = "" if doc.id is None else f'"id": {_json(doc.id)}, '
    entities = ", ".join(
        [
            f'{{"text": {_string(e.text)}, "start": {e.start}, "end": {e.end}, '
            f'"probability": {round(e.probability, 4)!r}}}'
            for e in doc.entities()
        ]
    )
    record = f'{{{head}"text": {_string(doc.text)}, "entities": [{entities}]'
    if not with_probs:
        return record + "}"
    tokens = []
    for sentence, probs in zip(doc.sentences, doc.probs):
        for t, p in zip(sentence, _probability_strings(probs, "json")):
            tokens.append(
                f'{{"text": {_string(t.text)}, "start": {t.start}, "end": {t.end}, '
                f'"probability": {p}}}'
            )
    return f'{record}, "tokens": [{", ".join(tokens)}]}}'


def render(doc: TaggedDocument, fmt: str, with_probs: bool = False) -> str:
    """The document in format `fmt` (inline, conll or json), newline-terminated."""
    if fmt == "inline":
        return render_inline(doc, with_probs=with_probs) + "\n"
    if fmt == "conll":
        marker = "" if doc.columns else document_marker(doc)
        return marker + render_conll(doc, with_probs=with_probs)
    if fmt == "json":
        return render_json(doc, with_probs) + "\n"
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def render_batch(docs: list[TaggedDocument], fmt: str, with_probs: bool = False) -> str:
    """The documents of a scored batch in format `fmt`: "".join(render(doc, ...) for each),
    built for the whole batch at once for CoNLL output of raw text (a few C-level passes over
    its tokens instead of Python work per sentence and token)."""
    sentences = [s for doc in docs for s in doc.sentences]
    if fmt != "conll" or not all(map(len, sentences)) or any(d.columns for d in docs):
        return "".join([render(doc, fmt, with_probs) for doc in docs])
    sizes = [sum(map(len, doc.sentences)) for doc in docs]
    if not all(sizes):  # a document without tokens is its marker alone
        return "".join([render(doc, fmt, with_probs) for doc in docs])
    codes = list(chain.from_iterable(doc.iob_codes() for doc in docs))
    if len(codes) != sum(sizes):
        raise ValueError(f"{len(codes)} tags for {sum(sizes)} tokens")
    at = -1
    for size in map(len, sentences):  # a sentence's last tag line ends with the blank line
        at += size
        codes[at] += 3
    columns = 3 if with_probs else 2  # word, (probability,) tag: the pieces of a token's line
    pieces: list[str] = [""] * (columns * len(codes))
    pieces[0::columns] = map(_text, chain.from_iterable(sentences))
    if with_probs:
        pieces[1::columns] = chain.from_iterable(
            _probability_strings(p, "conll ") for doc in docs for p in doc.probs
        )
    pieces[columns - 1 :: columns] = map(_CONLL_ENDS.__getitem__, codes)
    at = 0
    for doc, size in zip(docs, sizes):  # each document opens with its marker
        pieces[at] = document_marker(doc) + pieces[at]
        at += columns * size
    return "".join(pieces)


def write_documents(
    docs: Iterable[TaggedDocument],
    out: TextIO,
    fmt: str,
    with_probs: bool = False,
    progress: Callable[[int], object] | None = None,
) -> int:
    """Render tagged documents to `out`, one write and flush per scored batch (a document with
    `last_in_batch`), so streamed input sees each answer as soon as it is scored; returns the
    number of documents. `progress(n)` is called after each batch.

    Meanwhile the cyclic garbage collector runs once per GC_BATCHES batches instead of on its
    own: the tagging loop makes no reference cycles, and the collector's passes over the young
    tokens and arrays of each batch cost 15-20% of a `nerwin predict` run.
    """
    batch: list[TaggedDocument] = []
    count = batches = 0
    collecting = gc.isenabled()
    gc.disable()
    try:
        for doc in docs:
            batch.append(doc)
            if doc.last_in_batch:
                count += _flush(out, batch, fmt, with_probs, progress)
                batches += 1
                if collecting and batches % GC_BATCHES == 0:
                    gc.collect()
        count += _flush(out, batch, fmt, with_probs, progress)
    finally:
        if collecting:
            gc.enable()
    return count


def _flush(
    out: TextIO,
    batch: list[TaggedDocument],
    fmt: str,
    with_probs: bool,
    progress: Callable[[int], object] | None,
) -> int:
    """Render and write the documents of `batch` (then empty it); returns how many there were."""
    n = len(batch)
    if n:
        out.write(render_batch(batch, fmt, with_probs))
    out.flush()
    batch.clear()
    if progress is not None and n:
        progress(n)
    return n
