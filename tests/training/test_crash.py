"""Crash windows: `nerwin train` killed (SIGKILL) at each step of its saves, then read and resumed.

A wrapper runs `python -m nerwin train` with nerwin.files.atomic._step (a no-op marking each
step of a save: staging made, files written, synced, folders swapped, old copy removed; and each
write_file before its rename) replaced by a function that kills the process at the k-th step.
After each kill every reader must find a complete model wherever a save had completed before
(the old or the new weights of the save that was cut), and `nerwin train --resume` must end
with weights bit-identical to an uninterrupted run's and no staging folder left behind.
Both swap protocols are covered: the atomic exchange (Linux) and the fallback of two renames.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _trained import invoke

from nerwin.errors import ModelError
from nerwin.files import atomic
from nerwin.model.folder import load_model

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ("train", "--set", "train.epochs=3")

WRAPPER = r"""
import json, os, shutil, signal, sys, runpy
from pathlib import Path
from nerwin.files import atomic

kill_at = int(os.environ.get("CRASH_AT", "0"))
record = os.environ.get("CRASH_RECORD")
if os.environ.get("CRASH_NO_EXCHANGE"):
    atomic.exchange = lambda a, b: False
steps, saves, current = [], {}, []
real_write_folder = atomic.write_folder


def write_folder(target, write, written):
    current.append(Path(target).name)
    try:
        real_write_folder(target, write, written)
    finally:
        current.pop()
    saves[Path(target).name] = saves.get(Path(target).name, 0) + 1
    if record:  # keep the weights of every completed save
        name = Path(target).name
        shutil.copy(Path(target) / "weights.npz", f"{record}/{name}-{saves[name]}.npz")


def step(name):
    target = current[-1] if current else "-"
    steps.append([name, target, saves.get(target, 0) + 1])
    if record:
        Path(record, "steps.json").write_text(json.dumps(steps))
    if len(steps) == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)


