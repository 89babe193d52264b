"""Reading a word-vector file: format detection and its records, bounded.

Format detection (the file name is never used):
- gzip when the file starts with the magic bytes 1f 8b;
- a first line of exactly two non-negative integers `N D` is a word2vec/fastText header; otherwise
  the file is GloVe text (no header) and D is the first line's field count minus one;
- after a header, the file is word2vec text when its second line has D + 1 whitespace-separated
  fields and is ASCII after the word, and word2vec binary (`word` + space + D little-endian
  float32, optionally followed by a newline) otherwise.

Bounds: the dimension is at most MAX_DIM; a text line may be at most 64 bytes per value (plus
64 KiB), a binary word at most MAX_WORD_BYTES, so a file without newlines or spaces (or zeros
behind a gzip header) is an error, not a read of everything; only regular files are read (no
FIFO, no device such as /dev/zero). Words may hold any character but a space (a word2vec binary
word may hold a newline; model folders store such words escaped, nerwin.model.vocabfile).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
from numpy.typing import NDArray

from nerwin.errors import DataError

GLOVE, WORD2VEC_TEXT, WORD2VEC_BINARY = "glove", "word2vec-text", "word2vec-binary"
_CHUNK = 1 << 20
_FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_DIM = 1 << 16  # largest vector dimension accepted
MAX_WORD_BYTES = 1 << 16  # longest word of a binary record
_LINE_SLACK = 1 << 16  # a text line may hold 64 bytes per value plus this

Record = tuple[int, str, bytes]  # (line or record number, word, raw payload)


class Header(NamedTuple):
    """What detection found: format name, declared vector count (None for GloVe) and dimension."""

    format: str
    count: int | None
    dim: int


def check_path(path: Path) -> None:
    """Raise DataError when path is missing, a directory, or not a regular file (a FIFO or a
    device such as /dev/zero)."""
    if path.is_dir():
        raise DataError("is a directory, expected a word-vector file", path=path)
    if not path.exists():
        raise DataError("word-vector file not found", path=path)
    if not path.is_file():
        raise DataError("not a regular file, expected a word-vector file", path=path)


def open_vectors(path: Path) -> BinaryIO:
    """Open for binary reading, through gzip when the file starts with 1f 8b."""
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        return gzip.open(path, "rb") if gzipped else open(path, "rb", buffering=_CHUNK)
    except OSError as e:
        raise DataError(f"cannot read word-vector file: {e.strerror or e}", path=path) from None


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn a truncated or corrupt gzip stream into a DataError naming the file."""
    try:
        yield
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"compressed file is truncated or corrupt ({e})", path=path) from None


def detect(f: BinaryIO, path: Path) -> Header:
    """Read the first line or two of f and name the format (see the module docstring)."""
    first = _line(f, _line_limit(MAX_DIM), path, 1)
    fields = first.split()
    if not first:
        raise DataError("file is empty", path=path)
    if not fields:
        raise DataError("first line is blank", path=path, line=1)
    if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
        count, dim = int(fields[0]), int(fields[1])
        if not 1 <= dim <= MAX_DIM:
            raise DataError(
                f"header declares dimension {dim:,} (1 to {MAX_DIM:,})", path=path, line=1
            )
        second = f.readline(_line_limit(dim)).split(None, 1)
        is_text = len(second) == 2 and second[1].isascii() and _all_floats(second[1].split())
        return Header(WORD2VEC_TEXT if is_text else WORD2VEC_BINARY, count, dim)
    if len(fields) < 2:
        raise DataError("first line has a word but no vector values", path=path, line=1)
    if len(fields) - 1 > MAX_DIM:
        raise DataError(f"first line has more than {MAX_DIM:,} values", path=path, line=1)
    return Header(GLOVE, None, len(fields) - 1)


def _line_limit(dim: int) -> int:
    """Bytes a text line of `dim` values may take."""
    return 64 * dim + _LINE_SLACK


def _line(f: BinaryIO, limit: int, path: Path, lineno: int) -> bytes:
    """The next line of f, or DataError when it runs past `limit` bytes without a newline."""
    line = f.readline(limit)
    if len(line) >= limit and not line.endswith(b"\n"):
        raise DataError(
            f"line longer than {limit:,} bytes; not a vector file?", path=path, line=lineno
        )
    return line


