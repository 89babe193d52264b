"""Tests for nerwin.data.schemes: scheme names, detection, spans and binary runs."""

from __future__ import annotations

import numpy as np
import pytest
from seqeval.metrics.sequence_labeling import get_entities

from nerwin.data.schemes import (
    SCHEMES,
    binary_to_spans,
    detect_scheme,
    normalise_scheme,
    spans_to_binary,
    spans_to_iob2,
    spans_to_tags,
    tags_to_spans,
    validate_tag,
)
from nerwin.errors import ConfigError

# Adjacent same-type entities, a one-token entity and adjacent entities of different types.
SPANS = [(0, 2, "LOC"), (2, 3, "LOC"), (4, 5, "PER"), (5, 7, "LOC")]
ENCODED = {
    "IOB1": "I-LOC I-LOC B-LOC O I-PER I-LOC I-LOC",
    "IOB2": "B-LOC I-LOC B-LOC O B-PER B-LOC I-LOC",
    "IOBES": "B-LOC E-LOC S-LOC O S-PER B-LOC E-LOC",
    "BILOU": "B-LOC L-LOC U-LOC O U-PER B-LOC L-LOC",
}
# IO cannot separate adjacent same-type entities, so it gets its own fixture.
IO_SPANS = [(0, 2, "LOC"), (3, 4, "PER"), (4, 6, "LOC")]
IO_TAGS = ["I-LOC", "I-LOC", "O", "I-PER", "I-LOC", "I-LOC"]


def _seqeval_spans(tags: list[str]) -> list[tuple[int, int, str]]:
    """Spans from seqeval's conlleval port, made half-open."""
    return [(start, end + 1, kind) for kind, start, end in get_entities(list(tags))]


def _random_spans(rng: np.random.Generator, n: int, types=("LOC", "PER")) -> list[tuple]:
    """Random non-overlapping spans over n tokens, often adjacent and often one token long."""
    spans, i = [], int(rng.integers(0, 3))
    while i < n:
        end = min(n, i + int(rng.integers(1, 4)))
        spans.append((i, end, str(rng.choice(types))))
        i = end + int(rng.integers(0, 3))
    return spans


@pytest.mark.parametrize("scheme", sorted(ENCODED))
def test_schemes_same_entities_give_same_spans(scheme):
    assert tags_to_spans(ENCODED[scheme].split(), scheme) == SPANS


def test_schemes_io_spans():
    assert tags_to_spans(IO_TAGS, "IO") == IO_SPANS


@pytest.mark.parametrize(
    "scheme,expected", [("IOB1", "IOB1"), ("IOB2", "IOB2"), ("IOBES", "IOBES"), ("BILOU", "IOBES")]
)
def test_schemes_detect_each_scheme(scheme, expected):
    assert detect_scheme([ENCODED[scheme].split(), ["O"]]) == expected


def test_schemes_detect_io_empty_and_mixed():
    assert detect_scheme([IO_TAGS]) == "IO"
    assert detect_scheme([["O", "O"], []]) == "IOB2"
    assert detect_scheme([]) == "IOB2"
    # B- after O and I- after O: IOB2 read leniently, as conlleval does.
    assert detect_scheme([["B-LOC", "O", "I-PER"]]) == "IOB2"
    # An I- at the start of a sentence starts an entity (IOB1); B- between same types only.
    assert detect_scheme([["I-LOC", "B-LOC"], ["O", "I-PER"]]) == "IOB1"
    # A B- after another type's entity starts it: IOB2.
    assert detect_scheme([["I-LOC", "B-PER"]]) == "IOB2"


def test_schemes_i_after_o_starts_entity():
    assert tags_to_spans(["O", "I-LOC", "I-LOC", "O"], "IOB2") == [(1, 3, "LOC")]
    assert tags_to_spans(["I-LOC"], "IOB2") == [(0, 1, "LOC")]
    assert tags_to_spans(["B-PER", "I-LOC"], "IOB2") == [(0, 1, "PER"), (1, 2, "LOC")]


def test_schemes_empty_and_entity_free():
    assert tags_to_spans([], "IOB2") == []
    assert tags_to_spans(["O", "O"], "IOB1") == []


