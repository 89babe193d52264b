"""Load pretrained word vectors for a vocabulary in one streaming pass, with an npz cache.

Format detection (the file name is never used):
- gzip when the file starts with the magic bytes 1f 8b;
- a first line of exactly two non-negative integers `N D` is a word2vec/fastText header; otherwise
  the file is GloVe text (no header) and D is the first line's field count minus one;
- after a header, the file is word2vec text when its second line has D + 1 whitespace-separated
  fields and is ASCII after the word, and word2vec binary (`word` + space + D little-endian
  float32, optionally followed by a newline) otherwise.

Lookup: a requested word takes the first file word equal to it (exact), else the first whose
lowercase form equals its lowercase form, else the first equal after also mapping every digit to
'0'; a better level found later in the file replaces a worse one.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
from numpy.typing import NDArray

from nerwin.data import vector_cache
from nerwin.errors import DataError

GLOVE, WORD2VEC_TEXT, WORD2VEC_BINARY = "glove", "word2vec-text", "word2vec-binary"
_CHUNK = 1 << 20
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_DIGIT = re.compile(r"\d")  # any script's digits
_ZEROS = str.maketrans("123456789", "000000000")  # the ASCII fast path of _DIGIT
_MISSING = 3  # levels: 0 exact, 1 lowercase, 2 digit-normalised lowercase, 3 not found

Record = tuple[int, str, bytes]  # (line or record number, word, raw payload)
_Parse = Callable[[bytes, int], NDArray[np.float32]]  # (payload, line or record) -> vector (dim,)


@dataclass(frozen=True)
class Coverage:
    """How the requested words were found: per lookup level, missing, and duplicates in the file."""

    exact: int
    lowercase: int
    digits: int
    missing: int
    duplicates: int

    @property
    def found(self) -> int:
        """Requested words that got a vector from the file."""
        return self.exact + self.lowercase + self.digits

    @property
    def total(self) -> int:
        """Requested words."""
        return self.found + self.missing

    def summary(self) -> str:
        """One line for the CLI: found, per level, missing and duplicates."""
        return (
            f"vectors: {self.found:,} of {self.total:,} words found ({self.exact:,} exact, "
            f"{self.lowercase:,} lowercase, {self.digits:,} digit-normalised), "
            f"{self.missing:,} missing; {self.duplicates:,} duplicate words in file"
        )


@dataclass(frozen=True, eq=False)
class Vectors:
    """matrix (len(words), dim): requested words, then extra file words; found (len(words),)."""

    words: tuple[str, ...]
    matrix: NDArray[np.float32]
    found: NDArray[np.bool_]
    dim: int
    coverage: Coverage


class Header(NamedTuple):
    """What detection found: format name, declared vector count (None for GloVe) and dimension."""

    format: str
    count: int | None
    dim: int


def read_header(path: str | Path) -> Header:
    """Detect the format, declared count and dimension of a vector file without reading it all."""
    path = Path(path)
    _check_path(path)
    with _reading(path), _open(path) as f:
        return _detect(f, path)


def load_vectors(
    path: str | Path,
    words: Sequence[str],
    *,
    extra_top_n: int = 0,
    cache_dir: Path | None = None,
    seed: int = 0,
) -> Vectors:
    """Vectors (len(words) + n_extra, dim): words, then the first extra_top_n others (-1: all)."""
    if extra_top_n < -1:
        raise ValueError(f"extra_top_n must be -1 (all) or >= 0, got {extra_top_n}")
    path, words = Path(path), tuple(words)
    _check_path(path)
    if cache_dir is None:
        return _build(path, words, extra_top_n, seed)
    file, key = vector_cache.entry(path, words, (extra_top_n, seed), Path(cache_dir))
    cached = _from_cache(vector_cache.read(file, key))
    if cached is not None:
        return cached
    vectors = _build(path, words, extra_top_n, seed)
    vector_cache.write(file, key, vectors.words, _to_cache(vectors))
    return vectors


def _check_path(path: Path) -> None:
    """Raise DataError when path is missing or a directory."""
    if path.is_dir():
        raise DataError("is a directory, expected a word-vector file", path=path)
    if not path.is_file():
        raise DataError("word-vector file not found", path=path)


def _open(path: Path) -> BinaryIO:
    """Open for binary reading, through gzip when the file starts with 1f 8b."""
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        return gzip.open(path, "rb") if gzipped else open(path, "rb", buffering=_CHUNK)
    except OSError as e:
        raise DataError(f"cannot read word-vector file: {e.strerror or e}", path=path) from None


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn a truncated or corrupt gzip stream into a DataError naming the file."""
    try:
        yield
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"compressed file is truncated or corrupt ({e})", path=path) from None


