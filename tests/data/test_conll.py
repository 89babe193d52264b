"""Tests for nerwin.data.conll: reading edge cases, errors with file:line, writing, round trips."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerwin.data.conll import (
    Corpus,
    Sentence,
    location_labels,
    location_spans,
    parse_conll,
    read_conll,
    write_conll,
)
from nerwin.errors import ConfigError, DataError

FOUR = (
    "-DOCSTART- -X- -X- O\n"
    "\n"
    "EU NNP B-NP B-ORG\n"
    "rejects VBZ B-VP O\n"
    "German JJ B-NP B-MISC\n"
    "\n"
    "Peter NNP B-NP B-PER\n"
    "Blackburn NNP I-NP I-PER\n"
    "\n"
    "BRUSSELS NNP B-NP B-LOC\n"
)


def _write(tmp_path, content: str | bytes, name: str = "c.txt"):
    """Write content to tmp_path/name and return the path."""
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def test_conll_docstart_skipped_and_last_sentence_kept(tmp_path):
    corpus = read_conll(_write(tmp_path, FOUR))
    assert [s.words for s in corpus.sentences] == [
        ("EU", "rejects", "German"),
        ("Peter", "Blackburn"),
        ("BRUSSELS",),
    ]
    assert corpus.sentences[2].tags == ("B-LOC",)
    assert [s.line for s in corpus.sentences] == [3, 7, 10]
    assert corpus.sentences[0].columns[0] == ("EU", "NNP", "B-NP", "B-ORG")
    assert corpus.n_tokens == 6 and corpus.scheme == "IOB2"
    assert corpus.entity_types == ("LOC", "MISC", "ORG", "PER")


def test_conll_docstart_ends_a_sentence_without_blank_line(tmp_path):
    corpus = read_conll(_write(tmp_path, "a O\n-DOCSTART- O\nb O\n\n\n\nc O\n"))
    assert [s.words for s in corpus.sentences] == [("a",), ("b",), ("c",)]
    assert [s.line for s in corpus.sentences] == [1, 3, 7]


def test_conll_crlf_mixed_and_bom_read_like_lf(tmp_path):
    expected = read_conll(_write(tmp_path, FOUR, "lf.txt")).sentences
    crlf = FOUR.replace("\n", "\r\n")
    mixed = "".join(line + ("\r\n" if i % 2 else "\n") for i, line in enumerate(FOUR.split("\n")))
    for name, text in [("crlf.txt", crlf), ("mixed.txt", mixed), ("bom.txt", "\ufeff" + crlf)]:
        assert read_conll(_write(tmp_path, text, name)).sentences == expected, name


def test_conll_two_columns_and_tabs(tmp_path):
    corpus = read_conll(_write(tmp_path, "Paris\tB-LOC\nis   O\n\t \nRome I-LOC"))
    assert [s.tags for s in corpus.sentences] == [("B-LOC", "O"), ("I-LOC",)]
    assert corpus.scheme == "IOB2"


def test_conll_configurable_columns(tmp_path):
    path = _write(tmp_path, "B-LOC 1 Paris NNP\nO 2 is VBZ\n")
    sentence = read_conll(path, word_column=2, tag_column=0).sentences[0]
    assert sentence.words == ("Paris", "is") and sentence.tags == ("B-LOC", "O")
    assert read_conll(path, word_column=-2, tag_column=-4).sentences == (sentence,)


def test_conll_without_tags(tmp_path):
    path = _write(tmp_path, "Paris\nis\n\nnice\n")
    corpus = read_conll(path, require_tags=False)
    assert [s.words for s in corpus.sentences] == [("Paris", "is"), ("nice",)]
    assert all(s.tags == () for s in corpus.sentences)
    pos_file = _write(tmp_path, "Paris NNP\n", "pos.txt")
    pos = read_conll(pos_file, tag_column=None, require_tags=False)
    assert pos.sentences[0].tags == () and pos.sentences[0].columns == (("Paris", "NNP"),)
    with pytest.raises(DataError, match="has no tag column"):
        location_labels(corpus, ["LOC"])


def test_conll_scheme_given_and_detected(tmp_path):
    iob1 = _write(tmp_path, "a I-LOC\nb B-LOC\n\nc I-PER\n")
    assert read_conll(iob1).scheme == "IOB1"
    assert read_conll(iob1, scheme="iob2").scheme == "IOB2"
    assert read_conll(_write(tmp_path, "a S-LOC\n", "s.txt")).scheme == "IOBES"
    with pytest.raises(ConfigError, match="unknown tag scheme"):
        read_conll(iob1, scheme="IOB9")


ERRORS = [
    ("a B-LOC\nb O\nc\n", 3, "has 1 column(s) but the first token line has 2"),
    ("a B-LOC\nb O x\n", 2, "has 3 column(s)"),
    ("a B-LOC\n\nb B-\n", 3, "empty entity type"),
    ("a O\nb X-LOC\n", 2, "'X-LOC' fits no scheme"),
    ("a O\n\n\nb LOC\n", 4, "'LOC' fits no scheme"),
    ("word\n", 1, "no tag column"),
    ("a O\nb O\n\xe9t\xe9 O\n".encode("latin-1"), 3, "not valid UTF-8"),
    (b"a O\r\nb\x00 O\r\n", 2, "NUL byte"),
]


@pytest.mark.parametrize("content,line,message", ERRORS)
def test_conll_errors_name_file_and_line(tmp_path, content, line, message):
    path = _write(tmp_path, content)
    with pytest.raises(DataError) as info:
        read_conll(path)
    assert f"{path}:{line}:" in str(info.value)
    assert message in str(info.value)
    assert (info.value.path, info.value.line) == (str(path), line)


def test_conll_tag_outside_given_scheme_names_line(tmp_path):
    path = _write(tmp_path, "a B-LOC\nb E-LOC\n")
    with pytest.raises(DataError, match=r":2: tag 'E-LOC' is not part of the IOB2 scheme"):
        read_conll(path, scheme="IOB2")


def test_conll_bad_word_column_names_line(tmp_path):
    path = _write(tmp_path, "\na O\n")
    with pytest.raises(DataError, match=rf"{path}:2: word_column=5"):
        read_conll(path, word_column=5)


@pytest.mark.parametrize("content", ["", "\n\n", "-DOCSTART- -X- O\n\n"])
def test_conll_empty_corpus_names_file(tmp_path, content):
    path = _write(tmp_path, content)
    with pytest.raises(DataError, match="no sentences found") as info:
        read_conll(path)
    assert str(info.value).startswith(f"{path}: ")


def test_conll_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="file not found") as info:
        read_conll(tmp_path / "nope.txt")
    assert str(tmp_path / "nope.txt") in str(info.value)
    with pytest.raises(DataError, match="is a directory"):
        read_conll(tmp_path)


def test_conll_parse_streams_str_and_bytes_lines():
    lines = ["\ufeffa B-LOC\r\n", "b O\n", "\n", "c O"]
    sentences = list(parse_conll(lines, "<stdin>"))
    assert [s.words for s in sentences] == [("a", "b"), ("c",)]
    as_bytes = [line.encode("utf-8") for line in lines]
    assert list(parse_conll(as_bytes, "<stdin>")) == sentences
    with pytest.raises(DataError, match="<stdin>:2: is not valid UTF-8"):
        list(parse_conll([b"a O\n", b"\xff O\n"], "<stdin>"))


def test_conll_write_appends_predicted_column():
    sentences = [
        Sentence(
            ("EU", "rejects"), ("B-ORG", "O"), (("EU", "NNP", "B-ORG"), ("rejects", "VBZ", "O")), 1
        ),
        Sentence(("Paris",), (), (), 5),
    ]
    out = io.StringIO()
    write_conll(sentences, [["O", "O"], ["B-LOC"]], out)
    assert out.getvalue() == "EU NNP B-ORG O\nrejects VBZ O O\n\nParis B-LOC\n\n"
    with pytest.raises(ValueError, match="1 predicted tags"):
        write_conll(sentences[:1], [["O"]], io.StringIO())


def test_conll_location_labels(tmp_path):
    corpus = read_conll(_write(tmp_path, FOUR + "Rome NNP I-NP B-LOC\nx y z O\n\nNice x y I-LOC\n"))
    labels = location_labels(corpus, ["LOC"])
    assert labels.dtype == np.int8
    assert labels.tolist() == [0, 0, 0, 0, 0, 1, 1, 0, 1]
    assert location_spans(corpus, ["LOC"]).tolist() == [[5, 6], [6, 7], [8, 9]]
    assert location_labels(corpus, ["PER", "ORG"]).tolist() == [1, 0, 0, 1, 1, 0, 0, 0, 0]


WORD = st.text(st.characters(blacklist_categories=("C", "Z")), min_size=1, max_size=6).filter(
    lambda w: w != "-DOCSTART-"
)
TAG = st.sampled_from(["O", "B-LOC", "I-LOC", "B-PER", "I-PER"])


@st.composite
def _sentences(draw):
    """Random sentences with a fixed number of extra columns and a tag to append."""
    n_extra = draw(st.integers(0, 2))
    rows = st.tuples(WORD, st.lists(WORD, min_size=n_extra, max_size=n_extra), TAG)
    sentences = draw(st.lists(st.lists(rows, min_size=1, max_size=6), min_size=1, max_size=5))
    return [(tuple((w, *extra) for w, extra, _ in s), tuple(t for *_, t in s)) for s in sentences]


@settings(max_examples=60, deadline=None)
@given(_sentences())
def test_conll_write_then_read_round_trip(tmp_path_factory, drawn):
    sentences = [Sentence(tuple(r[0] for r in rows), (), rows, 0) for rows, _ in drawn]
    out = io.StringIO()
    write_conll(sentences, [tags for _, tags in drawn], out)
    path = tmp_path_factory.mktemp("rt") / "c.txt"
    path.write_text(out.getvalue(), encoding="utf-8", newline="")
    corpus = read_conll(path)
    assert len(corpus.sentences) == len(drawn)
    for sentence, (rows, tags) in zip(corpus.sentences, drawn):
        assert sentence.words == tuple(r[0] for r in rows)
        assert sentence.tags == tags
        assert sentence.columns == tuple((*r, t) for r, t in zip(rows, tags))


@pytest.mark.shared_data
def test_conll_reads_conll2003_train(shared_conll):
    start = time.perf_counter()
    corpus = read_conll(shared_conll / "train.txt")
    elapsed = time.perf_counter() - start
    assert corpus.n_tokens == 203_621 and corpus.scheme == "IOB2"
    assert isinstance(corpus, Corpus) and len(corpus.sentences[0].columns[0]) == 4
    assert elapsed < 5.0, f"reading train took {elapsed:.2f}s"


def test_conll_endless_device_is_refused_at_once() -> None:
    import resource
    import time

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(DataError, match="/dev/zero:1: contains a NUL byte"):
        read_conll("/dev/zero")
    assert time.perf_counter() - started < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB
