"""Ensembles: members trained one after another with their own seeds, one model averaging their P(location)."""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np

from nerwin.config import Config, load_config, save_config
from nerwin.errors import ConfigError, ModelError
from nerwin.modelio import load_model, save_model
from nerwin.paths import default_run_dir
from nerwin.run import (CHECKPOINT, THRESHOLDS, TrainingInterrupted, TrainingRun, TrainResult, check_out_dir,
                        create_out_dir)
from nerwin.tagger import Tagger
from nerwin.training import EpochReport, Progress
from nerwin.versions import versions

MEMBERS_DIR = "members"
SEED_STRIDE = 1000  # member k (from 0) trains with seed + 1000 * k: member 0 is the single-model run


def member_config(config: Config, k: int) -> Config:
    """The config of member k (from 0): its own seed, one model, no threshold tuning of its own."""
    t = config.train
    return replace(config, train=replace(t, seed=t.seed + SEED_STRIDE * k, ensemble=1, tune_threshold=False))


def open_run(config: Config, out_dir: str | Path | None = None, force: bool = False,
             init_from: str | Path | None = None) -> TrainingRun | EnsembleRun:
    """A new run: one model, or an ensemble when train.ensemble > 1."""
    if config.train.ensemble == 1:
        return TrainingRun(config, out_dir, force, init_from)
    if init_from is not None:
        raise ConfigError("train.ensemble: --init-from continues one model; set train.ensemble=1")
    return EnsembleRun(config, out_dir, force)


def resume_run(out_dir: str | Path) -> TrainingRun | EnsembleRun:
    """Continue the run in `out_dir`, single model or ensemble, where it stopped."""
    out_dir = Path(out_dir)
    if (out_dir / MEMBERS_DIR).is_dir() and (out_dir / "config.yaml").is_file():
        config = load_config(out_dir / "config.yaml")
        if config.train.ensemble > 1:
            return EnsembleRun(config, out_dir, _resume=True)
    return TrainingRun.resume(out_dir)


class EnsembleRun:
    """RUN/members/K holds member K's own run (model, checkpoint, metrics); RUN/model averages them."""

    def __init__(self, config: Config, out_dir: str | Path | None = None, force: bool = False, *,
                 _resume: bool = False):
        self.config, self.started = config, time.perf_counter()
        self.out_dir = Path(out_dir) if out_dir else default_run_dir()
        self.size = config.train.ensemble
        self.reports: list[EpochReport] = []
        self._resume = _resume
        self._last: TrainingRun | None = None
        if _resume:
            self._first = None
            done = self._finished_members()
            self.finished = done == self.size and (self.out_dir / "model" / "meta.json").is_file()
            self.notes = [f"{self.out_dir}: the ensemble already finished; nothing to resume" if self.finished
                          else f"resuming ensemble {self.out_dir}: {done} of {self.size} members done"]
            return
        check_out_dir(self.out_dir, force)
        self._first = TrainingRun(member_config(config, 0), self._member_dir(1), force=True)
        create_out_dir(self.out_dir, force)
        for stale in (self.out_dir / MEMBERS_DIR).iterdir():  # members of an earlier run in this folder
            if stale.name != "1":
                shutil.rmtree(stale, ignore_errors=True)
        save_config(config, self.out_dir / "config.yaml")
        self.finished = False
        seeds = ", ".join(str(member_config(config, k).train.seed) for k in range(self.size))
        self.notes = self._first.notes + [f"ensemble: {self.size} members trained one after another "
                                          f"(seeds {seeds}) in {self.out_dir / MEMBERS_DIR}"]

    def _member_dir(self, k: int) -> Path:
        return self.out_dir / MEMBERS_DIR / str(k)

    def _finished_members(self) -> int:
        return sum(_member_finished(self._member_dir(k), member_config(self.config, k - 1))
                   for k in range(1, self.size + 1))

    def _member_run(self, k: int) -> TrainingRun:
        """Member k (from 1): the run made at start, its checkpoint when resuming, else a new run."""
        if k == 1 and self._first is not None:
            return self._first
        folder = self._member_dir(k)
        if self._resume and (folder / CHECKPOINT / "meta.json").is_file():
            return TrainingRun.resume(folder)
        return TrainingRun(member_config(self.config, k - 1), folder, force=True)

    def epochs(self, progress: Progress | None = None) -> Iterator[EpochReport]:
        """Train the members in turn; each report says which member it is."""
        for k in range(1, self.size + 1):
            self._last = None  # one member's data in memory at a time
            self._last = self._member_run(k)
            try:
                for report in self._last.epochs(progress):
                    report = replace(report, member=k)
                    self.reports.append(report)
                    with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(report.to_dict()) + "\n")
                    yield report
            except TrainingInterrupted as err:
                raise TrainingInterrupted(self.out_dir, err.state, err.signal_name) from None
            self._first = None  # free member 1's data before the next member loads its own

    def finish(self) -> TrainResult:
        """Average the members' best models into RUN/model and tune its threshold on dev."""
        taggers, metas = [], []
        for k in range(1, self.size + 1):
            tagger, _, meta = load_model(self._member_dir(k) / "model")
            taggers.append(tagger)
            metas.append(meta)
        if any(t.vocab.words != taggers[0].vocab.words for t in taggers):
            raise ModelError(f"{self.out_dir / MEMBERS_DIR}: members have different vocabularies")
        first = taggers[0]
        tagger = Tagger(first.model, first.vocab, self.config.train.threshold, first.features,
                        tuple(t.model for t in taggers[1:]))
        epochs = tuple(int(m.get("epoch", 0)) for m in metas)
        run = self._last or self._member_run(self.size)
        threshold, scores = tagger.threshold, None
        if run.evaluator is not None:
            probs = tagger.window_probabilities(run.dev_windows)
            cuts = THRESHOLDS if self.config.train.tune_threshold else [tagger.threshold]
            scored = [(run.evaluator.score((probs >= t).astype(np.int8)), float(t)) for t in cuts]
            scores, threshold = max(scored, key=lambda st: (st[0].entity.f1, -abs(st[1] - 0.5)))
            tagger.threshold = threshold
        if not self.finished:
            save_model(self.out_dir / "model", tagger, self.config,
                       {"member_epochs": list(epochs), "seed": self.config.train.seed, "versions": versions()})
        return TrainResult(self.out_dir, epochs[0], scores, threshold, time.perf_counter() - self.started,
                           self.reports, epochs)


def _member_finished(folder: Path, config: Config) -> bool:
    """True when the member's checkpoint says its training ended (last epoch or patience)."""
    try:
        state = json.loads((folder / CHECKPOINT / "meta.json").read_text(encoding="utf-8"))["train_state"]
        return state["epoch"] > config.train.epochs or state["since_best"] >= config.train.patience
    except (OSError, ValueError, KeyError, TypeError):
        return False
