"""One small model trained on the bundled corpus, shared by the prediction and CLI tests.

Each test module declares a session-scoped fixture that calls `trained_run`; the run is cached
here, so the model is trained once per pytest session however many modules use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nerwin import api
from nerwin.config import load_config

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "data" / "default" / "train.txt"
DEV = ROOT / "data" / "default" / "dev.txt"
OVERRIDES = ("train.epochs=3",)


@dataclass(frozen=True)
class TrainedRun:
    """Where the shared run lives and what api.train returned."""

    out_dir: Path
    result: api.TrainResult

    @property
    def model(self) -> Path:
        """The best model directory, RUN/model."""
        return self.out_dir / "model"


_CACHE: dict[str, TrainedRun] = {}


def trained_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """Train (once per session) on data/default/train.txt with dev.txt for early stopping."""
    if "run" not in _CACHE:
        out_dir = tmp_path_factory.mktemp("trained") / "run"
        result = api.train(load_config(None, list(OVERRIDES)), out_dir)
        _CACHE["run"] = TrainedRun(out_dir, result)
    return _CACHE["run"]


def invoke(args: list[str], input: str | bytes | None = None):
    """Run the nerwin app in-process (stdout and stderr captured separately)."""
    from nerwin.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def assert_ok(result) -> None:
    """Exit 0 and no stray exception."""
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr, result.exception)


def assert_user_error(result, *needles: str) -> str:
    """Exit 1 through typer.Exit with one stderr line `error: ...` that contains every needle."""
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr, result.exception)
    # An uncaught exception also gives exit code 1 under CliRunner: it must be a clean exit.
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
