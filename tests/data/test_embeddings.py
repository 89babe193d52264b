"""Tests for nerwin.data.embeddings: formats, detection, lookup levels, errors and the cache."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from nerwin.data import embeddings
from nerwin.data.embeddings import (
    GLOVE,
    WORD2VEC_BINARY,
    WORD2VEC_TEXT,
    Coverage,
    load_vectors,
    read_header,
)
from nerwin.errors import DataError

TABLE = {"the": [0.5, -1.0, 2.0], "Paris": [1.0, 2.0, 3.0], "of": [-0.25, 0.0, 1.5]}


@pytest.fixture(autouse=True)
def _strict_numbers():
    """Run every test with numpy overflow and invalid operations raising."""
    with np.errstate(over="raise", invalid="raise"):
        yield


def _text(table: dict[str, list[float]]) -> str:
    """GloVe lines `word v1 ... vD` for table."""
    return "".join(f"{w} {' '.join(str(float(x)) for x in v)}\n" for w, v in table.items())


def _write(path: Path, data: str | bytes, gz: bool = False) -> Path:
    """Write data (str as UTF-8) to path, gzip-compressed when gz."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def _binary(table: dict[str, list[float]], newline: bool = True, count: int | None = None) -> bytes:
    """A word2vec binary file for table: header, then `word ` + float32 values (+ `\\n`)."""
    dim = len(next(iter(table.values())))
    out = [f"{len(table) if count is None else count} {dim}\n".encode()]
    for word, vec in table.items():
        out.append(word.encode() + b" " + np.asarray(vec, dtype="<f4").tobytes())
        out.append(b"\n" if newline else b"")
    return b"".join(out)


def _assert_table(vectors, table: dict[str, list[float]]) -> None:
    """Check every word of table was found with its vector."""
    assert vectors.dim == 3
    assert vectors.found[: len(table)].all()
    for word, vec in table.items():
        np.testing.assert_array_equal(vectors.matrix[vectors.words.index(word)], vec)


@pytest.mark.parametrize("gz", [False, True])
def test_embeddings_reads_glove_text(tmp_path, gz):
    path = _write(tmp_path / "v.txt", _text(TABLE), gz)
    vectors = load_vectors(path, list(TABLE))
    assert vectors.words == tuple(TABLE)
    assert vectors.matrix.dtype == np.float32 and vectors.matrix.shape == (3, 3)
    _assert_table(vectors, TABLE)


@pytest.mark.parametrize("gz", [False, True])
def test_embeddings_reads_word2vec_text(tmp_path, gz):
    path = _write(tmp_path / "v.vec", f"3 3\n{_text(TABLE)}", gz)
    _assert_table(load_vectors(path, list(TABLE)), TABLE)


@pytest.mark.parametrize("newline", [True, False])
@pytest.mark.parametrize("gz", [False, True])
def test_embeddings_reads_word2vec_binary(tmp_path, gz, newline):
    path = _write(tmp_path / "v.bin", _binary(TABLE, newline), gz)
    _assert_table(load_vectors(path, list(TABLE)), TABLE)


def test_embeddings_reads_fasttext_trailing_spaces_and_crlf(tmp_path):
    lines = _text(TABLE).replace("\n", " \r\n")
    _assert_table(load_vectors(_write(tmp_path / "v.vec", f"3 3\r\n{lines}"), list(TABLE)), TABLE)


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("a.txt.gz", _text(TABLE).encode(), (GLOVE, None, 3)),
        ("a.txt", gzip.compress(_text(TABLE).encode()), (GLOVE, None, 3)),
        ("a.bin", f"3 3\n{_text(TABLE)}".encode(), (WORD2VEC_TEXT, 3, 3)),
        ("a.txt", _binary(TABLE), (WORD2VEC_BINARY, 3, 3)),
        ("a.vec", gzip.compress(_binary(TABLE, newline=False)), (WORD2VEC_BINARY, 3, 3)),
    ],
)
def test_embeddings_detects_format_by_content_not_name(tmp_path, name, data, expected):
    assert tuple(read_header(_write(tmp_path / name, data))) == expected


