"""Output formats of tagged documents: inline markup, CoNLL columns and JSON lines."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from nerwin.data.conll import Sentence
from nerwin.tag import formats
from nerwin.tag.documents import TaggedDocument, sentence_document, text_documents
from nerwin.tag.formats import (
    FORMATS,
    render,
    render_batch,
    render_conll,
    render_inline,
    render_json,
)


def _doc(text: str, probs: list[list[float]], threshold: float = 0.5) -> TaggedDocument:
    """A raw-text document with hand-set probabilities (one list per sentence)."""
    (doc,) = text_documents([text])
    assert [len(s) for s in doc.sentences] == [len(p) for p in probs], [
        [t.text for t in s] for s in doc.sentences
    ]
    doc.probs = [np.array(p, dtype=np.float32) for p in probs]
    doc.labels = [(p >= threshold).astype(np.int8) for p in doc.probs]
    return doc


TEXT = "New\tYork  is far from São Paulo. London is near."
PROBS = [[0.9, 0.7, 0.1, 0.2, 0.0, 0.8, 0.6, 0.3], [0.95, 0.1, 0.2, 0.0]]


def test_formats_inline_marks_entities_and_keeps_text() -> None:
    doc = _doc(TEXT, PROBS)
    assert render_inline(doc) == "[New\tYork]LOC  is far from [São Paulo]LOC. [London]LOC is near."
    assert render(doc, "inline") == render_inline(doc) + "\n"


def test_formats_inline_without_entities_is_the_text() -> None:
    doc = _doc(TEXT, [[0.0] * 8, [0.0] * 4])
    assert render(doc, "inline") == TEXT + "\n"


def test_formats_conll_iob2_rows_and_sentence_breaks() -> None:
    doc = _doc(TEXT, PROBS)
    assert render_conll(doc) == (
        "New B-LOC\nYork I-LOC\nis O\nfar O\nfrom O\nSão B-LOC\nPaulo I-LOC\n. O\n"
        "\n"
        "London B-LOC\nis O\nnear O\n. O\n"
        "\n"
    )
    assert render(doc, "conll") == "-DOCSTART-\n\n" + render_conll(doc)  # a document marker


def test_formats_conll_keeps_input_columns_first() -> None:
    sentence = Sentence(
        ("Paris", "is", "nice"),
        ("B-LOC", "O", "O"),
        (("Paris", "NNP", "B-LOC"), ("is", "VBZ", "O"), ("nice", "JJ", "O")),
        1,
    )
    doc = sentence_document(sentence)
    doc.probs = [np.array([0.9, 0.2, 0.6], dtype=np.float32)]
    doc.labels = [np.array([1, 0, 1], dtype=np.int8)]
    assert render_conll(doc) == "Paris NNP B-LOC B-LOC\nis VBZ O O\nnice JJ O B-LOC\n\n"


def test_formats_entities_do_not_cross_sentences() -> None:
    # Paris ends one sentence (paragraph break) and London opens the next: two entities.
    doc = _doc("I love Paris\n\nLondon too", [[0.1, 0.1, 0.9], [0.9, 0.1]])
    assert [e.text for e in doc.entities()] == ["Paris", "London"]
    assert render_inline(doc) == "I love [Paris]LOC\n\n[London]LOC too"
    assert render_conll(doc) == "I O\nlove O\nParis B-LOC\n\nLondon B-LOC\ntoo O\n\n"


def test_formats_json_entities_offsets_and_probability() -> None:
    doc = _doc(TEXT, PROBS)
    line = render(doc, "json")
    assert line.endswith("\n") and "\n" not in line[:-1]
    record = json.loads(line)
    assert "São" in line  # not \u-escaped
    assert record["text"] == TEXT
    assert [(e["text"], e["start"], e["end"]) for e in record["entities"]] == [
        ("New\tYork", 0, 8),
        ("São Paulo", 22, 31),
        ("London", 33, 39),
    ]
    for entity in record["entities"]:
        assert TEXT[entity["start"] : entity["end"]] == entity["text"]
    assert [e["probability"] for e in record["entities"]] == [0.8, 0.7, 0.95]
    assert "tokens" not in record


def test_formats_json_probs_lists_every_token() -> None:
    doc = _doc(TEXT, PROBS)
    record = json.loads(render_json(doc, with_probs=True))
    tokens = record["tokens"]
    assert [t["text"] for t in tokens] == [
        "New",
        "York",
        "is",
        "far",
        "from",
        "São",
        "Paulo",
        ".",
        "London",
        "is",
        "near",
        ".",
    ]
    assert [t["probability"] for t in tokens] == pytest.approx(
        [p for s in PROBS for p in s], abs=1e-4
    )
    for token in tokens:
        assert TEXT[token["start"] : token["end"]] == token["text"]
    assert json.loads(render(doc, "json", True)) == record


def test_formats_json_newlines_stay_inside_one_line() -> None:
    doc = _doc("Paris\nLondon", [[0.9, 0.9]])
    line = render(doc, "json")
    assert line.count("\n") == 1
    assert [e["text"] for e in json.loads(line)["entities"]] == ["Paris\nLondon"]


@pytest.mark.parametrize("text", ["", "   ", "\t\r\n"])
def test_formats_empty_document(text: str) -> None:
    (doc,) = text_documents([text])
    assert doc.sentences == []
    assert render(doc, "inline") == text + "\n"
    assert json.loads(render(doc, "json", True)) == {"text": text, "entities": [], "tokens": []}
    assert render(doc, "conll") == "-DOCSTART-\n\n"  # the marker still counts the document


def test_formats_names() -> None:
    assert set(FORMATS) == {"inline", "conll", "json"}


def test_formats_probs_in_every_format() -> None:
    doc = _doc(TEXT, PROBS)
    assert render(doc, "inline", True) == (
        "[New\tYork]LOC(0.80)  is far from [São Paulo]LOC(0.70). [London]LOC(0.95) is near.\n"
    )
    conll = render(doc, "conll", True).split("\n")
    assert conll[:4] == ["-DOCSTART-", "", "New 0.9000 B-LOC", "York 0.7000 I-LOC"]
    assert conll[-3:] == [". 0.0000 O", "", ""]
    assert [len(line.split(" ")) for line in conll[2:] if line] == [3] * 12


def test_formats_ids_in_every_format() -> None:
    doc = _doc(TEXT, PROBS)
    doc.id = "doc 1"
    assert render(doc, "inline").startswith('"doc 1"\t[New\tYork]LOC')
    assert render(doc, "conll").startswith('-DOCSTART- "doc 1"\n\nNew B-LOC\n')
    assert json.loads(render(doc, "json"))["id"] == "doc 1"
    assert list(json.loads(render(doc, "json"))) == ["id", "text", "entities"]
    doc.id = None
    assert "id" not in json.loads(render(doc, "json"))


def test_formats_unknown_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="xml"):
        render(_doc(TEXT, PROBS), "xml")


def test_formats_json_is_json_dumps_of_the_record() -> None:
    from nerwin.tag.formats import json_record

    probs = [[0.9, 0.6, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], [0.95, 0.2, 0.1, 0.0, 0.3, 0.9]]
    doc = _doc('São "Paulo" \\ x\u2028y\tz. Lima 🇫🇷 is far.', probs)
    for ident in (None, "doc 1", 3, {"a": [1, None]}):
        doc.id = ident
        for with_probs in (False, True):
            expected = json.dumps(json_record(doc, with_probs), ensure_ascii=False)
            assert render_json(doc, with_probs) == expected


def test_formats_probability_strings_round_like_format_and_round() -> None:
    from nerwin.tag.formats import _probability_strings

    rng = np.random.default_rng(0)
    ties = (np.arange(10_001) / 10_000 + 0.00005).astype(np.float32)  # near the rounding edges
    probs = np.clip(np.concatenate([rng.random(20_000), ties, [0.0, 1.0]]), 0, 1).astype(np.float32)
    assert _probability_strings(probs, "conll") == [f"{p:.4f}" for p in probs.tolist()]
    assert _probability_strings(probs, "json") == [repr(round(p, 4)) for p in probs.tolist()]


@pytest.mark.parametrize("with_probs", [False, True])
@pytest.mark.parametrize("fmt", FORMATS)
def test_formats_batch_is_its_documents_rendered_one_by_one(fmt: str, with_probs: bool) -> None:
    docs = [
        _doc(TEXT, PROBS),
        _doc("Rain in Spain.", [[0.1, 0.2, 0.9, 0.0]]),
        _doc(TEXT, [[0.0] * 8, [1.0] * 4]),
    ]
    docs[1].id = {"doc": 2}
    with_empty = [*docs[:2], *text_documents(["  "]), docs[2]]  # a document without tokens
    with_empty[2].probs, with_empty[2].labels = [], []
    pretokenized = [
        *docs,
        sentence_document(Sentence(["Oslo", "."], [["Oslo", "NNP"], [".", "."]])),
    ]
    probs = np.array([0.8, 0.1], np.float32)
    pretokenized[-1].probs, pretokenized[-1].labels = [probs], [(probs >= 0.5).astype(np.int8)]
    for batch in (docs, with_empty, pretokenized):
        one_by_one = "".join(render(doc, fmt, with_probs) for doc in batch)
        assert render_batch(batch, fmt, with_probs) == one_by_one


def test_formats_write_documents_renders_each_scored_batch_once(monkeypatch) -> None:
    docs = [_doc(TEXT, PROBS), _doc("Rain in Spain.", [[0.1, 0.2, 0.9, 0.0]]), _doc(TEXT, PROBS)]
    docs[1].last_in_batch = True  # two batches: docs 0-1, then doc 2 (the end of the input)
    written, batches = io.StringIO(), []
    real = formats.render_batch
    monkeypatch.setattr(
        formats, "render_batch", lambda b, *a: batches.append(len(b)) or real(b, *a)
    )
    assert formats.write_documents(docs, written, "conll") == 3
    assert batches == [2, 1]
    assert written.getvalue() == "".join(render(doc, "conll") for doc in docs)
