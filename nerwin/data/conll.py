"""Read and write CoNLL column files: one token per line, a blank line after each sentence."""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TextIO

import numpy as np
from numpy.typing import NDArray

from nerwin.data.schemes import (
    detect_scheme,
    fits_scheme,
    normalise_scheme,
    parse_tag,
    spans_to_binary,
    tags_to_spans,
)
from nerwin.errors import DataError

DOCSTART = "-DOCSTART-"


MAX_CORPUS_BYTES = 2 << 30  # a corpus file larger than this (2 GiB) is refused
READ_CHUNK = 1 << 24  # bytes read at a time (16 MiB)


@dataclass(frozen=True)
class Sentence:
    """One sentence: words, gold tags (empty if untagged), raw columns, first line (1-based)."""

    words: tuple[str, ...]
    tags: tuple[str, ...] = ()
    columns: tuple[tuple[str, ...], ...] = ()
    line: int = 0

    def __len__(self) -> int:
        """Number of tokens."""
        return len(self.words)


@dataclass(frozen=True)
class Corpus:
    """The sentences of one file and the tag scheme they use."""

    path: str
    sentences: tuple[Sentence, ...]
    scheme: str = "IOB2"

    @cached_property
    def n_tokens(self) -> int:
        """Number of tokens over all sentences."""
        return sum(len(sentence.words) for sentence in self.sentences)

    @cached_property
    def entity_types(self) -> tuple[str, ...]:
        """Sorted entity types that occur in the tags (e.g. ('LOC', 'MISC', 'ORG', 'PER'))."""
        tags = {tag for sentence in self.sentences for tag in sentence.tags}
        return tuple(sorted({parse_tag(tag)[1] for tag in tags} - {""}))


def read_conll(
    path: str | Path,
    *,
    word_column: int = 0,
    tag_column: int | None = -1,
    scheme: str = "auto",
    require_tags: bool = True,
    keep_columns: bool = True,
) -> Corpus:
    """Read a CoNLL file (scheme 'auto' detects it); a bad line raises DataError at path:line.

    keep_columns=False drops the other columns (only words and tags kept), saving memory.
    """
    text = _read_text(Path(path))
    sentences = tuple(
        parse_conll(
            text.split("\n"),
            str(path),
            word_column=word_column,
            tag_column=tag_column,
            require_tags=require_tags,
            keep_columns=keep_columns,
        )
    )
    del text
    if not sentences:
        message = "no sentences found (the file is empty or holds only -DOCSTART- lines)"
        raise DataError(message, path)
    return Corpus(str(path), sentences, _resolve_scheme(sentences, scheme, str(path)))


def _read_text(path: Path) -> str:
    """The file as UTF-8 text without BOM; a NUL byte or bad UTF-8 raises DataError at its line.

    Read in chunks, so a device or an endless pipe given as a corpus (/dev/zero) is refused at
    its first NUL byte, or past MAX_CORPUS_BYTES, before its memory is taken.
    """
    parts, total, lines = [], 0, 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(READ_CHUNK):
                nul = chunk.find(b"\x00")
                if nul >= 0:
                    line = lines + chunk.count(b"\n", 0, nul) + 1
                    raise DataError("contains a NUL byte (binary file?)", path, line)
                total += len(chunk)
                if total > MAX_CORPUS_BYTES:
                    raise DataError(f"larger than {MAX_CORPUS_BYTES >> 30} GiB; split it", path)
                lines += chunk.count(b"\n")
                parts.append(chunk)
    except FileNotFoundError:
        raise DataError("file not found", path) from None
    except IsADirectoryError:
        raise DataError("is a directory, expected a CoNLL file", path) from None
    except OSError as err:
        raise DataError(f"cannot read the file ({err.strerror})", path) from None
    data = b"".join(parts).removeprefix(codecs.BOM_UTF8)
    del parts
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataError(f"is not valid UTF-8 (byte {data[err.start]:#04x})", path, line) from None


def _numbered(lines: Iterable[str | bytes], source: str) -> Iterator[tuple[int, str]]:
    """Yield (1-based number, text) of lines, dropping a leading BOM; NULs and bad UTF-8 raise."""
    texts = (line.decode("utf-8") if isinstance(line, bytes) else line for line in lines)
    number = 0
    try:
        for number, line in enumerate(texts, 1):
            if number == 1:
                line = line.removeprefix("\ufeff")
            if "\x00" in line:
                raise DataError("contains a NUL byte (binary file?)", source, number)
            yield number, line
    except UnicodeDecodeError:
        raise DataError("is not valid UTF-8", source, number + 1) from None


