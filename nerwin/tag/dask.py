"""Tagging corpora on a Dask cluster: files cut into partitions of lines, one output shard each.

`tag_files(model_dir, inputs, out_dir, ...)` tags text or JSON-lines files on a cluster (a
`distributed.Client`, a scheduler address, or a number of local worker processes, a LocalCluster
made for the call) and writes `out_dir/part-00000.jsonl`, `part-00001.jsonl`, ... (`.conll` for
CoNLL, `.txt` for inline), one per partition. Needs the `dask` extra (`pip install
"nerwin[dask]"`); this module imports Dask only when called, so it loads without it.

- Partitions: each file is cut into runs of `lines_per_partition` lines. The client reads each
  file once up front to find the byte offset where every run starts, so a task reads exactly its
  bytes and knows its first line number. Shards are numbered in the order of the files (as
  given, a glob's matches sorted) and of the runs, so the shards concatenated in order are what
  `nerwin predict --ids` prints for the same files in one process.
- Ids: a text line's document id is `FILE:LINE` (the file as named, e.g. `corpus/a.txt:17`); a
  JSON-lines record's is its `id` (a record without one gets `FILE:LINE`).
- Model: each worker process loads a model folder once and keeps it, frozen, for every later
  partition (a per-process cache keyed by the folder's path and its meta.json's time, behind a
  lock); tasks carry only the path. Scoring runs on `$NERWIN_THREADS` BLAS threads (default 1).
- Shards are written whole to a temporary file and renamed into place (nerwin.files.atomic), so
  a partition Dask recomputes (a worker died) rewrites its shard: no partial or duplicate output.
  A job first removes the shards of earlier jobs (a failed job leaves only the shards it
  finished, never old ones beside new), and at the end the temporary files of killed writes;
  other files in `out_dir` stay.
- Errors: a user error on a worker (a bad JSON line, invalid UTF-8, a missing model) fails the
  job with TaggingFailed, a NerwinError whose one-line message names the file and line.

May import nerwin.engine, nerwin.data, nerwin.files, nerwin.model and the top-level config,
errors and metrics (and the rest of nerwin.tag).
"""

from __future__ import annotations

import glob
import io
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, redirect_stdout, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nerwin.engine.blas import blas_threads
from nerwin.errors import DataError, ModelError, NerwinError
from nerwin.files import atomic
from nerwin.model.folder import load_model
from nerwin.model.tagger import FrozenTagger
from nerwin.tag.documents import TaggedDocument, tag_documents, text_documents
from nerwin.tag.formats import FORMATS, write_documents
from nerwin.tag.inputs import MAX_LINE_BYTES, jsonl_record, line_id

INSTALL = 'pip install "nerwin[dask]"'
LINES_PER_PARTITION = 10_000  # about 150,000 tokens of news text: ~1 s of tagging per task
SCAN_BYTES = 1 << 20  # block size of the client's scan for line offsets
EXTENSIONS = {"json": ".jsonl", "conll": ".conll", "inline": ".txt"}
SHARD = re.compile(r"part-\d{5,}(\.jsonl|\.conll|\.txt)")


class TaggingFailed(NerwinError):
    """A partition failed on a worker (its message names the file and line) or the job could
    not run; a plain one-argument exception, so it crosses processes intact."""


def require_dask() -> Any:
    """The `distributed` module, or a NerwinError naming the install command."""
    try:
        import distributed
    except ImportError as err:
        raise NerwinError(f"tagging on Dask needs the dask extra ({err}): {INSTALL}") from None
    return distributed


@dataclass(frozen=True)
class Partition:
    """A run of lines of one file: bytes [start, stop) holding lines first_line, ..."""

    index: int  # names the shard: part-00000
    source: str  # the file as named (ids and error messages)
    path: str  # the absolute path the worker reads
    start: int
    stop: int
    first_line: int  # 1-based

    def shard(self, output_format: str) -> str:
        """The shard's file name."""
        return f"part-{self.index:05d}{EXTENSIONS[output_format]}"


