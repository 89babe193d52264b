"""Load pretrained word vectors for a vocabulary in one streaming pass, with an npz cache.

The file is read by nerwin.data.vectorfile (format detection, bounded records). The first
vector is read, and so holds the dimension the file declares, before the words' matrix is
allocated.

Lookup: a requested word takes the first file word equal to it (exact), else the first whose
lowercase form equals its lowercase form, else the first equal after also mapping every digit to
'0'; a better level found later in the file replaces a worse one.

The cache (nerwin.data.vector_cache) is an optimisation: when it cannot be written, a
`warning:` line says so and the vectors are used all the same.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from nerwin.data import vector_cache
from nerwin.data.vectorfile import (
    GLOVE,
    MAX_DIM,
    WORD2VEC_BINARY,
    WORD2VEC_TEXT,
    Header,
    binary_records,
    check_path,
    detect,
    open_vectors,
    parse_binary,
    parse_text,
    reading,
    text_records,
)
from nerwin.errors import DataError

__all__ = [
    "GLOVE",
    "MAX_DIM",
    "WORD2VEC_BINARY",
    "WORD2VEC_TEXT",
    "Coverage",
    "Header",
    "Vectors",
    "load_vectors",
    "read_header",
]

_DIGIT = re.compile(r"\d")  # any script's digits
_ZEROS = str.maketrans("123456789", "000000000")  # the ASCII fast path of _DIGIT
_MISSING = 3  # levels: 0 exact, 1 lowercase, 2 digit-normalised lowercase, 3 not found

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


def read_header(path: str | Path) -> Header:
    """Detect the format, declared count and dimension of a vector file without reading it all."""
    path = Path(path)
    check_path(path)
    with reading(path), open_vectors(path) as f:
        return detect(f, path)


def load_vectors(
    path: str | Path,
    words: Sequence[str],
    *,
    extra_top_n: int = 0,
    cache_dir: Path | None = None,
    seed: int = 0,
    warn: Callable[[str], object] | None = None,
) -> Vectors:
    """Vectors (len(words) + n_extra, dim): words, then the first extra_top_n others (-1: all).

    A cache that cannot be written is reported through `warn` (a message without the
    `warning: ` prefix; default: a `warning:` line on stderr) and otherwise ignored.
    """
    if extra_top_n < -1:
        raise ValueError(f"extra_top_n must be -1 (all) or >= 0, got {extra_top_n}")
    path, words = Path(path), tuple(words)
    check_path(path)
    if cache_dir is None:
        return _build(path, words, extra_top_n, seed)
    file, key = vector_cache.entry(path, words, (extra_top_n, seed), Path(cache_dir))
    cached = _from_cache(vector_cache.read(file, key, ("matrix", "found", "coverage")))
    if cached is not None:
        return cached
    vectors = _build(path, words, extra_top_n, seed)
    try:
        vector_cache.write(file, key, vectors.words, _to_cache(vectors))
    except DataError as err:
        (warn or _warn)(
            f"{err}; the vectors are used uncached (set NERWIN_CACHE to a writable folder)"
        )
    return vectors


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


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
    with reading(path), open_vectors(path) as f:
        header = detect(f, path)
        f.seek(0)
        binary = header.format == WORD2VEC_BINARY
        parse = (
            partial(parse_binary, path=path)
            if binary
            else partial(parse_text, dim=header.dim, path=path)
        )
        records = (binary_records if binary else text_records)(f, header, path)
        first = next(records, None)  # holds `dim` values (or raised) before the matrix is made
        scan = _Scan(words, header.dim, extra_top_n, parse)
        for where, word, payload in itertools.chain([first] if first else [], records):
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
