"""Raw English text -> sentences of tokens with character offsets, close to CoNLL-2003 style."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Token:
    """One token: text == source[start:end]."""

    text: str
    start: int
    end: int


# Word characters: \w plus combining marks and joiners (decomposed accents, Indic vowel signs).
_W = (
    r"[\w\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u0900-\u0dff"
    r"\u200c\u200d\u20d0-\u20ff\ufe00-\ufe0f]"
)
_CLITIC = r"['’](?i:s|re|ve|ll|d|m|t)(?!\w)"
# Inside a word: - . & an apostrophe that starts no clitic, and , : / between digits.
_JOIN = r"(?:[-.&]|['’](?!(?i:s|re|ve|ll|d|m|t)(?!\w))|(?<=\d)[,:/](?=\d))"
_NO_URL_END = r"""[^\s<>"“”.,;:!?'’)\]}]"""

# One finditer pass; words come second because most tokens are words. Every quantifier that could
# fail after a long scan is possessive, so a 1 MB line without spaces tokenizes in linear time.
# Every non-space character lands in exactly one token.
_TOKEN = re.compile(
    rf"""
    (?:https?://|www\.)[^\s<>"“”]*{_NO_URL_END}  # URL without trailing punctuation
  | {_W}++(?:{_JOIN}{_W}++)*+                    # word, number: Kong-based 1,000 3.5 O'Brien U.S
    (?:@[\w-]++(?:\.[\w-]++)++)?                 #   @example.org: an e-mail address
    (?P<abbr>\.(?![\w.]))?                       #   Mr. U.S. or a sentence end (_add_period_word)
  | (?P<clitic>{_CLITIC})                       # 's 're 've 'll 'd 'm 't
  | (?P<term>\.{{2,}}+|[.!?…。！？])              # sentence terminators, ellipsis included
  | -{{2,}}+                                     # double dash
  | [^\w\s]                                     # any other single symbol
    """,
    re.VERBOSE,
)
_ACRONYM = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")
_PARAGRAPH = re.compile(r"\n[^\S\n]*+\n|\u2029")

# Kept whole with their period (case-sensitive; an all-caps stem is looked up title-cased).
ABBREVIATIONS = frozenset(
    [
        "Mr",
        "Mrs",
        "Ms",
        "Dr",
        "Prof",
        "Sr",
        "Jr",
        "St",
        "Mt",
        "Ft",
        "Gen",
        "Col",
        "Lt",
        "Capt",
        "Sgt",
        "Maj",
        "Adm",
        "Cmdr",
        "Gov",
        "Sen",
        "Rep",
        "Rev",
        "Hon",
        "Pres",
        "Supt",
        "Inc",
        "Corp",
        "Co",
        "Ltd",
        "Bros",
        "Messrs",
        "Ave",
        "Blvd",
        "Rd",
        "Jan",
        "Feb",
        "Mar",
        "Apr",
        "Aug",
        "Sep",
        "Sept",
        "Oct",
        "Nov",
        "Dec",
        "Ala",
        "Ariz",
        "Ark",
        "Calif",
        "Colo",
        "Conn",
        "Fla",
        "Ga",
        "Kan",
        "Ky",
        "Md",
        "Mich",
        "Minn",
        "Mo",
        "Mont",
        "Neb",
        "Nev",
        "Okla",
        "Ore",
        "Penn",
        "Tenn",
        "Tex",
        "Va",
        "Vt",
        "Wis",
        "Wyo",
        "vs",
        "etc",
        "approx",
        "dept",
        "fig",
        "vol",
        "eds",
        "al",
        "cf",
        "ca",
    ]
)
# After an abbreviation a sentence ends only before one of these (St. Louis; Acme Corp. The firm).
SENTENCE_STARTERS = frozenset(
    [
        "The",
        "This",
        "That",
        "These",
        "Those",
        "There",
        "Then",
        "He",
        "She",
        "It",
        "They",
        "We",
        "You",
        "His",
        "Her",
        "Its",
        "Their",
        "Our",
        "My",
        "But",
        "And",
        "However",
        "Meanwhile",
        "In",
        "On",
        "At",
        "After",
        "Before",
        "When",
        "While",
        "If",
        "As",
        "Some",
        "Many",
        "Most",
        "No",
        "One",
    ]
)
_CLOSERS = frozenset("\"'”’»)]}")
_OPENERS = frozenset("\"'“‘«([{¿¡")
_TERMINATORS = frozenset(".!?…。！？")  # the one-character tokens of kind "term"
_MID, _AFTER_TERMINATOR, _AFTER_ABBREVIATION = 0, 1, 2

# Speed. A run of non-space characters (a chunk) never shares a token with another run, and the
# lookarounds of _TOKEN see a space and the end of the text alike, so each chunk is tokenized on
# its own. Most chunks are one token (Paris , Kong-based 3.5): those skip _TOKEN and its match
# objects, and their tokens are made without the frozen dataclass __init__ (3x slower).
_SPACE = re.compile(r"\s")
_one_word = re.compile(rf"{_W}++(?:{_JOIN}{_W}++)*+").fullmatch  # the chunk is one plain word
_word_before_clitic = re.compile(r"[^\W_]++(?=['’](?i:s|re|ve|ll|d|m|t)\Z)").match  # Paris's
_WINDOW = 1 << 16  # characters split into chunks at once (longer paragraphs: cut at a space)
_new = object.__new__  # with the slot setters below: a Token without its __init__ (see _token)
_set_text, _set_start, _set_end = Token.text.__set__, Token.start.__set__, Token.end.__set__


def tokenize(text: str) -> list[list[Token]]:
    """Split text into sentences of tokens; [] for empty or whitespace-only text."""
    if len(text) <= _WINDOW and text.isprintable():  # one line: its only spaces are " "
        out: list[list[Token]] = []
        sentence, _ = _scan(text, text.split(" "), 0, out, [], _MID)
        if sentence:
            out.append(sentence)
        return out
    return list(iter_sentences(text))


def iter_sentences(text: str) -> Iterator[list[Token]]:
    """Yield the sentences of text one at a time, each a non-empty list of tokens."""
    start = 0
    for brk in _PARAGRAPH.finditer(text):
        yield from _split_paragraph(text, start, brk.start())
        start = brk.end()
    yield from _split_paragraph(text, start, len(text))


def _split_paragraph(text: str, pos: int, endpos: int) -> Iterator[list[Token]]:
    """Yield the sentences of text[pos:endpos], a span with no blank line inside."""
    out: list[list[Token]] = []
    sentence: list[Token] = []
    ending = _MID
    while pos < endpos:
        cut = endpos
        if endpos - pos > _WINDOW and (space := _SPACE.search(text, pos + _WINDOW, endpos)):
            cut = space.start()
        window = text[pos:cut]
        chunks = window.split(" ") if window.isprintable() else _SPACE.split(window)
        sentence, ending = _scan(text, chunks, pos, out, sentence, ending)
        yield from out
        out.clear()
        pos = cut
    if sentence:
        yield sentence


def _scan(
    text: str,
    chunks: list[str],
    pos: int,
    out: list[list[Token]],
    sentence: list[Token],
    ending: int,
) -> tuple[list[Token], int]:
    """Add the tokens of chunks (text from pos, no paragraph break inside, split at each space
    character) to the open sentence, moving each finished sentence to out; return the open
    sentence and the ending state."""
    new, set_text, set_start, set_end, one_word = _new, _set_text, _set_start, _set_end, _one_word
    append = sentence.append
    e = pos - 1
    for chunk in chunks:  # "" between two spaces
        s = e + 1
        e = s + len(chunk)
        term = False
        if not chunk.isalnum():
            if e - s == 1:  # one symbol
                term = chunk in _TERMINATORS
            elif s == e:
                continue
            elif one_word(chunk) is None:  # several tokens
                sentence, ending = _scan_chunk(text, chunk, s, out, sentence, ending)
                append = sentence.append
                continue
        if ending:  # the chunk follows a space
            if sentence and _opens_sentence(chunk, ending):
                out.append(sentence)
                sentence = []
                append = sentence.append
            ending = _MID
        token = new(Token)
        set_text(token, chunk)
        set_start(token, s)
        set_end(token, e)
        append(token)
        if term:
            ending = _AFTER_TERMINATOR
    return sentence, ending


def _scan_chunk(
    text: str,
    chunk: str,
    pos: int,
    out: list[list[Token]],
    sentence: list[Token],
    ending: int,
) -> tuple[list[Token], int]:
    """_scan for one chunk at text[pos:] of 2+ characters, neither alphanumeric nor one word:
    where all but its last (or first) character are alphanumeric, that character is no word
    character and a token (Paris, (Paris) or a period (Paris. Mr.); a clitic may end a word
    (Paris's); other chunks go match by match."""
    end = pos + len(chunk)
    clitic = None
    if chunk[:-1].isalnum():  # Paris, Paris. 5% Joneses': word | symbol
        cut = end - 1
    elif chunk[0] not in "'’" and chunk[1:].isalnum():  # (Paris $5: symbol | word
        cut = pos + 1
    elif clitic := _word_before_clitic(chunk):  # Paris's don't we'll: word | clitic
        cut = pos + clitic.end()
    else:
        return _scan_matches(text, pos, end, out, sentence, ending)
    first = text[pos:cut]  # opens a sentence as the first match would (Mr. as Mr)
    if ending and sentence and _opens_sentence(first, ending):
        out.append(sentence)
        sentence = []
    if text[cut] == ".":  # Mr. Paris. one match: a word and its period
        return sentence, _add_period_word(text, pos, end, sentence)
    sentence.append(_token(first, pos, cut))
    if clitic:
        _add_clitic(text, cut, end, sentence)
        return sentence, _MID
    sentence.append(_token(text[cut:end], cut, end))
    return sentence, _AFTER_TERMINATOR if text[cut] in _TERMINATORS else _MID


def _scan_matches(
    text: str, pos: int, endpos: int, out: list[list[Token]], sentence: list[Token], ending: int
) -> tuple[list[Token], int]:
    """_scan_chunk for any chunk text[pos:endpos], match by match."""
    prev_end = -1
    for m in _TOKEN.finditer(text, pos, endpos):
        s, e = m.span()
        kind = m.lastgroup
        if ending:
            if s > prev_end:  # the gap is whitespace: every other character is in some token
                if sentence and _opens_sentence(text[s:e], ending):
                    out.append(sentence)
                    sentence = []
                ending = _MID
            elif kind != "term" and text[s:e] not in _CLOSERS:
                ending = _MID
        prev_end = e
        if kind is None:
            sentence.append(_token(text[s:e], s, e))
        elif kind == "term":
            sentence.append(_token(text[s:e], s, e))
            ending = ending or _AFTER_TERMINATOR
        elif kind == "abbr":
            ending = _add_period_word(text, s, e, sentence)
        else:
            _add_clitic(text, s, e, sentence)
    return sentence, ending


def _token(text: str, start: int, end: int) -> Token:
    """Token(text, start, end), without the frozen dataclass __init__."""
    token = _new(Token)
    _set_text(token, text)
    _set_start(token, start)
    _set_end(token, end)
    return token


def _opens_sentence(word: str, ending: int) -> bool:
    """True if word, after whitespace, opens a sentence (only a starter after an abbreviation)."""
    if ending == _AFTER_ABBREVIATION:
        return word.rstrip(".") in SENTENCE_STARTERS
    first = word[0]
    return first in _OPENERS or first.isdigit() or (first.isalpha() and not first.islower())


def _add_period_word(text: str, s: int, e: int, sentence: list[Token]) -> int:
    """Append word + period as one token (Mr. U.S. J.) or as two; return the ending state."""
    stem = text[s : e - 1]
    if _is_abbreviation(stem):
        sentence.append(_token(text[s:e], s, e))
        return _AFTER_ABBREVIATION
    sentence.append(_token(stem, s, e - 1))
    sentence.append(_token(".", e - 1, e))
    return _AFTER_TERMINATOR


def _is_abbreviation(stem: str) -> bool:
    """True for known abbreviations (Mr, Inc, ST), capital initials (J) and acronyms (U.S, e.g)."""
    if len(stem) == 1:
        return stem.isupper()
    if stem in ABBREVIATIONS or (stem.isupper() and stem.title() in ABBREVIATIONS):
        return True
    return "." in stem and _ACRONYM.fullmatch(stem) is not None


def _add_clitic(text: str, s: int, e: int, sentence: list[Token]) -> None:
    """Append a clitic ('s, 'll); don + 't becomes do + n't, taking the n from the last token."""
    prev = sentence[-1] if sentence else None
    is_nt = e - s == 2 and text[s + 1] in "tT" and text[s - 1 : s] in ("n", "N")
    if not is_nt or prev is None or prev.end != s:
        sentence.append(_token(text[s:e], s, e))
        return
    n = s - 1
    if prev.start == n:
        sentence.pop()
    else:
        sentence[-1] = _token(text[prev.start : n], prev.start, n)
    sentence.append(_token(text[n:e], n, e))
