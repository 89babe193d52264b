"""Tagging on Dask (nerwin.tag.dask): partitions of lines, shards, ids, faults, the CLI.

The cluster tests run on a real distributed.LocalCluster of two worker processes with one
thread each (started once for the module) and skip when the dask extra is not installed.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from _trained import TrainedRun, assert_ok, assert_user_error, invoke

from nerwin.errors import DataError, NerwinError
from nerwin.tag import dask as dask_tagging
from nerwin.tag.dask import (
    TaggingFailed,
    _lines,
    expand_inputs,
    partitions,
    tag_files,
    worker_stats,
)
from nerwin.tag.inputs import InputSource

EXTRA = 'the dask extra is not installed: pip install "nerwin[dask]"'
VOCABULARY = (
    "The museums in Paris are amazing . We flew from London to Rome and on to Oslo with "
    "friends from Berlin , São Paulo and Zürich ; the NEW YORK office said 12 people left"
)
WORDS = VOCABULARY.split()


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 24)))


def _text_corpus(folder: Path, lines: int, seed: int = 0) -> list[Path]:
    """Two text files: blank lines, CRLF, a byte-order mark, no newline at the very end."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    first = folder / "a.txt"
    first.write_bytes(
        "\ufeff".encode()
        + b"".join(
            (_sentence(rng) + ("\r\n" if i % 17 == 0 else "\n")).encode() for i in range(lines)
        )
    )
    second = folder / "b.txt"
    second.write_text("\n".join(_sentence(rng) for _ in range(lines // 3)), encoding="utf-8")
    return [first, second]


def _jsonl_corpus(path: Path, records: int, seed: int = 1) -> Path:
    """Records with string ids, integer ids, no id (FILE:LINE then), and blank lines."""
    rng = random.Random(seed)
    lines = []
    for i in range(records):
        record: dict = {"text": _sentence(rng)}
        if i % 5:
            record["id"] = f"doc-{i}" if i % 2 else i
        lines.append(json.dumps(record, ensure_ascii=False) + ("\n\n" if i % 50 == 7 else "\n"))
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _single(run: TrainedRun, files: list[Path], *args: str) -> str:
    """`nerwin predict --ids` in this process: the reference output."""
    inputs = [a for f in files for a in ("--input", str(f))]
    result = invoke(["predict", "--model", run.model, "--ids", *inputs, *args])
    assert_ok(result)
    return result.stdout


def _shards(out: Path, ext: str = ".jsonl") -> str:
    names = sorted(os.listdir(out))
    assert all(re.fullmatch(rf"part-\d{{5}}{re.escape(ext)}", n) for n in names), names
    return "".join((out / n).read_text(encoding="utf-8") for n in names)


# --- partitions (no cluster) -----------------------------------------------------------------


@pytest.mark.parametrize("scan_bytes", [5, 64, 1 << 20])  # line ends across block edges too
@pytest.mark.parametrize("per_part", [1, 2, 3, 7, 1000])
def test_dask_partitions_read_exactly_the_lines_of_predict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, per_part: int, scan_bytes: int
) -> None:
    monkeypatch.setattr(dask_tagging, "SCAN_BYTES", scan_bytes)
    files = _text_corpus(tmp_path / "c", 40)
    (tmp_path / "c" / "empty.txt").write_bytes(b"")
    (tmp_path / "c" / "blank.txt").write_bytes(b"\n\n\r\n")
    names = [str(f) for f in [*files, tmp_path / "c" / "empty.txt", tmp_path / "c" / "blank.txt"]]
    parts = partitions(names, per_part)
    assert [p.index for p in parts] == list(range(len(parts)))
    read = [(p.source, n, line) for p in parts for n, line in _lines(p)]
    assert read == list(InputSource((), names).numbered_lines())
    assert all(0 < len(list(_lines(p))) <= per_part for p in parts)


def test_dask_inputs_expand_globs_and_name_a_pattern_that_matches_nothing(tmp_path: Path) -> None:
    files = _text_corpus(tmp_path / "c", 3)
    assert expand_inputs([str(tmp_path / "c" / "*.txt")]) == [str(f) for f in files]
    assert expand_inputs(files[0]) == [str(files[0])]
    with pytest.raises(DataError, match=r"nothing/\*\.txt: no file matches"):
        expand_inputs([str(tmp_path / "nothing" / "*.txt")])


def test_dask_bad_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"Paris.\nOslo.\nRome \xff.\n")
    (part,) = partitions([str(path)], 2)[1:]
    with pytest.raises(DataError, match=f"{re.escape(str(path))}:3: not valid UTF-8"):
        list(_lines(part))


def test_dask_line_longer_than_the_limit_names_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dask_tagging, "MAX_LINE_BYTES", 16)
    path = tmp_path / "long.txt"
    path.write_bytes(b"Paris.\n" + b"x" * 40 + b"\nOslo.\n")
    (part,) = partitions([str(path)], 10)
    with pytest.raises(DataError, match=f"{re.escape(str(path))}:2: a line longer than"):
        list(_lines(part))


