"""vocab.txt of a model folder: one `word<TAB>count` line per id.

When a word holds a control or line-break character (a word2vec binary file may hold
"new\\nline"), the file starts with the line `#nerwin-vocab escaped` and every word is escaped:
`\\\\`, `\\n`, `\\t`, `\\r`, `\\xNN`, `\\uNNNN`. Other vocabularies are written as Vocab.save
writes them, so older nerwin reads them unchanged (and refuses an escaped one: its first line is
not `<unk>`). Reading checks every line: one ModelError naming the file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from nerwin.data.vocab import SPECIALS, Vocab
from nerwin.errors import ModelError
from nerwin.model.metafile import excerpt

MAX_COUNT_DIGITS = 18  # a vocab.txt count fits an int64
VOCAB_ESCAPED = "#nerwin-vocab escaped"  # first line of a vocab.txt whose words are escaped
_NEEDS_ESCAPE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_TO_ESCAPE = re.compile(r"[\\\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPE_SEQUENCE = re.compile(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|.?)", re.DOTALL)
_SHORT_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_UNESCAPES = {"\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_COUNT = re.compile(rf"[0-9]{{1,{MAX_COUNT_DIGITS}}}")


def vocab_text(vocab: Vocab) -> str:
    """vocab.txt: `word<TAB>count` per id; escaped (see the module docstring) only when a word
    holds a control or line-break character."""
    escaped = any(_NEEDS_ESCAPE.search(w) for w in vocab.words)
    words = [_escape(w) for w in vocab.words] if escaped else vocab.words
    lines = [VOCAB_ESCAPED] if escaped else []
    lines += (f"{w}\t{c}" for w, c in zip(words, vocab.counts))
    return "\n".join(lines) + "\n"


def _escape(word: str) -> str:
    def one(match: re.Match[str]) -> str:
        char = match.group()
        if char in _SHORT_ESCAPES:
            return _SHORT_ESCAPES[char]
        return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"

    return _TO_ESCAPE.sub(one, word)


def _unescape(word: str) -> str:
    """Inverse of _escape; ValueError on a sequence _escape does not write."""

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code in _UNESCAPES:
            return _UNESCAPES[code]
        if len(code) in (3, 5) and code[0] in "xu":
            char = chr(int(code[1:], 16))
            if not 0xD800 <= ord(char) <= 0xDFFF:
                return char
        raise ValueError(f"unknown escape {excerpt(match.group())}")

    return _ESCAPE_SEQUENCE.sub(one, word) if "\\" in word else word


def read_vocab(data: bytes, path: Path, lowercase: bool, digits: bool) -> Vocab:
    """The vocabulary of vocab.txt (see vocab_text), every line checked.

    A well-formed file is checked and split a whole file at a time (_read_whole: a 400,000-word
    vocabulary in a fraction of a second); anything else is read line by line (_read_lines),
    which names the first bad line. Both give the same vocabulary.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ModelError(f"{path}:{line}: not valid UTF-8") from None
    whole = _read_whole(data, text)
    if whole is not None:
        words, counts = whole
        vocab = Vocab(words, lowercase, digits, counts)
        if len(vocab.index) == len(words):  # else a word repeats: _read_lines names it
            return vocab
    words, counts = _read_lines(text, path)
    return Vocab(words, lowercase, digits, np.array(counts, np.int64))


def _read_whole(data: bytes, text: str) -> tuple[list[str], np.ndarray] | None:
    """Words and counts of a vocab.txt whose every line is `word<TAB>count<LF>` (a word without
    tabs, a count of 1 to MAX_COUNT_DIGITS digits; escaped words valid) and that starts with the
    special words; None for any other file. Lines are found with numpy on the bytes (a tab or
    a line feed is one byte in UTF-8), not a Python loop per line."""
    escaped = text.startswith(VOCAB_ESCAPED + "\n")
    start = len(VOCAB_ESCAPED) + 1 if escaped else 0  # the header is ASCII: bytes = characters
    raw = np.frombuffer(data, np.uint8)[start:]
    if not raw.size or raw[-1] != ord("\n"):
        return None
    ends = np.flatnonzero(raw == ord("\n"))
    tabs = np.flatnonzero(raw == ord("\t"))
    if len(tabs) != len(ends) or not (tabs < ends).all() or not (tabs[1:] > ends[:-1]).all():
        return None  # not exactly one tab on every line
    width = ends - tabs - 1
    if width.min() < 1 or width.max() > MAX_COUNT_DIGITS:
        return None
    marks = np.zeros(len(raw), np.int8)  # +1 where a count starts, -1 at the line's end
    marks[tabs + 1], marks[ends] = 1, -1  # distinct places: every count has a digit or more
    inside = np.cumsum(marks, dtype=np.int8).astype(bool)  # the bytes of the counts
    if ((raw[inside] - ord("0")) > 9).any():  # uint8: bytes below "0" wrap around
        return None
    parts = text[start:].replace("\t", "\n").split("\n")
    words, counts = parts[0:-1:2], np.array(parts[1::2], np.int64)
    if escaped:
        lines = np.unique(np.searchsorted(ends, np.flatnonzero(raw == ord("\\"))))
        try:
            for line in lines.tolist():
                words[line] = _unescape(words[line])
        except ValueError:
            return None
    if tuple(words[: len(SPECIALS)]) != SPECIALS:
        return None
    return words, counts


def _read_lines(text: str, path: Path) -> tuple[list[str], list[int]]:
    """Words and counts of vocab.txt, line by line: ModelError naming the first bad line."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    escaped = bool(lines) and lines[0] == VOCAB_ESCAPED
    first = 2 if escaped else 1  # the line number of the first word
    words, counts, seen = [], [], {}
    for number, line in enumerate(lines[first - 1 :], first):
        word, tab, count = line.rpartition("\t")
        if not tab or not _COUNT.fullmatch(count):
            raise ModelError(
                f"{path}:{number}: expected a word, a tab and a count, got {excerpt(line)}"
            )
        if escaped:
            try:
                word = _unescape(word)
            except ValueError as err:
                raise ModelError(f"{path}:{number}: {err}") from None
        if word in seen:
            raise ModelError(f"{path}:{number}: the word {excerpt(word)} repeats line {seen[word]}")
        seen[word] = number
        words.append(word)
        counts.append(int(count))
    if tuple(words[: len(SPECIALS)]) != SPECIALS:
        raise ModelError(f"{path}: a vocabulary starts with {', '.join(SPECIALS)}")
    return words, counts
