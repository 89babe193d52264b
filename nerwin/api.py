"""The library: load a model and tag text, train, evaluate, explain, check gradients.

Every entry point runs its numpy work on $NERWIN_THREADS BLAS threads (default 1) for the length
of the call, and nothing here changes process-wide state at import.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from nerwin.config import Config, apply_overrides, config_from_dict, config_to_dict, load_config
from nerwin.data.conll import Corpus, location_labels
from nerwin.data.placenames import PACKAGES, require_package
from nerwin.engine.blas import blas_threads, limited, limited_iterator
from nerwin.errors import ConfigError, ModelError, NerwinError
from nerwin.files.paths import default_run_dir, find_config
from nerwin.metrics import LocationEvaluator, Scores
from nerwin.model.folder import load_model
from nerwin.model.tagger import FrozenTagger, Tagger
from nerwin.tag.documents import TaggedDocument, tag_batches, text_documents
from nerwin.tag.pipeline import Document, LocationTagger
from nerwin.training import ensemble
from nerwin.training.ensemble import EnsembleRun, resume_run
from nerwin.training.loop import Progress
from nerwin.training.run import TrainingInterrupted, TrainingRun, TrainResult, read_corpus

__all__ = [
    "Document",
    "EnsembleRun",
    "LocationTagger",
    "TrainResult",
    "TrainingInterrupted",
    "TrainingRun",
    "blas_threads",
    "data_report",
    "evaluate",
    "explain",
    "gradcheck",
    "load",
    "load_tagger",
    "open_run",
    "plot",
    "predict",
    "read_config",
    "resume_run",
    "train",
]


def read_config(
    config: str | Path | Config | None = None,
    overrides: Sequence[str] = (),
    values: dict[str, Any] | None = None,
) -> Config:
    """A Config from a file, a shipped config's name (`conll2003`) or a Config, then overrides.

    `overrides` are `key=value` strings (the value read as YAML, as `--set` does); `values` maps
    keys to Python values: dotted (`"train.lr"`), `section__key` (`train__lr`) or a bare key name
    that only one section has (`lr`, `epochs`, `seed`).
    """
    items = list(overrides) + [
        f"{_dotted(k)}={json.dumps(_plain(v))}" for k, v in (values or {}).items()
    ]
    if isinstance(config, Config):
        raw = config_to_dict(config)
        apply_overrides(raw, items)
        return config_from_dict(raw, "config")
    if config is not None and not isinstance(config, str | Path):
        raise TypeError(
            f"config must be a path, a shipped config's name or a Config, "
            f"got {type(config).__name__}"
        )
    return load_config(None if config is None else find_config(str(config)), items)


def _dotted(key: str) -> str:
    """`train.lr`, `train__lr` or a bare unique name like `lr` -> `train.lr`."""
    if "." in key:
        return key
    if "__" in key:
        return key.replace("__", ".", 1)
    sections = [
        s
        for s in ("data", "model", "train")
        if key in {f.name for f in dataclasses.fields(getattr(Config(), s))}
    ]
    if len(sections) != 1:
        where = " or ".join(f"{s}.{key}" for s in sections) or "no section has it"
        raise ConfigError(f"{key}: name the section ({where}), e.g. train__lr=0.1")
    return f"{sections[0]}.{key}"


def _plain(value: Any) -> Any:
    """Python values as JSON (which YAML reads): tuples as lists, paths as str."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value