# --- on a LocalCluster of two worker processes -----------------------------------------------


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("dask", reason=EXTRA)
    distributed = pytest.importorskip("distributed", reason=EXTRA)
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    with cluster, distributed.Client(cluster) as connected:
        yield connected


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    folder = tmp_path_factory.mktemp("corpus")
    return {
        "text": _text_corpus(folder / "text", 1500),
        "jsonl": [_jsonl_corpus(folder / "docs.jsonl", 1200)],
    }


@pytest.mark.parametrize(
    ("input_format", "fmt", "ext"),
    [("text", "json", ".jsonl"), ("jsonl", "json", ".jsonl"), ("jsonl", "conll", ".conll")],
)
def test_dask_output_equals_single_process_predict(
    client, run: TrainedRun, corpus, tmp_path: Path, input_format: str, fmt: str, ext: str
) -> None:
    files = corpus[input_format]
    report = tag_files(
        run.model, files, tmp_path / "out", input_format, fmt, client, lines_per_partition=200
    )
    assert len(report.shards) > 4  # more partitions than workers
    args = ["--input-format", input_format, "--format", fmt]
    single = _single(run, files, *args)
    assert _shards(tmp_path / "out", ext) == single  # shards in order: byte-identical
    assert report.documents == (single.count("\n") if fmt == "json" else single.count("-DOCSTART-"))


def test_dask_ids_are_complete_and_unique(client, run: TrainedRun, corpus, tmp_path: Path) -> None:
    files = corpus["text"]
    distributed = pytest.importorskip("distributed", reason=EXTRA)
    assert client is distributed.default_client()  # client=None takes the default client
    tag_files(run.model, files, tmp_path / "out", lines_per_partition=300)
    ids = [json.loads(line)["id"] for line in _shards(tmp_path / "out").splitlines()]
    expected = [f"{f}:{n}" for f in files for n in range(1, len(f.read_bytes().splitlines()) + 1)]
    assert len(ids) == len(set(ids)) and sorted(ids) == sorted(expected)


def test_dask_model_is_loaded_once_per_worker_process(
    client, run: TrainedRun, corpus, tmp_path: Path
) -> None:
    tag_files(run.model, corpus["text"], tmp_path / "out", client=client, lines_per_partition=100)
    stats = client.run(worker_stats).values()
    model = str(run.model.resolve())
    assert len(stats) == 2
    assert [s["loads"] for s in stats] == [{model: 1}, {model: 1}]  # ~20 partitions, 2 loads


