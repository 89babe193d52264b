"""Shared pieces of the benchmark scripts: the prepared CoNLL-2003 setup, nerwin's step, timing.

The benchmark model is nerwin's CoNLL-2003 model: vocabulary of the CoNLL-2003 train words,
d=50, window 5, one hidden layer of 300 ReLU units, caps_dim=5 (parameters E, F, W, b, u, c),
float32, lr 0.3. `prepare()` builds it once with nerwin.api.TrainingRun and stores the initial
parameters and the windows in the order run_epoch visits them in epoch 1, so nerwin, the fused numpy
reference and PyTorch all start from the same parameters and see the same batches.

Import this module before numpy when you care about threads: it sets OMP/OPENBLAS/MKL_NUM_THREADS
to 1 unless they are already set (bench.py sets them explicitly for every measurement).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import json
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nerwin.training.heap import keep_freed_memory

keep_freed_memory()  # as the nerwin command does; every implementation runs with it

ROOT = Path(__file__).resolve().parent.parent
CONLL_TRAIN = ROOT.parent / "shared" / "data" / "conll2003" / "train.txt"
CONLL_DEV = ROOT.parent / "shared" / "data" / "conll2003" / "dev.txt"
VECTORS_50D = ROOT.parent / "shared" / "data" / "embeddings" / "minilm-50d.txt.gz"
PARAM_NAMES = ("E", "F", "W", "b", "u", "c")
LR = 0.3
SEED = 0
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def missing_data_message() -> str | None:
    """Why the benchmarks cannot run here, or None when CoNLL-2003 train is present."""
    if CONLL_TRAIN.is_file():
        return None
    return (
        f"skipped: CoNLL-2003 train not found at {CONLL_TRAIN} (../shared/data is absent on "
        "this machine); the benchmarks need it"
    )


def config_overrides(train: Path = CONLL_TRAIN, batch: int = 32, epochs: int = 1) -> list[str]:
    """nerwin config overrides of the benchmark model (defaults: d=50, w=5, H=300, relu, caps 5)."""
    return [
        f"data.train={train}",
        "data.dev=null",
        "data.vectors=null",
        "model.window=5",
        "model.embedding_dim=50",
        "model.hidden=[300]",
        "model.activation=relu",
        "model.caps_dim=5",
        f"train.lr={LR}",
        f"train.batch_size={batch}",
        f"train.epochs={epochs}",
        "train.unk_prob=0.0",
        "train.pos_weight=1.0",
        "train.embedding_lr_scale=1.0",
        f"train.seed={SEED}",
    ]


def training_run(out_dir: Path, train: Path = CONLL_TRAIN, batch: int = 32, epochs: int = 1):
    """A nerwin TrainingRun of the benchmark model (reads the corpus; vocab, windows, model)."""
    from nerwin.api import TrainingRun
    from nerwin.config import load_config

    return TrainingRun(
        load_config(None, config_overrides(train, batch, epochs)), out_dir, force=True
    )


def prepare(folder: Path, train: Path = CONLL_TRAIN) -> Path:
    """Write setup.npz (initial params, windows in epoch-1 order, ...) and vocab.txt into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as out:
        run = training_run(Path(out), train)
        model, data = run.tagger.model, run.data
        # run_epoch's first action in epoch 1: the same permutation from the same generator.
        order = run.rng.permutation(len(data.labels))
        arrays = {f"param_{k}": v.copy() for k, v in model.arrays().items()}
        assert tuple(sorted(model.params)) == tuple(sorted(PARAM_NAMES)), sorted(model.params)
        run.tagger.vocab.save(folder / "vocab.txt")
        corpus_words = [w for s in run.train_corpus.sentences for w in s.words]
        np.savez(
            folder / "setup.npz",
            **arrays,
            words=data.windows.words[order],
            caps=data.windows.caps[order],
            labels=data.labels[order],
            words_in_order=data.windows.words,
            caps_in_order=data.windows.caps,
            lengths=data.windows.lengths,
            flat_ids=run.tagger.vocab.encode(corpus_words),
            meta=np.array(
                json.dumps(
                    {
                        "vocab_size": len(run.tagger.vocab),
                        "n_windows": len(data.labels),
                        "n_sentences": len(data.windows.lengths),
                        "n_caps": model.shape.n_caps,
                        "train": str(train),
                    }
                )
            ),
        )
    return folder


