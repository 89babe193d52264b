"""vector_cache: entry names and keys, round trips, misses on stale or corrupt entries, writes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from nerwin.data import vector_cache
from nerwin.errors import DataError

ARRAYS = {"matrix": np.arange(6, dtype=np.float32).reshape(3, 2), "found": np.ones(3, bool)}
WORDS = ("the", "Zürich", "")


def _vectors_file(tmp_path: Path) -> Path:
    path = tmp_path / "v.txt"
    path.write_text("the 1 2\n", encoding="utf-8")
    return path


def test_vector_cache_entry_depends_on_file_words_and_options(tmp_path: Path) -> None:
    path = _vectors_file(tmp_path)
    file, key = vector_cache.entry(path, WORDS, (0, 1), tmp_path / "c")
    assert file.parent == tmp_path / "c" and file.name == f"vectors-{key[:32]}.npz"
    assert vector_cache.entry(path, list(WORDS), [0, 1], tmp_path / "c") == (file, key)
    others = {
        vector_cache.entry(path, WORDS[:2], (0, 1), tmp_path / "c")[1],
        vector_cache.entry(path, WORDS, (0, 2), tmp_path / "c")[1],
    }
    os.utime(path, ns=(1, 10**18))
    others.add(vector_cache.entry(path, WORDS, (0, 1), tmp_path / "c")[1])
    assert key not in others and len(others) == 3


def test_vector_cache_round_trip(tmp_path: Path) -> None:
    file = tmp_path / "cache" / "vectors-x.npz"
    vector_cache.write(file, "k1", WORDS, ARRAYS)
    words, arrays = vector_cache.read(file, "k1")
    assert words == WORDS and set(arrays) == set(ARRAYS)
    for name, array in ARRAYS.items():
        assert arrays[name].dtype == array.dtype and np.array_equal(arrays[name], array)
    assert [p.name for p in file.parent.iterdir()] == [file.name]  # no temporary file left


def test_vector_cache_misses_are_none(tmp_path: Path) -> None:
    file = tmp_path / "vectors-x.npz"
    assert vector_cache.read(file, "k1") is None  # absent
    vector_cache.write(file, "k1", WORDS, ARRAYS)
    assert vector_cache.read(file, "k2") is None  # another key
    file.write_bytes(b"PK\x03\x04 not a zip at all")
    assert vector_cache.read(file, "k1") is None  # corrupt
    vector_cache.write(file, "k1", WORDS, ARRAYS)  # a corrupt entry is replaced
    assert vector_cache.read(file, "k1")[0] == WORDS


def test_vector_cache_write_failure_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("a file where the cache folder goes")
    file = tmp_path / "cache" / "vectors-x.npz"
    with pytest.raises(DataError, match="cannot write the vector cache") as info:
        vector_cache.write(file, "k1", WORDS, ARRAYS)
    assert str(info.value).startswith(f"{file}: ")


def test_vector_cache_reads_only_the_arrays_asked_for(tmp_path: Path) -> None:
    file = tmp_path / "vectors-x.npz"
    vector_cache.write(file, "k1", WORDS, {**ARRAYS, "junk": np.zeros((500, 500), np.float32)})
    words, arrays = vector_cache.read(file, "k1", ("matrix",))
    assert words == WORDS and list(arrays) == ["matrix"]
    assert vector_cache.read(file, "k1", ("matrix", "missing")) is None
