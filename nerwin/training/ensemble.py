"""Ensembles: members trained one after another with their own seeds; one model averages their
P(location)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from nerwin.config import Config, load_config
from nerwin.errors import ConfigError, ModelError, NerwinError, TrainingDiverged
from nerwin.files.paths import default_run_dir
from nerwin.files.versions import versions
from nerwin.model.folder import load_model, save_model
from nerwin.model.tagger import Tagger
from nerwin.training.loop import EpochReport, Progress
from nerwin.training.run import TrainingInterrupted, TrainingRun, TrainResult
from nerwin.training.rundir import (
    CHECKPOINT,
    CONFIG,
    MEMBERS_DIR,
    METRICS,
    FolderLock,
    append_metrics,
    check_out_dir,
    check_outputs,
    create_out_dir,
    drop_metrics,
    metric_epoch,
    release,
)
from nerwin.training.threshold import settle_threshold

SEED_STRIDE = 1000  # member k (from 0) trains with seed + 1000 * k: member 0 is the single model
RESUMABLE = ("done", "resume")  # the member plans that continue a member's own checkpoint
AGAIN = {
    "model": "its model is missing or from another run",
    "stale": "its checkpoint is from another config or seed",
}  # plans that train a member again


def member_config(config: Config, k: int) -> Config:
    """The config of member k (from 0): its own seed, one model, no threshold tuning of its own."""
    t = config.train
    return replace(
        config, train=replace(t, seed=t.seed + SEED_STRIDE * k, ensemble=1, tune_threshold=False)
    )


def open_run(
    config: Config,
    out_dir: str | Path | None = None,
    force: bool = False,
    init_from: str | Path | None = None,
) -> TrainingRun | EnsembleRun:
    """A new run: one model, or an ensemble when train.ensemble > 1."""
    if config.train.ensemble == 1:
        return TrainingRun(config, out_dir, force, init_from)
    if init_from is not None:
        raise ConfigError("train.ensemble: --init-from continues one model; set train.ensemble=1")
    return EnsembleRun(config, out_dir, force)


def resume_run(out_dir: str | Path) -> TrainingRun | EnsembleRun:
    """Continue the run in `out_dir`, single model or ensemble, where it stopped."""
    out_dir = Path(out_dir)
    if (out_dir / MEMBERS_DIR).is_dir() and (out_dir / CONFIG).is_file():
        config = load_config(out_dir / CONFIG)
        if config.train.ensemble > 1:
            return EnsembleRun(config, out_dir, _resume=True)
    return TrainingRun.resume(out_dir)


class EnsembleRun:
    """RUN/members/K holds member K's own run (model, checkpoint, metrics); RUN/model averages
    them."""

    def __init__(
        self,
        config: Config,
        out_dir: str | Path | None = None,
        force: bool = False,
        *,
        _resume: bool = False,
    ):
        self.config, self.started = config, time.perf_counter()
        self.out_dir = Path(out_dir) if out_dir else default_run_dir()
        self.size = config.train.ensemble
        self.reports: list[EpochReport] = []
        self._resume = _resume
        self._last: TrainingRun | None = None
        self.lock = None
        if _resume:
            self.lock = FolderLock(self.out_dir)
            try:
                check_outputs(self.out_dir, new_run=False)
            except BaseException:
                self._unlock()
                raise
            self._first = None
            self._plans = [
                _member_plan(self._member_dir(k), member_config(config, k - 1))
                for k in range(1, self.size + 1)
            ]
            done = [plan == "done" for plan in self._plans]
            self.finished = all(done) and self._ensemble_saved()
            self.notes = [
                f"{self.out_dir}: the ensemble already finished; nothing to resume"
                if self.finished
                else self._resume_note(done)
            ]
            self.notes += [
                f"member {k}: {AGAIN[plan]}; training it again"
                for k, plan in enumerate(self._plans, start=1)
                if plan in AGAIN
            ]
            return
        self.lock = check_out_dir(self.out_dir, force)
        try:  # member 1 reads the data and clears its own folder first
            self._first = TrainingRun(member_config(config, 0), self._member_dir(1), force=True)
            self.lock = create_out_dir(self.out_dir, force, config, ("1",), self.lock)
        except BaseException:
            self._unlock()
            raise
        self.finished = False
        seeds = ", ".join(str(member_config(config, k).train.seed) for k in range(self.size))
        self.notes = [
            *self._first.notes,
            f"ensemble: {self.size} members trained one after another "
            f"(seeds {seeds}) in {self.out_dir / MEMBERS_DIR}",
        ]

    def _member_dir(self, k: int) -> Path:
        return self.out_dir / MEMBERS_DIR / str(k)

    def _resume_note(self, done: list[bool]) -> str:
        """Which member training continues with, and how many are done."""
        where = (
            f"at member {done.index(False) + 1} of {self.size}"
            if not all(done)
            else "averaging the finished members"
        )
        return f"resuming ensemble {self.out_dir} {where}: {sum(done)} of {self.size} members done"

    def _ensemble_saved(self) -> bool:
        """True when RUN/model is this ensemble's average (its meta, seed and config match)."""
        meta = _saved_meta(self.out_dir / "model", self.config)
        return meta is not None and meta.get("members") == self.size

    def _member_run(self, k: int) -> TrainingRun:
        """Member k (from 1): the run made at start, its checkpoint on resume, else a new run."""
        if k == 1 and self._first is not None:
            return self._first
        folder = self._member_dir(k)
        config = member_config(self.config, k - 1)
        if self._resume and self._plans[k - 1] in RESUMABLE:
            run = TrainingRun.resume(folder)
            epoch = run.state.epoch  # lines of epochs it runs again (a crash after the log) go
            drop_metrics(
                self.out_dir / METRICS, lambda r: r.get("member") == k and metric_epoch(r) >= epoch
            )
            return run
        if self._resume:
            drop_metrics(self.out_dir / METRICS, lambda r: r.get("member") == k)
        return TrainingRun(
            config, folder, force=True
        )  # clears a stale checkpoint of another config

    def epochs(self, progress: Progress | None = None) -> Iterator[EpochReport]:
        """Train the members in turn; each report says which member it is."""
        try:
            yield from self._member_epochs(progress)
        except BaseException:
            self._unlock()
            raise

    def _unlock(self) -> None:
        release(self.lock)

    def _member_epochs(self, progress: Progress | None) -> Iterator[EpochReport]:
        for k in range(1, self.size + 1):
            self._last = None  # one member's data in memory at a time
            self._last = self._member_run(k)
            try:
                for report in self._last.epochs(progress):
                    report = replace(report, member=k)
                    self.reports.append(report)
                    append_metrics(self.out_dir / METRICS, report)
                    yield report
            except TrainingInterrupted as err:
                raise TrainingInterrupted(
                    self.out_dir, err.state, err.signal_name, (k, self.size)
                ) from None
            except TrainingDiverged as err:
                done = f"members 1-{k - 1} finished; " if k > 1 else ""
                raise err.told(
                    f"{done}no ensemble model was written; lower train.lr and train again with "
                    "--force",
                    f"member {k} of {self.size}: ",
                ) from None
            self._first = None  # free member 1's data before the next member loads its own

    def finish(self) -> TrainResult:
        """Average the members' best models into RUN/model and tune its threshold on dev."""
        try:
            return self._finish()
        finally:
            self._unlock()

    def _finish(self) -> TrainResult:
        run = self._last or self._member_run(self.size)  # for its dev windows and evaluator
        run.release_training_data()  # the last member's weights and windows: no longer needed
        taggers, metas = [], []
        for k in range(1, self.size + 1):
            folder = self._member_dir(k) / "model"
            if _saved_meta(folder, member_config(self.config, k - 1)) is None:
                raise ModelError(
                    f"{folder}: not member {k}'s model (missing, or saved with another seed or "
                    f"config); train again with --force"
                )
            tagger, _, meta = load_model(folder)
            if taggers and tagger.vocab.words != taggers[0].vocab.words:
                raise ModelError(
                    f"{self.out_dir / MEMBERS_DIR}: members have different vocabularies"
                )
            taggers.append(tagger if k == 1 else replace(tagger, vocab=taggers[0].vocab))
            metas.append(meta)  # (a member's own vocabulary is dropped once compared)
        first = taggers[0]
        tagger = Tagger(
            first.model,
            first.vocab,
            self.config.train.threshold,
            first.features,
            tuple(t.model for t in taggers[1:]),
            gazetteer=first.gazetteer,
        )
        epochs = tuple(int(m.get("epoch", 0)) for m in metas)
        threshold, scores, dev = tagger.threshold, None, None
        if run.evaluator is not None:
            probs = tagger.window_probabilities(run.dev_windows)
            threshold, scores, dev = settle_threshold(
                probs, run.evaluator, threshold, self.config.train, run.dev_corpus.path, epochs[0]
            )
            tagger.threshold = threshold
        if not self.finished:
            extra = {
                "member_epochs": list(epochs),
                "seed": self.config.train.seed,
                "versions": versions(),
                **({"dev": dev} if dev else {}),
            }
            save_model(self.out_dir / "model", tagger, self.config, extra)
        return TrainResult(
            self.out_dir,
            epochs[0],
            scores,
            threshold,
            time.perf_counter() - self.started,
            self.reports,
            epochs,
            dev_record=dev,
        )


def _member_plan(folder: Path, config: Config) -> str:
    """What resuming does with a member: "done", "resume" its checkpoint, train it again (a key
    of AGAIN), or "new"."""
    meta = _saved_meta(folder / CHECKPOINT, config)
    if meta is None:
        return "stale" if (folder / CHECKPOINT).exists() else "new"
    try:
        state = meta["train_state"]
        ended = state["epoch"] > config.train.epochs or state["since_best"] >= config.train.patience
        first_epoch = state["epoch"] == 1
    except (KeyError, TypeError):
        return "resume"  # TrainingRun.resume names the broken checkpoint
    if _saved_meta(folder / "model", config) is not None:
        return "done" if ended else "resume"
    # no best model of its own is right only in the first epoch, before one was saved
    return "resume" if first_epoch and not ended and not (folder / "model").exists() else "model"


def _saved_meta(directory: Path, config: Config) -> dict | None:
    """The meta of the model in `directory` if saved with `config` and its seed, else None."""
    try:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        saved = load_config(directory / CONFIG)
    except (OSError, UnicodeDecodeError, ValueError, NerwinError):
        return None
    if not isinstance(meta, dict) or meta.get("seed") != config.train.seed or saved != config:
        return None
    return meta