def _layout(
    fields: list[str],
    word_column: int,
    tag_column: int | None,
    require_tags: bool,
    source: str,
    number: int,
) -> tuple[int, int, int | None]:
    """(number of columns, word index, tag index or None) fixed by the first token line."""
    n = len(fields)
    if not -n <= word_column < n:
        raise DataError(f"word_column={word_column} but the line has {n} column(s)", source, number)
    word = word_column % n
    tag = None
    if tag_column is not None and -n <= tag_column < n and tag_column % n != word:
        tag = tag_column % n
    if tag is None and require_tags:
        raise DataError(
            f"no tag column (tag_column={tag_column}, the line has {n} column(s), "
            f"word_column={word_column})",
            source,
            number,
        )
    return n, word, tag


def _check_tag(tag: str, source: str, number: int) -> None:
    """Raise DataError at source:number unless tag is O or P-TYPE."""
    try:
        parse_tag(tag)
    except ValueError as err:
        raise DataError(str(err), source, number) from None


def _sentence(
    rows: list[tuple[str, ...]], first: int, word: int, tag: int | None, keep_columns: bool = True
) -> Sentence:
    """A Sentence from its token rows."""
    columns = list(zip(*rows))
    tags = columns[tag] if tag is not None else ()
    return Sentence(columns[word], tags, tuple(rows) if keep_columns else (), first)


def parse_conll(
    lines: Iterable[str | bytes],
    source: str,
    *,
    word_column: int = 0,
    tag_column: int | None = -1,
    require_tags: bool = True,
    keep_columns: bool = True,
) -> Iterator[Sentence]:
    """Stream Sentences from CoNLL lines (str or UTF-8 bytes); errors name source:line."""
    layout: tuple[int, int, int | None] | None = None
    rows: list[tuple[str, ...]] = []
    first, checked = 0, {"O"}
    for number, line in _numbered(lines, source):
        fields = line.split()
        if not fields or fields[0] == DOCSTART:
            if rows:
                yield _sentence(rows, first, layout[1], layout[2], keep_columns)
                rows = []
            continue
        if layout is None:
            layout = _layout(fields, word_column, tag_column, require_tags, source, number)
        elif len(fields) != layout[0]:
            raise DataError(
                f"has {len(fields)} column(s) but the first token line has {layout[0]}",
                source,
                number,
            )
        if layout[2] is not None and fields[layout[2]] not in checked:
            _check_tag(fields[layout[2]], source, number)
            checked.add(fields[layout[2]])
        if not rows:
            first = number
        rows.append(tuple(fields))
    if rows:
        yield _sentence(rows, first, layout[1], layout[2], keep_columns)


def _resolve_scheme(sentences: Sequence[Sentence], scheme: str, source: str) -> str:
    """The detected scheme for 'auto', else the given one after checking every tag fits it."""
    if scheme.strip().lower() == "auto":
        return detect_scheme(sentence.tags for sentence in sentences)
    name = normalise_scheme(scheme)
    unique = {tag for sentence in sentences for tag in sentence.tags}
    misfits = {tag for tag in unique if not fits_scheme(tag, name)}
    for sentence in sentences if misfits else ():
        for i, tag in enumerate(sentence.tags):
            if tag in misfits:
                message = f"tag {tag!r} is not part of the {name} scheme"
                raise DataError(message, source, sentence.line + i)
    return name


def write_conll(
    sentences: Iterable[Sentence], predicted: Iterable[Sequence[str]], out: TextIO
) -> None:
    """Write each sentence's input columns plus a predicted tag column, a blank line after each."""
    for sentence, tags in zip(sentences, predicted, strict=True):
        rows = sentence.columns or tuple((word,) for word in sentence.words)
        if len(tags) != len(rows):
            raise ValueError(
                f"{len(tags)} predicted tags for a sentence of {len(rows)} tokens "
                f"(line {sentence.line})"
            )
        out.write(conll_rows(rows, tags) + "\n")


def conll_rows(rows: Sequence[Sequence[str]], tags: Sequence[str]) -> str:
    """One line per token: its columns, then its tag, space-separated."""
    return "".join(" ".join((*row, tag)) + "\n" for row, tag in zip(rows, tags))


def location_spans(corpus: Corpus, location_types: Sequence[str]) -> NDArray[np.int64]:
    """Gold spans (k, 2) whose type is in location_types, as token offsets in corpus order."""
    if corpus.sentences and not corpus.sentences[0].tags:
        raise DataError("has no tag column, so it has no gold locations", corpus.path)
    types, spans, offset = frozenset(location_types), [], 0
    for sentence in corpus.sentences:
        for start, end, kind in tags_to_spans(sentence.tags, corpus.scheme):
            if kind in types:
                spans.append((offset + start, offset + end))
        offset += len(sentence.words)
    return np.array(spans, dtype=np.int64).reshape(-1, 2)


def location_labels(corpus: Corpus, location_types: Sequence[str]) -> NDArray[np.int8]:
    """0/1 labels (n_tokens,): 1 inside a gold span whose type is in location_types."""
    return spans_to_binary(location_spans(corpus, location_types), corpus.n_tokens)