def test_schemes_tag_outside_scheme_raises():
    with pytest.raises(ValueError, match="not part of the IOB2 scheme"):
        tags_to_spans(["S-LOC"], "IOB2")
    with pytest.raises(ValueError, match="not part of the IO scheme"):
        tags_to_spans(["B-LOC"], "IO")
    with pytest.raises(ValueError, match="fits no scheme"):
        tags_to_spans(["LOC"], "IOB2")


@pytest.mark.parametrize("seed", range(20))
def test_schemes_match_seqeval_on_random_tags(seed):
    rng = np.random.default_rng(seed)
    vocab = ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-PER", "I-PER", "E-PER", "S-PER"]
    for _ in range(50):
        tags = list(rng.choice(vocab, size=int(rng.integers(0, 12))))
        assert tags_to_spans(tags, "IOBES") == _seqeval_spans(tags), tags


@pytest.mark.parametrize("scheme", SCHEMES)
def test_schemes_encode_decode_round_trip(rng, scheme):
    for _ in range(200):
        n = int(rng.integers(0, 15))
        spans = _random_spans(rng, n)
        if scheme == "IO":
            spans = [
                s
                for i, s in enumerate(spans)
                if i == 0 or not (spans[i - 1][1] == s[0] and spans[i - 1][2] == s[2])
            ]
        assert tags_to_spans(spans_to_tags(spans, n, scheme), scheme) == spans


def test_schemes_spans_to_tags_fixtures():
    for scheme in ("IOB1", "IOB2", "IOBES"):
        assert spans_to_tags(SPANS, 7, scheme) == ENCODED[scheme].split()
    assert spans_to_tags(IO_SPANS, 6, "IO") == IO_TAGS
    with pytest.raises(ValueError, match="IO cannot encode"):
        spans_to_tags(SPANS, 7, "IO")
    with pytest.raises(ValueError, match="overlaps"):
        spans_to_tags([(0, 2), (1, 3)], 4)


def test_schemes_spans_to_iob2_binary_runs():
    assert spans_to_iob2(np.array([[0, 2], [2, 3]]), 4) == ["B-LOC", "I-LOC", "B-LOC", "O"]
    assert spans_to_iob2([], 2) == ["O", "O"]


def _runs_by_loop(labels: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of 1 found the slow way."""
    runs, start = [], None
    for i, value in enumerate(labels):
        if value and start is None:
            start = i
        if not value and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(labels)))
    return runs


def test_schemes_binary_to_spans_matches_loop(rng):
    for _ in range(300):
        labels = (rng.random(int(rng.integers(0, 30))) < rng.random()).astype(np.int8)
        spans = binary_to_spans(labels)
        assert spans.shape[1] == 2 and spans.dtype == np.int64
        assert [tuple(s) for s in spans.tolist()] == _runs_by_loop(labels)
        np.testing.assert_array_equal(spans_to_binary(spans, len(labels)), labels)


def test_schemes_binary_to_spans_edges():
    assert binary_to_spans(np.array([], dtype=np.int8)).shape == (0, 2)
    assert binary_to_spans(np.ones(3, dtype=np.int8)).tolist() == [[0, 3]]
    with pytest.raises(ValueError, match="1-D"):
        binary_to_spans(np.zeros((2, 2)))


@pytest.mark.parametrize(
    "name,expected",
    [
        ("iob2", "IOB2"),
        ("IOB1", "IOB1"),
        ("bioes", "IOBES"),
        ("BILOU", "IOBES"),
        ("io", "IO"),
        ("BIO", "IOB2"),
    ],
)
def test_schemes_normalise_aliases(name, expected):
    assert normalise_scheme(name) == expected


def test_schemes_normalise_unknown_raises_config_error():
    with pytest.raises(ConfigError, match="unknown tag scheme 'IOB3'"):
        normalise_scheme("IOB3")


@pytest.mark.parametrize(
    "tag,valid",
    [
        ("O", True),
        ("B-LOC", True),
        ("I-LOC", True),
        ("E-LOC", True),
        ("S-LOC", True),
        ("L-LOC", True),
        ("U-LOC", True),
        ("B-GPE-LOC", True),
        ("X-LOC", False),
        ("LOC", False),
        ("B-", False),
        ("", False),
        ("o", False),
        ("BLOC", False),
        ("-LOC", False),
    ],
)
def test_schemes_validate_tag(tag, valid):
    assert validate_tag(tag) is valid
