"""Prediction: character offsets, the three output formats, input routes, thresholds, batching."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
from _trained import DEV, TrainedRun, assert_ok, invoke

from nerwin import api
from nerwin.data.conll import Sentence, location_labels, read_conll
from nerwin.metrics import LocationEvaluator
from nerwin.model.folder import load_model
from nerwin.model.tagger import Tagger
from nerwin.tag.documents import TaggedDocument, sentence_document, tag_documents, text_documents

# One document per line: no newline inside any of them.
DOCS = [
    "The museums in Paris are amazing.",
    "We drove from São Paulo to Rio de Janeiro and on to Brasília.",
    "We drove from Sa\u0303o Paulo to Bogota\u0301 (decomposed accents).",
    "FLOODS HIT NEW ORLEANS",
    "",
    "   ",
    "He lives in\tLondon and\tBerlin,\tnot in  Madrid.",
    "Zürich, Kraków and Đà Nẵng are cities; 東京 is one too.",
    "Mr. Smith went to St. Louis. Then he flew to Washington, D.C. on Monday.",
    "Visit https://example.org/paris or mail info@paris.fr about U.S. trips to New York.",
    "I don't live in Oslo... but I've been to Cairo! And to Lima?",
    '"Lima" (Peru) - Cairo -- Tokyo: 1,000 km / 3.5 h',
    "🇫🇷 Paris 🗼 and Nice, then Ålesund.",
    "MONTEVIDEO 2023-06-18",
]
LONG_UNIT = "we flew from Paris to London and then "  # 8 tokens, no sentence end


@pytest.fixture(scope="session")
def docs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inputs") / "docs.txt"
    path.write_bytes("".join(d + "\n" for d in DOCS).encode("utf-8"))
    return path


def _predict(run: TrainedRun, *args, input: str | bytes | None = None) -> str:
    result = invoke(["predict", "--model", run.model, *args], input=input)
    assert_ok(result)
    assert result.stderr == ""
    return result.stdout


def _json_lines(stdout: str) -> list[dict]:
    # split on "\n" only: raw U+2028 or U+0085 inside a JSON string is not a record separator
    assert stdout.endswith("\n") or stdout == ""
    return [json.loads(line) for line in stdout.split("\n")[:-1]]


def _check_offsets(records: list[dict]) -> int:
    """Every entity (and token) is text[start:end]; returns the number of entities."""
    n = 0
    for record in records:
        text = record["text"]
        last_end = -1
        for entity in record["entities"]:
            start, end = entity["start"], entity["end"]
            assert 0 <= start < end <= len(text), (entity, text)
            assert text[start:end] == entity["text"], (entity, text)
            assert entity["text"] == entity["text"].strip()
            assert start >= last_end, "entities overlap or are out of order"
            assert 0.0 <= entity["probability"] <= 1.0
            last_end = end
            n += 1
        for token in record.get("tokens", []):
            assert text[token["start"] : token["end"]] == token["text"], (token, text)
    return n


@pytest.mark.parametrize("threshold", [None, 0.01])
def test_predict_json_offsets_slice_the_text(
    run: TrainedRun, docs_file: Path, threshold: float | None
) -> None:
    extra = [] if threshold is None else ["--threshold", str(threshold)]
    records = _json_lines(
        _predict(run, "--input", docs_file, "--format", "json", "--probs", *extra)
    )
    assert [r["text"] for r in records] == DOCS
    n = _check_offsets(records)
    assert n >= (5 if threshold is None else 20)  # enough entities for the check to mean something


def test_predict_json_offsets_of_text_arguments_with_crlf_and_tabs(run: TrainedRun) -> None:
    docs = ["Paris\r\nLondon is big.\r\n", "Flights from\tOslo\t\tto Cairo.\rLima", "São Paulo"]
    records = _json_lines(_predict(run, "--format", "json", "--threshold", "0.01", *docs))
    assert [r["text"] for r in records] == docs
    assert _check_offsets(records) >= 3


def test_predict_crlf_file_gives_the_same_documents_as_lf(
    run: TrainedRun, tmp_path: Path, docs_file: Path
) -> None:
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes("".join(d + "\r\n" for d in DOCS).encode("utf-8"))
    out_crlf = _predict(run, "--input", crlf, "--format", "json")
    assert "\\r" not in out_crlf
    assert out_crlf == _predict(run, "--input", docs_file, "--format", "json")


def test_predict_long_line_of_50000_tokens(run: TrainedRun, tmp_path: Path) -> None:
    text = (LONG_UNIT * 6250).rstrip()
    path = tmp_path / "long.txt"
    path.write_text(text + "\n", encoding="utf-8")
    (record,) = _json_lines(_predict(run, "--input", path, "--format", "json", "--probs"))
    assert record["text"] == text
    assert len(record["tokens"]) == 50_000
    assert _check_offsets([record]) >= 1
    inline = _predict(run, "--input", path)
    assert re.sub(r"\[([^\[\]]*)\]LOC", r"\1", inline) == text + "\n"


def _inline_entities(line: str) -> tuple[str, list[tuple[int, int, str]]]:
    """Unmarked text and (start, end, text) of each [..]LOC span, in unmarked coordinates."""
    spans, removed = [], 0
    for m in re.finditer(r"\[([^\[\]]*)\]LOC", line):
        start = m.start() - removed
        spans.append((start, start + len(m.group(1)), m.group(1)))
        removed += len("[]LOC")
    return re.sub(r"\[([^\[\]]*)\]LOC", r"\1", line), spans


def _conll_runs(stdout: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Tokens (flat) and entity spans over flat token indices from B-/I- tags."""
    tokens, spans, open_at, prev = [], [], None, "O"
    for row in stdout.split("\n")[:-1]:
        if row == "-DOCSTART-":  # a document opens (after a blank line, if any came before)
            assert open_at is None and prev == "O"
            continue
        if not row:
            if open_at is not None:
                spans.append((open_at, len(tokens)))
            open_at, prev = None, "O"
            continue
        token, tag = row.rsplit(" ", 1)
        assert tag in ("O", "B-LOC", "I-LOC"), row
        if tag == "I-LOC":
            assert prev in ("B-LOC", "I-LOC"), "an I-LOC that opens an entity is not IOB2"
        elif open_at is not None:
            spans.append((open_at, len(tokens)))
            open_at = None
        if tag == "B-LOC":
            open_at = len(tokens)
        tokens.append(token)
        prev = tag
    if open_at is not None:
        spans.append((open_at, len(tokens)))
    return tokens, spans