def test_dask_rerun_rewrites_its_shards_and_removes_stale_ones(
    client, run: TrainedRun, corpus, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    tag_files(run.model, corpus["text"], out, client=client, lines_per_partition=100)
    (out / "notes.md").write_text("mine")
    report = tag_files(run.model, corpus["text"], out, client=client, lines_per_partition=400)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([p.name for p in report.shards] + ["notes.md"])
    text = "".join(p.read_text(encoding="utf-8") for p in report.shards)
    assert text == _single(run, corpus["text"], "--format", "json")


def test_dask_bad_line_fails_with_one_line_naming_file_and_line(
    client, run: TrainedRun, tmp_path: Path
) -> None:
    path = _jsonl_corpus(tmp_path / "docs.jsonl", 600)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[450] = '{"id": "broken", "text": \n'
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(TaggingFailed) as info:
        tag_files(run.model, path, tmp_path / "out", "jsonl", client=client, lines_per_partition=50)
    message = str(info.value)
    assert message.startswith(f"{path}:451: not valid JSON") and "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    on_cluster = ["--scheduler", client.scheduler.address, "--out", tmp_path / "cli"]
    result = invoke(
        ["predict", "--model", run.model, "--input-format", "jsonl", "-i", path, *on_cluster]
    )
    assert_user_error(result, f"{path}:451", "not valid JSON")


def test_dask_missing_model_or_run_folder_is_one_error(
    client, run: TrainedRun, tmp_path: Path
) -> None:
    files = _text_corpus(tmp_path / "c", 5)
    with pytest.raises(NerwinError, match="model directory not found"):
        tag_files(tmp_path / "nope", files, tmp_path / "out", client=client)
    with pytest.raises(NerwinError, match="a run folder, not a model folder; did you mean"):
        tag_files(run.out_dir, files, tmp_path / "out", client=client)


def _computed_twice(dask_scheduler) -> int:
    """Partitions whose result reached the scheduler's memory more than once (recomputed)."""
    done = Counter(
        entry[0]
        for entry in dask_scheduler.transition_log
        if str(entry[0]).startswith("nerwin-tag-") and entry[2] == "memory"
    )
    return sum(n > 1 for n in done.values())


def test_dask_worker_killed_mid_job_output_still_complete(
    client, run: TrainedRun, tmp_path: Path
) -> None:
    files = _text_corpus(tmp_path / "big", 9000, seed=5)
    reference = _single(run, files, "--format", "json")
    out = tmp_path / "out"
    before = client.run(os.getpid)
    victim = next(iter(before.values()))
    outcome: dict = {}

    def job() -> None:
        try:
            outcome["report"] = tag_files(
                run.model, files, out, client=client, lines_per_partition=100
            )
        except BaseException as err:  # reported by the assertion below
            outcome["error"] = err

    worker = threading.Thread(target=job)
    worker.start()
    deadline = time.monotonic() + 60
    while len(list(out.glob("part-*.jsonl"))) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    done_at_kill = len(list(out.glob("part-*.jsonl")))
    os.kill(victim, signal.SIGKILL)  # its finished partitions' results die with it
    worker.join(timeout=120)
    assert not worker.is_alive() and "error" not in outcome, outcome
    assert 10 <= done_at_kill < len(outcome["report"].shards)  # the kill came mid-job
    assert client.run_on_scheduler(_computed_twice) >= 1  # Dask recomputed lost partitions
    assert _shards(out) == reference  # nothing lost, nothing twice, shards whole
    ids = [json.loads(line)["id"] for line in reference.splitlines()]
    assert len(ids) == len(set(ids)) == sum(len(f.read_bytes().splitlines()) for f in files)
    client.wait_for_workers(2, timeout=60)  # the nanny started a new worker process
    after = client.run(os.getpid)
    assert victim not in after.values() and len(after) == 2


def test_dask_cli_with_local_workers(run: TrainedRun, corpus, tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason=EXTRA)
    pattern = str(corpus["text"][0].parent / "*.txt")  # quoted: nerwin expands it
    local = ["--workers", "2", "--out", tmp_path / "out"]
    result = invoke(["predict", "--model", run.model, "--input", pattern, "-f", "conll", *local])
    assert_ok(result)
    assert re.fullmatch(
        r"tagged 2,000 documents into 2 shards in \S+ \(\d+\.\ds\)\n", result.stdout
    )
    assert result.stderr == ""
    single = _single(run, corpus["text"], "--format", "conll")
    assert _shards(tmp_path / "out", ".conll") == single


def test_dask_cli_glob_matching_nothing_is_one_error(
    client, run: TrainedRun, tmp_path: Path
) -> None:
    pattern = str(tmp_path / "none" / "*.txt")
    on_cluster = ["--scheduler", client.scheduler.address, "--out", tmp_path / "out"]
    result = invoke(["predict", "--model", run.model, "--input", pattern, *on_cluster])
    assert_user_error(result, pattern, "no file matches")


def test_dask_failed_rerun_leaves_no_old_shard_beside_new(
    client, run: TrainedRun, tmp_path: Path
) -> None:
    path = _jsonl_corpus(tmp_path / "docs.jsonl", 600)
    out = tmp_path / "out"
    tag_files(run.model, path, out, "jsonl", client=client, lines_per_partition=50)
    (out / "notes.txt").write_text("mine")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[450] = '{"id": "broken", "text": \n'  # partition 9 of 12 fails on the rerun
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(TaggingFailed):
        tag_files(run.model, path, out, "jsonl", client=client, lines_per_partition=50)
    assert not (out / "part-00009.jsonl").exists()  # the earlier job's shard is not left there
    assert (out / "notes.txt").read_text() == "mine"
