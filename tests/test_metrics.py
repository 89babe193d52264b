"""Tests for nerwin.metrics: hand-computed location scores, seqeval agreement, conlleval report."""

from __future__ import annotations

import numpy as np
import pytest
from seqeval.metrics import f1_score, precision_score, recall_score

from nerwin.data.conll import Corpus, Sentence, location_labels, read_conll
from nerwin.data.schemes import spans_to_iob2, tags_to_spans
from nerwin.metrics import PRF, LocationEvaluator, Scores, conlleval_report


def _corpus(*tag_lines: str, scheme: str = "IOB2") -> Corpus:
    """A corpus with one sentence per space-separated tag line."""
    sentences = []
    for number, line in enumerate(tag_lines):
        tags = tuple(line.split())
        words = tuple(f"w{i}" for i in range(len(tags)))
        sentences.append(Sentence(words, tags, tuple(zip(words, tags)), 1 + 10 * number))
    return Corpus("mem", tuple(sentences), scheme)


def _score(corpus: Corpus, predicted: str, types=("LOC",)) -> Scores:
    """Scores of a prediction written as a string of 0/1 characters (spaces ignored)."""
    labels = np.array([int(c) for c in predicted.replace(" ", "")], dtype=np.int8)
    return LocationEvaluator(corpus, types).score(labels)


def _counts(prf: PRF) -> tuple[int, int, int]:
    return prf.correct, prf.predicted, prf.gold


IOB2 = _corpus("B-LOC I-LOC O B-PER B-LOC", "O B-LOC")  # gold LOC: [0,2) [4,5) [6,7)


@pytest.mark.parametrize(
    "predicted,entity,token",
    [
        ("11001 01", (3, 3, 3), (4, 4, 4)),
        ("11100 11", (0, 2, 3), (3, 5, 4)),
        ("00001 10", (1, 2, 3), (1, 2, 4)),  # a run never crosses a sentence boundary
        ("10000 00", (0, 1, 3), (1, 1, 4)),
    ],
)
def test_metrics_iob2_hand_computed(predicted, entity, token):
    scores = _score(IOB2, predicted)
    assert _counts(scores.entity) == entity
    assert _counts(scores.token) == token
    assert scores.n_tokens == 7 and scores.n_sentences == 2


def test_metrics_iob1_hand_computed():
    corpus = _corpus("I-LOC I-LOC B-LOC O I-ORG I-LOC", scheme="IOB1")  # [0,2) [2,3) [5,6)
    scores = _score(corpus, "110001")
    assert _counts(scores.entity) == (2, 2, 3)
    assert scores.entity.precision == 1.0
    assert scores.entity.recall == pytest.approx(2 / 3)
    assert scores.entity.f1 == pytest.approx(0.8)
    assert _counts(_score(corpus, "111001").entity) == (1, 2, 3)


def test_metrics_i_after_o_is_an_entity():
    corpus = _corpus("O I-LOC I-LOC O I-LOC")
    assert _counts(_score(corpus, "01101").entity) == (2, 2, 2)


def test_metrics_adjacent_gold_entities_are_two():
    corpus = _corpus("B-LOC B-LOC O")
    assert _counts(_score(corpus, "110").entity) == (0, 1, 2)
    assert _counts(_score(corpus, "100").entity) == (1, 1, 2)
    assert _counts(_score(corpus, "110").token) == (2, 2, 2)


def test_metrics_several_location_types():
    corpus = _corpus("B-LOC B-GPE O B-ORG")
    scores = _score(corpus, "1100", types=("LOC", "GPE"))
    assert _counts(scores.entity) == (0, 1, 2)
    assert _counts(_score(corpus, "1000", types=("GPE",)).entity) == (0, 1, 1)


def test_metrics_no_predictions():
    scores = _score(IOB2, "00000 00")
    assert _counts(scores.entity) == (0, 0, 3)
    assert (scores.entity.precision, scores.entity.recall, scores.entity.f1) == (0.0, 0.0, 0.0)
    assert scores.accuracy == pytest.approx(3 / 7)


def test_metrics_no_gold_entities():
    corpus = _corpus("O B-PER O", "O")
    scores = _score(corpus, "010 1")
    assert _counts(scores.entity) == (0, 2, 0)
    assert (scores.entity.precision, scores.entity.recall, scores.entity.f1) == (0.0, 0.0, 0.0)
    assert _counts(_score(corpus, "000 0").entity) == (0, 0, 0)
    assert _score(corpus, "000 0").accuracy == 1.0