def _detect(f: BinaryIO, path: Path) -> Header:
    """Read the first line or two of f and name the format (see the module docstring)."""
    first = f.readline()
    fields = first.split()
    if not first:
        raise DataError("file is empty", path=path)
    if not fields:
        raise DataError("first line is blank", path=path, line=1)
    if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
        count, dim = int(fields[0]), int(fields[1])
        if dim < 1:
            raise DataError(f"header declares dimension {dim}", path=path, line=1)
        second = f.readline(64 * dim + 4096).split(None, 1)
        is_text = len(second) == 2 and second[1].isascii() and _all_floats(second[1].split())
        return Header(WORD2VEC_TEXT if is_text else WORD2VEC_BINARY, count, dim)
    if len(fields) < 2:
        raise DataError("first line has a word but no vector values", path=path, line=1)
    return Header(GLOVE, None, len(fields) - 1)


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


def _text_records(f: BinaryIO, header: Header, path: Path) -> Iterator[Record]:
    """Yield (line, word, line bytes) per vector line, checking every line's field count cheaply."""
    dim, start = header.dim, 1
    if header.count is not None:
        f.readline()
        start = 2
    for lineno, line in enumerate(f, start):
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


def _binary_records(f: BinaryIO, header: Header, path: Path) -> Iterator[Record]:
    """Yield (record number, word, D float32 bytes) per record of a word2vec binary file."""
    f.readline()
    size, buf, pos, rec = 4 * header.dim, b"", 0, 0
    while True:
        end = buf.find(b" ", pos)
        while end < 0 or len(buf) < end + 1 + size:
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


def _parse_text(line: bytes, lineno: int, *, dim: int, path: Path) -> NDArray[np.float32]:
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


def _parse_binary(payload: bytes, rec: int, *, path: Path) -> NDArray[np.float32]:
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


def _keys(word: str) -> tuple[str, str, str]:
    """The lookup keys of word: as written, lowercase, lowercase with every digit -> '0'."""
    lower = word.lower()
    if lower.isalpha():
        return word, lower, lower
    return word, lower, lower.translate(_ZEROS) if lower.isascii() else _DIGIT.sub("0", lower)