def test_embeddings_coverage_levels(tmp_path):
    table = {"Paris": [1, 1, 1], "london": [2, 2, 2], "1996": [3, 3, 3], "Q1": [4, 4, 4]}
    path = _write(tmp_path / "v.txt", _text(table))
    words = ["Paris", "PARIS", "London", "1996", "1997", "q3", "zebra"]
    vectors = load_vectors(path, words)
    assert vectors.coverage == Coverage(exact=2, lowercase=2, digits=2, missing=1, duplicates=0)
    assert vectors.coverage.total == 7
    rows = dict(zip(words, vectors.matrix[:, 0]))
    assert [rows[w] for w in words[:-1]] == [1, 1, 2, 3, 3, 4]
    assert vectors.found.tolist() == [True] * 6 + [False]
    assert vectors.coverage.summary() == (
        "vectors: 6 of 7 words found (2 exact, 2 lowercase, 2 digit-normalised), 1 missing; "
        "0 duplicate words in file"
    )


def test_embeddings_exact_beats_earlier_lowercase_and_first_wins_within_level(tmp_path):
    table = {"PARIS": [1, 1, 1], "Paris": [2, 2, 2], "paris": [3, 3, 3], "2001": [4, 4, 4]}
    table["2002"] = [5, 5, 5]
    vectors = load_vectors(_write(tmp_path / "v.txt", _text(table)), ["paris", "pARIS", "1999"])
    assert vectors.matrix[:, 0].tolist() == [3, 1, 4]
    assert vectors.coverage == Coverage(exact=1, lowercase=1, digits=1, missing=0, duplicates=0)


def test_embeddings_missing_rows_match_found_scale_and_seed(tmp_path, rng):
    scale = np.array([0.01, 1.0, 10.0])
    table = {f"w{i}": list(rng.normal(0, 1, 3) * scale) for i in range(2000)}
    path = _write(tmp_path / "v.txt", _text(table))
    words = list(table) + [f"missing{i}" for i in range(2000)]
    vectors = load_vectors(path, words, seed=7)
    assert not vectors.found[2000:].any()
    missing = vectors.matrix[2000:]
    np.testing.assert_allclose(missing.std(axis=0), vectors.matrix[:2000].std(axis=0), rtol=0.1)
    np.testing.assert_array_equal(load_vectors(path, words, seed=7).matrix, vectors.matrix)
    assert not np.array_equal(load_vectors(path, words, seed=8).matrix[2000:], missing)


def test_embeddings_missing_rows_default_scale_when_nothing_found(tmp_path):
    path = _write(tmp_path / "v.txt", _text(TABLE))
    vectors = load_vectors(path, [f"x{i}" for i in range(3000)])
    assert vectors.coverage.missing == 3000
    np.testing.assert_allclose(vectors.matrix.std(axis=0), 0.1, rtol=0.1)


def test_embeddings_extra_top_n_adds_first_unrequested_file_words(tmp_path):
    table = {"a": [1, 1, 1], "b": [2, 2, 2], "c": [3, 3, 3], "d": [4, 4, 4]}
    path = _write(tmp_path / "v.txt", _text(table) + "a 9 9 9\n")
    two = load_vectors(path, ["b", "zz"], extra_top_n=2)
    assert two.words == ("b", "zz", "a", "c")
    assert two.matrix[2:, 0].tolist() == [1, 3] and two.found.tolist() == [True, False, True, True]
    assert two.coverage.total == 2
    every = load_vectors(path, ["b"], extra_top_n=-1)
    assert every.words == ("b", "a", "c", "d") and every.coverage.duplicates == 1


def test_embeddings_duplicates_counted_and_first_kept(tmp_path):
    path = _write(tmp_path / "v.txt", "x 1 1\ny 2 2\nx 3 3\nx 4 4\n")
    vectors = load_vectors(path, ["x", "y"])
    assert vectors.matrix[0].tolist() == [1, 1]
    assert vectors.coverage.duplicates == 2