@dataclass
class Setup:
    """The prepared benchmark inputs."""

    params: dict[str, np.ndarray]
    words: np.ndarray  # (n, 5) int32, epoch-1 order
    caps: np.ndarray  # (n, 5) int32, epoch-1 order
    labels: np.ndarray  # (n,) float32, epoch-1 order
    words_in_order: np.ndarray
    caps_in_order: np.ndarray
    lengths: np.ndarray
    flat_ids: np.ndarray
    meta: dict
    folder: Path

    def fresh_params(self) -> dict[str, np.ndarray]:
        """Writable copies of the initial parameters."""
        return {k: v.copy() for k, v in self.params.items()}


def load_setup(folder: Path) -> Setup:
    """Read what prepare() wrote."""
    with np.load(Path(folder) / "setup.npz", allow_pickle=False) as z:
        params = {k: np.ascontiguousarray(z[f"param_{k}"]) for k in PARAM_NAMES}
        return Setup(
            params,
            z["words"],
            z["caps"],
            z["labels"],
            z["words_in_order"],
            z["caps_in_order"],
            z["lengths"],
            z["flat_ids"],
            json.loads(str(z["meta"])),
            Path(folder),
        )


# --- nerwin, through its own classes (never a copy of them) ------------------------------------


class NerwinStep:
    """nerwin's WindowClassifier + SGD; step() is exactly what run_epoch does per batch."""

    name = "nerwin"

    def __init__(self, params: dict[str, np.ndarray], n_caps: int, lr: float = LR):
        from nerwin.engine import Tensor
        from nerwin.model.classifier import ModelShape, WindowClassifier
        from nerwin.model.sgd import SGD

        vocab_size, dim = params["E"].shape
        caps_dim = params["F"].shape[1]
        hidden = params["W"].shape[1]
        window = params["W"].shape[0] // (dim + caps_dim)
        shape = ModelShape(vocab_size, dim, window, (hidden,), "relu", caps_dim, n_caps, "float32")
        tensors = {
            k: Tensor(np.ascontiguousarray(v, dtype=np.float32), requires_grad=True, name=k)
            for k, v in params.items()
        }
        self.model = WindowClassifier(shape, tensors)
        self.optimizer = SGD(self.model.params, lr, {"E": 1.0})

    def step(self, words: np.ndarray, caps: np.ndarray, labels: np.ndarray) -> float:
        """One SGD step as in nerwin.training.loop.run_epoch; returns the batch loss."""
        loss = self.model.loss(words, caps, labels, None)
        value = float(loss.data)
        loss.backward()
        self.optimizer.step()
        return value

    def predict(self, words: np.ndarray, caps: np.ndarray) -> np.ndarray:
        """P(location) per window (nerwin's inference path, one forward over the whole batch)."""
        return self.model.predict_proba(words, caps)

    def arrays(self) -> dict[str, np.ndarray]:
        """Current parameters as numpy arrays, nerwin's layout."""
        return {k: v.copy() for k, v in self.model.arrays().items()}