@dataclass(frozen=True)
class Job:
    """What every task of a tag_files job needs besides its partition (no weights: a path)."""

    model: str
    out_dir: str
    input_format: str = "text"
    output_format: str = "json"
    threshold: float | None = None
    probs: bool = False
    cache_mb: float | None = None


@dataclass(frozen=True)
class TagReport:
    """What tag_files wrote: the shards in order, documents tagged, wall-clock seconds."""

    out_dir: Path
    shards: list[Path]
    documents: int
    seconds: float

    def __str__(self) -> str:
        return (
            f"tagged {self.documents:,} documents into {len(self.shards)} "
            f"shard{'' if len(self.shards) == 1 else 's'} in {self.out_dir} ({self.seconds:.1f}s)"
        )


# -- the client's side: inputs, partitions, the job --------------------------------------------


def expand_inputs(patterns: Iterable[str | Path]) -> list[str]:
    """Input files as named: an existing path (or '-') as it is, a glob pattern (`*`, `?`,
    `[...]`, `**`) as its matches in sorted order; a pattern matching nothing is a DataError."""
    if isinstance(patterns, str | Path):
        patterns = [patterns]
    files: list[str] = []
    for pattern in map(str, patterns):
        if pattern == "-" or os.path.lexists(pattern) or not glob.has_magic(pattern):
            files.append(pattern)
            continue
        found = sorted(glob.glob(pattern, recursive=True))
        if not found:
            raise DataError("no file matches this pattern", pattern)
        files += found
    return files


def partitions(files: Sequence[str], lines_per_partition: int = LINES_PER_PARTITION) -> list:
    """The Partitions of `files` (empty files have none), numbered in order."""
    if lines_per_partition < 1:
        raise ValueError(f"lines_per_partition must be >= 1, got {lines_per_partition}")
    found: list[Partition] = []
    for source in files:
        if source == "-":
            raise DataError("tagging on Dask reads files, not stdin", source)
        path = os.path.abspath(source)
        try:
            starts, size = _line_offsets(path, lines_per_partition)
        except OSError as err:
            raise DataError(f"cannot read input ({err.strerror})", source) from None
        stops = [offset for offset, _ in starts[1:]] + [size]
        for (start, line), stop in zip(starts, stops):
            found.append(Partition(len(found), source, path, start, stop, line))
    return found


def _line_offsets(path: str, lines: int) -> tuple[list[tuple[int, int]], int]:
    """(byte offset, line number) where every run of `lines` lines starts, and the file size."""
    starts: list[tuple[int, int]] = [(0, 1)]
    offset = seen = 0  # bytes read, lines of the current run seen
    with open(path, "rb") as handle:
        while block := handle.read(SCAN_BYTES):
            at = 0
            while seen + block.count(b"\n", at) >= lines:
                for _ in range(lines - seen):
                    at = block.index(b"\n", at) + 1
                starts.append((offset + at, starts[-1][1] + lines))
                seen = 0
            seen += block.count(b"\n", at)
            offset += len(block)
    if starts[-1][0] == offset:  # the file ends where a run would start (or is empty)
        starts.pop()
    return starts, offset