class _Scan:
    """Streaming state: best level and row per requested word, extra words, duplicates, count."""

    def __init__(self, words: tuple[str, ...], dim: int, extra_top_n: int, parse: _Parse):
        self.parse = parse
        self.wanted: list[dict[str, list[int]]] = [{}, {}, {}]
        for i, word in enumerate(words):
            for level, key in enumerate(_keys(word)):
                self.wanted[level].setdefault(key, []).append(i)
        self.level = [_MISSING] * len(words)
        self.matrix = np.zeros((len(words), dim), dtype=np.float32)
        self.requested = set(words)
        self.extra_left = extra_top_n if extra_top_n >= 0 else -1
        self.extra_words: list[str] = []
        self.extra_rows: list[NDArray[np.float32]] = []
        self.seen: set[str] = set()
        self.duplicates = self.count = 0

    def feed(self, where: int, word: str, payload: bytes) -> None:
        """Take one file entry; its payload is parsed only when a vector is needed."""
        self.count += 1
        size = len(self.seen)
        self.seen.add(word)
        if len(self.seen) == size:
            self.duplicates += 1
            return
        vec = None
        for level, key in enumerate(_keys(word)):
            for i in self.wanted[level].pop(key, ()):  # first occurrence per level wins: pop
                if self.level[i] > level:
                    vec = self.parse(payload, where) if vec is None else vec
                    self.matrix[i], self.level[i] = vec, level
        if self.extra_left != 0 and word not in self.requested:
            self.extra_words.append(word)
            self.extra_rows.append(self.parse(payload, where) if vec is None else vec)
            self.extra_left -= 1

    def vectors(self, words: tuple[str, ...], seed: int) -> Vectors:
        """The result: requested rows, extra rows, missing rows drawn at the found rows' scale."""
        n, dim = self.matrix.shape
        matrix = np.empty((n + len(self.extra_rows), dim), dtype=np.float32)
        matrix[:n] = self.matrix
        if self.extra_rows:
            np.stack(self.extra_rows, out=matrix[n:])
        found = np.array([lv != _MISSING for lv in self.level] + [True] * len(self.extra_rows))
        _fill_missing(matrix, found, np.random.default_rng(seed))
        per_level = np.bincount(np.array(self.level, dtype=np.int64), minlength=_MISSING + 1)
        coverage = Coverage(*(int(c) for c in per_level), duplicates=self.duplicates)
        return Vectors(words + tuple(self.extra_words), matrix, found, dim, coverage)


def _fill_missing(matrix: NDArray[np.float32], found: NDArray[np.bool_], rng: np.random.Generator):
    """Fill the all-zero rows (n, dim) not found with N(0, per-dimension std of found rows)."""
    n_found, dim = int(found.sum()), matrix.shape[1]
    if n_found == len(found):
        return
    std = np.full(dim, 0.1)  # too few found rows to measure a scale
    if n_found > 1:  # sums over all rows = sums over found rows, without a float64 copy
        mean = matrix.sum(axis=0, dtype=np.float64) / n_found
        sq = np.einsum("ij,ij->j", matrix, matrix, dtype=np.float64) / n_found
        std = np.sqrt(np.maximum(sq - mean**2, 0.0))
    draws = rng.standard_normal((len(found) - n_found, dim)) * std
    matrix[~found] = draws.astype(np.float32)


def _build(path: Path, words: tuple[str, ...], extra_top_n: int, seed: int) -> Vectors:
    """Stream the file once and assemble the Vectors."""
    with _reading(path), _open(path) as f:
        header = _detect(f, path)
        f.seek(0)
        binary = header.format == WORD2VEC_BINARY
        parse = (
            partial(_parse_binary, path=path)
            if binary
            else partial(_parse_text, dim=header.dim, path=path)
        )
        scan = _Scan(words, header.dim, extra_top_n, parse)
        for where, word, payload in (_binary_records if binary else _text_records)(f, header, path):
            scan.feed(where, word, payload)
    if header.count is not None and header.count != scan.count:
        msg = f"header declares {header.count:,} vectors but the file has {scan.count:,}"
        raise DataError(msg, path=path, line=1)
    if scan.count == 0:
        raise DataError("file has no vectors", path=path)
    return scan.vectors(words, seed)


def _to_cache(vectors: Vectors) -> dict[str, np.ndarray]:
    """The arrays the vector cache stores beside the words."""
    c = vectors.coverage
    return {
        "matrix": vectors.matrix,
        "found": vectors.found,
        "coverage": np.array([c.exact, c.lowercase, c.digits, c.missing, c.duplicates]),
    }


def _from_cache(entry: tuple[tuple[str, ...], dict[str, np.ndarray]] | None) -> Vectors | None:
    """The Vectors of a cache entry, or None when it is missing or does not hold them."""
    if entry is None:
        return None
    words, arrays = entry
    try:
        matrix, found, counts = arrays["matrix"], arrays["found"], arrays["coverage"]
        n = len(words)
        if matrix.dtype != np.float32 or matrix.ndim != 2 or (len(matrix), len(found)) != (n, n):
            return None
        coverage = Coverage(*map(int, counts))
    except (KeyError, TypeError, ValueError):
        return None
    return Vectors(words, matrix, found.astype(bool), matrix.shape[1], coverage)
