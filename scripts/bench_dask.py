"""Scaling of `nerwin predict` on Dask: one process against LocalClusters of 1 and 2 workers.

usage: python scripts/bench_dask.py [--model DIR] [--tokens N] [--repeats N] [--lines N]
                                    [--workers 1 2] [--format json] [--keep DIR]

The corpus is CoNLL-2003 train (../shared/data/conll2003/train.txt) with each sentence's words
joined by spaces as one line of raw text, the sentences repeated until --tokens tokens
(default 2,000,000). The model is --model (default /tmp/ref50/model, trained with
`python -m nerwin train --set data.train=../shared/data/conll2003/train.txt
--set data.dev=../shared/data/conll2003/dev.txt --set train.epochs=2 --out /tmp/ref50`).

Rows, each timed --repeats times (default 3; the order rotates every repeat) and reported as the
median:
  one process   `nerwin predict --model M --input corpus.txt --ids --format json > file` as a
                fresh process: start-up, model load, reading, tagging, writing
  Dask, N       nerwin.tag.dask.tag_files on a LocalCluster of N worker processes with one
                thread each: the whole job (partitioning scan, the model load on each worker,
                tagging, shard writes); the cluster is started, and nerwin imported on its
                workers, before the clock starts, and closed after
Speed-up is against Dask with 1 worker and against one process. Peak RSS is each worker
process's maximum resident set (getrusage) after its job, with its model-load count. The
outputs are compared: the shards concatenated in order against the one-process output.
The load average (1 minute) is printed before and after, as other jobs share the machine.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nerwin.data.conll import parse_conll
from nerwin.tag.dask import local_cluster, tag_files, worker_stats

TRAIN = ROOT.parent / "shared" / "data" / "conll2003" / "train.txt"


def make_corpus(path: Path, tokens: int) -> tuple[int, int]:
    """Write CoNLL-2003 train sentences as text lines, repeated to `tokens`; (lines, tokens)."""
    with open(TRAIN, "rb") as handle:
        sentences = [s.words for s in parse_conll(handle, str(TRAIN))]
    lines, written = [], 0
    while written < tokens:
        for words in sentences:
            lines.append(" ".join(words))
            written += len(words)
            if written >= tokens:
                break
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines), written


def one_process(model: Path, corpus: Path, out: Path) -> float:
    """`nerwin predict --ids --format json` on the corpus, as a fresh process, to a file."""
    command = [sys.executable, "-m", "nerwin", "predict", "--model", str(model), "--ids"]
    command += ["--input", str(corpus), "--format", "json"]
    began = time.perf_counter()
    with open(out, "wb") as handle:
        subprocess.run(command, stdout=handle, check=True)
    return time.perf_counter() - began


def on_dask(model: Path, corpus: Path, out: Path, workers: int, lines: int, fmt: str):
    import distributed

    with (
        local_cluster(workers, dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
        client.wait_for_workers(workers)
        client.run(importlib.import_module, "nerwin.tag.dask")  # imports: part of the start
        began = time.perf_counter()
        tag_files(model, [corpus], out, "text", fmt, client, lines_per_partition=lines)
        seconds = time.perf_counter() - began
        stats = sorted(client.run(worker_stats).values(), key=lambda s: s["pid"])
    return seconds, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("/tmp/ref50/model"))
    parser.add_argument("--tokens", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lines", type=int, default=10_000, help="lines per partition")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--format", default="json", choices=["json", "conll"])
    parser.add_argument("--keep", type=Path, help="write the corpus and outputs here")
    args = parser.parse_args()
    if not TRAIN.is_file():
        sys.exit(f"CoNLL-2003 not found at {TRAIN}")
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_dask_"))
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus.txt"
    n_lines, n_tokens = make_corpus(corpus, args.tokens)
    load_before = os.getloadavg()[0]
    print(f"corpus: {n_lines:,} lines, {n_tokens:,} tokens, {corpus.stat().st_size:,} bytes; "
          f"{args.lines:,} lines per partition; model {args.model}; cpus {os.cpu_count()}; "
          f"load average {load_before:.2f}", file=sys.stderr)  # fmt: skip
    rows = ["one process"] + [f"Dask, {n} worker{'s' * (n > 1)}" for n in args.workers]
    times: dict[str, list[float]] = {row: [] for row in rows}
    stats: dict[str, list] = {}
    for repeat in range(args.repeats):
        order = rows[repeat % len(rows) :] + rows[: repeat % len(rows)]
        for row in order:
            if row == "one process":
                seconds = one_process(args.model, corpus, work / "single.jsonl")
            else:
                n = args.workers[rows.index(row) - 1]
                out = work / f"out-{n}"
                seconds, stats[row] = on_dask(args.model, corpus, out, n, args.lines, args.format)
            times[row].append(seconds)
            load = os.getloadavg()[0]
            print(f"repeat {repeat + 1}: {row}: {seconds:.2f}s (load {load:.2f})", file=sys.stderr)
    load_after = os.getloadavg()[0]
    single = (work / "single.jsonl").read_bytes()
    base1 = statistics.median(times[rows[1]]) if len(rows) > 1 else None
    base0 = statistics.median(times[rows[0]])
    print(f"\n{n_tokens:,} tokens, {n_lines:,} lines, median of {args.repeats}; "
          f"load average {load_before:.2f} before, {load_after:.2f} after\n")  # fmt: skip
    print("| run | seconds (median; all) | tokens/s | speed-up vs 1 worker | vs one process | "
          "peak RSS per worker (MB) | model loads per worker | output = one process |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | --- | --- | --- |")
    for row in rows:
        median = statistics.median(times[row])
        every = ", ".join(f"{t:.2f}" for t in times[row])
        speed = f"{base1 / median:.2f}" if base1 and row != rows[0] else ""
        rss = loads = same = ""
        if row in stats:
            rss = ", ".join(f"{s['peak_rss_mb']:.0f}" for s in stats[row])
            loads = ", ".join(str(sum(s["loads"].values())) for s in stats[row])
            n = args.workers[rows.index(row) - 1]
            shards = sorted((work / f"out-{n}").glob("part-*"))
            joined = b"".join(p.read_bytes() for p in shards)
            same = "n/a (conll)" if args.format != "json" else str(joined == single).lower()
        print(f"| {row} | {median:.2f} ({every}) | {n_tokens / median:,.0f} | {speed} | "
              f"{base0 / median:.2f} | {rss} | {loads} | {same} |")  # fmt: skip


if __name__ == "__main__":
    main()
