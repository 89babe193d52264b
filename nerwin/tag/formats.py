"""Output formats for tagged documents: inline markup, CoNLL columns, JSON lines."""

from __future__ import annotations

import json

from nerwin.data.conll import conll_rows
from nerwin.data.schemes import binary_to_spans, spans_to_iob2
from nerwin.tag.documents import TaggedDocument

FORMATS = ("inline", "conll", "json")


def render_inline(doc: TaggedDocument, label: str = "LOC") -> str:
    """The text with each entity marked as [text]LOC."""
    out, cursor = [], 0
    for entity in doc.entities():
        out += [doc.text[cursor : entity.start], f"[{entity.text}]{label}"]
        cursor = entity.end
    out.append(doc.text[cursor:])
    return "".join(out)


def render_conll(doc: TaggedDocument, label: str = "LOC") -> str:
    """One token per line with its IOB2 tag (after the input columns); a blank line per sentence."""
    blocks = []
    for i, (tokens, labels) in enumerate(zip(doc.sentences, doc.labels)):
        tags = spans_to_iob2(binary_to_spans(labels), len(tokens), label)
        rows = (
            doc.columns[i].columns
            if doc.columns and doc.columns[i].columns
            else [(t.text,) for t in tokens]
        )
        blocks.append(conll_rows(rows, tags))
    return "\n".join(blocks) + ("\n" if blocks else "")


def render_json(doc: TaggedDocument, with_probs: bool = False) -> str:
    """One JSON object: the text, its entities and (optionally) every token's probability."""
    entities = [{**e.to_dict(), "probability": round(e.probability, 4)} for e in doc.entities()]
    record: dict = {"text": doc.text, "entities": entities}
    if with_probs:
        record["tokens"] = [
            {"text": t.text, "start": t.start, "end": t.end, "probability": round(float(p), 4)}
            for tokens, probs in zip(doc.sentences, doc.probs)
            for t, p in zip(tokens, probs)
        ]
    return json.dumps(record, ensure_ascii=False)


def render(doc: TaggedDocument, fmt: str, with_probs: bool = False) -> str:
    """The document in format `fmt` (inline, conll or json), newline-terminated."""
    if fmt == "inline":
        return render_inline(doc) + "\n"
    if fmt == "conll":
        return render_conll(doc)
    return render_json(doc, with_probs) + "\n"
