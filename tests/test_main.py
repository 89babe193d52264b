"""The entry point: output that cannot be written is one error line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _trained import DEV, TRAIN, TrainedRun

FULL = Path("/dev/full")


def _nerwin(args: list, stdout, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "nerwin", *map(str, args)]
    return subprocess.run(
        cmd,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def _one_error(done: subprocess.CompletedProcess, needle: str) -> None:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], done.stderr


@pytest.mark.skipif(not FULL.exists(), reason="/dev/full is not available here")
@pytest.mark.parametrize(
    "args",
    [
        ["evaluate", "--data", DEV],
        ["predict", "Paris is nice ."],
        ["data", "--train", TRAIN],
    ],
    ids=["evaluate", "predict", "data"],
)
def test_main_full_device_is_one_error_line(run: TrainedRun, args: list) -> None:
    if args[0] in ("evaluate", "predict"):
        args = [args[0], "--model", run.model, *args[1:]]
    with open(FULL, "w") as full:
        _one_error(_nerwin(args, full), "No space left on device")


@pytest.mark.skipif(not FULL.exists(), reason="/dev/full is not available here")
def test_main_training_goes_on_when_stdout_fails(tmp_path: Path) -> None:
    with open(FULL, "w") as full:
        done = _nerwin(["train", "--out", tmp_path / "r", "--set", "train.epochs=2"], full)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "warning: cannot write to stdout" in done.stderr
    assert (tmp_path / "r" / "model" / "meta.json").is_file()


def test_main_closed_stdout_is_one_error_line(run: TrainedRun) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nerwin", "predict", "--model", str(run.model), "Paris ."],
        stdout=None,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
        preexec_fn=lambda: os.close(1),
    )
    _one_error(done, "standard output is closed")


def test_main_output_encoding_without_the_characters(run: TrainedRun) -> None:
    done = _nerwin(
        ["predict", "--model", run.model, "Zürich and Paris ."],
        subprocess.PIPE,
        env={"PYTHONIOENCODING": "ascii"},
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "Z\\xfcrich" in done.stdout
