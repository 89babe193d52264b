"""metrics.jsonl records for the curves and plot tests."""

from __future__ import annotations

import json
from pathlib import Path


def dev_scores(f1: float) -> dict:
    """A dev entry as the metrics log holds it, with entity and token F1 `f1`."""
    entity = {
        "precision": f1 + 0.02,
        "recall": f1 - 0.02,
        "f1": f1,
        "gold": 10,
        "predicted": 10,
        "correct": 8,
    }
    return {"entity": entity, "token": dict(entity)}


def record(epoch: int, loss: float, f1: float | None, best: bool, **more) -> dict:
    """One epoch's line of a metrics.jsonl (`more`: diagnostics, member, ...)."""
    return {
        "epoch": epoch,
        "loss": loss,
        "lr": 0.3 / epoch,
        "seconds": 1.0,
        "windows_per_s": 1e4,
        "best": best,
        "dev": None if f1 is None else dev_scores(f1),
        **more,
    }


def write_metrics(run_dir: Path, records: list[dict | str]) -> Path:
    """RUN_DIR/metrics.jsonl with one line per record (a str is written as it is)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return run_dir


def ensemble_records() -> list[dict]:
    """Two members with the same epochs, as an ensemble's metrics.jsonl interleaves them."""
    return [
        record(1, 0.5, 0.6, True, member=1),
        record(2, 0.4, 0.7, True, member=1),
        record(1, 0.9, 0.3, True, member=2, diagnostics={"grad_norm": {"W": 2.0}}),
        record(2, 0.8, 0.2, False, member=2, diagnostics={"grad_norm": {"W": 1.0}}),
    ]
