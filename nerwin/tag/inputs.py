"""Input streams for predict: texts, files and stdin, read line by line with clear errors."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from nerwin.data.conll import Sentence, parse_conll
from nerwin.errors import DataError

STDIN = "<stdin>"


def _binary_lines(path: Path) -> Iterator[bytes]:
    """Lines of a file (or stdin for '-') as bytes, opening lazily with a DataError on failure."""
    if str(path) == "-":
        yield from sys.stdin.buffer
        return
    try:
        handle: BinaryIO = open(path, "rb")  # noqa: SIM115 (closed by the `with` below)
    except OSError as err:
        raise DataError(f"cannot read input ({err.strerror})", path) from None
    with handle:
        yield from handle


def text_lines(path: Path | str) -> Iterator[str]:
    """Decoded lines (no line ends) of a UTF-8 file or of stdin ('-')."""
    source = STDIN if str(path) == "-" else str(path)
    for number, raw in enumerate(_binary_lines(Path(path)), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError("not valid UTF-8", source, number) from None
        if number == 1:
            line = line.removeprefix("\ufeff")
        yield line.rstrip("\r\n")


def raw_documents(texts: Iterable[str], files: Iterable[Path]) -> Iterator[str]:
    """Each text argument is a document; each line of each file (or stdin when none) is one."""
    texts, files = list(texts), list(files)
    yield from texts
    if not texts and not files:
        files = [Path("-")]
    for path in files:
        yield from text_lines(path)


def conll_sentences(files: Iterable[Path], word_column: int) -> Iterator[Sentence]:
    """Sentences of pre-tokenized CoNLL input (stdin when no file), with every column kept."""
    for path in list(files) or [Path("-")]:
        source = STDIN if str(path) == "-" else str(path)
        yield from parse_conll(
            _binary_lines(path),
            source,
            word_column=word_column,
            tag_column=None,
            require_tags=False,
        )
