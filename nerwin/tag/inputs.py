"""Input streams for predict: texts, files and stdin, read line by line with clear errors.

Regular files are read in large buffered blocks. Stdin, pipes and terminals are read as their
data arrives, and `InputSource.idle()` tells whether more input is ready without waiting: the
tagger scores what it has whenever it would otherwise wait, so a program that writes one line
and waits for the answer gets it, while a large file is still scored in large batches.
"""

from __future__ import annotations

import json
import os
import select
import stat
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from nerwin.data.conll import Sentence, parse_conll
from nerwin.errors import DataError
from nerwin.tag.documents import TaggedDocument, sentence_document, text_documents

STDIN = "<stdin>"
READ_BYTES = 1 << 16
MAX_LINE_BYTES = 64 << 20  # one document (input line) of at most 64 MiB


def _too_long(source: str | Path, number: int) -> DataError:
    return DataError(
        f"a line longer than {MAX_LINE_BYTES >> 20} MiB (no line ends?)", source, number
    )


class _StreamLines:
    """Lines (bytes, with their newline) of a pipe or terminal, read as data arrives."""

    def __init__(self, fd: int, source: str | Path = STDIN):
        self.fd, self.source = fd, source
        self.pending: deque[bytes] = deque()
        self.partial: list[bytes] = []  # the pieces of an unfinished line (a long line: many)
        self.eof = False
        self.lines = 0  # complete lines read so far

    def __iter__(self) -> Iterator[bytes]:
        while True:
            if self.pending:
                yield self.pending.popleft()
            elif self.eof:
                return
            else:
                self._read()

    def _read(self) -> None:
        chunk = os.read(self.fd, READ_BYTES)  # returns what has arrived (a terminal: one line)
        if not chunk:
            self.eof = True
            if self.partial:
                self.pending.append(b"".join(self.partial))
                self.partial = []
            return
        lines = chunk.split(b"\n")
        rest = lines.pop()
        if lines:
            lines[0] = b"".join([*self.partial, lines[0]])
            self.partial = []
            self.pending.extend([line + b"\n" for line in lines])
        if rest:
            self.partial.append(rest)
            if sum(map(len, self.partial)) > MAX_LINE_BYTES:  # /dev/zero, or no newlines at all
                raise _too_long(self.source, self.lines + len(self.pending) + 1)
        self.lines += len(lines)

    def ready(self) -> bool:
        """True when the next line (or the end) can be had without waiting."""
        if self.pending or self.eof:
            return True
        try:
            return bool(select.select([self.fd], [], [], 0)[0])
        except (OSError, ValueError):  # cannot tell: behave like a file
            return True