@pytest.mark.parametrize("threshold", ["0.5", "0.05"])
def test_predict_formats_agree(run: TrainedRun, docs_file: Path, threshold: str) -> None:
    assert not any("[" in d or "]" in d for d in DOCS)
    args = ["--input", docs_file, "--threshold", threshold]
    records = _json_lines(_predict(run, *args, "--format", "json", "--probs"))
    inline = _predict(run, *args, "--format", "inline").split("\n")[:-1]
    conll = _predict(run, *args, "--format", "conll")
    assert conll.startswith("-DOCSTART-\n\n")
    assert conll.count("-DOCSTART-\n\n") == len(DOCS)  # one marker per document, empty ones too
    conll_tokens, conll_spans = _conll_runs(conll)

    # json == inline, document by document, in character offsets
    assert len(inline) == len(records)
    for record, line in zip(records, inline):
        plain, spans = _inline_entities(line)
        assert plain == record["text"]
        assert spans == [(e["start"], e["end"], e["text"]) for e in record["entities"]]

    # json == conll, over the flat token sequence
    json_tokens, json_spans = [], []
    for record in records:
        starts = {t["start"]: i for i, t in enumerate(record["tokens"])}
        ends = {t["end"]: i for i, t in enumerate(record["tokens"])}
        offset = len(json_tokens)
        json_spans += [
            (offset + starts[e["start"]], offset + ends[e["end"]] + 1) for e in record["entities"]
        ]
        json_tokens += [t["text"] for t in record["tokens"]]
    assert conll_tokens == json_tokens
    assert conll_spans == json_spans
    assert json_spans  # something was compared


def test_predict_pretokenized_conll_round_trips_to_api_evaluate(
    run: TrainedRun, tmp_path: Path
) -> None:
    out = tmp_path / "dev.pred.conll"
    out.write_text(
        _predict(run, "--pretokenized", "--format", "conll", "--input", DEV), encoding="utf-8"
    )
    gold = read_conll(DEV)
    predicted = read_conll(out, tag_column=-1, scheme="IOB2")
    assert [s.words for s in predicted.sentences] == [s.words for s in gold.sentences]
    # the input columns come first, unchanged: column -2 of the output is the gold tag
    assert [tuple(r[-2] for r in s.columns) for s in predicted.sentences] == [
        s.tags for s in gold.sentences
    ]
    labels = location_labels(predicted, ["LOC"])
    scores = LocationEvaluator(gold, ["LOC"]).score(labels)
    expected = api.evaluate(run.model, DEV)
    assert scores == expected
    assert expected.entity.predicted > 0

    # and `nerwin evaluate` reads the file (predicted column last): the model agrees with itself
    result = invoke(["evaluate", "--model", run.model, "--data", out, "--json"])
    assert_ok(result)
    self_scores = json.loads(result.stdout)["entity"]
    assert (
        self_scores["correct"]
        == self_scores["gold"]
        == self_scores["predicted"]
        == expected.entity.predicted
    )


