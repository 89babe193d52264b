"""TrainingRun: a run's data and model, its epochs, checkpoints, resume and interruption."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from nerwin.config import PATH_VARIABLE, Config, data_file, path_variable
from nerwin.data.caps import N_CAPS
from nerwin.data.conll import Corpus, location_labels, read_conll
from nerwin.data.embeddings import load_vectors
from nerwin.data.features import TokenFeature
from nerwin.data.vocab import Vocab, build_vocab
from nerwin.engine import Tensor
from nerwin.errors import ConfigError, DataError, ModelError, NerwinError
from nerwin.files.atomic import write_text
from nerwin.files.paths import cache_dir, default_run_dir, resolve_data_path
from nerwin.files.versions import versions
from nerwin.metrics import LocationEvaluator, Scores
from nerwin.model.classifier import ModelShape, WindowClassifier
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
    append_metrics,
    check_out_dir,
    check_outputs,
    create_out_dir,
)
from nerwin.training.signals import stop_on_signals
from nerwin.training.threshold import dev_record, pick_threshold

PATH_HINTS = {  # where the shipped configs' data comes from (README: Getting CoNLL-2003 and GloVe)
    "conll2003": "; CoNLL-2003 English: see the README section 'Getting CoNLL-2003 and GloVe'",
    "glove": "; GloVe 6B (glove.6B.50d.txt.gz): see the README section "
    "'Getting CoNLL-2003 and GloVe'",
}


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


def read_corpus(path: str | tuple[str, ...], config: Config, key: str = "data") -> Corpus:
    """Read a CoNLL corpus (or several, joined) with the config's columns and scheme.

    Paths may use the config's ${name} variables; a missing file's error says where it is set.
    """
    d = config.data
    parts = [
        read_conll(
            data_path(name, config, key),
            word_column=d.word_column,
            tag_column=d.tag_column,
            scheme=d.scheme,
            keep_columns=False,
        )
        for name in ((path,) if isinstance(path, str) else path)
    ]
    if len(parts) == 1:
        return parts[0]
    schemes = {c.scheme for c in parts}
    if len(schemes) > 1:
        found = ", ".join(f"{c.path} is {c.scheme}" for c in parts)
        raise ConfigError(f"{key}: the files use different tag schemes ({found}); set data.scheme")
    sentences = tuple(s for c in parts for s in c.sentences)
    return Corpus(" + ".join(c.path for c in parts), sentences, parts[0].scheme)


def data_path(template: str, config: Config, key: str = "data") -> Path:
    """A config data file with its ${name} variables filled in; DataError with a hint if absent."""
    path = resolve_data_path(data_file(config, template))
    if path.exists():
        return path
    names = PATH_VARIABLE.findall(template)
    if not names:
        return path  # the reader reports a plain missing file
    name = names[0]
    hint = PATH_HINTS.get(name, "")
    raise DataError(
        f"{path}: file not found ({key} = {template}, paths.{name} = "
        f"{dict(config.paths).get(name, '?')}; set {path_variable(name)}=DIR or "
        f"--set paths.{name}=DIR{hint})"
    )


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
        if not _resume:
            check_out_dir(self.out_dir, force)
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
        if not _resume:
            self.tagger = self._initial_tagger(init_from)
            self._prepare_data()
            create_out_dir(self.out_dir, force, self.config)  # only now: inputs read and checked

    @classmethod
    def resume(cls, out_dir: str | Path) -> TrainingRun:
        """Continue the run in `out_dir` from its checkpoint, exactly where it stopped.

        First what a save killed midway left is cleaned up (folder.recover_save): a folder set
        aside as `.last.old` or `.model.old` goes back in place, staging folders are deleted. A
        run killed before its first checkpoint trains again from the start with its own
        config.yaml (its metrics and model are cleared first, as --force clears them).
        """
        from nerwin.config import load_config
        from nerwin.model.folder import recover_save
        from nerwin.training.rundir import CONFIG

        out_dir = Path(out_dir)
        checkpoint = out_dir / CHECKPOINT
        no_checkpoint = f"{out_dir}: no checkpoint to resume (expected {checkpoint}/)"
        if not out_dir.is_dir():
            raise NerwinError(no_checkpoint)
        check_outputs(out_dir, new_run=False, members=False)
        notes = [
            f"{out_dir / name}: put back from the copy a killed save had set aside"
            for name in ("model", CHECKPOINT)
            if recover_save(out_dir / name)
        ]
        if not (checkpoint / "meta.json").is_file():
            if not (out_dir / CONFIG).is_file():
                raise NerwinError(no_checkpoint)
            config = load_config(out_dir / CONFIG)
            if config.train.ensemble > 1:  # resume_run takes an ensemble with its members/
                raise NerwinError(f"{no_checkpoint}; {out_dir / CONFIG} trains an ensemble")
            run = cls(config, out_dir, force=True)
            run.notes += [
                *notes,
                f"{out_dir}: stopped before its first checkpoint; training again from the "
                f"start with {out_dir / CONFIG}",
            ]
            return run
        tagger, config, meta = load_model(checkpoint)
        state = _train_state(meta, checkpoint)
        run = cls(config, out_dir, _resume=True)
        run.notes += notes
        run.finished = (
            state.epoch > config.train.epochs or state.since_best >= config.train.patience
        )
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

    def _initial_tagger(self, init_from: str | Path | None) -> Tagger:
        if init_from is not None:
            return self._continue_from(Path(init_from))
        vocab, embeddings = self._vocab_and_vectors()
        features = self._fit_features()
        return Tagger(
            self._new_model(vocab, embeddings, features),
            vocab,
            self.config.train.threshold,
            features,
        )

    def _fit_features(self) -> dict[str, TokenFeature]:
        """Suffix and shape vocabularies from the training words, for the enabled features."""
        words = [w for s in self.train_corpus.sentences for w in s.words]
        dims = {"suffix": self.config.model.suffix_dim, "shape": self.config.model.shape_dim}
        return {kind: TokenFeature.fit(kind, words) for kind, dim in dims.items() if dim}

    def _vocab_and_vectors(self) -> tuple[Vocab, np.ndarray | None]:
        d = self.config.data
        vocab = build_vocab(
            (s.words for s in self.train_corpus.sentences),
            d.lowercase,
            d.digits,
            d.min_count,
            d.max_vocab,
        )
        if not d.vectors:
            self.notes.append(
                f"vocabulary: {len(vocab):,} words from {self.train_corpus.path}; random vectors"
            )
            return vocab, None
        vectors = load_vectors(
            data_path(d.vectors, self.config, "data.vectors"),
            vocab.words,
            extra_top_n=d.vectors_extend,
            cache_dir=cache_dir(),
            seed=self.config.train.seed,
        )
        if vectors.dim != self.config.model.embedding_dim:
            raise ConfigError(
                f"model.embedding_dim: is {self.config.model.embedding_dim} but {d.vectors} "
                f"has {vectors.dim}-d vectors; set model.embedding_dim={vectors.dim}"
            )
        trained_words = len(vocab)
        vocab, matrix = _extend_with_vectors(vocab, vectors.words, vectors.matrix)
        self.notes.append(vectors.coverage.summary())
        if vectors.coverage.found == 0:
            self.notes.append(
                f"warning: {d.vectors}: NO vocabulary word has a vector; check the file "
                "and data.lowercase"
            )
        self.notes.append(
            f"vocabulary: {len(vocab):,} words ({trained_words:,} from "
            f"{self.train_corpus.path}, {len(vocab) - trained_words:,} from {d.vectors})"
        )
        return vocab, matrix

    def _new_model(
        self, vocab: Vocab, embeddings: np.ndarray | None, features: dict[str, TokenFeature]
    ) -> WindowClassifier:
        m = self.config.model
        dims = {"suffix": m.suffix_dim, "shape": m.shape_dim}
        extra = tuple((name, len(f), dims[name]) for name, f in features.items())
        shape = ModelShape(
            len(vocab),
            m.embedding_dim,
            m.window,
            tuple(m.hidden),
            m.activation,
            m.caps_dim,
            N_CAPS if m.caps_dim else 0,
            extra=extra,
            aux_types=self._aux_types(),
        )
        return WindowClassifier.initialise(shape, self.rng, embeddings, m.embedding_init)

    def _aux_types(self) -> tuple[str, ...]:
        """The training corpus's other entity types, each given a head when train.aux_weight > 0."""
        if self.config.train.aux_weight == 0:
            return ()
        types = tuple(
            sorted(set(self.train_corpus.entity_types) - set(self.config.data.location_types))
        )
        if not types:
            self.notes.append(
                f"warning: {self.train_corpus.path}: no entity type besides the locations; "
                "train.aux_weight has nothing to learn from"
            )
        return types

    def _continue_from(self, model_dir: Path) -> Tagger:
        """A trained model whose vocabulary is extended with the new training words."""
        tagger, old_config, _ = load_model(model_dir)
        if tagger.members:
            raise ConfigError(
                f"{model_dir}: an ensemble of {len(tagger.models)}; --init-from continues one "
                f"model, e.g. {model_dir.parent / 'members' / '1' / 'model'}"
            )
        self.config = replace(
            self.config,
            model=old_config.model,
            data=replace(
                self.config.data, lowercase=old_config.data.lowercase, digits=old_config.data.digits
            ),
        )
        vocab = tagger.vocab.extend(w for s in self.train_corpus.sentences for w in s.words)
        old = tagger.model.params["E"].data
        new_rows = self.rng.normal(0.0, float(old.std()), (len(vocab) - len(old), old.shape[1]))
        params = dict(tagger.model.params)
        params["E"] = Tensor(
            np.concatenate([old, new_rows.astype(old.dtype)]), requires_grad=True, name="E"
        )
        shape = replace(tagger.model.shape, vocab_size=len(vocab))
        self.notes.append(
            f"continuing from {model_dir}: {len(vocab) - len(old):,} new words added "
            f"to its {len(old):,}; model settings taken from that model"
        )
        if self.config.train.aux_weight > 0 and not shape.aux_types:
            self.notes.append(
                f"warning: train.aux_weight is ignored: the model's heads come from "
                f"{model_dir}, which has no heads for other entity types"
            )
        return Tagger(
            WindowClassifier(shape, params), vocab, self.config.train.threshold, tagger.features
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
                raise TrainingInterrupted(self.out_dir, interrupted.state, stop.name) from None

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
        tagger, _, meta = load_model(self.out_dir / "model")
        threshold, scores, dev = tagger.threshold, None, None
        epoch = int(meta.get("epoch", 0))
        if self.evaluator:
            tune = self.config.train.tune_threshold
            probs = tagger.window_probabilities(self.dev_windows)
            threshold, scores = pick_threshold(probs, self.evaluator, threshold, tune)
            dev = dev_record(
                probs,
                self.evaluator,
                threshold,
                self.config.train.threshold,
                self.dev_corpus.path,
                epoch,
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


def record_dev(model_dir: Path, meta: dict, threshold: float, dev: dict) -> None:
    """Store the decision threshold and the dev scores in the model folder's meta.json."""
    meta = {**meta, "threshold": threshold, "dev": dev}
    write_text(model_dir / "meta.json", json.dumps(meta, indent=2) + "\n")


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


def _extend_with_vectors(
    vocab: Vocab, words: tuple[str, ...], matrix: np.ndarray
) -> tuple[Vocab, np.ndarray]:
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
