"""nerwin's benchmark suite: nerwin against a hand-written numpy step and PyTorch, on CoNLL-2003.

usage: python scripts/bench.py [--quick] [--only train predict vectors memory windows]
                               [--threads 1 2] [--repeats N] [--json FILE]

Every measurement runs in a fresh subprocess with OMP/OPENBLAS/MKL_NUM_THREADS set to the thread
count; within each repeat nerwin and the references alternate (the order rotates every repeat),
and the table shows medians over repeats. Ratios are nerwin's throughput divided by the
reference's (1.00 = parity, below 1 = nerwin slower), the median of the per-repeat ratios, so a
slow moment of a shared machine hits both sides of a ratio alike.

Before any timing, nerwin, the fused numpy step (scripts/bench_fused.py) and PyTorch
(scripts/bench_torch.py) take one SGD step from the same parameters on the same batch; the
parameters must agree to float32 rounding (--tol, default 1e-5) or the script stops.

Sections (--only):
  train    training windows/s at batch 1, 32, 256 over a fixed slice of the epoch-1 window order
           (after an untimed warm-up); one nerwin epoch at batch 32 (TrainingRun.epochs(), the
           seconds nerwin's own EpochReport measures)
  predict  P(location) tokens/s on pre-encoded windows (model only): nerwin's matrix path
           (x W in nerwin.model.tagger batches), its precomputed first layer (nerwin.model.frozen:
           rows cached, the steady state of `nerwin predict`, and rows built afresh in the call),
           hand-written numpy of the same gathers (bench_common.GatherSketch, the yardstick of
           the precomputed path), the fused numpy forward and PyTorch; raw text end to end
           in-process (nerwin.tag.documents.text_documents + tag_documents, precomputed and matrix
           paths), and tokenization alone
  cli      whole `nerwin predict --model M --input FILE --format F > /dev/null` processes on
           CoNLL-2003 train sentences joined as raw text (one per line, repeated to 400,000+
           tokens): every format, and conll with --cache-mb 0 (matrix path) as the reference;
           start-up and model load alone (empty input); peak RSS on a 1,000,000-token file.
           The model is --model DIR, else the benchmark model trained one epoch on train
  windows  nerwin.data.windows.make_windows and encode_sentences over the whole train corpus
  vectors  load_vectors of a synthetic 400,000 x 300 GloVe text file (written to a temp dir)
           for the CoNLL-2003 train vocabulary: first load (parse + cache write), cached load;
           peak RSS of the loading process
  memory   peak RSS of `nerwin train` on CoNLL-2003 (configs/conll2003.yaml, 1 epoch, 50-d vectors)
train and predict run at every --threads count (with --quick the epoch only at the first);
windows, vectors, memory and cli at the first only.

The correctness check also compares the precomputed first layer with the matrix path over every
train window (max |P(precomputed) - P(matrix)|, same --tol).
Progress goes to stderr; the report (markdown) to stdout.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import bench_common as bc
import numpy as np

SECTIONS = ("train", "predict", "cli", "windows", "vectors", "memory")
EPOCH_WINDOWS = 203_621  # CoNLL-2003 train tokens: the windows of one epoch
IMPLS = ("nerwin", "fused", "torch")
BATCHES = (1, 32, 256)
# Batch 1 at lr 0.3 diverges after ~11,300 windows of the epoch-1 order (nerwin and the numpy
# reference alike, step 11,291), so batch 1 stays well inside the first 11,000 windows.
TRAIN_WINDOWS = {
    "normal": {1: 8_000, 32: 64_000, 256: 131_072},
    "quick": {1: 1_000, 32: 8_192, 256: 16_384},
}
WARMUP_WINDOWS = {"normal": {1: 200, 32: 2_048, 256: 4_096}, "quick": {1: 50, 32: 320, 256: 1_024}}
VECTOR_ROWS = {"normal": 400_000, "quick": 40_000}
VECTOR_DIM = 300
MIN_SECONDS = {"normal": 1.0, "quick": 0.2}  # per timed loop of the predict/windows workers
PREDICT_IMPLS = ("nerwin", "frozen", "frozen-cold", "gathers", "fused", "torch")  # model only
CLI_TOKENS = {"normal": (400_000, 1_000_000), "quick": (50_000, 100_000)}  # e2e, peak RSS files


# --- workers: one measurement each, run as `bench.py --worker JSON` -----------------------------


def make_impl(name: str, setup: bc.Setup):
    """A fresh nerwin / fused / torch step object from the prepared initial parameters."""
    if name == "nerwin":
        return bc.NerwinStep(setup.fresh_params(), setup.meta["n_caps"])
    if name == "fused":
        from bench_fused import FusedStep

        return FusedStep(setup.fresh_params())
    if name == "torch":
        from bench_torch import TorchStep

        return TorchStep(setup.fresh_params())
    raise ValueError(name)


def repeat_for(seconds: float, fn, min_runs: int = 2) -> list[float]:
    """Call fn until `seconds` have passed (at least min_runs times); durations of each call."""
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - started < seconds:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def worker_check(spec: dict, setup: bc.Setup) -> dict:
    """One SGD step of every implementation from the same init on the same batch; max abs diffs."""
    from bench_torch import torch as torch_module

    impls = ["fused"] + (["torch"] if torch_module is not None else [])
    rows = []
    for batch in spec["batches"]:
        words, caps, labels = setup.words[:batch], setup.caps[:batch], setup.labels[:batch]
        ref = make_impl("nerwin", setup)
        ref_loss = ref.step(words, caps, labels)
        after = ref.arrays()
        moved = {k: float(np.abs(after[k] - setup.params[k]).max()) for k in bc.PARAM_NAMES}
        for name in impls:
            other = make_impl(name, setup)
            loss = other.step(words, caps, labels)
            theirs = other.arrays()
            rows.append(
                {
                    "batch": batch,
                    "impl": name,
                    "loss_diff": abs(loss - ref_loss),
                    "diff": {k: float(np.abs(after[k] - theirs[k]).max()) for k in bc.PARAM_NAMES},
                    "moved": moved,
                }
            )
    n = min(4096, len(setup.words))
    base = make_impl("nerwin", setup).predict(setup.words[:n], setup.caps[:n])
    predict = {
        name: float(
            np.abs(make_impl(name, setup).predict(setup.words[:n], setup.caps[:n]) - base).max()
        )
        for name in impls
    }
    tagger, data = _tagger_and_windows(setup)
    matrix = tagger.window_probabilities(data, frozen=False)
    frozen = tagger.frozen().window_probabilities(data)
    sketch = bc.GatherSketch(setup.params, setup.meta["n_caps"])
    sketch.prepare(data.words, data.caps)
    return {
        "gathers": float(np.abs(sketch.predict() - matrix).max()),
        "rows": rows,
        "predict": predict,
        "predict_windows": n,
        "torch": torch_module is not None,
        "frozen": float(np.abs(frozen - matrix).max()),
        "frozen_windows": len(matrix),
        "frozen_label_changes": int(((frozen >= 0.5) != (matrix >= 0.5)).sum()),
    }


def _tagger_and_windows(setup: bc.Setup):
    """nerwin's Tagger of the benchmark model and every train window, pre-encoded."""
    from nerwin.data.encode import WindowData
    from nerwin.data.vocab import Vocab
    from nerwin.model.tagger import Tagger

    vocab = Vocab.load(setup.folder / "vocab.txt", lowercase=True, digits=True)
    data = WindowData(setup.words_in_order, setup.caps_in_order, setup.lengths)
    return Tagger(make_impl("nerwin", setup).model, vocab), data


def worker_train(spec: dict, setup: bc.Setup) -> dict:
    impl = make_impl(spec["impl"], setup)
    return bc.time_training(impl.step, setup, spec["batch"], spec["windows"], spec["warmup"])


def worker_epoch(spec: dict, setup: bc.Setup) -> dict:
    """One nerwin epoch at batch 32 as `nerwin train` runs it: TrainingRun.epochs(), nerwin's timer.

    The figure is EpochReport.seconds, which nerwin measures around its epoch loop (the model
    saves after the epoch are not included); no dev set, so no evaluation either.
    """
    with tempfile.TemporaryDirectory() as out:
        run = bc.training_run(Path(out), Path(setup.meta["train"]), batch=32, epochs=1)
        report = next(iter(run.epochs()))
    n = len(run.data.labels)
    return {
        "seconds": report.seconds,
        "windows": n,
        "windows_per_s": n / report.seconds,
        "loss": float(report.loss),
    }


def worker_predict(spec: dict, setup: bc.Setup) -> dict:
    """P(location) for every train window, pre-encoded, in nerwin's inference batches."""
    from nerwin.model.tagger import SCORE_BATCH

    words, caps = setup.words_in_order, setup.caps_in_order
    if spec["impl"] in ("nerwin", "frozen", "frozen-cold"):
        tagger, data = _tagger_and_windows(setup)
        if spec["impl"] == "nerwin":  # the matrix path: x W in batches of SCORE_BATCH windows
            run = lambda: tagger.window_probabilities(data, frozen=False)  # noqa: E731
        elif spec["impl"] == "frozen":  # rows cached by the warm-up call: the steady state
            run = functools.partial(tagger.frozen().window_probabilities, data)
        else:  # every call builds its rows afresh, as one evaluation does
            run = lambda: tagger.window_probabilities(data, frozen=True)  # noqa: E731
    elif spec["impl"] == "gathers":  # hand-written numpy of the same gathers, rows made untimed
        sketch = bc.GatherSketch(setup.params, setup.meta["n_caps"])
        sketch.prepare(words, caps)
        run = sketch.predict
    else:
        impl = make_impl(spec["impl"], setup)

        def run():
            return np.concatenate(
                [
                    impl.predict(words[i : i + SCORE_BATCH], caps[i : i + SCORE_BATCH])
                    for i in range(0, len(words), SCORE_BATCH)
                ]
            )

    run()  # warm-up
    times = repeat_for(spec["min_seconds"], run)
    return {
        "tokens": len(words),
        "seconds": sum(times) / len(times),
        "tokens_per_s": len(words) * len(times) / sum(times),
    }


def _conll_sentences(setup: bc.Setup) -> list[list[str]]:
    from nerwin.data.conll import read_conll

    return [s.words for s in read_conll(setup.meta["train"]).sentences]


def worker_text(spec: dict, setup: bc.Setup) -> dict:
    """Raw text -> tokens -> P(location) -> labels through nerwin.tag.documents (a document per
    sentence); spec["cache_mb"] 0 takes the matrix path."""
    from nerwin.data.vocab import Vocab
    from nerwin.model.tagger import Tagger
    from nerwin.tag.documents import tag_documents, text_documents

    texts = [" ".join(words) for words in _conll_sentences(setup)]
    vocab = Vocab.load(setup.folder / "vocab.txt", lowercase=True, digits=True)
    tagger = Tagger(make_impl("nerwin", setup).model, vocab, cache_mb=spec.get("cache_mb"))
    tokens = sum(len(s) for doc in text_documents(texts) for s in doc.sentences)  # also a warm-up
    run = lambda: sum(len(d.labels) for d in tag_documents(tagger, text_documents(texts)))  # noqa: E731
    tokenize = lambda: sum(1 for _ in text_documents(texts))  # noqa: E731
    end_to_end = repeat_for(spec["min_seconds"], run)
    tokenizing = repeat_for(spec["min_seconds"], tokenize)
    return {
        "documents": len(texts),
        "tokens": tokens,
        "tokens_per_s": tokens * len(end_to_end) / sum(end_to_end),
        "tokenize_tokens_per_s": tokens * len(tokenizing) / sum(tokenizing),
    }


def worker_windows(spec: dict, setup: bc.Setup) -> dict:
    """make_windows over the whole corpus (ids already looked up); encode_sentences from words."""
    from nerwin.data.encode import encode_sentences
    from nerwin.data.vocab import END_ID, START_ID, Vocab
    from nerwin.data.windows import make_windows

    ids, lengths = setup.flat_ids, setup.lengths
    make = repeat_for(
        spec["min_seconds"], lambda: make_windows(ids, lengths, 5, START_ID, END_ID), 5
    )
    sentences = _conll_sentences(setup)
    vocab = Vocab.load(setup.folder / "vocab.txt", lowercase=True, digits=True)
    encode = repeat_for(spec["min_seconds"], lambda: encode_sentences(sentences, vocab, 5, True), 3)
    return {
        "tokens": len(ids),
        "make_windows_s": bc.median(make),
        "encode_sentences_s": bc.median(encode),
    }


def worker_vectors(spec: dict, setup: bc.Setup) -> dict:
    """load_vectors of the synthetic file for the CoNLL-2003 train vocabulary."""
    from nerwin.data.embeddings import load_vectors
    from nerwin.data.vocab import Vocab

    words = Vocab.load(setup.folder / "vocab.txt", lowercase=True, digits=True).words
    started = time.perf_counter()
    vectors = load_vectors(spec["path"], words, cache_dir=Path(spec["cache"]))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "words": len(words), "found": vectors.coverage.found}


def worker_baseline(spec: dict, setup: bc.Setup) -> dict:
    """Nothing: the RSS of python + numpy + nerwin + the loaded setup, for scale."""
    import nerwin.api  # noqa: F401

    return {}


WORKERS = {
    "check": worker_check,
    "train": worker_train,
    "epoch": worker_epoch,
    "predict": worker_predict,
    "text": worker_text,
    "windows": worker_windows,
    "vectors": worker_vectors,
    "baseline": worker_baseline,
}


def run_worker(text: str) -> None:
    spec = json.loads(text)
    setup = bc.load_setup(Path(spec["setup"]))
    result = WORKERS[spec["kind"]](spec, setup)
    result["threads"] = bc.current_threads()
    bc.emit(result)


# --- the driver ---------------------------------------------------------------------------------


class Failed(RuntimeError):
    """A measurement subprocess failed."""


# A tiny launcher between this driver and each measured process: a child's peak RSS (ru_maxrss)
# also counts the memory of the process it was forked from, and this driver is large (it has
# numpy, nerwin and torch loaded), while the launcher is a bare interpreter of a few MB.
LAUNCHER = """
import os, resource, sys, time
start = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
status = os.waitpid(pid, 0)[1]
wall = time.perf_counter() - start
use = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    f.write(f"{use.ru_maxrss} {use.ru_utime} {use.ru_stime} {wall}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def launch(cmd: list[str], threads: int, extra_env: dict | None = None) -> tuple[str, float]:
    """Run cmd in a fresh process; its stdout and its peak RSS in MB (getrusage RUSAGE_CHILDREN)."""
    stats = launch_stats(cmd, threads, extra_env, capture=True)
    return stats.pop("stdout"), stats["rss_mb"]


def launch_stats(
    cmd: list[str], threads: int, extra_env: dict | None = None, capture: bool = False
) -> dict:
    """Run cmd in a fresh process (stdout to /dev/null unless `capture`): its peak RSS (MB),
    wall seconds and CPU seconds (user + sys), from the launcher's getrusage(RUSAGE_CHILDREN)."""
    env = bc.threads_env(threads)
    env.update(extra_env or {})
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "maxrss"
        full = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(rss_file), *cmd]
        out = subprocess.PIPE if capture else subprocess.DEVNULL
        proc = subprocess.run(
            full,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.PIPE,
            env=env,
            cwd=bc.ROOT,
            text=True,
        )
        if proc.returncode != 0:
            raise Failed(f"{shlex.join(cmd)} exited with {proc.returncode}:\n{proc.stderr[-4000:]}")
        rss, user, system, wall = rss_file.read_text().split()
    stats = {
        "rss_mb": int(rss) / 1024,
        "user_s": float(user),
        "sys_s": float(system),
        "cpu_s": float(user) + float(system),
        "wall_s": float(wall),
    }
    if capture:
        stats["stdout"] = proc.stdout
    return stats


def measure(spec: dict, threads: int) -> dict:
    """One worker measurement in a fresh process; its JSON result plus the process's peak RSS."""
    out, rss = launch(
        [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)], threads
    )
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise Failed(f"worker {spec['kind']} printed no result:\n{out[-2000:]}")
    result = json.loads(lines[-1][len("RESULT ") :])
    result["rss_mb"] = rss
    return result


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def rotated(items: tuple | list, k: int) -> list:
    """items rotated left by k: each repeat starts with another implementation."""
    k %= len(items)
    return list(items[k:]) + list(items[:k])


def write_glove(path: Path, vocab_words: list[str], rows: int, dim: int, seed: int = 0) -> int:
    """A synthetic GloVe text file: the vocabulary words among filler words, 5-decimal values."""
    rng = np.random.default_rng(seed)
    real = [w for w in vocab_words if w and not w.startswith("<") and " " not in w]
    filler = [f"zzfill{i}" for i in range(max(rows - len(real), 0))]
    words = real[:rows] + filler
    rng.shuffle(words)
    encoded = np.array([w.encode("utf-8") for w in words])  # 'S<max>' zero-padded
    width = encoded.dtype.itemsize
    digits = b"0123456789"
    table = np.frombuffer(digits, np.uint8)
    with open(path, "wb") as f:
        for start in range(0, len(words), 8192):
            chunk = encoded[start : start + 8192]
            n = len(chunk)
            values = rng.integers(-99_999, 100_000, size=(n, dim))
            mags = np.abs(values)
            token = np.zeros((n, dim, 9), np.uint8)  # ' ', sign or nothing, '0', '.', 5 digits
            token[:, :, 0] = ord(" ")
            token[:, :, 1] = np.where(values < 0, ord("-"), 0)
            token[:, :, 2] = ord("0")
            token[:, :, 3] = ord(".")
            for i in range(5):
                token[:, :, 8 - i] = table[(mags // 10**i) % 10]
            line = np.zeros((n, width + dim * 9 + 1), np.uint8)
            line[:, :width] = chunk.view(np.uint8).reshape(n, width)
            line[:, width:-1] = token.reshape(n, -1)
            line[:, -1] = ord("\n")
            flat = line.reshape(-1)
            f.write(flat[flat != 0].tobytes())
    return len(words)


def machine_summary() -> list[str]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import bench_torch

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=bc.ROOT, text=True, capture_output=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=bc.ROOT,
            text=True,
            capture_output=True,
        ).stdout.strip()
        commit = f"{commit}{' + uncommitted changes' if dirty else ''}"
    except OSError:
        commit = "unknown"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    return [
        f"{cpu}, {os.cpu_count()} logical CPUs; load average at start {load}",
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"torch {bench_torch.version()}; nerwin {commit}"
        + (f"; OPENBLAS_CORETYPE={coretype}" if coretype else ""),
    ]


class Report:
    """Rows of the markdown table: label, threads, nerwin, fused, torch, ratios."""

    def __init__(self):
        self.rows: list[tuple[str, ...]] = []
        self.notes: list[str] = []

    def add(
        self,
        label: str,
        threads: int | str,
        values: dict[str, list[float]],
        digits: int = 0,
        ratios: bool = True,
    ) -> None:
        """values: impl -> per-repeat list (aligned by repeat for the ratios)."""
        cells = [label, str(threads)]
        for impl in IMPLS:
            vals = values.get(impl)
            cells.append(bc.fmt(bc.median(vals), digits) if vals else "—")
        for ref in ("fused", "torch"):
            a, b = values.get("nerwin"), values.get(ref)
            if ratios and a and b and len(a) == len(b):
                cells.append(f"{bc.median([x / y for x, y in zip(a, b)]):.2f}")
            else:
                cells.append("—")
        self.rows.append(tuple(cells))

    def markdown(self) -> str:
        head = (
            "| measurement | threads | nerwin | fused numpy | PyTorch | nerwin/fused "
            "| nerwin/torch |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
        )
        return "\n".join([head] + ["| " + " | ".join(r) + " |" for r in self.rows])


def run_check(folder: Path, threads: int, tol: float) -> tuple[str, bool]:
    result = measure({"kind": "check", "setup": str(folder), "batches": list(BATCHES)}, threads)
    lines = [
        "| batch | reference | loss | " + " | ".join(bc.PARAM_NAMES) + " |",
        "| ---: | --- | ---: | " + " | ".join("---:" for _ in bc.PARAM_NAMES) + " |",
    ]
    ok = True
    for row in result["rows"]:
        worst = max(row["diff"].values())
        ok &= worst < tol and row["loss_diff"] < tol
        lines.append(
            f"| {row['batch']} | {row['impl']} | {row['loss_diff']:.1e} | "
            + " | ".join(f"{row['diff'][k]:.1e}" for k in bc.PARAM_NAMES)
            + " |"
        )
    for row in result["rows"]:
        if row["impl"] == "fused":
            lines.append(
                f"| {row['batch']} | (size of nerwin's update) | | "
                + " | ".join(f"{row['moved'][k]:.1e}" for k in bc.PARAM_NAMES)
                + " |"
            )
    pred = ", ".join(f"{k} {v:.1e}" for k, v in result["predict"].items())
    ok &= all(v < tol for v in result["predict"].values())
    ok &= result["frozen"] < tol and result["gathers"] < tol
    text = (
        "Correctness: max |nerwin - reference| per parameter after one SGD step (lr 0.3) from the "
        f"same init on the first batch of the epoch-1 order (float32; pass < {tol:g}):\n\n"
        + "\n".join(lines)
        + f"\n\nPrediction, max |P(nerwin) - P(reference)| over {result['predict_windows']:,} "
        f"windows: {pred}. nerwin's precomputed first layer against its matrix path over all "
        f"{result['frozen_windows']:,} train windows: max |diff| {result['frozen']:.1e}, "
        f"{result['frozen_label_changes']} label(s) changed at threshold 0.5; the hand-written "
        f"numpy of the same gathers: max |diff| {result['gathers']:.1e}. "
        f"Result: {'PASS' if ok else 'FAIL'}."
    )
    if not result["torch"]:
        text += f"\n\nPyTorch skipped: {__import__('bench_torch').TORCH_MISSING}"
    return text, ok


def section_train(folder: Path, args, mode: str, report: Report, raw: dict) -> None:
    from bench_torch import torch as torch_module

    impls = [i for i in IMPLS if i != "torch" or torch_module is not None]
    runs: dict = {}
    epoch_threads = args.threads[:1] if mode == "quick" else args.threads  # a whole epoch is slow
    for r in range(args.repeats):
        for threads in args.threads:
            for i, batch in enumerate(BATCHES):
                for impl in rotated(impls, r + i):
                    spec = {
                        "kind": "train",
                        "setup": str(folder),
                        "impl": impl,
                        "batch": batch,
                        "windows": TRAIN_WINDOWS[mode][batch],
                        "warmup": WARMUP_WINDOWS[mode][batch],
                    }
                    res = measure(spec, threads)
                    runs.setdefault((threads, batch), {}).setdefault(impl, []).append(
                        res["windows_per_s"]
                    )
                    note(
                        f"  repeat {r + 1}/{args.repeats} threads {threads} batch {batch:>3} "
                        f"{impl:>6}: {res['windows_per_s']:>10,.0f} windows/s"
                    )
            if threads not in epoch_threads:
                continue
            res = measure({"kind": "epoch", "setup": str(folder)}, threads)
            runs.setdefault((threads, "epoch"), {}).setdefault("nerwin", []).append(res["seconds"])
            note(
                f"  repeat {r + 1}/{args.repeats} threads {threads} nerwin epoch at batch 32: "
                f"{res['seconds']:.2f} s"
            )
    for threads in args.threads:
        for batch in BATCHES:
            n = TRAIN_WINDOWS[mode][batch]
            report.add(
                f"training windows/s, batch {batch} ({n:,} windows)",
                threads,
                runs[(threads, batch)],
            )
    for threads in epoch_threads:
        report.add(
            "one nerwin training epoch at batch 32, seconds (203,621 windows)",
            threads,
            runs[(threads, "epoch")],
            digits=2,
            ratios=False,
        )
        at_b32 = {
            impl: [EPOCH_WINDOWS / rate for rate in rates]
            for impl, rates in runs[(threads, 32)].items()
        }
        report.add(
            "… 203,621 windows at each one's batch-32 rate above, seconds (the floor for an epoch)",
            threads,
            at_b32,
            digits=2,
            ratios=False,
        )
    raw["train"] = {f"{t}:{b}": v for (t, b), v in runs.items()}


def section_predict(folder: Path, args, mode: str, report: Report, raw: dict) -> None:
    from bench_torch import torch as torch_module

    impls = [i for i in PREDICT_IMPLS if i != "torch" or torch_module is not None]
    runs: dict = {}
    for r in range(args.repeats):
        for threads in args.threads:
            for impl in rotated(impls, r):
                res = measure(
                    {
                        "kind": "predict",
                        "setup": str(folder),
                        "impl": impl,
                        "min_seconds": MIN_SECONDS[mode],
                    },
                    threads,
                )
                runs.setdefault((threads, "model"), {}).setdefault(impl, []).append(
                    res["tokens_per_s"]
                )
                note(
                    f"  repeat {r + 1}/{args.repeats} threads {threads} predict {impl:>11}: "
                    f"{res['tokens_per_s']:>12,.0f} tokens/s"
                )
            for label, cache in (("text", None), ("text-matrix", 0)):
                spec = {"kind": "text", "setup": str(folder), "min_seconds": MIN_SECONDS[mode]}
                res = measure({**spec, "cache_mb": cache}, threads)
                runs.setdefault((threads, label), {}).setdefault("nerwin", []).append(
                    res["tokens_per_s"]
                )
                runs.setdefault((threads, "tokenize"), {}).setdefault("nerwin", []).append(
                    res["tokenize_tokens_per_s"]
                )
                note(
                    f"  repeat {r + 1}/{args.repeats} threads {threads} raw text ({label}): "
                    f"{res['tokens_per_s']:,.0f} tokens/s end to end, "
                    f"{res['tokenize_tokens_per_s']:,.0f} tokenizing"
                )
    for threads in args.threads:
        model = runs[(threads, "model")]
        references = {k: v for k, v in model.items() if k in ("fused", "torch")}
        report.add(
            "prediction tokens/s, pre-encoded windows (model only), matrix path x W",
            threads,
            {"nerwin": model["nerwin"], **references},
        )
        report.add(
            "… precomputed first layer (`Tagger.frozen()`, rows cached: `nerwin predict` "
            "after its first batches)",
            threads,
            {"nerwin": model["frozen"], **references},
        )
        report.add(
            "… hand-written numpy of the same gathers (`GatherSketch`: np.take into reused "
            "buffers, rows made untimed), in the nerwin column",
            threads,
            {"nerwin": model["gathers"]},
            ratios=False,
        )
        report.add(
            "… precomputed first layer, rows built within each call "
            "(`window_probabilities(frozen=True)`, as one evaluation)",
            threads,
            {"nerwin": model["frozen-cold"], **references},
        )
        ratio = bc.median([a / b for a, b in zip(model["frozen"], model["gathers"])])
        report.notes.append(
            f"Precomputed first layer (cached rows) / hand-written numpy of the same gathers "
            f"(np.take into reused buffers, rows made untimed), model only, {threads} thread(s): "
            f"{ratio:.2f} (median of per-repeat ratios)."
        )
        for impl, what in (("frozen", "cached rows"), ("frozen-cold", "rows built per call")):
            ratio = bc.median([a / b for a, b in zip(model[impl], model["nerwin"])])
            report.notes.append(
                f"Precomputed first layer ({what}) / matrix path, model only, {threads} "
                f"thread(s): {ratio:.2f} (median of per-repeat ratios)."
            )
    for threads in args.threads:
        report.add(
            "prediction tokens/s, raw text end to end in-process (tokenize + encode + model + "
            "entities; precomputed first layer)",
            threads,
            runs[(threads, "text")],
        )
        report.add(
            "… the same with the matrix path (`cache_mb=0`)",
            threads,
            runs[(threads, "text-matrix")],
        )
        report.add("… of which tokenization alone, tokens/s", threads, runs[(threads, "tokenize")])
    raw["predict"] = {f"{t}:{k}": v for (t, k), v in runs.items()}


def _raw_text_files(folder: Path, mode: str) -> tuple[list[tuple[Path, int]], int]:
    """CoNLL-2003 train sentences as raw text (one per line), repeated to the CLI_TOKENS sizes:
    [(path, tokens)], and the tokens of one copy (by nerwin's tokenizer)."""
    from nerwin.data.conll import read_conll
    from nerwin.data.tokenize import tokenize

    lines = [" ".join(s.words) for s in read_conll(bc.CONLL_TRAIN).sentences]
    per_copy = sum(len(sentence) for line in lines for sentence in tokenize(line))
    text = "".join(line + "\n" for line in lines)
    files = []
    for target in CLI_TOKENS[mode]:
        copies = -(-target // per_copy)
        if mode == "quick":  # a prefix of one copy is enough for a smoke run
            part = lines[: max(1, len(lines) * target // per_copy)]
            body, tokens = "".join(x + "\n" for x in part), None
        else:
            body, tokens = text * copies, per_copy * copies
        path = folder / f"raw-{target}.txt"
        path.write_text(body, encoding="utf-8")
        if tokens is None:
            tokens = sum(len(s) for x in part for s in tokenize(x))
        files.append((path, tokens))
    return files, per_copy


def _cli_model(folder: Path, args) -> Path:
    """--model, else the benchmark model trained for one epoch on CoNLL-2003 train."""
    if args.model is not None:
        return args.model
    out = folder / "cli-run"
    if not (out / "model" / "meta.json").is_file():
        cmd = [sys.executable, "-m", "nerwin", "train", "--out", str(out)]
        for item in bc.config_overrides(epochs=1):
            cmd += ["--set", item]
        note(f"  training the benchmark model for one epoch ({out}) ...")
        launch(cmd, args.threads[0])
    return out / "model"


def section_cli(folder: Path, args, mode: str, report: Report, raw: dict) -> None:
    threads = args.threads[0]
    model = _cli_model(folder, args)
    (e2e, e2e_tokens), (big, big_tokens) = _raw_text_files(folder, mode)[0]
    empty = folder / "empty.txt"
    empty.write_text("", encoding="utf-8")
    base = [sys.executable, "-m", "nerwin", "predict", "--model", str(model)]
    variants = {
        "inline": ["--input", str(e2e), "--format", "inline"],
        "conll": ["--input", str(e2e), "--format", "conll"],
        "json": ["--input", str(e2e), "--format", "json"],
        "conll, matrix path": ["--input", str(e2e), "--format", "conll", "--cache-mb", "0"],
        "start-up + load": ["--input", str(empty)],
        "1M conll": ["--input", str(big), "--format", "conll"],
    }
    runs: dict[str, dict[str, list[float]]] = {}
    for r in range(args.repeats):
        for name in rotated(list(variants), r):
            stats = launch_stats(base + variants[name], threads)
            for key, value in stats.items():
                runs.setdefault(name, {}).setdefault(key, []).append(value)
            note(
                f"  repeat {r + 1}/{args.repeats} nerwin predict {name}: {stats['wall_s']:.2f} s "
                f"wall, {stats['cpu_s']:.2f} s CPU, peak {stats['rss_mb']:.0f} MB"
            )
    start = runs["start-up + load"]
    for name in ("inline", "conll", "json", "conll, matrix path"):
        wall, cpu = runs[name]["wall_s"], runs[name]["cpu_s"]
        report.add(
            f"`nerwin predict --format {name}` whole process, tokens/s by wall clock "
            f"({e2e_tokens:,} tokens, model load included)",
            threads,
            {"nerwin": [e2e_tokens / w for w in wall]},
            ratios=False,
        )
        report.add(
            "… tokens/s by CPU time (user + sys: less sensitive to other tenants)",
            threads,
            {"nerwin": [e2e_tokens / c for c in cpu]},
            ratios=False,
        )
    report.add(
        "… of which start-up and model load (`--input` an empty file), wall s / CPU s",
        threads,
        {"nerwin": start["wall_s"]},
        digits=2,
        ratios=False,
    )
    report.add("… (CPU s)", threads, {"nerwin": start["cpu_s"]}, digits=2, ratios=False)
    report.add(
        f"peak RSS of `nerwin predict --format conll` on {big_tokens:,} tokens, MB",
        threads,
        {"nerwin": runs["1M conll"]["rss_mb"]},
        ratios=False,
    )
    report.add(
        "… and on the {:,}-token file, MB (precomputed / matrix path: {:.0f} / {:.0f})".format(
            e2e_tokens,
            bc.median(runs["conll"]["rss_mb"]),
            bc.median(runs["conll, matrix path"]["rss_mb"]),
        ),
        threads,
        {"nerwin": runs["conll"]["rss_mb"]},
        ratios=False,
    )
    raw["cli"] = {"tokens": e2e_tokens, "big_tokens": big_tokens, "model": str(model), **runs}


def section_windows(folder: Path, args, mode: str, report: Report, raw: dict) -> None:
    threads = args.threads[0]
    make, encode = [], []
    for r in range(args.repeats):
        res = measure(
            {"kind": "windows", "setup": str(folder), "min_seconds": MIN_SECONDS[mode]}, threads
        )
        make.append(res["make_windows_s"] * 1000)
        encode.append(res["encode_sentences_s"] * 1000)
        note(
            f"  repeat {r + 1}/{args.repeats} make_windows {make[-1]:.1f} ms, "
            f"encode_sentences {encode[-1]:.1f} ms"
        )
    report.add(
        f"make_windows, whole train corpus ({res['tokens']:,} tokens), ms",
        threads,
        {"nerwin": make},
        digits=1,
        ratios=False,
    )
    report.add(
        "encode_sentences (vocab + caps + windows), whole train corpus, ms",
        threads,
        {"nerwin": encode},
        digits=1,
        ratios=False,
    )
    raw["windows"] = {"make_windows_ms": make, "encode_sentences_ms": encode}


def section_vectors(folder: Path, args, mode: str, report: Report, raw: dict) -> None:
    threads = args.threads[0]
    rows = VECTOR_ROWS[mode]
    repeats = args.repeats
    with tempfile.TemporaryDirectory(prefix="nerwin-bench-vectors-") as tmp:
        path = Path(tmp) / f"synthetic.{rows}x{VECTOR_DIM}.txt"
        from nerwin.data.vocab import Vocab

        words = Vocab.load(folder / "vocab.txt", lowercase=True, digits=True).words
        started = time.perf_counter()
        write_glove(path, words, rows, VECTOR_DIM)
        size = path.stat().st_size
        note(f"  wrote {path} ({size / 1e9:.2f} GB) in {time.perf_counter() - started:.1f} s")
        first, cached, first_rss, cached_rss = [], [], [], []
        base = measure({"kind": "baseline", "setup": str(folder)}, threads)["rss_mb"]
        for r in range(repeats):
            cache = Path(tmp) / f"cache{r}"
            spec = {"kind": "vectors", "setup": str(folder), "path": str(path), "cache": str(cache)}
            a = measure(spec, threads)
            b = measure(spec, threads)
            first.append(a["seconds"])
            first_rss.append(a["rss_mb"])
            cached.append(b["seconds"])
            cached_rss.append(b["rss_mb"])
            note(
                f"  repeat {r + 1}/{repeats} vectors: first {a['seconds']:.2f} s "
                f"({a['rss_mb']:.0f} MB peak), cached {b['seconds']:.3f} s "
                f"({b['rss_mb']:.0f} MB peak); "
                f"{a['found']:,} of {a['words']:,} words found"
            )
    what = (
        f"synthetic GloVe {rows:,} x {VECTOR_DIM} ({size / 1e9:.2f} GB), {len(words):,} vocab words"
    )
    report.add(
        f"vector loading, first load (parse + cache write), s: {what}",
        threads,
        {"nerwin": first},
        digits=2,
        ratios=False,
    )
    report.add(
        "… peak RSS of that loading process, MB", threads, {"nerwin": first_rss}, ratios=False
    )
    report.add(
        "vector loading, cached load, s", threads, {"nerwin": cached}, digits=3, ratios=False
    )
    report.add(
        "… peak RSS of that loading process, MB", threads, {"nerwin": cached_rss}, ratios=False
    )
    report.add(
        "… for scale: python + numpy + nerwin + benchmark setup loaded, peak RSS MB",
        threads,
        {"nerwin": [base]},
        ratios=False,
    )
    raw["vectors"] = {
        "first_s": first,
        "cached_s": cached,
        "first_rss_mb": first_rss,
        "cached_rss_mb": cached_rss,
        "baseline_rss_mb": base,
        "file_bytes": size,
    }


def section_memory(folder: Path, args, mode: str, report: Report, raw: dict) -> None:
    threads = args.threads[0]
    if not bc.VECTORS_50D.is_file():
        report.notes.append(f"memory skipped: 50-d vectors not found at {bc.VECTORS_50D}")
        return
    rss, secs = [], []
    repeats = args.repeats
    for r in range(repeats):
        with tempfile.TemporaryDirectory(prefix="nerwin-bench-train-") as tmp:
            cmd = [
                sys.executable,
                "-m",
                "nerwin",
                "train",
                "--config",
                "configs/conll2003.yaml",
                "--set",
                f"data.vectors={os.path.relpath(bc.VECTORS_50D, bc.ROOT)}",
                "--set",
                "model.embedding_dim=50",
                "--set",
                "train.epochs=1",
                "--out",
                str(Path(tmp) / "run"),
            ]
            started = time.perf_counter()
            _, peak = launch(cmd, threads, {"NERWIN_CACHE": str(Path(tmp) / "cache")})
            secs.append(time.perf_counter() - started)
            rss.append(peak)
        note(
            f"  repeat {r + 1}/{repeats} nerwin train (1 epoch, 50-d vectors): peak {peak:.0f} MB, "
            f"{secs[-1]:.1f} s wall"
        )
    shown = shlex.join(["nerwin", *cmd[3:12]])
    report.add(
        f"peak RSS of a CoNLL-2003 training run, MB (`{shown}`, fresh vector cache)",
        threads,
        {"nerwin": rss},
        ratios=False,
    )
    report.add(
        "… wall seconds of that run (start-up, data, vectors, 1 epoch, dev eval, save)",
        threads,
        {"nerwin": secs},
        digits=1,
        ratios=False,
    )
    raw["memory"] = {"rss_mb": rss, "seconds": secs}


SECTION_RUNNERS = {
    "train": section_train,
    "predict": section_predict,
    "cli": section_cli,
    "windows": section_windows,
    "vectors": section_vectors,
    "memory": section_memory,
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="few steps, 1 repeat, small vector file: a smoke run"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        metavar="SECTION",
        help=f"sections to run: {', '.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default 1 2)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="repeats per measurement (default 5; --quick 1)"
    )
    parser.add_argument(
        "--tol", type=float, default=1e-5, help="correctness tolerance (default 1e-5)"
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="also write every raw measurement here"
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        metavar="DIR",
        help="model directory for the cli section (default: the benchmark model trained one "
        "epoch on CoNLL-2003 train, which takes a minute)",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        run_worker(args.worker)
        return 0
    message = bc.missing_data_message()
    if message:
        print(message)
        return 0
    mode = "quick" if args.quick else "normal"
    args.repeats = args.repeats or (1 if args.quick else 5)
    if args.repeats < 1 or any(t < 1 for t in args.threads):
        parser.error("--repeats and --threads must be >= 1")
    command = shlex.join(["python", "scripts/bench.py", *sys.argv[1:]])
    started = time.perf_counter()
    report, raw = Report(), {"command": command}
    with tempfile.TemporaryDirectory(prefix="nerwin-bench-") as tmp:
        folder = Path(tmp)
        note(f"preparing the CoNLL-2003 setup in {folder} ...")
        bc.prepare(folder)
        note("checking that nerwin, fused numpy and PyTorch compute the same step ...")
        check_text, ok = run_check(folder, args.threads[0], args.tol)
        if not ok:
            print(check_text)
            print(
                "\nstopping: the implementations disagree, so their timings would not be comparable"
            )
            return 1
        try:
            for section in SECTIONS:
                if section in args.only:
                    note(f"{section} ...")
                    SECTION_RUNNERS[section](folder, args, mode, report, raw)
        except Failed as err:
            print(f"error: a measurement failed: {err}", file=sys.stderr)
            return 1
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"## nerwin benchmarks ({stamp})\n")
    print(f"Command: `{command}`  ")
    for line in machine_summary():
        print(line + "  ")
    print(
        f"Model: CoNLL-2003 train vocabulary, d=50, window 5, H=300 ReLU, caps_dim=5, float32, "
        f"SGD lr 0.3. Medians of {args.repeats} repeat(s), each measurement a fresh process; "
        "ratios are nerwin's throughput / the reference's (median of per-repeat ratios; "
        f"< 1 = nerwin slower). Took {time.perf_counter() - started:.0f} s.\n"
    )
    print(report.markdown())
    for line in report.notes:
        print(f"\n{line}")
    print(f"\n{check_text}")
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