class InputSource:
    """The lines of `texts` (each one document), then of each file ('-' = stdin; stdin when
    there are neither), with `idle()` for streaming input."""

    def __init__(self, texts: Iterable[str] = (), files: Iterable[Path | str] = ()):
        self.texts = list(texts)
        self.files = [Path(f) for f in files]
        if not self.texts and not self.files:
            self.files = [Path("-")]
        self._stream: _StreamLines | None = None

    def idle(self) -> bool:
        """True when the input being read has no further line ready without waiting."""
        return self._stream is not None and not self._stream.ready()

    def binary_lines(self, path: Path) -> Iterator[bytes]:
        """Lines of one file (or stdin for '-') as bytes, opened lazily; DataError on failure."""
        if str(path) == "-":
            try:
                fd = sys.stdin.fileno()
            except (AttributeError, OSError, ValueError):  # replaced stdin (tests): no descriptor
                yield from sys.stdin.buffer
                return
            yield from self._lines_of(fd, None)
            return
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as err:
            raise DataError(f"cannot read input ({err.strerror})", path) from None
        try:
            yield from self._lines_of(fd, path)
        finally:
            os.close(fd)

    def _lines_of(self, fd: int, path: Path | None) -> Iterator[bytes]:
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError:
            regular = False
        if regular:  # large buffered reads; a file never makes the reader wait
            handle = open(fd, "rb", closefd=False)  # noqa: SIM115 (closed below)
            with handle:
                try:
                    number = 0
                    while line := handle.readline(MAX_LINE_BYTES + 1):
                        number += 1
                        if len(line) > MAX_LINE_BYTES:
                            raise _too_long(path or STDIN, number)
                        yield line
                except OSError as err:
                    raise DataError(f"cannot read input ({err.strerror})", path or STDIN) from None
            return
        self._stream = _StreamLines(fd, path or STDIN)
        try:
            yield from self._stream
        except OSError as err:
            raise DataError(f"cannot read input ({err.strerror})", path or STDIN) from None
        finally:
            self._stream = None

    def numbered_lines(self) -> Iterator[tuple[str, int, str]]:
        """(source, 1-based line number, text without line end) of every file line."""
        for path in self.files:
            source = STDIN if str(path) == "-" else str(path)
            for number, raw in enumerate(self.binary_lines(path), start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise DataError("not valid UTF-8", source, number) from None
                if number == 1:
                    line = line.removeprefix("\ufeff")
                yield source, number, line.rstrip("\r\n")

    def lines(self) -> Iterator[str]:
        """Each text argument, then each line of each file: one document each."""
        yield from self.texts
        for _, _, line in self.numbered_lines():
            yield line

    def records(self, ids: bool = False) -> Iterator[tuple[Any, str]]:
        """(id, text) of each JSON-lines record (see jsonl_record); blank lines are skipped.
        With `ids`, a record without an id gets `line_id(file, line)`."""
        if self.texts:
            raise ValueError("JSON-lines input comes from files or stdin, not text arguments")
        for source, number, line in self.numbered_lines():
            if line.strip():
                ident, text = jsonl_record(line, source, number)
                yield (line_id(source, number) if ids and ident is None else ident), text

    def numbered_texts(self) -> Iterator[tuple[str, str]]:
        """(`line_id(file, line)`, text) of every file line: one document each."""
        if self.texts:
            raise ValueError("line ids number file lines, not text arguments")
        for source, number, line in self.numbered_lines():
            yield line_id(source, number), line

    def conll_sentences(self, word_column: int) -> Iterator[Sentence]:
        """Sentences of pre-tokenized CoNLL input, with every column kept."""
        for path in self.files:
            source = STDIN if str(path) == "-" else str(path)
            yield from parse_conll(
                self.binary_lines(path),
                source,
                word_column=word_column,
                tag_column=None,
                require_tags=False,
            )

    def documents(
        self,
        input_format: str = "text",
        pretokenized: bool = False,
        word_column: int = 0,
        ids: bool = False,
    ) -> Iterator[TaggedDocument]:
        """Documents to tag: a line of raw text each (`text`), a JSON-lines record each (`jsonl`,
        ids kept), or with `pretokenized` a CoNLL sentence each. With `ids` every document of
        a file has an id: its record's, else `FILE:LINE` (line_id)."""
        if pretokenized:
            return map(sentence_document, self.conll_sentences(word_column))
        if input_format == "jsonl":
            return text_documents(self.records(ids), with_ids=True)
        if ids:
            return text_documents(self.numbered_texts(), with_ids=True)
        return text_documents(self.lines())


def line_id(source: str, number: int) -> str:
    """The id of the document on line `number` (1-based) of the file named `source`: `a.txt:17`
    (the file as it was named, e.g. on the command line)."""
    return f"{source}:{number}"


def jsonl_record(line: str, source: str, number: int) -> tuple[Any, str]:
    """(id, text) from one JSON-lines line `{"id": ..., "text": "..."}`.

    `text` must be a string; `id` is any JSON value, copied to the output (absent or null: none);
    other keys are ignored. A bad line is a DataError naming source:number.
    """
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(f"not valid JSON ({err.msg}, column {err.colno})", source, number) from None
    if not isinstance(record, dict):
        raise DataError(
            f'expected a JSON object like {{"id": 1, "text": "..."}}, got {type(record).__name__}',
            source,
            number,
        )
    text = record.get("text")
    if not isinstance(text, str):
        got = 'no "text"' if "text" not in record else f'"text" of type {type(text).__name__}'
        raise DataError(f'each record needs a "text" string; {got}', source, number)
    return record.get("id"), text


def text_lines(path: Path | str) -> Iterator[str]:
    """Decoded lines (no line ends) of a UTF-8 file or of stdin ('-')."""
    for _, _, line in InputSource((), [Path(path)]).numbered_lines():
        yield line


def raw_documents(texts: Iterable[str], files: Iterable[Path]) -> Iterator[str]:
    """Each text argument is a document; each line of each file (or stdin when none) is one."""
    return InputSource(texts, files).lines()


def conll_sentences(files: Iterable[Path], word_column: int) -> Iterator[Sentence]:
    """Sentences of pre-tokenized CoNLL input (stdin when no file), with every column kept."""
    return InputSource((), files).conll_sentences(word_column)