def _all_floats(values: list[bytes]) -> bool:
    """True when every field parses as a number (a text vector line, whatever its length)."""
    try:
        [float(v) for v in values]
    except ValueError:
        return False
    return bool(values)


def _decode(word: bytes, path: Path, where: int, binary: bool) -> str:
    """The word as text, or DataError naming the line (text) or record (binary)."""
    try:
        return word.decode("utf-8")
    except UnicodeDecodeError:
        if binary:
            raise DataError(f"record {where}: word is not valid UTF-8", path=path) from None
        raise DataError("word is not valid UTF-8", path=path, line=where) from None


def text_records(f: BinaryIO, header: Header, path: Path) -> Iterator[Record]:
    """Yield (line, word, line bytes) per vector line, checking every line's field count cheaply."""
    dim, start, limit = header.dim, 1, _line_limit(header.dim)
    if header.count is not None:
        f.readline()
        start = 2
    for lineno, line in enumerate(iter(partial(f.readline, limit), b""), start):
        if len(line) == limit and not line.endswith(b"\n"):
            raise DataError(f"line longer than {limit:,} bytes", path=path, line=lineno)
        if line.count(b" ") == dim and line[:1] != b" ":  # fast path: `word v1 ... vD\n`
            yield lineno, _decode(line[: line.index(b" ")], path, lineno, False), line
            continue
        fields = line.split()  # tabs, doubled or trailing spaces, blank lines
        if not fields:
            continue
        if len(fields) != dim + 1:
            msg = f"expected {dim} values like the first vector, found {len(fields) - 1}"
            raise DataError(msg, path=path, line=lineno)
        yield lineno, _decode(fields[0], path, lineno, False), line


def binary_records(f: BinaryIO, header: Header, path: Path) -> Iterator[Record]:
    """Yield (record number, word, D float32 bytes) per record of a word2vec binary file."""
    f.readline()
    size, buf, pos, rec = 4 * header.dim, b"", 0, 0
    while True:
        end = buf.find(b" ", pos)
        while end < 0 or len(buf) < end + 1 + size:
            if end < 0 and len(buf) - pos > MAX_WORD_BYTES:
                msg = f"record {rec + 1}: no space within {MAX_WORD_BYTES:,} bytes (not a word"
                raise DataError(f"{msg}, a space and {header.dim:,} float32 values?)", path=path)
            chunk = f.read(_CHUNK)
            if not chunk:
                if buf[pos:].strip():
                    raise DataError(f"record {rec + 1} is truncated", path=path)
                return
            buf, pos = buf[pos:] + chunk, 0
            end = buf.find(b" ")
        rec += 1
        word = _decode(buf[pos:end].lstrip(b"\n"), path, rec, True)
        yield rec, word, buf[end + 1 : end + 1 + size]
        pos = end + 1 + size


def parse_text(line: bytes, lineno: int, *, dim: int, path: Path) -> NDArray[np.float32]:
    """The D values of a text line as float32, or DataError naming the line."""
    values = line.split()[1:]
    if len(values) != dim:
        msg = f"expected {dim} values like the first vector, found {len(values)}"
        raise DataError(msg, path=path, line=lineno)
    try:
        vec = np.array(values, dtype=np.float64)
    except ValueError:
        bad = next(v for v in values if not _is_float(v))
        msg = f"non-numeric value {bad.decode(errors='replace')!r}"
        raise DataError(msg, path=path, line=lineno) from None
    if not (np.isfinite(vec).all() and np.abs(vec).max() <= _FLOAT32_MAX):
        raise DataError("vector has a NaN, infinite or out-of-range value", path=path, line=lineno)
    return vec.astype(np.float32)


def parse_binary(payload: bytes, rec: int, *, path: Path) -> NDArray[np.float32]:
    """The D little-endian float32 values of a binary record, or DataError naming the record."""
    vec = np.frombuffer(payload, dtype="<f4")
    if not np.isfinite(vec).all():
        raise DataError(f"record {rec}: vector has a NaN or infinite value", path=path)
    return vec


def _is_float(text: bytes) -> bool:
    """Whether float() accepts text."""
    try:
        float(text)
    except ValueError:
        return False
    return True