@pytest.mark.parametrize("wanted", [["the"], ["zebra"]])
def test_embeddings_dimension_mismatch_names_line(tmp_path, wanted):
    path = _write(tmp_path / "v.txt", "a 1 2 3\nb 1 2 3\nthe 1 2\n")
    with pytest.raises(DataError, match="expected 3 values") as err:
        load_vectors(path, wanted)
    assert (err.value.path, err.value.line) == (str(path), 3)


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity", "1e50"])
def test_embeddings_rejects_non_finite_values(tmp_path, value):
    path = _write(tmp_path / "v.txt", f"a 1 2\nb 1 {value}\n")
    with pytest.raises(DataError, match="NaN, infinite") as err:
        load_vectors(path, ["b"])
    assert err.value.line == 2


def test_embeddings_rejects_non_finite_binary_value(tmp_path):
    path = _write(tmp_path / "v.bin", _binary({"a": [1, 2], "b": [np.nan, 1]}))
    with pytest.raises(DataError, match="record 2"):
        load_vectors(path, ["b"])


def test_embeddings_rejects_non_numeric_value(tmp_path):
    path = _write(tmp_path / "v.vec", "2 2\na 1 2\nb 1 x1\n")
    with pytest.raises(DataError, match="non-numeric value 'x1'") as err:
        load_vectors(path, ["b"])
    assert err.value.line == 3


@pytest.mark.parametrize("count", [2, 4])
def test_embeddings_rejects_lying_header(tmp_path, count):
    path = _write(tmp_path / "v.vec", f"{count} 3\n{_text(TABLE)}")
    with pytest.raises(DataError, match=f"declares {count} vectors but the file has 3") as err:
        load_vectors(path, ["the"])
    assert err.value.line == 1


def test_embeddings_rejects_lying_binary_header(tmp_path):
    path = _write(tmp_path / "v.bin", _binary(TABLE, count=5))
    with pytest.raises(DataError, match="header declares 5 vectors") as err:
        load_vectors(path, ["the"])
    assert err.value.line == 1


def test_embeddings_rejects_truncated_binary_record(tmp_path):
    path = _write(tmp_path / "v.bin", _binary(TABLE)[:-6])
    with pytest.raises(DataError, match="record 3 is truncated"):
        load_vectors(path, ["the"])


@pytest.mark.parametrize("cut", [slice(None, -10), slice(None, 30)])
def test_embeddings_rejects_truncated_gzip(tmp_path, cut):
    big = _text({f"w{i}": [i, 1.5, -2] for i in range(2000)})
    path = _write(tmp_path / "v.txt.gz", gzip.compress(big.encode())[cut])
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        load_vectors(path, ["w1"])
    assert err.value.path == str(path)


def test_embeddings_rejects_corrupt_gzip(tmp_path):
    data = bytearray(gzip.compress(_text(TABLE).encode()))
    data[-8] ^= 0xFF  # CRC
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_vectors(_write(tmp_path / "v.gz", bytes(data)), ["the"])


def test_embeddings_rejects_non_utf8_word(tmp_path):
    path = _write(tmp_path / "v.txt", b"a 1 2\nb\xff 1 2\n")
    with pytest.raises(DataError, match="not valid UTF-8") as err:
        load_vectors(path, ["a"])
    assert err.value.line == 2


@pytest.mark.parametrize("gz", [False, True])
def test_embeddings_rejects_empty_file(tmp_path, gz):
    with pytest.raises(DataError, match="empty"):
        load_vectors(_write(tmp_path / "v.txt", b"", gz), ["a"])


def test_embeddings_rejects_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_vectors(tmp_path / "nope.txt", ["a"])
    with pytest.raises(DataError, match="directory"):
        load_vectors(tmp_path, ["a"])


def test_embeddings_cache_hit_gives_identical_vectors(tmp_path, monkeypatch):
    path = _write(tmp_path / "v.txt", _text(TABLE))
    words = ["the", "PARIS", "zebra"]
    first = load_vectors(path, words, extra_top_n=1, cache_dir=tmp_path / "cache", seed=3)
    monkeypatch.setattr(embeddings, "_build", _fail)
    second = load_vectors(path, words, extra_top_n=1, cache_dir=tmp_path / "cache", seed=3)
    assert second.words == first.words and second.coverage == first.coverage
    np.testing.assert_array_equal(second.matrix, first.matrix)
    np.testing.assert_array_equal(second.found, first.found)
    assert second.dim == first.dim and second.matrix.dtype == np.float32
    assert [p.suffix for p in (tmp_path / "cache").iterdir()] == [".npz"]


