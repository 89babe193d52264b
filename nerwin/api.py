"""Library entry points: train, evaluate, gradcheck (the CLI only parses and renders)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from nerwin.config import Config
from nerwin.data.conll import Corpus, location_labels
from nerwin.errors import NerwinError
from nerwin.metrics import LocationEvaluator, Scores
from nerwin.model.folder import load_model
from nerwin.training.ensemble import EnsembleRun, open_run, resume_run
from nerwin.training.loop import Progress
from nerwin.training.run import TrainingInterrupted, TrainingRun, TrainResult, read_corpus

__all__ = [
    "EnsembleRun",
    "TrainResult",
    "TrainingInterrupted",
    "TrainingRun",
    "evaluate",
    "gradcheck",
    "open_run",
    "resume",
    "resume_run",
    "train",
]


def train(
    config: Config,
    out_dir: str | Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
    init_from: str | Path | None = None,
) -> TrainResult:
    """Train a tagger (or an ensemble, train.ensemble > 1) as `config` says and write it to `out_dir`."""
    run = open_run(config, out_dir, force, init_from)
    for _ in run.epochs(progress):
        pass
    return run.finish()


def resume(out_dir: str | Path, progress: Progress | None = None) -> TrainResult:
    """Finish an interrupted run from its checkpoint."""
    run = resume_run(out_dir)
    for _ in run.epochs(progress):
        pass
    return run.finish()


def evaluate(model_dir: str | Path, data: str | Path, threshold: float | None = None) -> Scores:
    """Score the model in `model_dir` on the CoNLL file `data`."""
    tagger, config, _ = load_model(model_dir)
    corpus = read_corpus(str(data), config)
    probs = tagger.probabilities([s.words for s in corpus.sentences])
    return LocationEvaluator(corpus, config.data.location_types).score(
        tagger.labels(probs, threshold)
    )


@dataclass
class GradcheckReport:
    """Every gradient compared, grouped by section, with notes on how inputs were drawn."""

    sections: list[tuple[str, list]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every gradient passed."""
        return all(r.ok for _, results in self.sections for r in results)


def gradcheck(
    config: Config | None = None,
    model_dir: str | Path | None = None,
    eps: float = 1e-4,
    tol: float = 1e-6,
    seed: int = 0,
) -> GradcheckReport:
    """Check every op, the configured model shape, and optionally a trained model, in float64."""
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
        results, note = _check_trained(model_dir, rng, eps, tol)
        report.sections.append((f"trained model {model_dir}", results))
        report.notes.append(note)
    return report


def _check_trained(
    model_dir: str | Path, rng: np.random.Generator, eps: float, tol: float
) -> tuple[list, str]:
    """Gradients of a trained model on windows of its own training data, away from kinks."""
    from nerwin.model.checks import check_model, check_model_by_hand, smooth_windows

    tagger, config, _ = load_model(model_dir)
    corpus = read_corpus(config.data.train, config)
    picked = rng.choice(len(corpus.sentences), size=min(200, len(corpus.sentences)), replace=False)
    sub = Corpus(corpus.path, tuple(corpus.sentences[i] for i in sorted(picked)), corpus.scheme)
    windows = tagger.encode([s.words for s in sub.sentences])
    labels = location_labels(sub, config.data.location_types).astype(np.float64)
    results, kept = [], []
    for k, model in enumerate(tagger.models, start=1):  # every member of an ensemble
        keep = smooth_windows(model, windows.words, windows.caps, 10 * eps, windows.extra)[:8]
        if len(keep) == 0:
            raise NerwinError(
                f"{model_dir}: no training window keeps every pre-activation {10 * eps:g} "
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
        f"trained model: {' + '.join(map(str, kept))} windows from {config.data.train} whose "
        f"pre-activations are >= {10 * eps:g} from any kink"
    )
    return results, note
