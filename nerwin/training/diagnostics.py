"""Training health per epoch: gradient norms, update ratios, dead and saturated units, scores."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nerwin.data.encode import WindowData
from nerwin.engine import RowSparseGrad, Tensor, no_grad
from nerwin.model.classifier import WindowClassifier

SAMPLE_EVERY = 50  # steps between gradient samples (keeps the cost negligible)
SATURATION = 3.0  # |z| beyond which logistic/tanh units are saturated
RELU_LIKE = {"relu", "leaky_relu", "prelu"}
SATURATING = {"logistic", "tanh", "hardtanh"}
DEAD_WARN, SATURATED_WARN = 0.5, 0.5
DEV_DROP_WARN = 0.05  # a one-epoch fall of dev F1 (5 points) worth a warning
UPDATE_RATIO_WARN = 0.1  # lr * |grad| / |weight|; around 1e-3 is usual
GROWTH_WARN = 10.0  # gradient norm up this many times since the previous epoch


class GradientMonitor:
    """Samples each parameter's gradient norm and update-to-weight ratio during an epoch."""

    def __init__(self) -> None:
        self.norms: dict[str, list[float]] = {}
        self.ratios: dict[str, list[float]] = {}

    def observe(self, params: dict[str, Tensor], lr: float, scales: dict[str, float]) -> None:
        """Record the current gradients (call before the optimizer clears them)."""
        for name, p in params.items():
            if p.grad is None:
                continue
            if isinstance(p.grad, RowSparseGrad):
                summed = p.grad.coalesce()
                grad, weight = summed.rows, p.data[summed.ids]
            else:
                grad, weight = p.grad, p.data
            norm = float(np.linalg.norm(grad))
            self.norms.setdefault(name, []).append(norm)
            if p.data.ndim != 2:
                continue  # update ratios are for weight matrices and tables (biases start at 0)
            step = lr * scales.get(name, 1.0) * norm
            self.ratios.setdefault(name, []).append(
                step / max(float(np.linalg.norm(weight)), 1e-12)
            )

    def summary(self) -> tuple[dict[str, float], dict[str, float]]:
        """Mean gradient norm and mean update ratio per parameter; then reset."""
        norms = {k: float(np.mean(v)) for k, v in self.norms.items()}
        ratios = {k: float(np.mean(v)) for k, v in self.ratios.items()}
        self.norms, self.ratios = {}, {}
        return norms, ratios


@dataclass
class Diagnostics:
    """One epoch's health figures and the warnings they raise."""

    grad_norm: dict[str, float]
    update_ratio: dict[str, float]
    dead_fraction: float | None
    saturated_fraction: float | None
    scores: dict[str, dict[str, float]]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return dict(self.__dict__)


def probe_sample(
    windows: WindowData, labels: np.ndarray, size: int = 2000
) -> tuple[WindowData, np.ndarray]:
    """A fixed subset of windows for the per-epoch probes (its own seed: training RNG untouched)."""
    pick = np.sort(np.random.default_rng(12345).permutation(len(labels))[:size])
    caps = None if windows.caps is None else windows.caps[pick]
    extra = {k: v[pick] for k, v in windows.extra.items()}
    return WindowData(windows.words[pick], caps, windows.lengths, extra), labels[pick]


def diagnose(
    model: WindowClassifier,
    monitor: GradientMonitor,
    sample: WindowData,
    labels: np.ndarray,
    previous: Diagnostics | None = None,
) -> Diagnostics:
    """Summarise the epoch's gradients and probe the model's units and scores on `sample`."""
    norms, ratios = monitor.summary()
    zs: list[np.ndarray] = []
    with no_grad():  # one pass gives the pre-activations and the scores
        scores = model.scores_from_inputs(
            model.input_vectors(sample.words, sample.caps, sample.extra), zs
        ).data.reshape(-1)
    act = model.shape.activation
    dead = float(np.mean([np.mean((z <= 0).all(axis=0)) for z in zs])) if act in RELU_LIKE else None
    saturated = (
        float(np.mean([np.mean(np.abs(z) > SATURATION) for z in zs])) if act in SATURATING else None
    )
    diag = Diagnostics(
        norms,
        ratios,
        dead,
        saturated,
        {"positive": _spread(scores[labels > 0]), "negative": _spread(scores[labels <= 0])},
    )
    diag.warnings = _warnings(diag, previous, act)
    return diag


def _spread(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {}
    q10, q50, q90 = np.percentile(values, [10, 50, 90])
    return {"mean": float(values.mean()), "p10": float(q10), "p50": float(q50), "p90": float(q90)}


def _warnings(diag: Diagnostics, previous: Diagnostics | None, activation: str) -> list[str]:
    found = []
    for name, ratio in diag.update_ratio.items():
        if ratio > UPDATE_RATIO_WARN or not np.isfinite(ratio):
            found.append(
                f"updates of {name} are {ratio:.2g} of its size per step (usual ~1e-3): "
                "lower train.lr"
            )
    if previous is not None:
        for name, norm in diag.grad_norm.items():
            before = previous.grad_norm.get(name)
            if before and norm > GROWTH_WARN * before:
                found.append(
                    f"gradient norm of {name} grew {norm / before:.0f}x in one epoch "
                    "(exploding): lower train.lr"
                )
    if diag.dead_fraction is not None and diag.dead_fraction > DEAD_WARN:
        found.append(
            f"{100 * diag.dead_fraction:.0f}% of {activation} units never activate (dead): "
            "lower train.lr or use model.activation=leaky_relu"
        )
    if diag.saturated_fraction is not None and diag.saturated_fraction > SATURATED_WARN:
        found.append(
            f"{100 * diag.saturated_fraction:.0f}% of {activation} activations are saturated "
            f"(|z| > {SATURATION:g}): lower train.lr or use model.activation=relu"
        )
    return found


def dev_drop_warning(
    before: float | None, after: float, diag: Diagnostics | None, previous: Diagnostics | None
) -> str | None:
    """A warning when dev F1 fell by DEV_DROP_WARN or more in one epoch, naming what moved.

    Measured on CoNLL-2003 with nearly frozen vectors: such a drop came with the other windows'
    scores rising towards the boundary (their p90 -11.5 -> -4.9) while the gradient figures
    stayed calm; the hidden weights W had moved too far in that epoch.
    """
    if before is None or before - after < DEV_DROP_WARN:
        return None
    text = (
        f"dev F1 fell {100 * (before - after):.1f} points ({100 * before:.2f} -> {100 * after:.2f})"
    )
    old = (previous.scores.get("negative", {}) if previous else {}).get("p90")
    new = (diag.scores.get("negative", {}) if diag else {}).get("p90")
    if old is not None and new is not None and new > old:
        text += (
            f"; the other windows' scores rose towards the boundary (p90 {old:.1f} -> {new:.1f})"
        )
    return (
        text + ": the weights moved too far in one epoch; lower train.lr (or raise "
        "train.embedding_lr_scale towards 1 so the vectors share the change)"
    )
