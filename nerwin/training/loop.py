"""The training loop: shuffled minibatch SGD, one report per epoch, early stopping on dev F1."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from nerwin.config import TrainConfig
from nerwin.data.encode import WindowData
from nerwin.data.vocab import UNK_ID
from nerwin.engine import Tensor
from nerwin.errors import TrainingDiverged
from nerwin.metrics import Scores
from nerwin.model.classifier import AuxTargets, Dropout, WindowClassifier
from nerwin.model.sgd import SGD
from nerwin.training.diagnostics import (
    SAMPLE_EVERY,
    Diagnostics,
    GradientMonitor,
    dev_drop_warning,
    diagnose,
)

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
    """Where training stands, enough to resume bit-identically: epoch, batch, RNG, patience."""

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


@dataclass(frozen=True)
class Batch:
    """Windows for SGD, row for row: word ids (n, w), caps ids, 0/1 labels (n,), loss weights,
    feature ids by name, and the aux heads' labels (n, k); a whole shuffled epoch or one step."""

    words: np.ndarray
    caps: np.ndarray | None
    labels: np.ndarray
    weights: np.ndarray | None = None  # None: every window weighs 1
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    aux: np.ndarray | None = None  # None: no aux heads, or train.aux_weight is 0

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self, start: int, stop: int) -> Batch:
        """Rows start:stop of every array."""
        return Batch(
            self.words[start:stop],
            None if self.caps is None else self.caps[start:stop],
            self.labels[start:stop],
            None if self.weights is None else self.weights[start:stop],
            {name: ids[start:stop] for name, ids in self.extra.items()},
            None if self.aux is None else self.aux[start:stop],
        )


def shuffled(data: TrainingData, cfg: TrainConfig, rng: np.random.Generator) -> Batch:
    """One epoch's windows in a new random order, as SGD sees them.

    Draws the permutation, then (only with train.unk_prob and rare words) which rare words
    are shown as <unk>; weights location windows by train.pos_weight (None when it is 1);
    keeps the aux labels only when train.aux_weight > 0.
    """
    order = rng.permutation(len(data.labels))
    words = data.windows.words[order]
    caps = None if data.windows.caps is None else data.windows.caps[order]
    extra = {name: ids[order] for name, ids in data.windows.extra.items()}
    labels = data.labels[order]
    aux = data.aux_labels[order] if data.aux_labels is not None and cfg.aux_weight > 0 else None
    if cfg.unk_prob > 0 and data.rare is not None:
        words[data.rare[words] & (rng.random(words.shape) < cfg.unk_prob)] = UNK_ID
    weights = np.where(labels > 0, cfg.pos_weight, 1.0) if cfg.pos_weight != 1 else None
    return Batch(words, caps, labels, weights, extra, aux)


def batches(epoch: Batch, size: int, first_step: int = 0) -> Iterator[Batch]:
    """The consecutive batches of `size` rows of `epoch`, from batch number `first_step` on."""
    for start in range(first_step * size, len(epoch), size):
        yield epoch.rows(start, start + size)


def _never() -> bool:
    return False


@dataclass
class Hooks:
    """What the caller plugs into training: dev scores, a diagnostics probe, progress, stopping."""

    evaluate: Callable[[WindowClassifier], Scores] | None = None  # dev scores after each epoch
    probe: tuple[WindowData, np.ndarray] | None = None  # windows and labels to diagnose on
    progress: Progress = field(default_factory=Silent)
    should_stop: Callable[[], bool] = _never  # asked before every step


@dataclass
class Learner:
    """The model and how it learns: its optimizer, the train config, the gradient sampler."""

    model: WindowClassifier
    optimizer: SGD
    cfg: TrainConfig
    monitor: GradientMonitor | None = None  # samples gradients every SAMPLE_EVERY steps

    def loss(self, batch: Batch, dropout: Dropout | None) -> Tensor:
        """The batch's loss, its graph recorded for backward."""
        aux = None if batch.aux is None else AuxTargets(batch.aux, self.cfg.aux_weight)
        return self.model.loss(
            batch.words,
            batch.caps,
            batch.labels,
            batch.weights,
            batch.extra,
            dropout=dropout,
            aux=aux,
        )

    def update(self, loss: Tensor, step: int) -> None:
        """Backward from `loss` and one SGD step (gradients sampled first on sampling steps)."""
        loss.backward()
        if self.monitor is not None and step % SAMPLE_EVERY == 0:
            self.monitor.observe(self.model.params, self.optimizer.lr, self.optimizer.scales)
        self.optimizer.step()


