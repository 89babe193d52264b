"""Tests for nerwin.data.tokenize: CoNLL-style tokens, exact offsets, sentence splitting, speed."""

from __future__ import annotations

import itertools
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerwin.data.tokenize import Token, iter_sentences, tokenize


def words(text: str) -> list[str]:
    """The token texts of text, sentences flattened."""
    return [tok.text for sentence in tokenize(text) for tok in sentence]


def sentences(text: str) -> list[list[str]]:
    """The token texts of text, sentence by sentence."""
    return [[tok.text for tok in sentence] for sentence in tokenize(text)]


def assert_offsets(text: str) -> None:
    """Every token slices back to its text, tokens increase without overlap, none holds a space."""
    toks = [tok for sentence in tokenize(text) for tok in sentence]
    assert all(sentence for sentence in tokenize(text))
    for tok in toks:
        assert tok.text and text[tok.start : tok.end] == tok.text
        assert not any(ch.isspace() for ch in tok.text)
    assert all(a.end <= b.start for a, b in itertools.pairwise(toks))
    assert "".join(tok.text for tok in toks) == "".join(text.split())


@pytest.mark.parametrize(
    ("text", "expected"),  # expected: the tokens joined by spaces
    [
        ("Hello, world!", "Hello , world !"),
        ("(in brackets) [and] {braces}; yes: no", "( in brackets ) [ and ] { braces } ; yes : no"),
        ('He said "go" and “stop”.', 'He said " go " and “ stop ” .'),
        ("The U.S. and U.K. agreed", "The U.S. and U.K. agreed"),
        ("Mr. Li, Dr. Roe and St. Ives", "Mr. Li , Dr. Roe and St. Ives"),
        ("Acme Inc. and Bolt Corp. met on Jan. 5", "Acme Inc. and Bolt Corp. met on Jan. 5"),
        ("J. Smith and George W. Bush", "J. Smith and George W. Bush"),
        ("e.g. at 5 p.m. today", "e.g. at 5 p.m. today"),
        ("1,000 men, 3.5 km, 1996-08-22 at 12:30", "1,000 men , 3.5 km , 1996-08-22 at 12:30"),
        ("It cost $5 or 10%.", "It cost $ 5 or 10 % ."),
        ("a Hong Kong-based firm", "a Hong Kong-based firm"),
        ("Paris's mayor", "Paris 's mayor"),
        ("don't, can't, I'm, we'll, they've", "do n't , ca n't , I 'm , we 'll , they 've"),
        ("DON'T and isn’t", "DO N'T and is n’t"),
        ("O'Brien and rock'n'roll", "O'Brien and rock'n'roll"),
        ("the Joneses' house", "the Joneses ' house"),
        ("see https://example.com/a?b=1.", "see https://example.com/a?b=1 ."),
        ("(www.nerwin.org) or al@ex.co.uk!", "( www.nerwin.org ) or al@ex.co.uk !"),
        ("AT&T and S&P", "AT&T and S&P"),
        ("wait... no -- yes", "wait ... no -- yes"),
        ("São Paulo, Zürich, Москва, 東京", "São Paulo , Zürich , Москва , 東京"),
        ("Sa\u0303o Paulo", "Sa\u0303o Paulo"),
        ("LONDON 1996-08-30", "LONDON 1996-08-30"),
        ("ST. LOUIS", "ST. LOUIS"),
    ],
)
def test_tokenize_examples(text: str, expected: str) -> None:
    assert words(text) == expected.split(" ")
    assert_offsets(text)


@pytest.mark.parametrize(
    ("text", "expected"),  # expected: sentences joined by " | ", tokens by spaces
    [
        ("Mr. Smith went to Washington. He left.", "Mr. Smith went to Washington . | He left ."),
        ("The U.S. economy grew.", "The U.S. economy grew ."),
        ("Is it? Yes! 3 left.", "Is it ? | Yes ! | 3 left ."),
        ('He said "Go." Then he went.', 'He said " Go . " | Then he went .'),
        ("(He left.) She stayed.", "( He left . ) | She stayed ."),
        ('It ended. "Why?" he asked.', 'It ended . | " Why ? " he asked .'),
        ("Shares of Acme Corp. The firm said", "Shares of Acme Corp. | The firm said"),
        (
            "Born in St. Petersburg in Oct. 1990 to J. Smith.",
            "Born in St. Petersburg in Oct. 1990 to J. Smith .",
        ),
        (
            "it rose 3.5 percent. in lower case it goes on",
            "it rose 3.5 percent . in lower case it goes on",
        ),
        ("Москва. Берлин.", "Москва . | Берлин ."),
    ],
)
def test_tokenize_splits_sentences(text: str, expected: str) -> None:
    assert sentences(text) == [s.split(" ") for s in expected.split(" | ")]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_tokenize_blank_line_always_splits(newline: str) -> None:
    text = f"LONDON 1996-08-30{newline} {newline}West Indian all-rounder{newline}took four"
    assert sentences(text) == [
        ["LONDON", "1996-08-30"],
        ["West", "Indian", "all-rounder", "took", "four"],
    ]


