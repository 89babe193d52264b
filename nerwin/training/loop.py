"""The training loop: shuffled minibatch SGD, one report per epoch, early stopping on dev F1."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from nerwin.config import TrainConfig
from nerwin.data.encode import WindowData
from nerwin.data.vocab import UNK_ID
from nerwin.errors import TrainingDiverged
from nerwin.metrics import Scores
from nerwin.model.classifier import AuxTargets, Dropout, WindowClassifier
from nerwin.model.sgd import SGD
from nerwin.training.diagnostics import SAMPLE_EVERY, Diagnostics, GradientMonitor, diagnose

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
    diagnostics: Diagnostics | None = None
    member: int = 0  # 1, 2, ... for an ensemble's members; 0 for a single model

    def to_dict(self) -> dict:
        """JSON-ready form for the metrics log."""
        return {
            **({"member": self.member} if self.member else {}),
            "epoch": self.epoch,
            "loss": self.loss,
            "lr": self.lr,
            "seconds": self.seconds,
            "windows_per_s": self.windows_per_s,
            "best": self.best,
            "dev": None if self.dev is None else self.dev.to_dict(),
            "diagnostics": None if self.diagnostics is None else self.diagnostics.to_dict(),
        }


@dataclass
class TrainingData:
    """Training windows with 0/1 labels, and which word ids were seen once (for unk_prob)."""

    windows: WindowData
    labels: np.ndarray
    rare: np.ndarray | None = None
    aux_labels: np.ndarray | None = None  # (n, k) 0/1 labels of the model's aux_types, if any


@dataclass
class TrainState:
    """Where training stands, enough to resume bit-identically: epoch, batch, RNG, early stopping."""

    epoch: int = 1  # the epoch in progress, or the next one to run
    step: int = 0  # batches of that epoch already done
    loss_sum: float = 0.0  # summed loss of those batches (times batch sizes)
    rng_state: dict | None = None  # generator state at the start of that epoch
    best_f1: float | None = None  # the best epoch's dev F1 (or -loss without dev); None before any
    since_best: int = 0

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, raw: dict) -> TrainState:
        """Inverse of to_dict."""
        return cls(**raw)


class Interrupted(Exception):
    """Training stopped between two steps on request; `state` resumes it."""

    def __init__(self, state: TrainState):
        super().__init__(f"interrupted in epoch {state.epoch} after {state.step} steps")
        self.state = state


def train_epochs(
    model: WindowClassifier,
    data: TrainingData,
    cfg: TrainConfig,
    evaluate: Callable[[WindowClassifier], Scores] | None,
    rng: np.random.Generator,
    progress: Progress | None = None,
    state: TrainState | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    probe: tuple[WindowData, np.ndarray] | None = None,
) -> Iterator[tuple[EpochReport, TrainState]]:
    """Train epoch by epoch from `state`; yield each report with the state after it.

    With `probe` (windows, labels), each report carries diagnostics measured on those windows.
    """
    optimizer = SGD(model.params, cfg.lr, {"E": cfg.embedding_lr_scale})
    state = state or TrainState()
    monitor = GradientMonitor() if probe is not None else None
    diagnostics = None
    for epoch in range(state.epoch, cfg.epochs + 1):
        if state.rng_state is not None:
            rng.bit_generator.state = state.rng_state
        state.rng_state, state.epoch = rng.bit_generator.state, epoch
        optimizer.lr = cfg.lr / (1.0 + cfg.lr_decay * (epoch - 1))
        started, first_step = time.perf_counter(), state.step
        loss = run_epoch(
            model, optimizer, data, cfg, rng, state, progress or Silent(), should_stop, monitor
        )
        seconds = time.perf_counter() - started
        if probe is not None:
            diagnostics = diagnose(model, monitor, *probe, previous=diagnostics)
        scores = evaluate(model) if evaluate else None
        f1 = scores.entity.f1 if scores else -float(loss)
        best = state.best_f1 is None or f1 > state.best_f1
        best_f1, since_best = (f1, 0) if best else (state.best_f1, state.since_best + 1)
        stop = since_best >= cfg.patience or epoch == cfg.epochs
        state = TrainState(epoch + 1, 0, 0.0, rng.bit_generator.state, best_f1, since_best)
        windows = len(data.labels) - first_step * cfg.batch_size
        report = EpochReport(
            epoch, loss, optimizer.lr, seconds, windows / seconds, scores, best, stop, diagnostics
        )
        yield report, state
        if stop:
            return


def run_epoch(
    model: WindowClassifier,
    optimizer: SGD,
    data: TrainingData,
    cfg: TrainConfig,
    rng: np.random.Generator,
    state: TrainState,
    progress: Progress,
    should_stop: Callable[[], bool] = lambda: False,
    monitor: GradientMonitor | None = None,
) -> float:
    """One shuffled pass of SGD, from batch `state.step`; returns the mean loss."""
    order = rng.permutation(len(data.labels))
    words = data.windows.words[order]
    caps = None if data.windows.caps is None else data.windows.caps[order]
    extra = {name: ids[order] for name, ids in data.windows.extra.items()}
    labels = data.labels[order]
    aux = data.aux_labels[order] if data.aux_labels is not None and cfg.aux_weight > 0 else None
    if cfg.unk_prob > 0 and data.rare is not None:
        words[data.rare[words] & (rng.random(words.shape) < cfg.unk_prob)] = UNK_ID
    weights = np.where(labels > 0, cfg.pos_weight, 1.0) if cfg.pos_weight != 1 else None
    dropout_key = int(rng.integers(2**62)) if cfg.dropout > 0 else None  # drawn only when used
    batch, n = cfg.batch_size, len(labels)
    steps_before = (state.epoch - 1) * -(-n // batch)
    progress.start(state.epoch, n)
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            _steps(
                model,
                optimizer,
                (words, caps, labels, weights, extra, aux),
                cfg,
                state,
                progress,
                should_stop,
                monitor,
                steps_before,
                dropout_key,
            )
    except FloatingPointError:
        raise TrainingDiverged(
            steps_before + state.step + 1, optimizer.lr, float("nan"), state.epoch
        ) from None
    finally:
        progress.close()
    return state.loss_sum / n


def _steps(
    model: WindowClassifier,
    optimizer: SGD,
    arrays: tuple,
    cfg: TrainConfig,
    state: TrainState,
    progress: Progress,
    should_stop: Callable[[], bool],
    monitor: GradientMonitor | None,
    steps_before: int,
    dropout_key: int | None = None,
) -> None:
    """The SGD steps of one epoch from batch `state.step`, over pre-shuffled arrays."""
    words, caps, labels, weights, extra, aux = arrays
    batch, n = cfg.batch_size, len(labels)
    for start in range(state.step * batch, n, batch):
        if should_stop():
            raise Interrupted(state)
        stop = start + batch
        loss = model.loss(
            words[start:stop],
            None if caps is None else caps[start:stop],
            labels[start:stop],
            None if weights is None else weights[start:stop],
            {name: ids[start:stop] for name, ids in extra.items()},
            dropout=_dropout(cfg.dropout, dropout_key, state.step),
            aux=None if aux is None else AuxTargets(aux[start:stop], cfg.aux_weight),
        )
        value = float(loss.data)
        if not math.isfinite(value):
            raise TrainingDiverged(steps_before + state.step + 1, optimizer.lr, value, state.epoch)
        loss.backward()
        if monitor is not None and state.step % SAMPLE_EVERY == 0:
            monitor.observe(model.params, optimizer.lr, optimizer.scales)
        optimizer.step()
        state.loss_sum += value * min(batch, n - start)
        state.step += 1
        if state.step % PROGRESS_EVERY == 0:
            progress.advance(batch * PROGRESS_EVERY, value)


def _dropout(rate: float, key: int | None, step: int) -> Dropout | None:
    """This step's dropout: masks seeded by (epoch key, step), so a resumed epoch draws the same ones."""
    if key is None:
        return None
    return Dropout(rate, np.random.default_rng([key, step]))
