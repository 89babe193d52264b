"""vocab.txt read a whole file at a time: the same vocabulary as line by line, large and escaped
vocabularies included, and the line-by-line reader's messages for anything else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerwin.data.vocab import SPECIALS, Vocab
from nerwin.errors import ModelError
from nerwin.model import vocabfile
from nerwin.model.vocabfile import VOCAB_ESCAPED, read_vocab, vocab_text

PATH = Path("model/vocab.txt")
HEAD = "".join(f"{w}\t0\n" for w in SPECIALS)


def _read(text: str) -> Vocab:
    return read_vocab(text.encode("utf-8"), PATH, True, True)


def _line_by_line(monkeypatch) -> None:
    """Make the whole-file reader fail the test if it declines (the line reader would run)."""

    def refuse(*args):
        raise AssertionError("read line by line")

    monkeypatch.setattr(vocabfile, "_read_lines", refuse)


def test_vocab_large_file_is_read_whole(monkeypatch) -> None:
    words = [*SPECIALS, *(f"w{i}" for i in range(200_000)), "zürich", "a\\b", "C:\\x41"]
    vocab = Vocab(words, counts=np.arange(len(words)) * 10**12)
    _line_by_line(monkeypatch)
    loaded = read_vocab(vocab_text(vocab).encode("utf-8"), PATH, True, False)
    assert loaded.words == words and loaded.index == vocab.index
    assert loaded.counts.dtype == np.int64 and loaded.counts.tolist() == vocab.counts.tolist()
    assert (loaded.lowercase, loaded.digits) == (True, False)


def test_vocab_escaped_file_is_read_whole(monkeypatch) -> None:
    odd = ["new\nline", "tab\there", "cr\rhere", "back\\slash", "nel\x85", "ls\u2028", "\x00"]
    words = [*SPECIALS, *(f"w{i}" for i in range(1000)), *odd, "x\\n"]
    text = vocab_text(Vocab(words))
    assert text.startswith(VOCAB_ESCAPED + "\n")
    _line_by_line(monkeypatch)
    assert _read(text).words == words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (HEAD + "paris\t1\nparis\t2\n", ":5: the word 'paris' repeats line 4"),
        (HEAD + "paris\t1\nparis", ":5: expected a word, a tab"),
        (HEAD + "paris\t+1\n", ":4: expected a word, a tab"),
        (HEAD + "paris\t 1\n", ":4: expected a word, a tab"),
        (HEAD + "paris\t١\n", ":4: expected a word, a tab"),  # an Arabic-Indic digit
        (HEAD + "paris\t1\r\n", ":4: expected a word, a tab"),
        (HEAD + "paris\t\n", ":4: expected a word, a tab"),
        (HEAD + "paris\t" + "1" * 19 + "\n", ":4: expected a word, a tab"),
        (HEAD + "paris\t1\n\n", ":5: expected a word, a tab"),
        (HEAD + "paris\t1\nlondon\t1\tx\n", ":5: expected a word, a tab"),
        (f"{VOCAB_ESCAPED}\n{HEAD}a\\q\t1\n", ":5: unknown escape"),
        (f"{VOCAB_ESCAPED}\n{HEAD}a\\n\t1\na\\x0a\t1\n", ":6: the word 'a\\n' repeats line 5"),
        ("<s>\t0\n<unk>\t0\n</s>\t0\n", "a vocabulary starts with"),
        ("", "a vocabulary starts with"),
    ],
)
def test_vocab_errors_name_the_line_as_before(text: str, expected: str) -> None:
    with pytest.raises(ModelError) as info:
        _read(text)
    assert str(info.value).startswith(f"{PATH}") and expected in str(info.value), info.value


@pytest.mark.parametrize(
    "text",
    [
        HEAD + "tab\there\t3\n",  # an older, unescaped file with a tab in a word
        HEAD + "paris\t1",  # no line feed at the end
        HEAD + "paris\t007\n",
    ],
)
def test_vocab_files_the_whole_reader_declines_still_load(text: str) -> None:
    vocab = _read(text)
    lines = [line.rpartition("\t") for line in text.split("\n") if line]
    assert vocab.words == [w for w, _, _ in lines]
    assert vocab.counts.tolist() == [int(c) for _, _, c in lines]


def _line(kind: int, word: str, bad_word: str, count: str, bad_count: str) -> str:
    """kind 0: a bad word, 1: a bad count, 2: a space for the tab, else a good line."""
    word = bad_word if kind == 0 else word
    count = bad_count if kind == 1 else count
    return f"{word}{' ' if kind == 2 else chr(9)}{count}"


# mostly good lines, some bad: words with escapes (valid or not), tabs and line breaks, odd counts
PIECES = ["a", "b", "x", "ü", "٣", "0", "\x85", "\\\\", "\\n", "\\x41", "\\u00e9", "\\"]
LINE = st.builds(
    _line,
    st.integers(0, 9),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=4).map("".join),
    st.text(st.sampled_from("a\\\t\n\r"), max_size=3),
    st.text(st.sampled_from("0123456789"), min_size=1, max_size=18),
    st.one_of(st.text(st.sampled_from("01+ -\t\r٣")), st.just("1" * 19)),
)


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(
    lines=st.lists(LINE, max_size=6),
    escaped=st.booleans(),
    end=st.sampled_from(["\n", ""]),
)
def test_vocab_whole_file_agrees_with_line_by_line(lines, escaped: bool, end: str) -> None:
    body = "\n".join(lines)
    text = (f"{VOCAB_ESCAPED}\n" if escaped else "") + HEAD + body + (end if body else "")
    whole = vocabfile._read_whole(text.encode("utf-8"), text)
    try:
        words, counts = vocabfile._read_lines(text, PATH)
    except ModelError as err:
        assert whole is None or "repeats line" in str(err)  # read_vocab checks repeats itself
        return
    if whole is not None:
        assert whole[0] == words and whole[1].tolist() == counts
