"""threshold: the configured cut, or the tuned one with the best dev F1 (ties nearest 0.5)."""

from __future__ import annotations

import numpy as np

from nerwin.metrics import PRF, Scores
from nerwin.training.threshold import THRESHOLDS, pick_threshold


class _Evaluator:
    """Scores a cut by a given F1 per number of predicted locations."""

    def __init__(self, f1_by_count: dict[int, int]):
        self.f1_by_count, self.seen = f1_by_count, []

    def score(self, predicted: np.ndarray) -> Scores:
        assert predicted.dtype == np.int8
        count = int(predicted.sum())
        self.seen.append(count)
        f1 = self.f1_by_count.get(count, 0)
        return Scores(PRF(f1, 100, 100), PRF(0, 0, 0), len(predicted), 1)


PROBS = np.array([0.1, 0.3, 0.5, 0.7, 0.9])


def test_threshold_untuned_keeps_the_configured_cut() -> None:
    evaluator = _Evaluator({2: 80})
    threshold, scores = pick_threshold(PROBS, evaluator, 0.6, tune=False)
    assert threshold == 0.6 and isinstance(threshold, float)
    assert evaluator.seen == [2] and scores.entity.f1 == 0.8


def test_threshold_tuned_takes_the_best_f1() -> None:
    evaluator = _Evaluator({4: 50, 3: 60, 2: 90, 1: 70})
    threshold, scores = pick_threshold(PROBS, evaluator, 0.5, tune=True)
    assert 0.5 < threshold <= 0.7 and scores.entity.f1 == 0.9
    assert len(evaluator.seen) == len(THRESHOLDS)


def test_threshold_tie_goes_to_the_cut_nearest_half() -> None:
    threshold, _ = pick_threshold(PROBS, _Evaluator({3: 80, 2: 80}), 0.5, tune=True)
    assert threshold == 0.5  # 3 predicted from 0.31 to 0.50, 2 from 0.51 to 0.70: 0.50 is nearest
    threshold, _ = pick_threshold(PROBS, _Evaluator({4: 80, 1: 80}), 0.5, tune=True)
    assert threshold == 0.3  # 4 predicted up to 0.30, 1 from 0.71 on: 0.30 is nearer 0.5


def test_threshold_candidates() -> None:
    assert THRESHOLDS[0] == 0.05 and THRESHOLDS[-1] == 0.95 and len(THRESHOLDS) == 91
