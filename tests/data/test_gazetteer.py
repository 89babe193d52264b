"""The gazetteer matcher: leftmost-longest names within sentences, keys, the lowercase rule, ids."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerwin.data import gazetteer as gazetteer_module
from nerwin.data.encode import encode_sentences
from nerwin.data.gazetteer import (
    NONE_ID,
    PAD_ID,
    Gazetteer,
    kind_rank,
    name_key,
)
from nerwin.data.vocab import build_vocab


def _gazetteer(*entries: tuple[str, str], lowercase: bool = False) -> Gazetteer:
    """Names written with spaces between their tokens, each with its kind."""
    return Gazetteer.from_entries([(name.split(" "), kind) for name, kind in entries], lowercase)


def _flat(sentences: list[list[str]]) -> tuple[list[str], np.ndarray]:
    words = [w for s in sentences for w in s]
    return words, np.array([len(s) for s in sentences], np.int64)


def _found(g: Gazetteer, *sentences: str) -> list[tuple[str, str]]:
    """The matched names as (text, kind) in sentences written with spaces between tokens."""
    words, lengths = _flat([s.split(" ") if s else [] for s in sentences])
    return [(" ".join(words[a:b]), g.kinds[k]) for a, b, k in g.spans(words, lengths)]


# --- keys ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "word, key",
    [
        ("Paris", "paris"),
        ("São", "sao"),
        ("SÃO", "sao"),
        ("İstanbul", "istanbul"),  # dotted capital I: I + combining dot, the dot stripped
        ("ISTANBUL", "istanbul"),
        ("Gießen", "giessen"),  # ß case-folds to ss
        ("GIESSEN", "giessen"),
        ("Zürich", "zurich"),
        ("D.C.", "d.c."),
        ("Guinea-Bissau", "guinea-bissau"),
        ("\u0301", "\u0301"),  # a lone accent keeps its folded form (never an empty key)
        ("Xi\u00b4an", "xian"),  # a spacing accent is stripped like a combining one
    ],
)
def test_gazetteer_name_key(word: str, key: str) -> None:
    assert name_key(word) == key


def test_gazetteer_kind_rank_puts_known_kinds_first_then_alphabetical() -> None:
    kinds = ["place", "city", "airport", "country", "region", "continent"]
    assert sorted(kinds, key=kind_rank) == [
        "country",
        "continent",
        "region",
        "city",
        "airport",
        "place",
    ]


# --- longest and leftmost ------------------------------------------------------------------------


def test_gazetteer_longest_name_wins() -> None:
    g = _gazetteer(("New York", "region"), ("New York City", "city"), ("York", "city"))
    assert _found(g, "I love New York City today") == [("New York City", "city")]
    assert _found(g, "I love New York today") == [("New York", "region")]
    assert _found(g, "York and New York") == [("York", "city"), ("New York", "region")]
    assert _found(g, "New Jersey and New City") == []  # a prefix that is no name matches nothing
    assert _found(g, "New York York City") == [("New York", "region"), ("York", "city")]


def test_gazetteer_leftmost_name_wins_over_an_overlapping_one() -> None:
    g = _gazetteer(("A B", "city"), ("B C", "city"))
    words, lengths = _flat([["A", "B", "C"]])
    assert g.spans(words, lengths) == [(0, 2, 0)]
    assert _found(g, "X B C") == [("B C", "city")]
    longer_later = _gazetteer(("A B", "city"), ("B C D", "region"))
    assert _found(longer_later, "A B C D") == [("A B", "city")]  # leftmost first, not longest
    assert _found(longer_later, "A A B C D") == [("A B", "city")]


def test_gazetteer_names_never_cross_a_sentence_end() -> None:
    g = _gazetteer(("New York", "city"), ("Paris", "city"))
    assert _found(g, "I saw New", "York is big") == []
    words, lengths = _flat([["to", "Paris"], ["Paris", "is", "big"], ["New", "York"]])
    assert g.spans(words, lengths) == [(1, 2, 0), (2, 3, 0), (5, 7, 0)]  # end, start, whole


def test_gazetteer_empty_sentences_between_names() -> None:
    g = _gazetteer(("New York", "city"))
    words, lengths = _flat([[], ["New"], [], ["York"], [], ["New", "York"], []])
    assert g.spans(words, lengths) == [(2, 4, 0)]


def test_gazetteer_name_fills_a_sentence_or_ends_the_text() -> None:
    g = _gazetteer(("Addis Ababa", "city"))
    assert _found(g, "Addis Ababa") == [("Addis Ababa", "city")]
    assert _found(g, "flights to Addis Ababa") == [("Addis Ababa", "city")]
    assert _found(g, "flights to Addis") == []


# --- punctuation and unicode ---------------------------------------------------------------------


def test_gazetteer_punctuation_inside_names() -> None:
    g = Gazetteer.from_entries(
        [
            (["Washington", ",", "D.C."], "city"),
            (["Washington"], "region"),
            (["St.", "Louis"], "city"),
            (["Guinea-Bissau"], "country"),
            (["Guinea"], "country"),
        ]
    )
    assert _found(g, "to Washington , D.C. .") == [("Washington , D.C.", "city")]
    assert _found(g, "to Washington , DC") == [("Washington", "region")]
    assert _found(g, "in St. Louis today") == [("St. Louis", "city")]
    assert _found(g, "in St Louis today") == []  # St without the period is another token
    assert _found(g, "Guinea-Bissau and Guinea") == [
        ("Guinea-Bissau", "country"),
        ("Guinea", "country"),
    ]


def test_gazetteer_accents_and_case_fold() -> None:
    g = _gazetteer(
        ("São Paulo", "city"), ("İzmir", "city"), ("Istanbul", "city"), ("Gießen", "city")
    )
    for text in ("São Paulo", "Sao Paulo", "SÃO PAULO", "SAO PAULO", "são Paulo"):
        assert _found(g, f"to {text} .") == [(text, "city")], text
    assert _found(g, "to são paulo .") == []  # all lowercase
    for text in ("Izmir", "IZMIR", "İZMİR", "İzmir", "Istanbul", "İstanbul", "ISTANBUL"):
        assert _found(g, text) == [(text, "city")], text
    for text in ("Giessen", "GIESSEN", "Gießen", "GIEẞEN"):
        assert _found(g, text) == [(text, "city")], text


# --- the lowercase rule --------------------------------------------------------------------------


def test_gazetteer_all_lowercase_spans_are_rejected_by_default() -> None:
    entries = (("Bath", "city"), ("Reading", "city"), ("New York", "city"))
    g = _gazetteer(*entries)
    assert _found(g, "take a bath after reading") == []
    assert _found(g, "in new york") == []
    assert _found(g, "Bath and BATH") == [("Bath", "city"), ("BATH", "city")]
    assert _found(g, "in new York and NEW york") == [("new York", "city"), ("NEW york", "city")]
    loose = _gazetteer(*entries, lowercase=True)
    assert _found(loose, "take a bath after reading") == [("bath", "city"), ("reading", "city")]
    assert _found(loose, "in new york") == [("new york", "city")]


def test_gazetteer_lowercase_longer_name_gives_way_to_a_capitalised_shorter_one() -> None:
    g = _gazetteer(("York", "city"), ("york minster", "place"), ("new york", "city"))
    assert _found(g, "york minster") == []
    assert _found(g, "York minster") == [("York minster", "place")]
    assert _found(g, "new york") == []  # York would match, but the span starts at new
    assert _found(g, "old York") == [("York", "city")]


def test_gazetteer_lowercase_names_in_the_list_still_match_capitalised_text() -> None:
    g = Gazetteer.from_entries([(["bath"], "city"), (["PARIS"], "city")])
    assert _found(g, "Bath paris Paris") == [("Bath", "city"), ("Paris", "city")]


# --- feature ids ---------------------------------------------------------------------------------


def test_gazetteer_values_and_ids_per_kind() -> None:
    g = _gazetteer(("Paris", "city"), ("France", "country"), ("New York", "city"))
    assert g.kinds == ("country", "city")
    assert g.values == [
        "<pad>",
        "O",
        "B-country",
        "I-country",
        "S-country",
        "B-city",
        "I-city",
        "S-city",
    ]
    assert g.n_values == len(g.values) == 8
    words = ["Paris", ",", "New", "York", "and", "France", "."]
    ids = g.encode(words, np.array([len(words)]))
    assert ids.dtype == np.int32
    assert g.describe(ids) == ["S-city", "O", "B-city", "I-city", "O", "S-country", "O"]
    assert ids.tolist() == [7, NONE_ID, 5, 6, NONE_ID, 4, NONE_ID]


def test_gazetteer_inside_id_covers_every_token_after_the_first() -> None:
    g = _gazetteer(("Bosnia and Herzegovina", "country"))
    words = ["to", "Bosnia", "and", "Herzegovina"]
    assert g.describe(g.encode(words, np.array([4]))) == [
        "O",
        "B-country",
        "I-country",
        "I-country",
    ]


@pytest.mark.parametrize("order", [1, -1])
def test_gazetteer_name_listed_twice_keeps_the_first_ranked_kind(order: int) -> None:
    entries = [("Georgia", "region"), ("Georgia", "country"), ("Mexico", "city")]
    entries += [("MEXICO", "country"), ("Luxembourg", "city"), ("Luxembourg", "place")]
    g = _gazetteer(*entries[::order])
    assert g.names == {
        ("georgia",): "country",
        ("mexico",): "country",
        ("luxembourg",): "city",
    }
    assert g.kinds == ("country", "city")  # place lost everywhere: no row for it
    assert len(g) == 3


def test_gazetteer_other_kinds_follow_the_known_ones() -> None:
    g = _gazetteer(("Heathrow", "airport"), ("Paris", "city"), ("Alps", "mountain"))
    assert g.kinds == ("city", "airport", "mountain")
    assert g.n_values == 2 + 3 * 3
    words = ["Heathrow", "Alps"]
    assert g.describe(g.encode(words, np.array([2]))) == ["S-airport", "S-mountain"]


def test_gazetteer_empty_names_and_empty_input() -> None:
    empty = Gazetteer.from_entries([])
    assert len(empty) == 0 and empty.kinds == () and empty.longest == 0
    assert empty.values == ["<pad>", "O"] and empty.n_values == 2
    words = ["Paris", "is", "nice"]
    assert empty.spans(words, np.array([3])) == []
    assert empty.encode(words, np.array([3])).tolist() == [NONE_ID] * 3
    assert empty.token_codes(words).tolist() == [-1, -1, -1]
    g = _gazetteer(("Paris", "city"))
    for gaz in (empty, g):
        assert gaz.spans([], np.zeros(0, np.int64)) == []
        assert gaz.spans([], np.zeros(3, np.int64)) == []
        ids = gaz.encode([], np.zeros(0, np.int64))
        assert ids.shape == (0,) and ids.dtype == np.int32


def test_gazetteer_entries_without_tokens_or_keys_are_dropped() -> None:
    g = Gazetteer.from_entries([([], "city"), ([""], "city"), (["A", ""], "city")])
    assert len(g) == 0 and g.n_values == 2


def test_gazetteer_token_codes() -> None:
    g = _gazetteer(("New York", "city"))
    codes = g.token_codes(["New", "new", "YORK", "Boston", "york"])
    assert codes[3] == -1
    assert codes[0] == codes[1] + 1 and codes[0] % 2 == 1  # the low bit: has an uppercase letter
    assert codes[2] == codes[4] + 1 and codes[4] % 2 == 0
    assert codes[0] // 2 != codes[2] // 2


def test_gazetteer_windows_in_encode_sentences() -> None:
    g = _gazetteer(("New York", "city"))
    sentences = [["to", "New", "York"], ["New"]]
    data = encode_sentences(sentences, build_vocab(sentences), 5, False, gazetteer=g)
    windows = data.extra["gazetteer"]
    b, i = g.values.index("B-city"), g.values.index("I-city")
    assert windows.shape == (4, 5)
    assert windows[1].tolist() == [PAD_ID, NONE_ID, b, i, PAD_ID]
    assert windows[2].tolist() == [NONE_ID, b, i, PAD_ID, PAD_ID]
    assert windows[3].tolist() == [PAD_ID, PAD_ID, NONE_ID, PAD_ID, PAD_ID]  # New alone: no name


def test_gazetteer_memo_reset_does_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = [([f"Town{i}"], "city") for i in range(40)] + [(["New", "Town3"], "region")]
    sentences = [[f"Town{i}", "New", f"Town{(i * 7) % 40}", f"word{i}", "new"] for i in range(60)]
    words, lengths = _flat(sentences)
    expected = Gazetteer.from_entries(entries).spans(words, lengths)
    monkeypatch.setattr(gazetteer_module, "MEMO_WORDS", 5)
    g = Gazetteer.from_entries(entries)
    for k in range(0, len(sentences), 3):  # small batches: the memo fills and starts over
        part = sentences[k : k + 3]
        w, n = _flat(part)
        offset = sum(len(s) for s in sentences[:k])
        want = [
            (a - offset, b - offset, c) for a, b, c in expected if offset <= a < offset + len(w)
        ]
        assert g.spans(w, n) == want
        assert len(g._memo) <= 5 + len(set(w))
    assert g.spans(words, lengths) == expected
    assert g.spans(words, lengths) == expected  # again, from a full memo
    assert any(a + 2 == b for a, b, _ in expected)  # the two-token name was found somewhere


# --- against a plain reference -------------------------------------------------------------------

_RANK = {"country": 0, "continent": 1, "region": 2, "city": 3}


def _reference_key(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _reference_rank(kind: str) -> tuple[int, str]:
    return (_RANK[kind], "") if kind in _RANK else (len(_RANK), kind)


def reference_spans(
    entries: list[tuple[list[str], str]], lowercase: bool, sentences: list[list[str]]
) -> list[tuple[int, int, int]]:
    """Leftmost-longest matching, one token at a time, in plain Python."""
    names: dict[tuple[str, ...], str] = {}
    for tokens, kind in entries:
        key = tuple(_reference_key(t) for t in tokens)
        if not key or not all(key):
            continue
        if key not in names or _reference_rank(kind) < _reference_rank(names[key]):
            names[key] = kind
    kinds = sorted(set(names.values()), key=_reference_rank)
    out, offset = [], 0
    for sentence in sentences:
        keys = [_reference_key(w) for w in sentence]
        i = 0
        while i < len(sentence):
            stop = 0
            for j in range(i + 1, len(sentence) + 1):
                capitalised = any(w != w.lower() for w in sentence[i:j])
                if tuple(keys[i:j]) in names and (lowercase or capitalised):
                    stop = j
            if stop:
                out.append((offset + i, offset + stop, kinds.index(names[tuple(keys[i:stop])])))
                i = stop
            else:
                i += 1
        offset += len(sentence)
    return out


# Forms of a few keys (case and accents vary), plus words in no name.
WORDS = [
    *("a", "A"),
    *("b", "B", "b́"),
    *("c", "C"),
    *("sao", "São", "SAO", "são"),
    *("ist", "İst", "IST"),
    *("d.c.", "D.C."),
    *("ss", "SS", "ß"),  # ß case-folds to ss (str.lower keeps it)
    ",",
    *("x", "X", "7"),
]
KINDS = ["city", "country", "region", "place", "airport"]
names_strategy = st.lists(
    st.tuples(st.lists(st.sampled_from(WORDS), min_size=1, max_size=4), st.sampled_from(KINDS)),
    max_size=10,
)
sentences_strategy = st.lists(st.lists(st.sampled_from(WORDS), max_size=9), max_size=6)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(entries=names_strategy, sentences=sentences_strategy, lowercase=st.booleans())
def test_gazetteer_spans_match_the_reference(
    entries: list[tuple[list[str], str]], sentences: list[list[str]], lowercase: bool
) -> None:
    g = Gazetteer.from_entries(entries, lowercase)
    words, lengths = _flat(sentences)
    expected = reference_spans(entries, lowercase, sentences)
    assert g.spans(words, lengths) == expected
    ids = g.encode(words, lengths)
    want = np.full(len(words), NONE_ID)
    for a, b, kind in expected:
        want[a:b] = 2 + 3 * kind + 1
        want[a] = 2 + 3 * kind + (2 if b - a == 1 else 0)
    assert ids.tolist() == want.tolist()
    assert g.spans(words, lengths) == expected  # the memo's second look gives the same