def test_predict_pretokenized_json_offsets(run: TrainedRun) -> None:
    records = _json_lines(
        _predict(run, "--pretokenized", "--format", "json", "--input", DEV, "--threshold", "0.05")
    )
    assert len(records) == len(read_conll(DEV).sentences)
    assert _check_offsets(records) > 100


def test_predict_stdin_input_file_and_arguments_agree(
    run: TrainedRun, docs_file: Path, tmp_path: Path
) -> None:
    for fmt in ("json", "inline", "conll"):
        from_args = _predict(run, "--format", fmt, *DOCS)
        from_file = _predict(run, "--format", fmt, "--input", docs_file)
        from_stdin = _predict(run, "--format", fmt, input=docs_file.read_bytes())
        from_dash = _predict(run, "--format", fmt, "--input", "-", input=docs_file.read_bytes())
        assert from_args == from_file == from_stdin == from_dash, fmt
    half = len(DOCS) // 2
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("".join(d + "\n" for d in DOCS[:half]), encoding="utf-8")
    second.write_text("".join(d + "\n" for d in DOCS[half:]), encoding="utf-8")
    assert _predict(run, "--format", "json", "--input", first, "--input", second) == _predict(
        run, "--format", "json", "--input", docs_file
    )


def test_predict_probs_adds_tokens(run: TrainedRun, docs_file: Path) -> None:
    plain = _json_lines(_predict(run, "--input", docs_file, "--format", "json"))
    with_probs = _json_lines(_predict(run, "--input", docs_file, "--format", "json", "--probs"))
    assert all("tokens" not in r for r in plain)
    assert [r["entities"] for r in plain] == [r["entities"] for r in with_probs]
    n = 0
    for record in with_probs:
        assert bool(record["tokens"]) == bool(record["text"].strip())
        previous_end = 0
        for token in record["tokens"]:
            assert set(token) == {"text", "start", "end", "probability"}
            assert 0.0 <= token["probability"] <= 1.0
            assert token["start"] >= previous_end and token["text"].strip() == token["text"] != ""
            previous_end = token["end"]
            n += 1
    assert n > 50


def test_predict_high_threshold_finds_no_more_entities(run: TrainedRun, docs_file: Path) -> None:
    def records(threshold: str) -> list[dict]:
        return _json_lines(
            _predict(
                run, "--input", docs_file, "--format", "json", "--probs", "--threshold", threshold
            )
        )

    high, low = records("0.99"), records("0.01")
    assert sum(len(r["entities"]) for r in high) <= sum(len(r["entities"]) for r in low)
    for doc_high, doc_low in zip(high, low):  # a stricter threshold only shrinks entities
        for e in doc_high["entities"]:
            assert any(
                o["start"] <= e["start"] and e["end"] <= o["end"] for o in doc_low["entities"]
            ), e
    # the threshold is the one applied: tagged tokens are exactly those with prob >= threshold
    for threshold, docs in ((0.99, high), (0.01, low)):
        tagged = untagged = 0
        for record in docs:
            for token in record["tokens"]:
                inside = any(
                    e["start"] <= token["start"] and token["end"] <= e["end"]
                    for e in record["entities"]
                )
                if abs(token["probability"] - threshold) > 1e-4:  # probs are rounded to 4 decimals
                    assert inside == (token["probability"] >= threshold), (threshold, token)
                tagged += inside
                untagged += not inside
        assert untagged and (tagged or threshold > 0.5), threshold  # both sides exercised


def test_predict_entity_probability_is_mean_token_prob(run: TrainedRun, docs_file: Path) -> None:
    threshold = load_model(run.model)[0].threshold
    records = _json_lines(_predict(run, "--input", docs_file, "--format", "json", "--probs"))
    checked = 0
    for record in records:
        for entity in record["entities"]:
            members = [
                t["probability"]
                for t in record["tokens"]
                if entity["start"] <= t["start"] and t["end"] <= entity["end"]
            ]
            assert members
            assert all(p >= threshold - 1e-4 for p in members)
            # both sides are rounded to 4 decimals
            assert entity["probability"] == pytest.approx(np.mean(members), abs=1.5e-4)
            checked += 1
    assert checked >= 5


def test_predict_sentence_document_offsets() -> None:
    sentence = Sentence(("São", "Paulo", "is", "big", "."), columns=(("São", "x"),) * 5)
    doc = sentence_document(sentence)
    assert doc.text == "São Paulo is big ."
    assert [doc.text[t.start : t.end] for t in doc.sentences[0]] == list(sentence.words)
    assert doc.columns == [sentence]


def _documents() -> list[TaggedDocument]:
    texts = [
        "The museums in Paris are amazing. We left London.",
        "",
        "FLOODS HIT NEW ORLEANS",
        "a",
        "   ",
        "Zürich and Kraków. Oslo! Lima? Cairo.",
        (LONG_UNIT * 20).strip(),
    ]
    return list(text_documents(texts))