def test_embeddings_cache_misses_on_other_inputs_or_changed_file(tmp_path):
    path = _write(tmp_path / "v.txt", _text(TABLE))
    load_vectors(path, ["the"], cache_dir=tmp_path)
    assert load_vectors(path, ["the"], cache_dir=tmp_path, seed=1).words == ("the",)
    _write(path, "the 7 7 7\n")
    os.utime(path, ns=(1, 10**18))
    assert load_vectors(path, ["the"], cache_dir=tmp_path).matrix[0].tolist() == [7, 7, 7]
    assert len(list(tmp_path.glob("*.npz"))) == 3


def test_embeddings_corrupt_cache_is_rebuilt(tmp_path):
    path = _write(tmp_path / "v.txt", _text(TABLE))
    first = load_vectors(path, ["the"], cache_dir=tmp_path / "c")
    (cache_file,) = (tmp_path / "c").glob("*.npz")
    cache_file.write_bytes(b"PK\x03\x04 not a zip at all")
    again = load_vectors(path, ["the"], cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(again.matrix, first.matrix)
    assert np.load(cache_file)["matrix"].shape == (1, 3)


def _fail(*args, **kwargs):
    """Stand-in for the parser that must not run on a cache hit."""
    raise AssertionError("the vector file was parsed again")


@pytest.mark.shared_data
def test_embeddings_loads_shared_minilm_50d(shared_embeddings):
    path = shared_embeddings / "minilm-50d.txt.gz"
    assert tuple(read_header(path)) == (GLOVE, None, 50)
    vectors = load_vectors(path, ["Paris", "paris"], extra_top_n=-1)
    assert vectors.dim == 50 and vectors.found[:2].all()
    assert len(vectors.words) == vectors.matrix.shape[0] == 72_088
    assert vectors.coverage == Coverage(exact=2, lowercase=0, digits=0, missing=0, duplicates=0)
    np.testing.assert_array_equal(vectors.matrix[0], vectors.matrix[1])


@pytest.mark.parametrize("fmt", [GLOVE, WORD2VEC_TEXT, WORD2VEC_BINARY])
def test_embeddings_round_trips_random_tables(tmp_path, rng, fmt):
    letters = list("abcXYZ019éß€-'.")
    for trial in range(5):
        drawn = ("".join(rng.choice(letters, rng.integers(1, 8))) for _ in range(60))
        words = list(dict.fromkeys(drawn))
        table = {w: [float(x) for x in rng.normal(0, 3, 4).astype(np.float32)] for w in words}
        header = "" if fmt == GLOVE else f"{len(table)} 4\n"
        data = _binary(table) if fmt == WORD2VEC_BINARY else header + _text(table)
        path = _write(tmp_path / f"v{trial}", data, gz=bool(trial % 2))
        vectors = load_vectors(path, words)
        assert read_header(path).format == fmt and vectors.coverage.exact == len(words)
        np.testing.assert_array_equal(vectors.matrix, np.array(list(table.values()), np.float32))


def test_embeddings_digit_normalisation_covers_any_script(tmp_path):
    path = _write(tmp_path / "v.txt", "x1-2 1 1\n2001 2 2\n")
    vectors = load_vectors(path, ["X9-9", "١٩٩٧"])
    assert vectors.matrix[:, 0].tolist() == [1, 2] and vectors.coverage.digits == 2


# --- untrusted files: bounds before memory is taken ----------------------------------------------


def _peak(call) -> tuple[object, int]:
    """(what call() returned or raised, peak traced memory in bytes while it ran)."""
    import tracemalloc

    tracemalloc.start()
    try:
        try:
            out = call()
        except DataError as err:
            out = err
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("binary", [False, True])
def test_embeddings_huge_declared_dimension_is_refused(tmp_path, binary):
    body = b"the " + (np.ones(3, "<f4").tobytes() if binary else b"1 2 3") + b"\n"
    path = _write(tmp_path / "v.bin", b"1 1000000000\n" + body)
    err, peak = _peak(lambda: load_vectors(path, ["the"]))
    assert isinstance(err, DataError) and err.line == 1
    assert "declares dimension 1,000,000,000 (1 to 65,536)" in str(err) and peak < 10 << 20


@pytest.mark.parametrize("binary", [False, True])
def test_embeddings_dimension_is_checked_by_the_first_vector_first(tmp_path, binary):
    """A header within bounds but not matching the vectors: an error before the words' matrix
    (20,000 words x 60,000 values = 4.8 GB) is allocated."""
    body = b"the " + (np.ones(3, "<f4").tobytes() if binary else b"1 2 3") + b"\n"
    path = _write(tmp_path / "v.bin", b"1 60000\n" + body)
    words = [f"w{i}" for i in range(20_000)]
    err, peak = _peak(lambda: load_vectors(path, words))
    assert isinstance(err, DataError) and peak < 50 << 20, (err, peak)
    assert ("truncated" if binary else "expected 60000 values") in str(err)


def test_embeddings_binary_record_without_a_space_is_not_read_to_the_end(tmp_path):
    path = _write(tmp_path / "v.bin", b"1 3\n" + b"x" * (8 << 20))
    err, peak = _peak(lambda: load_vectors(path, ["x"]))
    assert isinstance(err, DataError) and "record 1: no space within 65,536 bytes" in str(err)
    assert peak < 4 << 20, peak


@pytest.mark.parametrize("gz", [False, True])
def test_embeddings_endless_line_is_not_read_to_the_end(tmp_path, gz):
    path = _write(tmp_path / "v.txt", b"the " + b"1 " * (3 << 20), gz)  # 6 MB, no newline
    err, peak = _peak(lambda: load_vectors(path, ["the"]))
    assert isinstance(err, DataError) and err.line == 1 and "line longer than" in str(err)
    assert peak < 12 << 20, peak


def test_embeddings_long_later_line_is_an_error_naming_it(tmp_path):
    path = _write(tmp_path / "v.txt", "a 1 2\nb " + "1" * 300_000 + "\n")
    with pytest.raises(DataError, match="line longer than") as err:
        load_vectors(path, ["a"])
    assert err.value.line == 2


def test_embeddings_devices_and_fifos_are_refused(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(DataError, match="not a regular file"):
        load_vectors(tmp_path / "fifo", ["a"])
    if os.path.exists("/dev/zero"):
        with pytest.raises(DataError, match="not a regular file"):
            read_header("/dev/zero")


def test_embeddings_binary_words_keep_inner_newlines_and_controls(tmp_path):
    table = {"new\nline": [1, 2, 3], "tab\there": [4, 5, 6], "bell\x07": [7, 8, 9]}
    vectors = load_vectors(_write(tmp_path / "v.bin", _binary(table)), [], extra_top_n=-1)
    assert vectors.words == tuple(table)


# --- the cache is an optimisation: a failed write warns and goes on -------------------------------


def test_embeddings_unwritable_cache_warns_and_goes_on(tmp_path, capsys):
    path = _write(tmp_path / "v.txt", _text(TABLE))
    (tmp_path / "cache").write_text("NERWIN_CACHE points at a file")
    warnings: list[str] = []
    vectors = load_vectors(path, ["the"], cache_dir=tmp_path / "cache", warn=warnings.append)
    assert vectors.matrix[0].tolist() == TABLE["the"]
    assert len(warnings) == 1 and "cannot write the vector cache" in warnings[0]
    assert str(tmp_path / "cache") in warnings[0]
    load_vectors(path, ["the"], cache_dir=tmp_path / "cache")  # default: a line on stderr
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "NERWIN_CACHE" in lines[0]


def test_embeddings_read_only_cache_warns_and_goes_on(tmp_path, monkeypatch):
    from nerwin.files import atomic

    def read_only(path, write):
        raise PermissionError(13, "Read-only file system", str(path))

    path = _write(tmp_path / "v.txt", _text(TABLE))
    monkeypatch.setattr(atomic, "write_file", read_only)
    warnings: list[str] = []
    vectors = load_vectors(path, ["of"], cache_dir=tmp_path / "c", warn=warnings.append)
    assert vectors.matrix[0].tolist() == TABLE["of"] and "Read-only" in warnings[0]
