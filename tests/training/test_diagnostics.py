"""Tests for the per-epoch training diagnostics and the warnings they raise when provoked."""

from __future__ import annotations

import numpy as np
import pytest

from nerwin.data.encode import WindowData
from nerwin.model.classifier import ModelShape, WindowClassifier
from nerwin.training.diagnostics import GradientMonitor, diagnose, probe_sample


def _model(activation: str, rng: np.random.Generator) -> WindowClassifier:
    return WindowClassifier.initialise(ModelShape(30, 4, 5, (16,), activation, 2, 6), rng)


def _sample(rng: np.random.Generator, n: int = 200) -> tuple[WindowData, np.ndarray]:
    words = rng.integers(0, 30, (n, 5))
    caps = rng.integers(0, 6, (n, 5))
    labels = (rng.random(n) < 0.3).astype(np.float32)
    return WindowData(words, caps, np.array([n])), labels


def _monitor_after_step(
    model: WindowClassifier, sample: WindowData, labels: np.ndarray, lr: float
) -> GradientMonitor:
    monitor = GradientMonitor()
    model.loss(sample.words, sample.caps, labels).backward()
    monitor.observe(model.params, lr, {})
    return monitor


def test_diagnostics_healthy_model_has_no_warnings(rng: np.random.Generator) -> None:
    model = _model("relu", rng)
    sample, labels = _sample(rng)
    diag = diagnose(model, _monitor_after_step(model, sample, labels, 0.01), sample, labels)
    assert diag.warnings == []
    assert 0 <= diag.dead_fraction < 0.5 and diag.saturated_fraction is None
    assert set(diag.scores) == {"positive", "negative"}


def test_diagnostics_dead_relus_warn(rng: np.random.Generator) -> None:
    model = _model("relu", rng)
    model.params["b"].data[:] = -100.0  # what a too-large step does to ReLU units
    sample, labels = _sample(rng)
    diag = diagnose(model, _monitor_after_step(model, sample, labels, 0.01), sample, labels)
    assert diag.dead_fraction == 1.0
    assert any("dead" in w and "leaky_relu" in w for w in diag.warnings), diag.warnings


def test_diagnostics_saturated_tanh_warns(rng: np.random.Generator) -> None:
    model = _model("tanh", rng)
    model.params["W"].data *= 100.0
    sample, labels = _sample(rng)
    diag = diagnose(model, _monitor_after_step(model, sample, labels, 0.01), sample, labels)
    assert diag.saturated_fraction > 0.5
    assert any("saturated" in w for w in diag.warnings), diag.warnings


def test_diagnostics_large_updates_warn(rng: np.random.Generator) -> None:
    model = _model("relu", rng)
    sample, labels = _sample(rng)
    diag = diagnose(model, _monitor_after_step(model, sample, labels, 1000.0), sample, labels)
    assert any("updates of" in w and "lower train.lr" in w for w in diag.warnings), diag.warnings


def test_diagnostics_exploding_gradient_warns(rng: np.random.Generator) -> None:
    model = _model("relu", rng)
    sample, labels = _sample(rng)
    before = diagnose(model, _monitor_after_step(model, sample, labels, 0.0), sample, labels)
    model.params["u"].data *= 1000.0
    after = diagnose(model, _monitor_after_step(model, sample, labels, 0.0), sample, labels, before)
    assert any("exploding" in w for w in after.warnings), after.warnings


def test_diagnostics_probe_sample_is_fixed_and_bounded(rng: np.random.Generator) -> None:
    sample, labels = _sample(rng, 500)
    a, la = probe_sample(sample, labels, size=100)
    b, lb = probe_sample(sample, labels, size=100)
    assert len(a.words) == 100 and np.array_equal(a.words, b.words) and np.array_equal(la, lb)


@pytest.mark.parametrize("activation", ["logistic", "gelu"])
def test_diagnostics_unit_fractions_only_where_meaningful(
    rng: np.random.Generator, activation: str
) -> None:
    model = _model(activation, rng)
    sample, labels = _sample(rng)
    diag = diagnose(model, _monitor_after_step(model, sample, labels, 0.01), sample, labels)
    assert diag.dead_fraction is None
    assert (diag.saturated_fraction is None) == (activation == "gelu")


def test_diagnostics_dev_drop_warning_names_the_fall_and_the_score_shift() -> None:
    from nerwin.training.diagnostics import Diagnostics, dev_drop_warning

    def diag(p90: float) -> Diagnostics:
        return Diagnostics({}, {}, 0.0, None, {"negative": {"p90": p90}})

    text = dev_drop_warning(0.932, 0.629, diag(-4.9), diag(-11.5))
    assert "dev F1 fell 30.3 points (93.20 -> 62.90)" in text
    assert "p90 -11.5 -> -4.9" in text and "lower train.lr" in text
    assert dev_drop_warning(0.932, 0.90, diag(-4.9), diag(-11.5)) is None  # 3.2 points: noise
    assert dev_drop_warning(None, 0.5, None, None) is None