def test_predict_batching_gives_the_same_results(tagger: Tagger) -> None:
    small = list(tag_documents(tagger, _documents(), threshold=0.3, batch_tokens=5))
    whole = list(tag_documents(tagger, _documents(), threshold=0.3, batch_tokens=10**9))
    assert [d.text for d in small] == [d.text for d in whole] == [d.text for d in _documents()]
    for a, b in zip(small, whole):
        assert len(a.probs) == len(b.probs) == len(a.sentences)
        for pa, pb, la, lb in zip(a.probs, b.probs, a.labels, b.labels):
            np.testing.assert_allclose(pa, pb, rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(la, lb)
        assert [(e.text, e.start, e.end) for e in a.entities()] == [
            (e.text, e.start, e.end) for e in b.entities()
        ]
    assert sum(len(d.entities()) for d in whole) > 0


def test_predict_batching_matches_one_document_at_a_time(tagger: Tagger) -> None:
    together = list(tag_documents(tagger, _documents()))
    for doc, alone in zip(together, (next(tag_documents(tagger, [d])) for d in _documents())):
        for pa, pb in zip(doc.probs, alone.probs):
            np.testing.assert_allclose(pa, pb, rtol=1e-5, atol=1e-6)


def test_predict_tag_documents_is_lazy(tagger: Tagger) -> None:
    pulled = []

    def endless():
        for i in itertools.count():
            pulled.append(i)
            yield f"Flights {i} left Paris for London today."

    first = list(itertools.islice(tag_documents(tagger, text_documents(endless())), 3))
    assert [d.text for d in first] == [
        f"Flights {i} left Paris for London today." for i in range(3)
    ]
    assert all(len(d.probs) == len(d.sentences) == 1 for d in first)

    pulled.clear()
    stream = tag_documents(tagger, text_documents(endless()), batch_tokens=5)
    next(stream)
    assert len(pulled) == 1  # a document of >= 5 tokens fills a batch on its own


def test_predict_tag_documents_bounded_on_empty_documents(tagger: Tagger) -> None:
    # A stream of blank lines (e.g. `yes '' | nerwin predict`) must still come out in bounded
    # batches: documents without tokens may not pile up unscored until the input ends.
    pulled = []

    def blanks():
        for i in range(20_000):
            pulled.append(i)
            yield ""

    stream = tag_documents(tagger, text_documents(blanks()), batch_tokens=5)
    assert next(stream).text == ""
    assert len(pulled) <= 1000, f"{len(pulled)} documents read before the first result"


def test_predict_idle_input_closes_a_batch(tagger: Tagger) -> None:
    from nerwin.tag.documents import tag_batches

    texts = ["Paris is big.", "Rome is old.", "Oslo.", "Lima!"]
    waiting = {"now": False}
    sizes = [
        len(batch)
        for batch in tag_batches(tagger, text_documents(texts), idle=lambda: waiting["now"])
    ]
    assert sizes == [4]  # input always ready: one batch
    waiting["now"] = True
    batches = list(tag_batches(tagger, text_documents(texts), idle=lambda: waiting["now"]))
    assert [len(b) for b in batches] == [1, 1, 1, 1]  # input would wait: answer each at once
    assert all(b[-1].last_in_batch and not any(d.last_in_batch for d in b[:-1]) for b in batches)
    whole = list(tag_documents(tagger, text_documents(texts)))
    assert [d.entities() for b in batches for d in b] == [d.entities() for d in whole]


def test_predict_ids_travel_with_documents(tagger: Tagger) -> None:
    docs = list(tag_documents(tagger, text_documents([(7, "Paris."), ("b", "")], with_ids=True)))
    assert [(d.id, d.text) for d in docs] == [(7, "Paris."), ("b", "")]
    with pytest.raises(TypeError, match="pairs"):
        list(text_documents(["no id"], with_ids=True))


def test_predict_batch_entities_match_per_sentence_entities(tagger: Tagger) -> None:
    # entities and IOB2 codes are computed over the whole batch; they must equal what each
    # sentence's labels give on their own (runs never cross a sentence or a document)
    for threshold in (0.05, 0.5):
        for doc in tag_documents(tagger, _documents(), threshold=threshold):
            fresh = TaggedDocument(doc.text, doc.sentences, doc.probs, doc.labels)
            assert doc.found is not None and doc.iob is not None
            assert [(e.text, e.start, e.end) for e in doc.entities()] == [
                (e.text, e.start, e.end) for e in fresh.entities()
            ]
            for ours, theirs in zip(doc.entities(), fresh.entities()):
                assert ours.probability == pytest.approx(theirs.probability, rel=1e-6)
            assert doc.iob_codes() == fresh.iob_codes()
