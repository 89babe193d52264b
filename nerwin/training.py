"""The training loop: shuffled minibatch SGD, one report per epoch, early stopping on dev F1."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

import numpy as np

from nerwin.config import TrainConfig
from nerwin.data.encode import WindowData
from nerwin.data.vocab import UNK_ID
from nerwin.errors import TrainingDiverged
from nerwin.metrics import Scores
from nerwin.model import WindowClassifier
from nerwin.optim import SGD

PROGRESS_EVERY = 64  # batches between progress updates


class Progress(Protocol):
    """Receives progress; the CLI renders it (tqdm), the library stays silent."""

    def start(self, epoch: int, total: int) -> None: ...
    def advance(self, windows: int, loss: float) -> None: ...
    def close(self) -> None: ...


class Silent:
    """A Progress that shows nothing."""

    def start(self, epoch: int, total: int) -> None:
        """Nothing."""

    def advance(self, windows: int, loss: float) -> None:
        """Nothing."""

    def close(self) -> None:
        """Nothing."""


@dataclass(frozen=True)
class EpochReport:
    """What one epoch did and how the model scores on dev after it."""

    epoch: int
    loss: float
    lr: float
    seconds: float
    windows_per_s: float
    dev: Scores | None
    best: bool
    stop: bool

    def to_dict(self) -> dict:
        """JSON-ready form for the metrics log."""
        return {"epoch": self.epoch, "loss": self.loss, "lr": self.lr, "seconds": self.seconds,
                "windows_per_s": self.windows_per_s, "best": self.best,
                "dev": None if self.dev is None else self.dev.to_dict()}


@dataclass
class TrainingData:
    """Training windows with 0/1 labels, and which word ids were seen once (for unk_prob)."""

    windows: WindowData
    labels: np.ndarray
    rare: np.ndarray | None = None


def train_epochs(model: WindowClassifier, data: TrainingData, cfg: TrainConfig,
                 evaluate: Callable[[WindowClassifier], Scores] | None,
                 rng: np.random.Generator, progress: Progress | None = None,
                 start_epoch: int = 1) -> Iterator[EpochReport]:
    """Train epoch by epoch; yield a report after each; stop early when dev F1 stalls."""
    optimizer = SGD(model.params, cfg.lr, {"E": cfg.embedding_lr_scale})
    best_f1, since_best = -1.0, 0
    for epoch in range(start_epoch, cfg.epochs + 1):
        optimizer.lr = cfg.lr / (1.0 + cfg.lr_decay * (epoch - 1))
        started = time.perf_counter()
        loss = run_epoch(model, optimizer, data, cfg, rng, epoch, progress or Silent())
        seconds = time.perf_counter() - started
        scores = evaluate(model) if evaluate else None
        f1 = scores.entity.f1 if scores else -float(loss)
        best = f1 > best_f1
        best_f1, since_best = (f1, 0) if best else (best_f1, since_best + 1)
        stop = since_best >= cfg.patience or epoch == cfg.epochs
        yield EpochReport(epoch, loss, optimizer.lr, seconds, len(data.labels) / seconds,
                          scores, best, stop)
        if stop:
            return


def run_epoch(model: WindowClassifier, optimizer: SGD, data: TrainingData, cfg: TrainConfig,
              rng: np.random.Generator, epoch: int, progress: Progress) -> float:
    """One shuffled pass of SGD over the training windows; returns the mean loss."""
    order = rng.permutation(len(data.labels))
    words = data.windows.words[order]
    caps = None if data.windows.caps is None else data.windows.caps[order]
    labels = data.labels[order]
    if cfg.unk_prob > 0 and data.rare is not None:
        words[data.rare[words] & (rng.random(words.shape) < cfg.unk_prob)] = UNK_ID
    weights = np.where(labels > 0, cfg.pos_weight, 1.0) if cfg.pos_weight != 1 else None
    batch, total, steps = cfg.batch_size, 0.0, 0
    steps_before = (epoch - 1) * -(-len(labels) // batch)
    progress.start(epoch, len(labels))
    for start in range(0, len(labels), batch):
        stop = start + batch
        loss = model.loss(words[start:stop], None if caps is None else caps[start:stop],
                          labels[start:stop], None if weights is None else weights[start:stop])
        value = float(loss.data)
        if not math.isfinite(value):
            raise TrainingDiverged(steps_before + steps + 1, optimizer.lr, value, epoch)
        loss.backward()
        optimizer.step()
        total += value * min(batch, len(labels) - start)
        steps += 1
        if steps % PROGRESS_EVERY == 0:
            progress.advance(batch * PROGRESS_EVERY, value)
    progress.close()
    return total / len(labels)
