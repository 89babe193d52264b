"""The library's tagger: nerwin.load(...).tag / tag_tokens / pipe, and its Document."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _trained import TrainedRun, assert_ok, invoke

import nerwin
from nerwin.errors import ModelError
from nerwin.tag.pipeline import Document, LocationTagger, Token

PARIS = "The museums in Paris are amazing."


@pytest.fixture(scope="module")
def located(run: TrainedRun) -> LocationTagger:
    return nerwin.load(run.model)


def test_pipeline_tag_names_paris_with_code_point_offsets(located: LocationTagger) -> None:
    doc = located.tag(PARIS)
    assert isinstance(doc, Document)
    assert [(e.text, e.start, e.end) for e in doc.entities] == [("Paris", 15, 20)]
    assert PARIS[15:20] == "Paris"
    assert "Entity(text='Paris', start=15, end=20" in repr(doc)
    assert 0.5 <= doc.entities[0].probability <= 1.0


def test_pipeline_offsets_are_python_string_indices(located: LocationTagger) -> None:
    text = "Café in Zürich — then Paris."  # non-ASCII before the entity: code points, not bytes
    for token in located.tag(text).tokens:
        assert text[token.start : token.end] == token.text


def test_pipeline_tokens_carry_probability_and_decision(located: LocationTagger) -> None:
    doc = located.tag(PARIS)
    assert [t.text for t in doc.tokens] == ["The", "museums", "in", "Paris", "are", "amazing", "."]
    assert all(isinstance(t, Token) and 0.0 <= t.probability <= 1.0 for t in doc.tokens)
    assert [t.location for t in doc.tokens] == [
        t.probability >= located.threshold for t in doc.tokens
    ]


def test_pipeline_agrees_with_cli_json(run: TrainedRun, located: LocationTagger) -> None:
    result = invoke(["predict", "--model", run.model, "--format", "json", PARIS])
    assert_ok(result)
    record = json.loads(result.stdout)
    doc = located.tag(PARIS)
    assert [(e["text"], e["start"], e["end"]) for e in record["entities"]] == [
        (e.text, e.start, e.end) for e in doc.entities
    ]


def test_pipeline_tag_tokens_one_sentence_or_several(located: LocationTagger) -> None:
    words = ["The", "museums", "in", "Paris", "are", "amazing", "."]
    one = located.tag_tokens(words)
    assert [t.text for t in one.tokens] == words
    assert [e.text for e in one.entities] == ["Paris"]
    two = located.tag_tokens([words, ["Rome", "is", "big", "."]])
    assert len(two.sentences) == 2
    assert two.text == " ".join([*words, "Rome", "is", "big", "."])
    for token in two.tokens:
        assert two.text[token.start : token.end] == token.text
    first = [t.probability for t in two.sentences[0]]
    assert first == pytest.approx([t.probability for t in one.tokens])  # windows stop at the edge


def test_pipeline_pipe_streams_in_order_and_matches_tag(located: LocationTagger) -> None:
    texts = [PARIS, "", "Rome and Berlin .", "nothing here"] * 5
    docs = list(located.pipe(texts, batch_size=3))
    assert [d.text for d in docs] == texts
    for doc, text in zip(docs, texts, strict=True):
        single = located.tag(text)
        assert [(e.text, e.start) for e in doc.entities] == [
            (e.text, e.start) for e in single.entities
        ]
        assert np.allclose(
            [t.probability for t in doc.tokens], [t.probability for t in single.tokens]
        )


def test_pipeline_pipe_is_lazy(located: LocationTagger) -> None:
    pulled = []

    def texts():
        for i in range(10_000):
            pulled.append(i)
            yield f"Visit Paris number {i} ."

    stream = located.pipe(texts(), batch_size=4)
    next(stream)
    assert len(pulled) <= 8  # one batch read, not the whole input


def test_pipeline_pipe_with_ids(located: LocationTagger) -> None:
    docs = list(located.pipe([("a", PARIS), (7, "Rome .")], with_ids=True))
    assert [d.id for d in docs] == ["a", 7]
    assert docs[0].to_dict()["id"] == "a"
    assert "id='a'" in repr(docs[0])


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda t: t.tag(["The", "museums"]), "tag() expects text as a str, got list"),
        (lambda t: t.tag(None), "tag() expects text as a str, got NoneType"),
        (lambda t: t.tag_tokens("I flew to Paris."), "use tag() for raw text"),
        (lambda t: t.tag_tokens(["Paris", 3]), "tokens must be non-empty str"),
        (lambda t: t.tag_tokens(["New York"]), "without spaces"),
        (lambda t: list(t.pipe("I flew to Paris.")), "got a str"),
        (lambda t: list(t.pipe([PARIS], batch_size=0)), "batch_size"),
        (lambda t: list(t.pipe([1, 2])), "got int"),
        (lambda t: list(t.pipe([PARIS], with_ids=True)), "(id, text) pairs"),
    ],
)
def test_pipeline_wrong_types_raise_type_error(located: LocationTagger, call, needle: str) -> None:
    with pytest.raises(TypeError) as info:
        call(located)
    assert needle in str(info.value)


def test_pipeline_low_level_tagger_refuses_a_string(located: LocationTagger) -> None:
    with pytest.raises(TypeError, match="list of sentences"):
        located.tagger.probabilities("I flew to Paris.")
    with pytest.raises(TypeError, match="wrap one sentence"):
        located.tagger.probabilities(["I", "flew"])


def test_pipeline_load_run_folder_says_did_you_mean(run: TrainedRun) -> None:
    with pytest.raises(ModelError) as info:
        nerwin.load(run.out_dir)
    assert f"did you mean {run.out_dir / 'model'}" in str(info.value)


def test_pipeline_repr_names_model_and_threshold(located: LocationTagger, run: TrainedRun) -> None:
    assert repr(located) == f"LocationTagger({str(run.model)!r}, one model, threshold=0.50)"


def test_pipeline_rows_are_kept_across_calls(located: LocationTagger) -> None:
    located.tag(PARIS)
    frozen = located.frozen
    before = frozen.scorer.cached_rows
    assert before > 0
    located.tag("Paris museums are amazing in Paris.")  # no new (word, caps) pair
    assert located.frozen is frozen and frozen.scorer.cached_rows == before
    plain = LocationTagger(located.tagger, cache_mb=0)
    for text in (PARIS, "Rome and Berlin .", "FLOODS HIT NEW ORLEANS"):
        ours, theirs = located.tag(text), plain.tag(text)
        assert [t.probability for t in ours.tokens] == pytest.approx(
            [t.probability for t in theirs.tokens], abs=1e-5
        )
    assert plain.frozen.scorer is None  # 0 MB: the matrix path


def test_pipeline_threads_share_one_tagger(located: LocationTagger) -> None:
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"Flight {i} from Paris to Rome and Lima ." for i in range(40)]
    alone = [located.tag(t).to_dict() for t in texts]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda t: located.tag(t).to_dict(), texts)) == alone


def test_pipeline_api_predict_takes_a_frozen_tagger_and_an_idle_probe(
    located: LocationTagger,
) -> None:
    from nerwin import api

    texts = [PARIS, "Rome .", "Oslo ."]
    docs = api.raw_documents(texts)
    tagged = list(api.predict(located.frozen, docs, idle=lambda: True))
    assert [d.text for d in tagged] == texts
    assert all(d.last_in_batch for d in tagged)  # input always waiting: a batch per document
    ids = list(api.predict(located.tagger, api.raw_documents([("x", PARIS)], with_ids=True)))
    assert ids[0].id == "x" and [e.text for e in ids[0].entities()] == ["Paris"]


def test_pipeline_pipe_checks_its_arguments_when_called(located: LocationTagger) -> None:
    with pytest.raises(TypeError, match="got a str"):
        located.pipe("I flew to Paris.")  # not only once the first document is pulled
    with pytest.raises(TypeError, match="batch_size"):
        located.pipe([PARIS], batch_size=0)