def tag_files(
    model_dir: str | Path,
    inputs: str | Path | Iterable[str | Path],
    out_dir: str | Path,
    input_format: str = "text",
    output_format: str = "json",
    client: Any = None,
    *,
    threshold: float | None = None,
    probs: bool = False,
    cache_mb: float | None = None,
    lines_per_partition: int = LINES_PER_PARTITION,
    progress: bool = False,
) -> TagReport:
    """Tag text (`input_format="text"`, a line per document) or JSON-lines files on a Dask
    cluster and write one shard per partition to `out_dir` (see the module docstring).

    `inputs`: paths or glob patterns. `client`: a distributed.Client, a scheduler address, a
    number N (a LocalCluster of N worker processes with one thread each, closed at the end), or
    None: the current default client if there is one, else a LocalCluster of one worker per
    CPU. `progress` shows Dask's progress bar on stderr. Raises NerwinError (TaggingFailed from
    the workers).
    """
    if input_format not in ("text", "jsonl"):
        raise ValueError(f"input_format must be 'text' or 'jsonl', got {input_format!r}")
    if output_format not in FORMATS:
        raise ValueError(f"output_format must be one of {', '.join(FORMATS)}")
    distributed = require_dask()
    model = Path(model_dir)
    if not model.is_dir():  # the workers' load_model says what else is wrong with it
        raise ModelError(f"{model}: model directory not found")
    if not (model / "meta.json").exists() and (model / "model").is_dir():
        raise ModelError(
            f"{model}: a run folder, not a model folder; did you mean {model / 'model'}?"
        )
    parts = partitions(expand_inputs(inputs), lines_per_partition)
    out = Path(out_dir)
    problem = atomic.entry_problem(out)
    if problem:
        raise atomic.Refused(problem)
    out.mkdir(parents=True, exist_ok=True)
    names = [p.shard(output_format) for p in parts]
    _remove_stale(
        out, set()
    )  # every earlier shard: a failed job must not leave old ones beside new
    resolved = str(model.resolve()), str(out.resolve())
    job = Job(*resolved, input_format, output_format, threshold, probs, cache_mb)
    began = time.perf_counter()
    with _connected(client) as connected:
        counts = _run(distributed, connected, parts, job, progress)
    _remove_stale(out, set(names), keep_shards=True)
    return TagReport(out, [out / n for n in names], sum(counts), time.perf_counter() - began)


def _run(distributed: Any, client: Any, parts: list, job: Job, progress: bool) -> list[int]:
    """Submit a task per partition and wait for all; worker errors become one-line errors."""
    keys = [f"nerwin-tag-{os.getpid()}-{time.time_ns()}-{p.index}" for p in parts]
    futures = client.map(tag_partition, parts, job=job, key=keys, pure=False)
    try:
        if progress and futures:
            with redirect_stdout(sys.stderr):  # the bar writes to stdout; notes go to stderr
                distributed.progress(futures)
        return client.gather(futures)
    except TaggingFailed as err:
        raise TaggingFailed(str(err)) from None  # without the worker's traceback
    except distributed.KilledWorker as err:
        raise TaggingFailed(f"workers kept dying on a partition, giving up ({err})") from None
    except (OSError, distributed.TimeoutError) as err:
        raise TaggingFailed(f"lost the Dask cluster ({err})") from None
    finally:
        client.cancel([f for f in futures if not f.done()])


@contextmanager
def _connected(client: Any) -> Iterator[Any]:
    """The Client to use: the given one, one for an address, a new LocalCluster's, the default."""
    import distributed

    if isinstance(client, distributed.Client):
        yield client
    elif isinstance(client, str):
        try:
            connected = distributed.Client(client, timeout="10s")
        except (OSError, distributed.TimeoutError) as err:
            raise TaggingFailed(f"cannot reach the Dask scheduler at {client} ({err})") from None
        with connected:
            yield connected
    elif client is None or (isinstance(client, int) and not isinstance(client, bool)):
        found = None
        if client is None:
            with suppress(ValueError):  # no default client: make a local cluster
                found = distributed.default_client()
        if found is not None:
            yield found
            return
        with local_cluster(client) as cluster, distributed.Client(cluster) as made:
            yield made
    else:
        raise TypeError(f"client: a distributed.Client, an address or a number, got {client!r:.60}")


@contextmanager
def local_cluster(workers: int | None = None, **options: Any) -> Iterator[Any]:
    """A distributed.LocalCluster of `workers` processes (default: one per CPU), one thread
    each, its nannies restarting a worker that dies; its logs silenced (the client reports
    what fails)."""
    distributed = require_dask()
    import logging

    settings = {"threads_per_worker": 1, "processes": True, "silence_logs": logging.CRITICAL}
    n = workers or os.cpu_count() or 1
    with distributed.LocalCluster(n_workers=n, **{**settings, **options}) as cluster:
        yield cluster