class GatherSketch:
    """Hand-written numpy of the precomputed first layer, the yardstick of nerwin.model.frozen:
    rows R_p[key] = E[w] W_E,p + F[c] W_F,p (+ b at p = 0) for every distinct (word, caps) key of
    the windows, computed once in `prepare` (the steady state of a warm cache); `predict` then
    gathers them with np.take into reused (CHUNK, H) buffers, adds, ReLU, u, sigmoid."""

    name = "gathers"
    chunk = 256

    def __init__(self, params: dict[str, np.ndarray], n_caps: int):
        self.params, self.n_caps = params, n_caps
        self.index: np.ndarray | None = None

    def prepare(self, words: np.ndarray, caps: np.ndarray) -> None:
        """Rows of the distinct keys of windows (n, w), and each window's row indices (w, n)."""
        p = self.params
        keys = (words.astype(np.int64) * self.n_caps + caps).T
        distinct, inverse = np.unique(keys, return_inverse=True)
        self.index = np.ascontiguousarray(inverse.reshape(keys.shape), dtype=np.intp)
        word, cap = np.divmod(distinct, self.n_caps)
        d, k, w = p["E"].shape[1], p["F"].shape[1], keys.shape[0]
        W = p["W"].astype(np.float32)  # rows: the w word vectors, then the w caps vectors
        self.rows = [
            np.ascontiguousarray(
                p["E"][word] @ W[q * d : (q + 1) * d]
                + p["F"][cap] @ W[w * d + q * k : w * d + (q + 1) * k]
                + (p["b"] if q == 0 else 0),
                dtype=np.float32,
            )
            for q in range(w)
        ]
        hidden = W.shape[1]
        self.buffers = [np.empty((self.chunk, hidden), np.float32) for _ in range(2)]
        self.zero = np.zeros((self.chunk, hidden), np.float32)
        self.u, self.c = np.ascontiguousarray(p["u"][:, 0], np.float32), np.float32(p["c"][0])

    def predict(self) -> np.ndarray:
        """P(location) of every window given to prepare()."""
        index, rows = self.index, self.rows
        n = index.shape[1]
        out = np.empty(n, np.float32)
        z_buf, tmp_buf = self.buffers
        for s in range(0, n, self.chunk):
            e = min(n, s + self.chunk)
            z, tmp = z_buf[: e - s], tmp_buf[: e - s]
            rows[0].take(index[0, s:e], axis=0, out=z, mode="clip")
            for q in range(1, len(rows)):
                rows[q].take(index[q, s:e], axis=0, out=tmp, mode="clip")
                np.add(z, tmp, out=z)
            np.maximum(z, self.zero[: e - s], out=z)
            np.dot(z, self.u, out=out[s:e])
        out += self.c
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-out))


# --- timing --------------------------------------------------------------------------------------


def time_training(
    step: Callable[[np.ndarray, np.ndarray, np.ndarray], float],
    setup: Setup,
    batch: int,
    n_windows: int,
    warmup_windows: int,
) -> dict:
    """Untimed warm-up on the first warmup_windows, then time SGD steps over the next n_windows."""
    words, caps, labels = setup.words, setup.caps, setup.labels
    total = len(labels)
    if warmup_windows + n_windows > total:
        raise ValueError(f"{warmup_windows} + {n_windows} windows > {total} in the corpus")
    for start in range(0, warmup_windows, batch):
        stop = min(start + batch, warmup_windows)
        step(words[start:stop], caps[start:stop], labels[start:stop])
    first, last = warmup_windows, warmup_windows + n_windows
    losses = 0.0
    started = time.perf_counter()
    for start in range(first, last, batch):
        stop = min(start + batch, last)
        losses += step(words[start:stop], caps[start:stop], labels[start:stop])
    seconds = time.perf_counter() - started
    if not np.isfinite(losses):
        raise RuntimeError("training diverged during the benchmark")
    return {
        "windows": n_windows,
        "seconds": seconds,
        "windows_per_s": n_windows / seconds,
        "steps": -(-n_windows // batch),
    }


def threads_env(threads: int) -> dict[str, str]:
    """The environment of a measurement subprocess with `threads` BLAS/OpenMP threads."""
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = str(threads)
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def current_threads() -> int:
    """The thread count this process was started with (OMP_NUM_THREADS)."""
    return int(os.environ.get("OMP_NUM_THREADS", "1"))


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (VmHWM; ru_maxrss would also count
    the memory of the process this one was forked from)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(result: dict) -> None:
    """Print one result as a JSON line on stdout (the worker protocol of bench.py)."""
    result.setdefault("peak_rss_mb", peak_rss_mb())
    print("RESULT " + json.dumps(result), flush=True)


def median(values: list[float]) -> float:
    """Median of a non-empty list."""
    return statistics.median(values)


def fmt(value: float | None, digits: int = 0) -> str:
    """A number with thousands separators, or a dash."""
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def standalone_setup() -> Setup:
    """For the standalone scripts: prepare into a temporary folder, load it, remove the folder."""
    message = missing_data_message()
    if message:
        print(message, file=sys.stderr)
        raise SystemExit(0)
    with tempfile.TemporaryDirectory(prefix="nerwin-bench-") as folder:
        return load_setup(prepare(Path(folder)))
