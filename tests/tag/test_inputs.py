"""Input streams for predict: text lines and CoNLL sentences from files and stdin."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from nerwin.errors import DataError
from nerwin.tag.inputs import STDIN, conll_sentences, raw_documents, text_lines


def _file(tmp_path: Path, data: bytes, name: str = "in.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def fake_stdin(monkeypatch: pytest.MonkeyPatch):
    def set_stdin(data: bytes) -> None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))

    return set_stdin


def test_inputs_invalid_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = _file(tmp_path, b"Paris is nice.\nOslo too.\nbad \xff\xfe byte\nLima.\n")
    lines = text_lines(path)
    assert next(lines) == "Paris is nice."  # streamed: good lines come out before the error
    assert next(lines) == "Oslo too."
    with pytest.raises(DataError) as info:
        next(lines)
    assert f"{path}:3" in str(info.value)
    assert "UTF-8" in str(info.value)
    assert (info.value.path, info.value.line) == (str(path), 3)


def test_inputs_invalid_utf8_on_stdin_names_stdin(fake_stdin) -> None:
    fake_stdin(b"ok\n\xc3\x28\n")
    with pytest.raises(DataError, match=f"{STDIN}:2"):
        list(text_lines("-"))


def test_inputs_missing_file_is_a_data_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(DataError, match="nope.txt"):
        list(text_lines(missing))
    with pytest.raises(DataError, match="nope.txt"):
        list(raw_documents([], [missing]))
    with pytest.raises(DataError, match="nope.txt"):
        list(conll_sentences([missing], 0))


def test_inputs_directory_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=str(tmp_path)):
        list(text_lines(tmp_path))


def test_inputs_bom_stripped(tmp_path: Path) -> None:
    path = _file(tmp_path, b"\xef\xbb\xbfS\xc3\xa3o Paulo\nLima\n")
    assert list(text_lines(path)) == ["São Paulo", "Lima"]


def test_inputs_crlf_stripped(tmp_path: Path) -> None:
    path = _file(tmp_path, b"Paris\r\n\r\nOslo\nLima\r\nno newline at the end")
    assert list(text_lines(path)) == ["Paris", "", "Oslo", "Lima", "no newline at the end"]


def test_inputs_bom_and_crlf_together(tmp_path: Path) -> None:
    path = _file(tmp_path, "\ufeffOslo\r\nBergen\r\n".encode("utf-8"))
    assert list(raw_documents([], [path])) == ["Oslo", "Bergen"]


def test_inputs_keeps_inner_whitespace(tmp_path: Path) -> None:
    path = _file(tmp_path, b"  Paris\tand  Oslo  \n\t\n")
    assert list(text_lines(path)) == ["  Paris\tand  Oslo  ", "\t"]


def test_inputs_raw_documents_texts_then_files(tmp_path: Path, fake_stdin) -> None:
    fake_stdin(b"from stdin\n")
    a, b = _file(tmp_path, b"a1\na2\n", "a.txt"), _file(tmp_path, b"b1\n", "b.txt")
    assert list(raw_documents(["t1", "t2\nsame doc"], [a, b])) == [
        "t1",
        "t2\nsame doc",
        "a1",
        "a2",
        "b1",
    ]
    assert list(raw_documents(["t1"], [])) == ["t1"]  # texts given: stdin is not read
    assert list(raw_documents([], [])) == ["from stdin"]


def test_inputs_stdin_bom_and_crlf(fake_stdin) -> None:
    fake_stdin("\ufeffOslo\r\nBergen\r\n".encode("utf-8"))
    assert list(raw_documents([], [Path("-")])) == ["Oslo", "Bergen"]


def test_inputs_conll_sentences_keep_columns(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "\ufeffSão NNP B-LOC\r\nPaulo NNP I-LOC\r\n\r\n-DOCSTART- -X- O\n\nOslo NNP B-LOC\n".encode(
            "utf-8"
        ),
    )
    sentences = list(conll_sentences([path], 0))
    assert [s.words for s in sentences] == [("São", "Paulo"), ("Oslo",)]
    assert sentences[0].columns == (("São", "NNP", "B-LOC"), ("Paulo", "NNP", "I-LOC"))


def test_inputs_conll_sentences_word_column(tmp_path: Path) -> None:
    path = _file(tmp_path, b"1 Paris B-LOC\n2 is O\n")
    (sentence,) = conll_sentences([path], 1)
    assert sentence.words == ("Paris", "is")


def test_inputs_conll_invalid_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = _file(tmp_path, b"Paris B-LOC\n\nOslo B-LOC\nbad\xff O\n")
    with pytest.raises(DataError) as info:
        list(conll_sentences([path], 0))
    assert f"{path}:4" in str(info.value)


def test_inputs_conll_from_stdin(fake_stdin) -> None:
    fake_stdin(b"Paris B-LOC\nis O\n\nOslo B-LOC\n")
    assert [s.words for s in conll_sentences([], 0)] == [("Paris", "is"), ("Oslo",)]


def test_inputs_pipe_is_idle_only_when_no_line_is_ready() -> None:
    import os

    from nerwin.tag.inputs import _StreamLines

    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"one\ntwo\nthr")
        stream = _StreamLines(read_end)
        lines = iter(stream)
        assert next(lines) == b"one\n"
        assert stream.ready()  # "two" is waiting in the buffer
        assert next(lines) == b"two\n"
        assert not stream.ready()  # only half a line: reading would wait
        os.write(write_end, b"ee\n")
        assert stream.ready()
        assert next(lines) == b"three\n"
        os.close(write_end)
        write_end = -1
        assert list(lines) == []
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def test_inputs_source_idle_follows_the_stream(tmp_path: Path) -> None:
    import os

    from nerwin.tag.inputs import InputSource

    path = _file(tmp_path, b"a\nb\n")
    source = InputSource([], [path])
    lines = source.lines()
    assert next(lines) == "a" and not source.idle()  # a regular file never makes us wait
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)  # keeps the fifo open without blocking
    try:
        os.write(writer, "São\nLima\n".encode())
        source = InputSource([], [fifo])
        lines = source.lines()
        assert next(lines) == "São" and not source.idle()
        assert next(lines) == "Lima" and source.idle()  # nothing more has arrived yet
    finally:
        os.close(writer)


def test_inputs_jsonl_records_and_errors(tmp_path: Path) -> None:
    from nerwin.tag.inputs import InputSource

    path = _file(tmp_path, b'{"id": 1, "text": "Paris"}\n\n  \n{"text": "Oslo", "x": 2}\n[1]\n')
    records = InputSource([], [path]).records()
    assert next(records) == (1, "Paris")
    assert next(records) == (None, "Oslo")  # blank lines are skipped; no id is None
    with pytest.raises(DataError, match=rf"{path}:5: expected a JSON object"):
        next(records)
    with pytest.raises(ValueError, match="not text arguments"):
        next(InputSource(["text"], []).records())


def test_inputs_pipe_long_line_in_many_reads() -> None:
    import os
    import threading

    from nerwin.tag.inputs import _StreamLines

    line = b"Paris " * 200_000  # 1.2 MB: many reads of the pipe
    read_end, write_end = os.pipe()

    def write() -> None:
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(line + b"\nshort\n" + b"no newline")

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert list(_StreamLines(read_end)) == [line + b"\n", b"short\n", b"no newline"]
    finally:
        writer.join()
        os.close(read_end)


def test_inputs_endless_line_is_refused_before_memory_runs_out() -> None:
    import resource

    from nerwin.errors import DataError
    from nerwin.tag import inputs

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError, match="/dev/zero:1: a line longer than 64 MiB"):
        for _ in inputs.InputSource(files=["/dev/zero"]).lines():
            pass
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 400_000  # KiB
