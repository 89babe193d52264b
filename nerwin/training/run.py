"""TrainingRun: a run's data and model, its epochs, checkpoints, resume and interruption."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nerwin.config import Config
from nerwin.data.conll import location_labels
from nerwin.data.corpus import read_corpus
from nerwin.errors import DataError, ModelError, NerwinError, TrainingDiverged
from nerwin.files.paths import default_run_dir
from nerwin.files.versions import versions
from nerwin.metrics import LocationEvaluator, Scores
from nerwin.model.classifier import WindowClassifier
from nerwin.model.folder import load_model, save_model
from nerwin.model.tagger import Tagger
from nerwin.training.diagnostics import probe_sample
from nerwin.training.heap import keep_freed_memory
from nerwin.training.loop import (
    EpochReport,
    Hooks,
    Interrupted,
    Progress,
    Silent,
    TrainingData,
    TrainState,
    train_epochs,
)
from nerwin.training.rundir import (
    CHECKPOINT,
    METRICS,
    FolderLock,
    append_metrics,
    check_out_dir,
    check_outputs,
    create_out_dir,
    drop_metrics,
    metric_epoch,
    release,
    same_config,
)
from nerwin.training.signals import stop_on_signals
from nerwin.training.start import initial_tagger
from nerwin.training.threshold import record_dev, settle_threshold


class TrainingInterrupted(NerwinError):
    """Training was stopped by a signal after writing a resumable checkpoint."""

    def __init__(
        self,
        out_dir: Path,
        state: TrainState,
        signal_name: str,
        member: tuple[int, int] | None = None,
    ):
        self.signal_name, self.state, self.member = signal_name, state, member
        which = f"member {member[0]} of {member[1]}, " if member else ""
        then = f" (continues member {member[0]})" if member else ""
        super().__init__(
            f"{signal_name}: stopped in {which}epoch {state.epoch} after {state.step} steps; "
            f"checkpoint saved; resume with: nerwin train --resume {out_dir}{then}"
        )


@dataclass
class TrainResult:
    """Where a run was written and how its best model scores."""

    out_dir: Path
    best_epoch: int
    dev: Scores | None
    threshold: float
    seconds: float
    reports: list[EpochReport] = field(default_factory=list)
    member_epochs: tuple[int, ...] = ()  # an ensemble's members' best epochs
    dev_record: dict | None = None  # what the model's meta.json records under "dev"


class TrainingRun:
    """One training run: data and model are prepared on creation; `epochs()` trains."""

    def __init__(
        self,
        config: Config,
        out_dir: str | Path | None = None,
        force: bool = False,
        init_from: str | Path | None = None,
        *,
        _resume: bool = False,
    ):
        self.config, self.started = config, time.perf_counter()
        self.out_dir = Path(out_dir) if out_dir else default_run_dir()
        keep_freed_memory()  # training allocates the same arrays every step: keep their pages
        self.lock = None if _resume else check_out_dir(self.out_dir, force)
        try:
            self._start(init_from, force, _resume)
        except BaseException:
            self._unlock()
            raise

    def _start(self, init_from: str | Path | None, force: bool, resuming: bool) -> None:
        """Read the corpora; for a new run also build the model and data, then make the folder."""
        config = self.config
        self.notes: list[str] = []
        self.rng = np.random.default_rng(config.train.seed)
        self.state = TrainState()
        self.finished = False  # set by resume() for a run that already ended
        self.reports: list[EpochReport] = []
        self.train_corpus = read_corpus(config.data.train, config, "data.train")
        self.dev_corpus = (
            read_corpus(config.data.dev, config, "data.dev") if config.data.dev else None
        )
        self._check_location_types()
        if not resuming:
            self.tagger, self.config = initial_tagger(
                self.config, self.train_corpus, self.rng, self.notes, init_from
            )
            self._prepare_data()
            self.lock = create_out_dir(self.out_dir, force, self.config, lock=self.lock)

    @classmethod
    def resume(cls, out_dir: str | Path) -> TrainingRun:
        """Continue the run in `out_dir` from its checkpoint, exactly where it stopped.

        First what a save killed midway left is cleaned up (folder.recover_save): a folder set
        aside as `.last.old` or `.model.old` goes back in place, staging folders are deleted. A
        run killed before its first checkpoint trains again from the start with the config.yaml
        it saved (every key spelled out; a hand-written one is refused), its metrics and model
        cleared first as --force clears them.
        """
        out_dir = Path(out_dir)
        checkpoint = out_dir / CHECKPOINT
        no_checkpoint = f"{out_dir}: no checkpoint to resume (expected {checkpoint}/)"
        if not out_dir.is_dir():
            raise NerwinError(no_checkpoint)
        lock = FolderLock(out_dir)  # before anything is read or repaired
        try:
            return cls._resume_locked(out_dir, lock)
        except BaseException:  # a failed resume leaves the folder free for the next try
            lock.release()
            raise

    @classmethod
    def _resume_locked(cls, out_dir: Path, lock: FolderLock) -> TrainingRun:
        """resume() once the folder's lock is held."""
        from nerwin.config import config_from_dict, config_to_dict
        from nerwin.files.yamlfile import read_sections
        from nerwin.model.folder import recover_save
        from nerwin.training.rundir import CONFIG

        checkpoint = out_dir / CHECKPOINT
        no_checkpoint = f"{out_dir}: no checkpoint to resume (expected {checkpoint}/)"
        check_outputs(out_dir, new_run=False, members=False)
        notes = [
            f"{out_dir / name}: put back from the copy a killed save had set aside"
            for name in ("model", CHECKPOINT)
            if recover_save(out_dir / name)
        ]
        if not (checkpoint / "meta.json").is_file():
            if not (out_dir / CONFIG).is_file():
                raise NerwinError(no_checkpoint)
            raw = read_sections(out_dir / CONFIG)
            config = config_from_dict(raw, str(out_dir / CONFIG))
            if config_to_dict(config) != raw:  # not every key spelled out: written by hand
                raise NerwinError(f"{no_checkpoint}; {out_dir / CONFIG} is not a run's own config")
            if config.train.ensemble > 1:  # resume_run takes an ensemble with its members/
                raise NerwinError(f"{no_checkpoint}; {out_dir / CONFIG} trains an ensemble")
            lock.release()  # the new run takes it again
            run = cls(config, out_dir, force=True)
            run.notes += [
                *notes,
                f"{out_dir}: stopped before its first checkpoint; training again from the "
                f"start with {out_dir / CONFIG}",
            ]
            return run
        tagger, config, meta = load_model(checkpoint)
        state = _train_state(meta, checkpoint)
        same_config(out_dir / CONFIG, config, checkpoint)
        run = cls(config, out_dir, _resume=True)
        run.lock = lock
        run.notes += notes
        run.finished = (
            state.epoch > config.train.epochs or state.since_best >= config.train.patience
        )
        if not run.finished:  # a crash after an epoch's log line but before its checkpoint
            epoch = state.epoch
            drop_metrics(out_dir / METRICS, lambda r: metric_epoch(r) >= epoch)
        run.tagger = tagger
        run.state = state
        run._prepare_data()
        if run.finished:
            run.notes.append(f"{out_dir}: the run already finished; nothing to resume")
        else:
            run.notes.append(
                f"resuming {out_dir} at epoch {run.state.epoch}, step {run.state.step}"
            )
        return run

    def _check_location_types(self) -> None:
        """Refuse a train or dev corpus without a single location: it cannot train or score."""
        wanted = set(self.config.data.location_types)
        for corpus in filter(None, (self.train_corpus, self.dev_corpus)):
            present = set(corpus.entity_types)
            if not present & wanted:
                raise DataError(
                    f"{corpus.path}: no entity of type {', '.join(sorted(wanted))} (types "
                    f"present: {', '.join(sorted(present)) or 'none'}); check "
                    "data.location_types"
                )

    def _prepare_data(self) -> None:
        """Training windows and labels, dev windows and the evaluator."""
        if self.config.train.embedding_lr_scale == 0:
            self.tagger.model.params["E"].requires_grad = False
        windows = self.tagger.encode([s.words for s in self.train_corpus.sentences])
        labels = location_labels(self.train_corpus, self.config.data.location_types).astype(
            np.float32
        )
        aux_types = self.tagger.model.shape.aux_types
        aux = (
            np.stack([location_labels(self.train_corpus, (t,)) for t in aux_types], axis=1).astype(
                np.float32
            )
            if aux_types
            else None
        )
        self.data = TrainingData(windows, labels, self.tagger.vocab.counts == 1, aux)
        self.notes.append(
            f"train: {len(labels):,} windows ({int(labels.sum()):,} location tokens) "
            f"from {len(windows.lengths):,} sentences"
        )
        dev = self.dev_corpus
        self.evaluator = LocationEvaluator(dev, self.config.data.location_types) if dev else None
        self.dev_windows = self.tagger.encode([s.words for s in dev.sentences]) if dev else None
        if dev:
            dev_labels = location_labels(dev, self.config.data.location_types).astype(np.float32)
            self.probe = probe_sample(self.dev_windows, dev_labels)
        else:
            self.probe = probe_sample(windows, labels)

    def release_training_data(self) -> None:
        """Drop the training windows and this run's model (dev windows and evaluator stay)."""
        self.data = None
        self.tagger = None

    def evaluate(self, model: WindowClassifier, threshold: float | None = None) -> Scores:
        """Dev scores of `model` at `threshold` (default: the configured one)."""
        probs = Tagger(model, self.tagger.vocab).window_probabilities(self.dev_windows)
        cut = self.config.train.threshold if threshold is None else threshold
        return self.evaluator.score((probs >= cut).astype(np.int8))

    def epochs(self, progress: Progress | None = None) -> Iterator[EpochReport]:
        """Train; after each epoch save the best model, the last one and a checkpoint."""
        if self.finished:
            return
        evaluate = self.evaluate if self.evaluator else None
        with stop_on_signals() as stop:
            hooks = Hooks(evaluate, self.probe, progress or Silent(), stop.requested)
            try:
                for report, state in train_epochs(
                    self.tagger.model, self.data, self.config.train, self.rng, self.state, hooks
                ):
                    self.state = state
                    self._record(report)
                    yield report
            except Interrupted as interrupted:
                self._save(CHECKPOINT, {"train_state": interrupted.state.to_dict()})
                self._unlock()
                raise TrainingInterrupted(self.out_dir, interrupted.state, stop.name) from None
            except TrainingDiverged as err:
                self._unlock()
                raise err.told(self._kept()) from None
            except BaseException:  # any other error, or the caller abandoned the run
                self._unlock()
                raise

    def _unlock(self) -> None:
        release(self.lock)

    def _kept(self) -> str:
        """What a diverged run leaves: the best model so far, or nothing."""
        best = [r.epoch for r in self.reports if r.best]
        if best:
            return f"the best model so far (epoch {best[-1]}) is in {self.out_dir / 'model'}"
        return f"no model was saved ({self.out_dir / 'model'} holds none: no epoch finished)"

    def _record(self, report: EpochReport) -> None:
        self.reports.append(report)
        append_metrics(self.out_dir / METRICS, report)
        if report.best:
            self._save("model", {"epoch": report.epoch})
        self._save(CHECKPOINT, {"epoch": report.epoch, "train_state": self.state.to_dict()})

    def _save(self, name: str, extra: dict) -> None:
        extra = {**extra, "seed": self.config.train.seed, "versions": versions()}
        save_model(self.out_dir / name, self.tagger, self.config, extra)

    def finish(self) -> TrainResult:
        """Tune the threshold on dev if asked; record the dev scores in the model's meta.json."""
        try:
            return self._finish()
        finally:
            self._unlock()

    def _finish(self) -> TrainResult:
        tagger, _, meta = load_model(self.out_dir / "model")
        threshold, scores, dev = tagger.threshold, None, None
        epoch = int(meta.get("epoch", 0))
        if self.evaluator:
            probs = tagger.window_probabilities(self.dev_windows)
            threshold, scores, dev = settle_threshold(
                probs, self.evaluator, threshold, self.config.train, self.dev_corpus.path, epoch
            )
            record_dev(self.out_dir / "model", meta, threshold, dev)
        return TrainResult(
            self.out_dir,
            epoch,
            scores,
            threshold,
            time.perf_counter() - self.started,
            self.reports,
            dev_record=dev,
        )