atomic.write_folder = write_folder
atomic._step = step
sys.argv = ["nerwin", *sys.argv[1:]]
runpy.run_module("nerwin", run_name="__main__")
"""


def _nerwin(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """python -m nerwin ARGS under the crash wrapper, in a folder of its own."""
    wrapper = tmp / "wrapper.py"
    if not wrapper.exists():
        wrapper.write_text(WRAPPER)
    environ = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "NERWIN_CACHE": str(tmp / "cache")}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(wrapper), *args],
        cwd=tmp,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


def _same(a: Path | dict, b: Path | dict) -> bool:
    one, two = (_arrays(x) if isinstance(x, Path) else x for x in (a, b))
    return one.keys() == two.keys() and all(np.array_equal(one[k], two[k]) for k in one)


def _tagger_arrays(tagger) -> dict[str, np.ndarray]:
    """A loaded single model's arrays, under the names weights.npz uses."""
    return {name: np.asarray(array) for name, array in tagger.model.arrays().items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """The uninterrupted run, with each completed save's weights and the list of save steps."""
    tmp = tmp_path_factory.mktemp("reference")
    (tmp / "saves").mkdir()
    done = _nerwin(tmp, *TRAIN, "--out", "run", CRASH_RECORD=str(tmp / "saves"))
    assert done.returncode == 0, done.stderr
    record = tmp / "saves" / "steps.json"
    return tmp, json.loads(record.read_text()) if record.exists() else []


def _crash_and_resume(tmp: Path, reference: tuple[Path, list], k: int, exchange: bool) -> None:
    ref, steps = reference
    env = {"CRASH_AT": str(k)} | ({} if exchange else {"CRASH_NO_EXCHANGE": "1"})
    if not exchange:  # the fallback's saves have steps of their own: record them first
        steps = _fallback_steps(ref)
    name, target, number = steps[k - 1]
    killed = _nerwin(tmp, *TRAIN, "--out", "run", **env)
    assert killed.returncode == -9, (k, steps[k - 1], killed.stderr)
    run = tmp / "run"
    # every reader finds a complete model where a save had completed: the old or the new one
    for folder in ("model", "last"):
        started = [s[2] for s in steps[:k] if s[1] == folder]
        completed = number - 1 if target == folder else max(started, default=0)
        if completed == 0:
            continue
        loaded = load_model(run / folder)[0]
        options = [ref / "saves" / f"{folder}-{completed}.npz"]
        if target == folder:
            options.append(ref / "saves" / f"{folder}-{number}.npz")
        found = _tagger_arrays(loaded)
        assert any(_same(found, _arrays(o)) for o in options if o.exists()), (k, name, folder)
    if (run / "config.yaml").exists():
        resumed = invoke(["train", "--resume", run])
        assert resumed.exit_code == 0, (k, steps[k - 1], resumed.stderr, resumed.exception)
    else:  # killed while the run's config.yaml was written: there is nothing to resume
        resumed = invoke(["train", "--resume", run])
        assert resumed.exit_code == 1 and "no checkpoint" in resumed.stderr
        return
    for folder in ("model", "last"):
        assert _same(run / folder / "weights.npz", ref / "run" / folder / "weights.npz"), (
            k,
            steps[k - 1],
            folder,
        )
    left = sorted(p.name for p in run.iterdir())
    assert left == ["config.yaml", "last", "metrics.jsonl", "model"], (k, steps[k - 1], left)
    for folder in ("model", "last"):
        names = sorted(p.name for p in (run / folder).iterdir())
        assert names == sorted(
            ("config.yaml", "features.json", "meta.json", "vocab.txt", "weights.npz")
        ), (k, names)


_FALLBACK: dict[Path, list] = {}


def _fallback_steps(ref: Path) -> list:
    """The save steps of an uninterrupted run with the fallback swap (recorded once)."""
    if ref not in _FALLBACK:
        tmp = ref / "fallback"
        tmp.mkdir()
        (tmp / "saves").mkdir()
        done = _nerwin(
            tmp, *TRAIN, "--out", "run", CRASH_RECORD=str(tmp / "saves"), CRASH_NO_EXCHANGE="1"
        )
        assert done.returncode == 0, done.stderr
        _FALLBACK[ref] = json.loads((tmp / "saves" / "steps.json").read_text())
    return _FALLBACK[ref]


PRE_SWAP = ("staging", "written", "synced")  # the old folder untouched, the new one staged


def _picks(steps: list, exchange: bool) -> list[int]:
    """One kill per kind of step: each step of a save replacing last/ (with the fallback only
    its own steps: the steps before the swap are the same), and with the exchange also the
    first saves of model/ and last/ (after syncing), the exchange of model/ and the two file
    writes (the run's config.yaml first, the model's meta.json last)."""
    seen, picks = set(), []
    for k, (name, target, number) in enumerate(steps, start=1):
        if target == "last" and number > 1 and not (not exchange and name in PRE_SWAP):
            key = (name, target)
        elif exchange and name == "synced" and number == 1:
            key = (name, target, "first")
        elif exchange and target == "model" and name == "exchanged":
            key = (name, target)
        elif exchange and name == "file-written" and k in (1, len(steps)):
            key = (name, k)
        else:
            continue
        if key not in seen:
            seen.add(key)
            picks.append(k)
    return picks


def test_crash_steps_cover_every_point_of_a_save(reference) -> None:
    _, steps = reference
    names = {name for name, _, _ in steps}
    expected = {"staging", "written", "synced", "file-written"}
    expected |= {"exchanged", "removing"} if atomic._renameat2() else set()
    assert expected <= names, names


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_crash_at_each_kind_of_step_then_resume(tmp_path: Path, reference, exchange) -> None:
    """Kill once at each kind of step (see _picks; the slow test below kills at every step)."""
    if exchange and not atomic._renameat2():
        pytest.skip("no renameat2 here")
    steps = reference[1] if exchange else _fallback_steps(reference[0])
    picks = _picks(steps, exchange)
    assert len(picks) == (10 if exchange else 4), [steps[k - 1] for k in picks]
    for k in picks:
        case = tmp_path / f"k{k}"
        case.mkdir()
        _crash_and_resume(case, reference, k, exchange)


@pytest.mark.slow
@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_crash_at_every_step_then_resume(tmp_path: Path, reference, exchange) -> None:
    """Every step of every save of the run (a few minutes)."""
    if exchange and not atomic._renameat2():
        pytest.skip("no renameat2 here")
    steps = reference[1] if exchange else _fallback_steps(reference[0])
    for k in range(1, len(steps) + 1):
        case = tmp_path / f"k{k}"
        case.mkdir()
        _crash_and_resume(case, reference, k, exchange)


# --- a checkpoint set aside, staging folders, and a run without a checkpoint ---------------------


def test_crash_reader_and_resume_take_the_copy_set_aside(tmp_path: Path, reference) -> None:
    """The window of the fallback swap: last/ renamed to .last.old, the new copy staged."""
    ref, _ = reference
    run = tmp_path / "run"
    shutil.copytree(ref / "run", run)
    os.replace(run / "last", run / ".last.old")
    shutil.copytree(run / "model", run / ".last.nerwin-new-0badcafe")
    shutil.copytree(run / "model", run / ".model.nerwin-new-0badcafe")
    epoch = load_model(run / "last")[2]["train_state"]["epoch"]  # read from .last.old
    assert epoch == 4
    result = invoke(["train", "--resume", run])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert "put back" in result.stderr and "already finished" in result.stderr
    assert sorted(p.name for p in run.iterdir()) == [
        "config.yaml",
        "last",
        "metrics.jsonl",
        "model",
    ]


def test_crash_before_the_first_checkpoint_starts_again(tmp_path: Path, reference) -> None:
    """Killed in epoch 1: only config.yaml (and maybe a metrics line, a staging folder)."""
    ref, _ = reference
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(ref / "run" / "config.yaml", run / "config.yaml")
    (run / "metrics.jsonl").write_text('{"epoch": 1}\n')
    (run / ".model.nerwin-new-12ab34cd").mkdir()
    result = invoke(["train", "--resume", run])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert "stopped before its first checkpoint" in result.stderr
    for folder in ("model", "last"):
        assert _same(run / folder / "weights.npz", ref / "run" / folder / "weights.npz")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert not (run / ".model.nerwin-new-12ab34cd").exists()


# --- tampered checkpoints ------------------------------------------------------------------------

STATE_CASES = {
    "epoch-string": ("epoch", "2"),
    "epoch-zero": ("epoch", 0),
    "step-negative": ("step", -1),
    "step-float": ("step", 1.5),
    "since-best-bool": ("since_best", True),
    "loss-sum-string": ("loss_sum", "x"),
    "loss-sum-huge": ("loss_sum", 1e309),
    "best-f1-list": ("best_f1", [1]),
    "rng-not-a-dict": ("rng_state", [1, 2]),
    "rng-other-generator": ("rng_state", {"bit_generator": "MT19937", "state": {}}),
    "rng-state-too-large": (
        "rng_state",
        {
            "bit_generator": "PCG64",
            "state": {"state": 1 << 200, "inc": 1},
            "has_uint32": 0,
            "uinteger": 0,
        },
    ),
    "unknown-field": ("lr", 0.1),
}


@pytest.mark.parametrize("case", list(STATE_CASES))
def test_crash_tampered_train_state_is_one_error_line(tmp_path: Path, reference, case: str) -> None:
    ref, _ = reference
    run = tmp_path / "run"
    shutil.copytree(ref / "run", run)
    meta_path = run / "last" / "meta.json"
    meta = json.loads(meta_path.read_text())
    key, value = STATE_CASES[case]
    meta["train_state"][key] = value
    meta_path.write_text(json.dumps(meta))
    result = invoke(["train", "--resume", run])
    assert result.exit_code == 1, (result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {meta_path}: train_state.{key}")


def test_crash_tampered_meta_field_is_a_model_error(tmp_path: Path, reference) -> None:
    ref, _ = reference
    run = tmp_path / "run"
    shutil.copytree(ref / "run", run)
    meta_path = run / "model" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["epoch"] = "two"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="epoch must be a whole number"):
        load_model(run / "model")
