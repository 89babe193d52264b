"""Library entry points: train, evaluate, gradcheck (the CLI only parses and renders)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from nerwin.config import Config, save_config
from nerwin.data.conll import Corpus, location_labels, read_conll
from nerwin.data.embeddings import load_vectors
from nerwin.data.caps import N_CAPS
from nerwin.data.vocab import Vocab, build_vocab
from nerwin.errors import ConfigError, NerwinError
from nerwin.metrics import LocationEvaluator, Scores
from nerwin.model import ModelShape, WindowClassifier
from nerwin.modelio import load_model, save_model
from nerwin.paths import cache_dir, default_run_dir, resolve_data_path
from nerwin.tagger import Tagger
from nerwin.training import EpochReport, Progress, TrainingData, train_epochs

THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.01), 2)


@dataclass
class TrainResult:
    """Where a run was written and how its best model scores."""

    out_dir: Path
    best_epoch: int
    dev: Scores | None
    threshold: float
    seconds: float
    reports: list[EpochReport] = field(default_factory=list)


def read_corpus(path: str, config: Config) -> Corpus:
    """Read a CoNLL corpus with the config's columns and scheme."""
    d = config.data
    return read_conll(resolve_data_path(path), word_column=d.word_column, tag_column=d.tag_column,
                      scheme=d.scheme)


class TrainingRun:
    """One training run: data and model are prepared on creation; `epochs()` trains."""

    def __init__(self, config: Config, out_dir: str | Path | None = None, force: bool = False):
        self.config, self.started = config, time.perf_counter()
        self.out_dir = prepare_out_dir(Path(out_dir) if out_dir else default_run_dir(), force)
        self.notes: list[str] = []
        self.rng = np.random.default_rng(config.train.seed)
        self.train_corpus = read_corpus(config.data.train, config)
        self.dev_corpus = read_corpus(config.data.dev, config) if config.data.dev else None
        self._check_location_types()
        vocab, embeddings = self._vocab_and_vectors()
        self.tagger = Tagger(self._new_model(vocab, embeddings), vocab, config.train.threshold)
        self.data = self._training_data()
        self.evaluator = LocationEvaluator(self.dev_corpus, config.data.location_types) if self.dev_corpus else None
        self.dev_windows = self.tagger.encode([s.words for s in self.dev_corpus.sentences]) if self.dev_corpus else None
        self.reports: list[EpochReport] = []
        save_config(config, self.out_dir / "config.yaml")

    def _check_location_types(self) -> None:
        present = set(self.train_corpus.entity_types)
        wanted = set(self.config.data.location_types)
        if not present & wanted:
            self.notes.append(
                f"warning: {self.train_corpus.path}: no entity of type {', '.join(sorted(wanted))} "
                f"(types present: {', '.join(sorted(present)) or 'none'}); check data.location_types")

    def _vocab_and_vectors(self) -> tuple[Vocab, np.ndarray | None]:
        d = self.config.data
        vocab = build_vocab((s.words for s in self.train_corpus.sentences), d.lowercase, d.digits,
                            d.min_count, d.max_vocab)
        if not d.vectors:
            self.notes.append(f"vocabulary: {len(vocab):,} words from {self.train_corpus.path}; random vectors")
            return vocab, None
        vectors = load_vectors(resolve_data_path(d.vectors), vocab.words, extra_top_n=d.vectors_extend,
                               cache_dir=cache_dir(), seed=self.config.train.seed)
        if vectors.dim != self.config.model.embedding_dim:
            raise ConfigError(f"model.embedding_dim: is {self.config.model.embedding_dim} but {d.vectors} "
                              f"has {vectors.dim}-d vectors; set model.embedding_dim={vectors.dim}")
        trained_words = len(vocab)
        vocab, matrix = _extend_with_vectors(vocab, vectors.words, vectors.matrix)
        self.notes.append(vectors.coverage.summary())
        if vectors.coverage.found == 0:
            self.notes.append(f"warning: {d.vectors}: NO vocabulary word has a vector; check the file "
                              "and data.lowercase")
        self.notes.append(f"vocabulary: {len(vocab):,} words ({trained_words:,} from "
                          f"{self.train_corpus.path}, {len(vocab) - trained_words:,} from {d.vectors})")
        return vocab, matrix

    def _new_model(self, vocab: Vocab, embeddings: np.ndarray | None) -> WindowClassifier:
        m = self.config.model
        shape = ModelShape(len(vocab), m.embedding_dim, m.window, tuple(m.hidden), m.activation,
                           m.caps_dim, N_CAPS if m.caps_dim else 0)
        model = WindowClassifier.initialise(shape, self.rng, embeddings)
        if self.config.train.embedding_lr_scale == 0:
            model.params["E"].requires_grad = False
        return model

    def _training_data(self) -> TrainingData:
        windows = self.tagger.encode([s.words for s in self.train_corpus.sentences])
        labels = location_labels(self.train_corpus, self.config.data.location_types).astype(np.float32)
        rare = self.tagger.vocab.counts == 1
        self.notes.append(f"train: {len(labels):,} windows ({int(labels.sum()):,} location tokens) "
                          f"from {len(windows.lengths):,} sentences")
        return TrainingData(windows, labels, rare)

    def evaluate(self, model: WindowClassifier, threshold: float | None = None) -> Scores:
        """Dev scores of `model` at `threshold` (default: the configured one)."""
        probs = Tagger(model, self.tagger.vocab).window_probabilities(self.dev_windows)
        cut = self.config.train.threshold if threshold is None else threshold
        return self.evaluator.score((probs >= cut).astype(np.int8))

    def epochs(self, progress: Progress | None = None) -> Iterator[EpochReport]:
        """Train, saving the best model to out/model and the latest to out/last after each epoch."""
        evaluate = self.evaluate if self.evaluator else None
        log = self.out_dir / "metrics.jsonl"
        for report in train_epochs(self.tagger.model, self.data, self.config.train, evaluate,
                                   self.rng, progress):
            self.reports.append(report)
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(report.to_dict()) + "\n")
            if report.best:
                save_model(self.out_dir / "model", self.tagger, self.config, {"epoch": report.epoch})
            save_model(self.out_dir / "last", self.tagger, self.config, {"epoch": report.epoch})
            yield report

    def finish(self) -> TrainResult:
        """Tune the threshold on dev if asked, and return the best model's scores."""
        best = max((r for r in self.reports if r.best), key=lambda r: r.epoch)
        tagger, _, _ = load_model(self.out_dir / "model")
        threshold, scores = tagger.threshold, best.dev
        if self.evaluator and self.config.train.tune_threshold:
            threshold, scores = self._tune_threshold(tagger)
            tagger.threshold = threshold
            save_model(self.out_dir / "model", tagger, self.config, {"epoch": best.epoch})
        return TrainResult(self.out_dir, best.epoch, scores, threshold,
                           time.perf_counter() - self.started, self.reports)

    def _tune_threshold(self, tagger: Tagger) -> tuple[float, Scores]:
        probs = tagger.window_probabilities(self.dev_windows)
        scored = [(self.evaluator.score((probs >= t).astype(np.int8)), float(t)) for t in THRESHOLDS]
        scores, threshold = max(scored, key=lambda st: (st[0].entity.f1, -abs(st[1] - 0.5)))
        return threshold, scores


def _extend_with_vectors(vocab: Vocab, words: tuple[str, ...], matrix: np.ndarray) -> tuple[Vocab, np.ndarray]:
    """Append the vector file's extra words (normalised, first form kept) to vocab and rows."""
    extra_rows = {}
    for row in range(len(vocab), len(words)):
        key = vocab.normalise(words[row])
        if key not in vocab.index and key not in extra_rows:
            extra_rows[key] = row
    if not extra_rows:
        return vocab, matrix[: len(vocab)]
    rows = np.concatenate([np.arange(len(vocab)), np.fromiter(extra_rows.values(), np.int64)])
    return vocab.extend(extra_rows), matrix[rows]