def _train_state(meta: dict, checkpoint: Path) -> TrainState:
    """The training state a checkpoint's meta.json records, every field checked (type, range, a
    random generator state numpy accepts), or one ModelError naming the file and the field."""
    from dataclasses import fields

    raw = meta.get("train_state")
    if not isinstance(raw, dict):
        raise ModelError(
            f"{checkpoint}: meta.json has no valid train_state; not a resumable checkpoint"
        )
    path = checkpoint / "meta.json"
    names = [f.name for f in fields(TrainState)]
    for key in [*names, *raw]:
        if key not in names or key not in raw:
            problem = "is unknown" if key not in names else "is missing"
            raise ModelError(f"{path}: train_state.{str(key)[:40]} {problem}")

    def bad(key: str, rule: str) -> ModelError:
        return ModelError(f"{path}: train_state.{key} must be {rule}, got {repr(raw[key])[:40]}")

    def whole(value: object, high: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= high

    def number(value: object) -> bool:
        return (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and abs(value) < float("inf")
        )

    for key, low in (("epoch", 1), ("step", 0), ("since_best", 0)):
        if not whole(raw[key], 1 << 62) or raw[key] < low:
            raise bad(key, f"a whole number >= {low}")
    if not number(raw["loss_sum"]) or raw["loss_sum"] < 0:
        raise bad("loss_sum", "a finite number >= 0")
    if raw["best_f1"] is not None and not number(raw["best_f1"]):
        raise bad("best_f1", "null or a finite number")
    rng = raw["rng_state"]
    if rng is not None:
        inner = rng.get("state") if isinstance(rng, dict) else None
        ok = (
            isinstance(inner, dict)
            and all(whole(inner.get(k), (1 << 128) - 1) for k in ("state", "inc"))
            and whole(rng.get("has_uint32"), 1)
            and whole(rng.get("uinteger"), (1 << 32) - 1)
        )
        try:
            np.random.default_rng(0).bit_generator.state = rng
        except (TypeError, ValueError, KeyError, OverflowError):
            ok = False
        if not ok:
            raise bad("rng_state", "null or the state of a numpy PCG64 generator")
    return TrainState.from_dict(raw)