@pytest.mark.parametrize("text", ["", " ", "\n\n\t\r\n", "\u00a0\u2029 "])
def test_tokenize_empty_or_whitespace_gives_nothing(text: str) -> None:
    assert tokenize(text) == []


def test_tokenize_offsets_are_absolute() -> None:
    text = "First one.\n\n  Second para here, with Paris's mayor."
    toks = tokenize(text)[-1]
    assert toks[0] == Token("Second", 14, 20)
    assert [text[t.start : t.end] for t in toks] == [t.text for t in toks]


def test_tokenize_token_is_frozen() -> None:
    tok = Token("a", 0, 1)
    with pytest.raises(AttributeError):
        tok.text = "b"  # type: ignore[misc]


def test_tokenize_tokens_are_ordinary_tokens() -> None:
    """Tokens made without Token.__init__ are frozen, compare, hash and print as made ones."""
    tokens = [tok for sentence in tokenize("Paris, (Rome) Mr. Li's") for tok in sentence]
    made = [Token(t, s, e) for t, s, e in [("Paris", 0, 5), (",", 5, 6), ("(", 7, 8)]]
    assert tokens[:3] == made and list(map(hash, tokens[:3])) == list(map(hash, made))
    assert repr(tokens[0]) == "Token(text='Paris', start=0, end=5)"
    with pytest.raises(AttributeError):
        tokens[0].text = "b"  # type: ignore[misc]


def test_tokenize_long_paragraph_is_split_at_spaces() -> None:
    """Paragraphs over 65,536 characters are read a window at a time, cut at a space."""
    unit = "Mr. Smith went to Washington. He left (again).  "
    text = unit * (200_000 // len(unit))
    got = tokenize(text)
    assert len(got) == 2 * (200_000 // len(unit))
    assert [tok.text for tok in got[-2] + got[-1]] == words(unit)
    assert_offsets(text)


def test_tokenize_iter_sentences_matches_tokenize() -> None:
    text = "Mr. Smith went to Washington. He left.\n\nThe U.S. economy grew. Prices fell!"
    stream = iter_sentences(text)
    assert next(stream) == tokenize(text)[0]
    assert [tokenize(text)[0], *stream] == tokenize(text)


_PIECES = [
    "Paris",
    "São",
    "Zürich",
    "Москва",
    "東京",
    "U.S.",
    "Mr.",
    "J.",
    "don't",
    "Paris's",
    "1,000",
    "3.5",
    "1996-08-22",
    "$",
    "5",
    "%",
    "Kong-based",
    "http://a.org/x.",
    "a@b.com",
    ".",
    ",",
    "!",
    "?",
    "...",
    "--",
    "(",
    ")",
    '"',
    "“",
    "”",
    "'",
    "’",
    "é",
    "\u0301",
    "\u200d",
    "🙂",
    "_",
    "-",
    " ",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\n\n",
    "\u00a0",
    "",
]


def test_tokenize_offsets_slice_back_on_seeded_random_texts() -> None:
    rng = random.Random(20240601)
    for _ in range(500):
        text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 60)))
        assert_offsets(text)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_tokenize_offsets_slice_back_on_any_text(text: str) -> None:
    assert_offsets(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_PIECES)).map("".join))
def test_tokenize_retokenizing_space_joined_tokens_is_stable(text: str) -> None:
    flat = words(text)
    assert words(" ".join(flat)) == flat


_PATHOLOGICAL = {  # unit strings repeated to a given size; each defeats a different alternative
    "letters": "a",
    "a-dot": "a.",
    "a-plus": "a+",
    "quotes": "'",
    "digit-comma": "1,a",
    "spaces": " ",
    "email-tail": "a@",
    "mixed": "Mr. A. b'c d@e.f http://g.h/i. 1,2 -- ",
}


def _assert_linear(name: str, size: int, seconds: float) -> None:
    """Tokenizing size characters of a pathological text takes less than seconds."""
    unit = _PATHOLOGICAL[name]
    text = unit * (size // len(unit))
    start = time.perf_counter()
    toks = [tok for sentence in tokenize(text) for tok in sentence]
    assert time.perf_counter() - start < seconds  # quadratic backtracking would take hours
    assert "".join(tok.text for tok in toks) == "".join(text.split())


@pytest.mark.parametrize("name", sorted(_PATHOLOGICAL))
def test_tokenize_pathological_line_is_fast(name: str) -> None:
    _assert_linear(name, 100_000, 5.0)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(_PATHOLOGICAL))
def test_tokenize_one_megabyte_line_is_linear(name: str) -> None:
    _assert_linear(name, 1_000_000, 30.0)


def test_tokenize_url_of_dots_is_fast() -> None:
    text = "http://" + "." * 1_000_000 + " a@" + "b" * 1_000_000
    start = time.perf_counter()
    assert len(tokenize(text)[0]) == 8
    assert time.perf_counter() - start < 5.0
