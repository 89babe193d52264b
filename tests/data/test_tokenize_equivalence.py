"""The fast tokenizer gives exactly the sentences, tokens and offsets of the frozen reference
(_tokenize_reference.py, the tokenizer before its speed rewrite) on any text."""

from __future__ import annotations

import random
import re
from pathlib import Path
from unittest import mock

import pytest
from _tokenize_reference import tokenize as reference_tokenize
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nerwin.data import tokenize as module
from nerwin.data.tokenize import Token, iter_sentences, tokenize

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PIECES = [
    *("Paris", "the", "The", "He", "However", "One", "ǅ", "İ", "ß", "é", "e\u0301", "_", "3"),
    *("\u0915\u093f", "東京", "Москва", "🙂", "\u200d", "\ufeff", "\x00", "\u0301"),
    *(".", ",", ";", ":", "!", "?", "…", "。", "！", "$", "%", "&", "@", "/", "+", "-", "--"),
    *("---", "...", "(", ")", "[", "{", "«", "»", '"', "“", "”", "'", "’", "‘", "¿", "¡"),
    *("U.S.", "U.S", "e.g.", "a.m.", "Mr.", "Mr", "ST.", "St.", "J.", "j.", "Inc.", "vs."),
    *("Washington.", "2.", "10.", ".5", "3.5", "1,000", "12:30", "1996-08-22", "+44", "C$"),
    *("Kong-based", "AT&T", "O'Brien", "rock'n'roll", "'s", "'S", "'re", "’ll", "n't", "N'T"),
    *("don't", "don", "'t", "n", "N", "can't", "Joneses'", "www.x.org", "http://a.b/c.", "www."),
    *("https://x.y/z?a=1,", "a@b.co", "al@ex.co.uk!", "a@", "Then", "There."),
    *(" ", " ", " ", "  ", "\t", "\n", "\r\n", "\n\n", "\n \n", "\u2029", "\u00a0", "\u3000"),
    *("\x1c", "\x85", "\u2028", "\u202f", "\v", "\f"),
]
texts = st.one_of(
    st.text(),
    st.lists(st.sampled_from(PIECES)).map("".join),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=3))).map("".join),
)


def spans(sentences: list[list[Token]]) -> list[list[tuple[str, int, int]]]:
    """(text, start, end) of every token, sentence by sentence."""
    return [[(tok.text, tok.start, tok.end) for tok in sentence] for sentence in sentences]


def assert_same(text: str) -> None:
    """tokenize and iter_sentences give the reference's sentences, tokens and offsets, as Tokens
    equal (and hashing equal) to ones made by Token(text, start, end)."""
    got = tokenize(text)
    expected = spans(reference_tokenize(text))
    assert spans(got) == expected
    assert spans(list(iter_sentences(text))) == expected
    made = [[Token(*span) for span in sentence] for sentence in expected]
    assert got == made
    assert [list(map(hash, s)) for s in got] == [list(map(hash, s)) for s in made]
    assert all(type(tok) is Token for sentence in got for tok in sentence)


@SETTINGS
@given(texts)
@example("Mr. Smith went to Washington. He left.  The end")
@example("It ended. \u201cWhy?\u201d he asked. Then't")
@example(" don't\tDON'T  n't ")
def test_tokenize_equivalence_any_text(text: str) -> None:
    assert_same(text)


@SETTINGS
@given(texts, st.integers(1, 12))
@example("Acme Corp.   The firm. 3 left", 5)
@example("a" * 20 + " b. C", 3)
def test_tokenize_equivalence_any_text_small_windows(text: str, window: int) -> None:
    """Texts over _WINDOW characters are split into chunks a window at a time, cut at a space."""
    with mock.patch.object(module, "_WINDOW", window):
        assert_same(text)


def test_tokenize_equivalence_seeded_long_texts() -> None:
    rng = random.Random(20250101)
    for size in (70_000, 140_000):  # over _WINDOW: cut at a space
        for pieces in (PIECES, [p for p in PIECES if p.isprintable() and "  " not in p]):
            text = "".join(rng.choice(pieces) for _ in range(size // 3))
            assert_same(text)


def conll_sentences(path: Path) -> list[list[str]]:
    """The words of each sentence of a CoNLL file, a [] for each -DOCSTART-."""
    sentences: list[list[str]] = []
    words: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        columns = line.split()
        if not columns or columns[0] == "-DOCSTART-":
            if words:
                sentences.append(words)
                words = []
            if columns:
                sentences.append([])
        else:
            words.append(columns[0])
    return [*sentences, words] if words else sentences


_DETOKENIZE = re.compile(r" (?=[,.;:!?)%]|'s |n't )|(?<=[($]) ")


@pytest.mark.shared_data
def test_tokenize_equivalence_conll2003_train(shared_conll: Path) -> None:
    """CoNLL-2003 train as lines (one document each, as `nerwin predict` reads them), as one
    text, and detokenized (Paris, don't) with blank lines between its documents."""
    sentences = conll_sentences(shared_conll / "train.txt")
    lines = [" ".join(words) for words in sentences]
    assert sum(map(len, sentences)) == 203_621
    assert [spans(tokenize(line)) for line in lines] == [
        spans(reference_tokenize(line)) for line in lines
    ]
    detokenized = "\n".join(_DETOKENIZE.sub("", line) or "\n" for line in lines)
    for text in (" ".join(lines), detokenized):
        assert spans(tokenize(text)) == spans(reference_tokenize(text))