def train_epochs(
    model: WindowClassifier,
    data: TrainingData,
    cfg: TrainConfig,
    rng: np.random.Generator,
    state: TrainState | None = None,
    hooks: Hooks | None = None,
) -> Iterator[tuple[EpochReport, TrainState]]:
    """Train epoch by epoch from `state`; yield each report with the state after it.

    With `hooks.probe` (windows, labels), each report carries diagnostics measured on them.
    """
    hooks = hooks or Hooks()
    monitor = GradientMonitor() if hooks.probe is not None else None
    learner = Learner(model, SGD(model.params, cfg.lr, {"E": cfg.embedding_lr_scale}), cfg, monitor)
    state = state or TrainState()
    diagnostics, last_f1 = None, None
    for epoch in range(state.epoch, cfg.epochs + 1):
        if state.rng_state is not None:
            rng.bit_generator.state = state.rng_state
        state.rng_state, state.epoch = rng.bit_generator.state, epoch
        learner.optimizer.lr = cfg.lr / (1.0 + cfg.lr_decay * (epoch - 1))
        started, first_step = time.perf_counter(), state.step
        loss = run_epoch(learner, data, rng, state, hooks)
        seconds = time.perf_counter() - started
        earlier = diagnostics
        if hooks.probe is not None:
            diagnostics = diagnose(model, monitor, *hooks.probe, previous=diagnostics)
        scores = hooks.evaluate(model) if hooks.evaluate else None
        f1 = scores.entity.f1 if scores else -float(loss)
        drop = dev_drop_warning(last_f1, f1, diagnostics, earlier) if scores else None
        if drop and diagnostics is not None:
            diagnostics.warnings.append(drop)
        last_f1 = f1
        best = state.best_f1 is None or f1 > state.best_f1
        best_f1, since_best = (f1, 0) if best else (state.best_f1, state.since_best + 1)
        stop = since_best >= cfg.patience or epoch == cfg.epochs
        state = TrainState(epoch + 1, 0, 0.0, rng.bit_generator.state, best_f1, since_best)
        windows = len(data.labels) - first_step * cfg.batch_size
        report = EpochReport(
            epoch,
            loss,
            learner.optimizer.lr,
            seconds,
            windows / seconds,
            scores,
            best,
            stop,
            diagnostics,
        )
        yield report, state
        if stop:
            return


def run_epoch(
    learner: Learner,
    data: TrainingData,
    rng: np.random.Generator,
    state: TrainState,
    hooks: Hooks,
) -> float:
    """One shuffled pass of SGD, from batch `state.step`; returns the mean loss.

    Random draws, in this order: the shuffle and the <unk> replacement (see `shuffled`), then
    the epoch's dropout key when dropout is on.
    """
    cfg, lr = learner.cfg, learner.optimizer.lr
    windows = shuffled(data, cfg, rng)
    dropout_key = int(rng.integers(2**62)) if cfg.dropout > 0 else None  # drawn only when used
    n = len(windows)
    steps_before = (state.epoch - 1) * -(-n // cfg.batch_size)
    hooks.progress.start(state.epoch, n)
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            for batch in batches(windows, cfg.batch_size, state.step):
                if hooks.should_stop():
                    raise Interrupted(state)
                loss = learner.loss(batch, _dropout(cfg.dropout, dropout_key, state.step))
                value = float(loss.data)
                if not math.isfinite(value):
                    raise TrainingDiverged(steps_before + state.step + 1, lr, value, state.epoch)
                learner.update(loss, state.step)
                state.loss_sum += value * len(batch)
                state.step += 1
                if state.step % PROGRESS_EVERY == 0:
                    hooks.progress.advance(cfg.batch_size * PROGRESS_EVERY, value)
    except FloatingPointError:
        raise TrainingDiverged(
            steps_before + state.step + 1, lr, float("nan"), state.epoch
        ) from None
    finally:
        hooks.progress.close()
    return state.loss_sum / n


def _dropout(rate: float, key: int | None, step: int) -> Dropout | None:
    """This step's dropout: masks seeded by (epoch key, step), so a resumed epoch redraws them."""
    if key is None:
        return None
    return Dropout(rate, np.random.default_rng([key, step]))