def _remove_stale(out: Path, names: set[str], keep_shards: bool = False) -> None:
    """Delete shards in `out` that are not in `names` (unless keep_shards) and temporary files
    of killed shard writes."""
    for entry in out.iterdir():
        stale = SHARD.fullmatch(entry.name) and entry.name not in names and not keep_shards
        if stale or atomic.is_temp(entry.name, names):
            atomic.remove_file(entry)


# -- the worker's side: one model per process, a shard per partition -----------------------------

_MODELS: dict[tuple, FrozenTagger] = {}
_LOADS: Counter = Counter()  # model folder -> loads in this process
_LOCK = threading.Lock()


def worker_model(model: str, cache_mb: float | None = None) -> FrozenTagger:
    """This process's frozen tagger for the model folder `model`, loaded on first use (and again
    only when its meta.json changes, i.e. a new model was saved there)."""
    try:
        stamp = os.stat(os.path.join(model, "meta.json")).st_mtime_ns
    except OSError:
        stamp = None  # load_model says what is wrong
    key = (model, cache_mb, stamp)
    with _LOCK:
        found = _MODELS.get(key)
        if found is None:
            for old in [k for k in _MODELS if k[:2] == key[:2]]:
                del _MODELS[old]
            with blas_threads():
                found = _MODELS[key] = load_model(model)[0].frozen(cache_mb)
            _LOADS[model] += 1
        return found


def worker_stats() -> dict[str, Any]:
    """This process's pid, model loads per folder, peak RSS in MB and CPU seconds (user +
    system) so far, for tests and benchmarks (Unix)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "pid": os.getpid(),
        "loads": dict(_LOADS),
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "cpu_s": cpu,
    }


def tag_partition(part: Partition, job: Job) -> int:
    """Tag one partition and write its shard; the number of documents (runs on a worker)."""
    shard = Path(job.out_dir) / part.shard(job.output_format)
    try:
        tagger = worker_model(job.model, job.cache_mb)
        docs = _documents(part, job.input_format)
        text = io.StringIO()
        with blas_threads():
            count = write_documents(
                tag_documents(tagger, docs, job.threshold), text, job.output_format, job.probs
            )
        atomic.write_text(shard, text.getvalue())
    except NerwinError as err:
        raise TaggingFailed(str(err)) from None
    except OSError as err:
        raise TaggingFailed(f"{shard}: cannot write the shard ({err.strerror})") from None
    return count


def _documents(part: Partition, input_format: str) -> Iterator[TaggedDocument]:
    """The partition's documents: every text line, or every non-blank JSON-lines record."""
    lines = _lines(part)
    if input_format == "text":
        return text_documents(((line_id(part.source, n), t) for n, t in lines), with_ids=True)
    return text_documents(_records(part.source, lines), with_ids=True)


def _records(source: str, lines: Iterator[tuple[int, str]]) -> Iterator[tuple[Any, str]]:
    for number, line in lines:
        if line.strip():
            ident, text = jsonl_record(line, source, number)
            yield (line_id(source, number) if ident is None else ident), text


def _lines(part: Partition) -> Iterator[tuple[int, str]]:
    """(line number, text without line end) of the partition's lines, as nerwin predict reads
    them: UTF-8, a byte-order mark dropped from the file's first line, at most MAX_LINE_BYTES."""
    try:
        with open(part.path, "rb") as handle:
            handle.seek(part.start)
            at, number = part.start, part.first_line
            while at < part.stop:
                raw = handle.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    raise DataError("the file changed while it was tagged", part.source, number)
                if len(raw) > MAX_LINE_BYTES:
                    too_long = f"a line longer than {MAX_LINE_BYTES >> 20} MiB (no line ends?)"
                    raise DataError(too_long, part.source, number)
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise DataError("not valid UTF-8", part.source, number) from None
                yield number, (line.removeprefix("\ufeff") if number == 1 else line).rstrip("\r\n")
                at, number = at + len(raw), number + 1
    except OSError as err:
        raise DataError(f"cannot read input ({err.strerror})", part.source) from None
