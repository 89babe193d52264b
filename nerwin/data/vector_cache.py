"""The vector cache: parsed word vectors kept as one .npz per vector file, word list and options.

An entry is named and keyed by a sha256 of the vector file's identity (resolved path, size,
modification time), the requested words, the options and CACHE_VERSION, so a changed file or
request never finds an old entry. It holds the words (UTF-8 bytes and offsets) and named arrays;
a stale, foreign or corrupt entry reads as a miss, never as an error. Entries are written
atomically (nerwin.files.atomic), so a crashed write leaves no half entry. A write that fails
(the cache folder is a file, or read-only) is a DataError; nerwin.data.embeddings turns it into
a warning, since the cache only saves time.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nerwin.errors import DataError
from nerwin.files import atomic

CACHE_VERSION = 1
_OWN = ("key", "words", "offsets")  # the entry's own arrays, beside the caller's


def entry(
    path: Path, words: Sequence[str], options: Sequence[object], cache_dir: Path
) -> tuple[Path, str]:
    """The cache file and key for vectors of `path` for `words` with JSON-ready `options`."""
    stat = path.stat()
    ident = [CACHE_VERSION, str(path.resolve()), stat.st_size, stat.st_mtime_ns, *options]
    blob = json.dumps([*ident, list(words)], ensure_ascii=False).encode("utf-8", "surrogatepass")
    key = hashlib.sha256(blob).hexdigest()
    return cache_dir / f"vectors-{key[:32]}.npz", key


def read(
    file: Path, key: str, names: Sequence[str] | None = None
) -> tuple[tuple[str, ...], dict[str, np.ndarray]] | None:
    """(words, arrays by name) stored under `key`, or None when absent, stale or corrupt.

    `names`: read only these arrays (a missing one is a miss); None reads every array.
    """
    try:
        with open(file, "rb") as handle, np.load(handle, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            text, offsets = z["words"].tobytes(), z["offsets"]
            words = tuple(text[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets))
            wanted = [n for n in z.files if n not in _OWN] if names is None else names
            return words, {name: z[name] for name in wanted}
    except Exception:
        return None


def write(file: Path, key: str, words: Sequence[str], arrays: dict[str, np.ndarray]) -> None:
    """Store `words` and `arrays` under `key` in `file`, atomically; DataError when it fails."""
    encoded = [w.encode("utf-8") for w in words]
    payload = {
        "key": np.array(key),
        "words": np.frombuffer(b"".join(encoded), dtype=np.uint8),
        "offsets": np.cumsum([0] + [len(b) for b in encoded], dtype=np.int64),
        **arrays,
    }
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_file(file, lambda temp: _savez(temp, payload))
    except OSError as e:
        raise DataError(f"cannot write the vector cache: {e.strerror or e}", path=file) from None


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez into exactly `path` (given a file name, np.savez would add .npz to it)."""
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
