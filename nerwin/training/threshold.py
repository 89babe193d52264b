"""The decision threshold on P(location): the configured one, or the one that maximises dev F1."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nerwin.config import TrainConfig
from nerwin.files.atomic import write_text
from nerwin.metrics import LocationEvaluator, Scores

THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.01), 2)  # the cuts tuning tries: 0.05, ..., 0.95


def pick_threshold(
    probs: np.ndarray, evaluator: LocationEvaluator, threshold: float, tune: bool
) -> tuple[float, Scores]:
    """(threshold, dev scores at it) for the windows' P(location) `probs`.

    With `tune`, the cut of THRESHOLDS with the best dev entity F1 (a tie goes to the cut
    nearest 0.5, then to the lower one); else `threshold` itself.
    """
    cuts = THRESHOLDS if tune else (threshold,)
    scored = [(evaluator.score((probs >= t).astype(np.int8)), float(t)) for t in cuts]
    scores, best = max(scored, key=lambda st: (st[0].entity.f1, -abs(st[1] - 0.5)))
    return best, scores


def dev_record(
    probs: np.ndarray,
    evaluator: LocationEvaluator,
    threshold: float,
    default: float,
    where: str,
    epoch: int,
) -> dict:
    """The dev scores a model folder's meta.json keeps: at its threshold and the configured one."""

    def at(cut: float) -> dict:
        entity = evaluator.score((probs >= cut).astype(np.int8)).entity
        return {
            "threshold": cut,
            "f1": entity.f1,
            "precision": entity.precision,
            "recall": entity.recall,
        }

    return {"file": where, "epoch": epoch, **at(threshold), "at_configured_threshold": at(default)}


def settle_threshold(
    probs: np.ndarray,
    evaluator: LocationEvaluator,
    threshold: float,
    train: TrainConfig,
    where: str,
    epoch: int,
) -> tuple[float, Scores, dict]:
    """The threshold a finished run stores (tuned on dev with train.tune_threshold, else
    `threshold`), the dev scores at it, and the dev record for meta.json."""
    threshold, scores = pick_threshold(probs, evaluator, threshold, train.tune_threshold)
    dev = dev_record(probs, evaluator, threshold, train.threshold, where, epoch)
    return threshold, scores, dev


def record_dev(model_dir: Path, meta: dict, threshold: float, dev: dict) -> None:
    """Store the decision threshold and the dev scores in the model folder's meta.json."""
    meta = {**meta, "threshold": threshold, "dev": dev}
    write_text(model_dir / "meta.json", json.dumps(meta, indent=2) + "\n")
