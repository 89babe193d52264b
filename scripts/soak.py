"""Soak test: train on CoNLL-2003 repeated N times and watch the training process's memory.

usage: python scripts/soak.py [--repeat 10] [--epochs 3] [--interval 2] [--quick] [--keep]
                              [--set key=value ...]

Builds ../shared/data/conll2003/train.txt repeated --repeat times into a temporary file (10 times is
about 2 million training windows), runs `python -m nerwin train` on it in a subprocess, reads the
child's resident memory (VmRSS in /proc/PID/status) every --interval seconds and again as soon as
an epoch line lands in RUN/metrics.jsonl, then prints the peak, the memory at the end of each epoch,
and whether memory grew from epoch to epoch (a leak: each epoch should reuse the same arrays).
--quick is --repeat 2 --epochs 2 unless those are given. Not a test; not collected by pytest.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONLL = ROOT.parent / "shared" / "data" / "conll2003"
MB = 1024 * 1024


def read_status_kb(pid: int, field: str) -> int | None:
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM), or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def build_corpus(source: Path, repeat: int, target: Path) -> int:
    """Write source `repeat` times into target (a blank line between copies); return its lines."""
    data = source.read_bytes()
    if not data.endswith(b"\n\n"):
        data = data.rstrip(b"\n") + b"\n\n"
    with open(target, "wb") as out:
        for _ in range(repeat):
            out.write(data)
    return data.count(b"\n") * repeat


def epoch_lines(metrics: Path, seen: int) -> list[dict]:
    """Complete JSON lines of metrics.jsonl after the first `seen` ones."""
    try:
        text = metrics.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    complete = text[: text.rfind("\n") + 1].splitlines()
    return [json.loads(line) for line in complete[seen:]]


def watch(proc: subprocess.Popen, metrics: Path, interval: float) -> tuple[list, list, int]:
    """Sample RSS every `interval` s and at each epoch end; return (samples, epochs, VmHWM kB)."""
    started = time.monotonic()
    samples: list[tuple[float, int]] = []  # (seconds, rss kB)
    epochs: list[tuple[dict, float, int]] = []  # (metrics record, seconds, rss kB)
    hwm, next_sample = 0, 0.0
    while proc.poll() is None:
        now = time.monotonic() - started
        new = epoch_lines(metrics, len(epochs))
        if now >= next_sample or new:
            rss = read_status_kb(proc.pid, "VmRSS")
            hwm = max(hwm, read_status_kb(proc.pid, "VmHWM") or 0)
            if rss is not None:
                samples.append((now, rss))
                if now >= next_sample:
                    print(f"  t={now:7.1f}s  rss {rss / 1024:8.1f} MB", flush=True)
                    next_sample = now + interval
                for record in new:
                    epochs.append((record, now, rss))
                    print(
                        f"  t={now:7.1f}s  rss {rss / 1024:8.1f} MB  "
                        f"<- end of epoch {record['epoch']} "
                        f"(loss {record['loss']:.4f}, {record['seconds']:.1f}s, "
                        f"{record['windows_per_s']:,.0f} win/s)",
                        flush=True,
                    )
        time.sleep(0.1)
    for record in epoch_lines(metrics, len(epochs)):  # logged in the last moments: no RSS reading
        epochs.append((record, time.monotonic() - started, -1))
    return samples, epochs, hwm


def growth_verdict(epoch_rss_kb: list[int]) -> str:
    """Whether RSS kept growing over the epoch ends (epoch 1 includes one-off warm-up)."""
    values = [kb for kb in epoch_rss_kb if kb > 0]
    if len(values) < 2:
        return "memory growth across epochs: unknown (fewer than two epoch ends sampled)"
    first, last = values[0], values[-1]
    delta_mb = (last - first) / 1024
    steps = [b - a for a, b in itertools.pairwise(values)]
    tolerance_kb = max(20 * 1024, 0.05 * first)  # allocator noise: 20 MB or 5 %
    grew = last - first > tolerance_kb or (len(steps) >= 2 and all(s > 0.01 * first for s in steps))
    return (
        f"memory growth across epochs: {'YES' if grew else 'no'} "
        f"({delta_mb:+.1f} MB from the end of epoch 1 to the end of epoch {len(values)}; "
        f"per epoch {', '.join(f'{s / 1024:+.1f}' for s in steps)} MB; "
        f"tolerance {tolerance_kb / 1024:.0f} MB)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=None, help="copies of train.txt (default 10)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 3)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between RSS samples")
    parser.add_argument(
        "--quick", action="store_true", help="--repeat 2 --epochs 2 (a check that it works)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary corpus and run directory"
    )
    parser.add_argument("--set", action="append", default=[], help="extra nerwin config override")
    args = parser.parse_args()
    repeat = args.repeat if args.repeat is not None else (2 if args.quick else 10)
    epochs = args.epochs if args.epochs is not None else (2 if args.quick else 3)
    if repeat < 1 or epochs < 1:
        parser.error("--repeat and --epochs must be >= 1")
    source, dev = CONLL / "train.txt", CONLL / "dev.txt"
    if not source.is_file():
        print(f"error: {source}: CoNLL-2003 not found (../shared/data is absent)", file=sys.stderr)
        return 1

    work = Path(tempfile.mkdtemp(prefix="nerwin-soak-"))
    corpus, out = work / "train.txt", work / "run"
    try:
        lines = build_corpus(source, repeat, corpus)
        print(
            f"soak: {source} x{repeat} -> {corpus} ({lines:,} lines, "
            f"{corpus.stat().st_size / MB:.0f} MB)",
            flush=True,
        )
        command = [
            sys.executable,
            "-m",
            "nerwin",
            "train",
            "--set",
            f"data.train={corpus}",
            "--set",
            f"data.dev={dev}",
            "--set",
            f"train.epochs={epochs}",
            "--set",
            f"train.patience={epochs}",
            *[a for s in args.set for a in ("--set", s)],
            "--out",
            str(out),
        ]
        log = open(work / "train.log", "w+", encoding="utf-8")  # noqa: SIM115 (closed below)
        started = time.monotonic()
        proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
        print(
            f"soak: python {' '.join(command[1:])}\n"
            f"soak: pid {proc.pid}; VmRSS every {args.interval:g} s",
            flush=True,
        )
        try:
            samples, ends, hwm = watch(proc, out / "metrics.jsonl", args.interval)
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            proc.wait()
            raise
        code = proc.wait()
        elapsed = time.monotonic() - started
        maxrss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kB on Linux
        log.seek(0)
        train_log = log.read()
        log.close()

        print(f"\nexit code {code} after {elapsed:.1f}s")
        notes = [
            line for line in train_log.splitlines() if line.startswith(("train:", "vocabulary:"))
        ]
        for line in notes:
            print(f"  {line}")
        if code != 0:
            print("training failed; its last lines:\n" + "\n".join(train_log.splitlines()[-5:]))
        peak_sample = max((kb for _, kb in samples), default=0)
        print(
            f"peak RSS: {max(maxrss_kb, hwm) / 1024:.1f} MB (kernel high-water mark); "
            f"highest sample {peak_sample / 1024:.1f} MB over {len(samples)} samples"
        )
        first_end = ends[0][1] if ends else float("inf")
        before = [kb for at, kb in samples if at < first_end]
        if before:
            print(f"RSS during epoch 1 (data loaded, training): {before[-1] / 1024:.1f} MB")
        for record, at, kb in ends:
            rss = f"{kb / 1024:.1f} MB" if kb > 0 else "not sampled (process ending)"
            print(
                f"RSS at the end of epoch {record['epoch']}: {rss} (t={at:.1f}s, epoch took "
                f"{record['seconds']:.1f}s)"
            )
        print(growth_verdict([kb for _, _, kb in ends]))
        return 0 if code == 0 else 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.exit(main())