@limited
def train(
    config: str | Path | Config | None = None,
    out: str | Path | None = None,
    *,
    force: bool = False,
    init_from: str | Path | None = None,
    progress: Progress | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train a tagger (an ensemble when train.ensemble > 1) and write its run folder.

    `config`: a YAML file, a shipped config's name (`"conll2003"`) or a Config (default: the
    built-in defaults on the bundled corpus); keyword overrides as in read_config, e.g.
    `nerwin.train("conll2003", epochs=3, seed=1)`.
    """
    cfg = read_config(config, values=overrides)
    run = open_run(cfg, out, force, init_from)
    for _ in run.epochs(progress):
        pass
    return run.finish()


def open_run(
    config: Config,
    out: str | Path | None = None,
    force: bool = False,
    init_from: str | Path | None = None,
) -> TrainingRun | EnsembleRun:
    """A new run, single model or ensemble, ready to train: iterate `.epochs()`, then `.finish()`.

    Without `out`, a new folder runs/<date-time>-<id> is made (removed again if the run cannot
    start, e.g. a missing corpus).
    """
    if init_from is None:  # (a continued model keeps its own names)
        for source in [s for s in config.data.gazetteer_sources if s in PACKAGES]:
            require_package(source)  # before any folder or corpus is touched
    if out is not None:
        return ensemble.open_run(config, out, force, init_from)
    folder = default_run_dir()
    try:
        return ensemble.open_run(config, folder, force, init_from)
    except BaseException:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise


def load_tagger(path: str | Path) -> tuple[Tagger, Config, dict]:
    """The model folder at `path` (with a hint when it is a run folder), as load_model reads it."""
    if not isinstance(path, str | Path):
        raise TypeError(f"path must be a str or Path, got {type(path).__name__}")
    path = Path(path)
    if path.is_dir() and not (path / "meta.json").exists() and (path / "model").is_dir():
        raise ModelError(
            f"{path}: a run folder, not a model folder; did you mean {path / 'model'}?"
        )
    return load_model(path)


@limited
def load(path: str | Path) -> LocationTagger:
    """Load a trained model folder (RUN/model) as a LocationTagger: tag(), tag_tokens(), pipe()."""
    return LocationTagger(load_tagger(path)[0], str(path))


@limited
def evaluate(
    model: str | Path,
    data: str | Path,
    threshold: float | None = None,
    location_types: Sequence[str] | None = None,
) -> Scores:
    """Score the model folder `model` on the CoNLL file `data` (conlleval semantics)."""
    tagger, config, _ = load_tagger(model)
    corpus = read_corpus(str(data), config)
    types = tuple(location_types or config.data.location_types)
    if not set(types) & set(corpus.entity_types):
        present = ", ".join(sorted(corpus.entity_types)) or "none"
        raise NerwinError(
            f"{data}: no entity of type {', '.join(types)} to score (types "
            f"present: {present}); pass the right --location-types"
        )
    probs = tagger.probabilities([s.words for s in corpus.sentences])
    return LocationEvaluator(corpus, types).score(tagger.labels(probs, threshold))


def predict(
    model: str | Path | Tagger | FrozenTagger,
    documents: Iterable[TaggedDocument],
    threshold: float | None = None,
    *,
    idle: Callable[[], bool] | None = None,
    cache_mb: float | None = None,
) -> Iterator[TaggedDocument]:
    """Tag a stream of documents (raw_documents, or sentence_document per CoNLL sentence).

    Documents are scored in batches (about 20,000 tokens); a batch also closes whenever `idle()`
    returns True (no more input ready without waiting, e.g. `InputSource.idle` of
    nerwin.tag.inputs), so interactive input is answered at once. The last document of each
    batch has `last_in_batch` set: a good moment to flush output. The model is frozen for the
    stream: each distinct word's first layer is computed once and cached, up to `cache_mb` MB
    (default $NERWIN_TAG_CACHE_MB or 160; 0 = plain matrix products). Offsets are Unicode code
    points into each document's text (Python string indices).
    """
    tagger = model if isinstance(model, Tagger | FrozenTagger) else load_tagger(model)[0]
    batches = limited_iterator(tag_batches)  # BLAS limit per batch, not per document
    for batch in batches(tagger, documents, threshold, idle=idle, cache_mb=cache_mb):
        yield from batch


def raw_documents(
    texts: Iterable[str] | Iterable[tuple[Any, str]], with_ids: bool = False
) -> Iterator[TaggedDocument]:
    """Raw-text documents to tag, one per text; with `with_ids`, items are (id, text) pairs and
    each document carries its id to the output."""
    return text_documents(texts, with_ids)


@limited_iterator
def explain(
    model: str | Path,
    texts: Iterable[str],
    tokens: Sequence[int] | None = None,
    all_tokens: bool = False,
) -> Iterator:
    """Per document, why each chosen token scored as it did (gradient x input, occlusion)."""
    from nerwin.tag.explain import Explainer

    explainer = Explainer(load_tagger(model)[0])
    for text in texts:
        yield explainer.explain(text, tokens, all_tokens)


@limited
def data_report(
    train: str | Path,
    dev: str | Path | None = None,
    vectors: str | Path | None = None,
    location_types: Sequence[str] = ("LOC",),
    word_column: int = 0,
    tag_column: int = -1,
    gazetteer: Sequence[str] = (),
):
    """A report on a corpus before training (sizes, tags, vocabulary, vectors, gazetteer
    coverage, problems)."""
    from nerwin.data.report import data_report as report

    return report(train, dev, vectors, location_types, word_column, tag_column, tuple(gazetteer))


def plot(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Draw a run's learning curves to an image (needs matplotlib); returns the image's path."""
    from nerwin.training.plot import plot_run

    return plot_run(run_dir, out)