def prepare_out_dir(out_dir: Path, force: bool) -> Path:
    """Create the run folder; refuse a file, or a folder that already holds a run (unless force)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise NerwinError(f"{out_dir}: exists and is not a directory; choose another --out")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise NerwinError(f"{out_dir}: already holds files; pass --force to overwrite, or another --out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if force and (out_dir / "metrics.jsonl").exists():
            (out_dir / "metrics.jsonl").unlink()
    except OSError as err:
        raise NerwinError(f"{out_dir}: cannot create the output directory ({err.strerror})") from None
    return out_dir


def train(config: Config, out_dir: str | Path | None = None, force: bool = False,
          progress: Progress | None = None) -> TrainResult:
    """Train a tagger as `config` says and write it to `out_dir`."""
    run = TrainingRun(config, out_dir, force)
    for _ in run.epochs(progress):
        pass
    return run.finish()


def evaluate(model_dir: str | Path, data: str | Path, threshold: float | None = None) -> Scores:
    """Score the model in `model_dir` on the CoNLL file `data`."""
    tagger, config, _ = load_model(model_dir)
    corpus = read_corpus(str(data), config)
    probs = tagger.probabilities([s.words for s in corpus.sentences])
    return LocationEvaluator(corpus, config.data.location_types).score(tagger.labels(probs, threshold))


@dataclass
class GradcheckReport:
    """Every gradient compared, grouped by section, with notes on how inputs were drawn."""

    sections: list[tuple[str, list]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every gradient passed."""
        return all(r.ok for _, results in self.sections for r in results)


def gradcheck(config: Config | None = None, model_dir: str | Path | None = None,
              eps: float = 1e-4, tol: float = 1e-6, seed: int = 0) -> GradcheckReport:
    """Check every op, the configured model shape, and optionally a trained model, in float64."""
    from nerwin.checks import check_model, check_model_by_hand, demo_batch, demo_model
    from nerwin.engine.opcases import KINK_MARGIN, OP_CASES, check_op

    rng = np.random.default_rng(seed)
    report = GradcheckReport()
    ops_results = [r for case in OP_CASES for r in check_op(case, rng, eps=eps, tol=tol)]
    report.sections.append(("ops", ops_results))
    report.notes.append(f"inputs kept {KINK_MARGIN} from kinks (ReLU 0, hard tanh +-1) and max ties; "
                        f"central differences with h={eps:g} in float64, pass if max_rel <= {tol:g}")
    activation = (config or Config()).model.activation
    model = demo_model(rng, activation)
    batch = demo_batch(rng, model)
    report.sections.append((f"window classifier ({activation}, caps, repeated word ids)",
                            check_model(model, *batch, rng, eps=eps, tol=tol)
                            + check_model_by_hand(model, *batch, tol=tol)))
    if model_dir is not None:
        report.sections.append((f"trained model {model_dir}", _check_trained(model_dir, rng, eps, tol)))
    return report


def _check_trained(model_dir: str | Path, rng: np.random.Generator, eps: float, tol: float) -> list:
    """Gradients of a trained model on a batch of its own training data."""
    from nerwin.checks import check_model, check_model_by_hand

    tagger, config, _ = load_model(model_dir)
    corpus = read_corpus(config.data.train, config)
    picked = rng.choice(len(corpus.sentences), size=min(3, len(corpus.sentences)), replace=False)
    sentences = [corpus.sentences[i] for i in picked]
    windows = tagger.encode([s.words for s in sentences])
    sub = Corpus(corpus.path, tuple(sentences), corpus.scheme)
    labels = location_labels(sub, config.data.location_types).astype(np.float64)
    results = check_model(tagger.model, windows.words, windows.caps, labels, rng, eps=eps, tol=tol)
    if len(tagger.model.shape.hidden) == 1:
        results += check_model_by_hand(tagger.model, windows.words, windows.caps, labels, tol=tol)
    return results