def test_metrics_rejects_bad_predictions():
    evaluator = LocationEvaluator(IOB2, ["LOC"])
    with pytest.raises(ValueError, match="shape"):
        evaluator.score(np.zeros(6))
    with pytest.raises(ValueError, match="only 0 and 1"):
        evaluator.score(np.full(7, 0.5))
    assert evaluator.score(np.ones(7, dtype=bool)).entity.predicted == 2


def test_metrics_prf_bounds_and_dict():
    prf = PRF(2, 4, 5)
    assert prf.to_dict() == {
        "precision": 0.5,
        "recall": 0.4,
        "f1": pytest.approx(4 / 9),
        "gold": 5,
        "predicted": 4,
        "correct": 2,
    }
    with pytest.raises(ValueError, match="inconsistent"):
        PRF(3, 2, 5)
    scores = Scores(prf, PRF(1, 1, 1), 10, 2)
    assert set(scores.to_dict()) == {"entity", "token"}


def test_metrics_conlleval_report_format():
    scores = Scores(PRF(1650, 1801, 1837), PRF(2500, 2800, 2765), 51362, 3250)
    assert conlleval_report(scores) == (
        "processed 51362 tokens with 1837 phrases; found: 1801 phrases; correct: 1650.\n"
        "accuracy:  98.90%; precision:  91.62%; recall:  89.82%; FB1:  90.71\n"
        "              LOC: precision:  91.62%; recall:  89.82%; FB1:  90.71  1801"
    )


def _random_corpus(rng: np.random.Generator) -> Corpus:
    """A few sentences of random (often ill-formed) IOB2 tags over LOC, GPE and PER."""
    vocab = ["O", "O", "O", "B-LOC", "I-LOC", "B-GPE", "I-GPE", "B-PER", "I-PER"]
    lines = [
        " ".join(rng.choice(vocab, size=int(rng.integers(1, 12))))
        for _ in range(int(rng.integers(1, 6)))
    ]
    return _corpus(*lines)


def _seqeval_inputs(corpus: Corpus, predicted: np.ndarray, types) -> tuple[list, list]:
    """Gold as LOC-only IOB2 and binary predictions as IOB2, one list per sentence."""
    gold, pred, offset = [], [], 0
    for sentence in corpus.sentences:
        n = len(sentence)
        spans = [s for s in tags_to_spans(sentence.tags, corpus.scheme) if s[2] in types]
        gold.append(spans_to_iob2([s[:2] for s in spans], n))
        runs = np.flatnonzero(np.diff(np.concatenate(([0], predicted[offset : offset + n], [0]))))
        pred.append(spans_to_iob2(runs.reshape(-1, 2), n))
        offset += n
    return gold, pred


def test_metrics_match_seqeval_on_random_cases(rng):
    types = ("LOC", "GPE")
    for _ in range(300):
        corpus = _random_corpus(rng)
        predicted = (rng.random(corpus.n_tokens) < rng.random()).astype(np.int8)
        scores = LocationEvaluator(corpus, types).score(predicted)
        gold, pred = _seqeval_inputs(corpus, predicted, types)
        precision = precision_score(gold, pred, zero_division=0)
        assert scores.entity.precision == pytest.approx(precision)
        assert scores.entity.recall == pytest.approx(recall_score(gold, pred, zero_division=0))
        assert scores.entity.f1 == pytest.approx(f1_score(gold, pred, zero_division=0))


def test_metrics_perfect_predictions_from_labels(rng):
    for _ in range(50):
        corpus = _random_corpus(rng)
        evaluator = LocationEvaluator(corpus, ["LOC"])
        scores = evaluator.score(location_labels(corpus, ["LOC"]))
        assert scores.token.f1 == (1.0 if scores.token.gold else 0.0)
        assert scores.entity.correct <= scores.entity.gold


@pytest.mark.shared_data
def test_metrics_conll2003_dev_perfect_predictions(shared_conll):
    corpus = read_conll(shared_conll / "dev.txt")
    scores = LocationEvaluator(corpus, ["LOC"]).score(location_labels(corpus, ["LOC"]))
    assert scores.entity.gold == 1837
    assert scores.entity.f1 == 1.0 and scores.token.f1 == 1.0
    assert scores.n_tokens == 51362
    assert conlleval_report(scores).startswith("processed 51362 tokens with 1837 phrases")