@dataclass
class GradcheckReport:
    """Every gradient compared, grouped by section, with notes on how inputs were drawn."""

    sections: list[tuple[str, list]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """How many gradients were compared."""
        return sum(len(results) for _, results in self.sections)

    @property
    def failed(self) -> int:
        """How many gradients failed."""
        return sum(not r.ok for _, results in self.sections for r in results)

    @property
    def ok(self) -> bool:
        """True when every gradient passed."""
        return self.failed == 0


@limited
def gradcheck(
    config: Config | None = None,
    model_dir: str | Path | None = None,
    eps: float = 1e-4,
    tol: float = 1e-6,
    seed: int = 0,
    data: str | Path | None = None,
) -> GradcheckReport:
    """Check every op, the configured model shape, and optionally a trained model (on windows
    of `data`, else of random ids), in float64."""
    from nerwin.engine.opcases import KINK_MARGIN, OP_CASES, check_op
    from nerwin.model.checks import (
        check_model,
        check_model_by_hand,
        demo_batch,
        demo_extra,
        demo_model,
    )

    rng = np.random.default_rng(seed)
    report = GradcheckReport()
    ops_results = [r for case in OP_CASES for r in check_op(case, rng, eps=eps, tol=tol)]
    report.sections.append(("ops", ops_results))
    report.notes.append(
        f"inputs kept {KINK_MARGIN} from kinks (ReLU 0, hard tanh +-1) and max ties; "
        f"central differences with h={eps:g} in float64, pass if max_rel <= {tol:g}"
    )
    activation = (config or Config()).model.activation
    model = demo_model(rng, activation, features=True, aux=True)
    batch, extra = demo_batch(rng, model), demo_extra(rng, model)
    report.sections.append(
        (
            f"window classifier ({activation}, caps, suffix, shape, aux heads, repeated ids)",
            check_model(model, *batch, rng, extra, eps=eps, tol=tol)
            + check_model_by_hand(model, *batch, tol, extra),
        )
    )
    if model_dir is not None:
        results, note = _check_trained(model_dir, rng, eps, tol, data)
        report.sections.append((f"trained model {model_dir}", results))
        report.notes.append(note)
    return report


def _random_windows(tagger: Tagger, rng: np.random.Generator, n: int):
    """n windows of random ids of the model's own tables, with random 0/1 labels."""
    from nerwin.data.encode import WindowData

    shape, w = tagger.model.shape, tagger.model.shape.window
    words = rng.integers(0, shape.vocab_size, (n, w))
    caps = rng.integers(0, shape.n_caps, (n, w)) if shape.caps_dim else None
    extra = {name: rng.integers(0, rows, (n, w)) for name, rows, _ in shape.extra}
    labels = rng.integers(0, 2, n).astype(np.float64)
    return WindowData(words, caps, np.array([n]), extra), labels


def _check_trained(
    model_dir: str | Path,
    rng: np.random.Generator,
    eps: float,
    tol: float,
    data: str | Path | None = None,
) -> tuple[list, str]:
    """Gradients of a trained model, away from kinks, on windows of `data` (a CoNLL file) or,
    without it, on windows of random ids of its own vocabulary: a model folder is untrusted
    input, so the paths its config.yaml names are never read."""
    from nerwin.model.checks import check_model, check_model_by_hand, smooth_windows

    tagger, config, _ = load_tagger(model_dir)
    if data is not None:
        corpus = read_corpus(str(data), config)
        size = min(200, len(corpus.sentences))
        picked = sorted(rng.choice(len(corpus.sentences), size=size, replace=False))
        sub = Corpus(corpus.path, tuple(corpus.sentences[i] for i in picked), corpus.scheme)
        windows = tagger.encode([s.words for s in sub.sentences])
        labels = location_labels(sub, config.data.location_types).astype(np.float64)
        source = str(data)
    else:
        windows, labels = _random_windows(tagger, rng, 200)
        source = "random ids of its vocabulary"
    results, kept = [], []
    for k, model in enumerate(tagger.models, start=1):  # every member of an ensemble
        keep = smooth_windows(model, windows.words, windows.caps, 10 * eps, windows.extra)[:8]
        if len(keep) == 0:
            raise NerwinError(
                f"{model_dir}: no window keeps every pre-activation {10 * eps:g} "
                "from a kink; try a smaller --eps"
            )
        words, caps = windows.words[keep], None if windows.caps is None else windows.caps[keep]
        extra = {name: ids[keep] for name, ids in windows.extra.items()}
        found = check_model(model, words, caps, labels[keep], rng, extra, eps=eps, tol=tol)
        if len(model.shape.hidden) == 1:
            found += check_model_by_hand(model, words, caps, labels[keep], tol, extra)
        if len(tagger.models) > 1:
            found = [replace(r, name=f"member {k} {r.name}") for r in found]
        results += found
        kept.append(len(keep))
    note = (
        f"trained model: {' + '.join(map(str, kept))} windows from {source} whose "
        f"pre-activations are >= {10 * eps:g} from any kink"
    )
    return results, note
