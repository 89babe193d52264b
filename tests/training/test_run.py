"""Interrupting, resuming and continuing runs: SIGINT/SIGTERM checkpoints, --resume, --init-from,
and reproducibility across processes. Signals need a real process, so those tests run
`python -m nerwin` in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _trained import DEV, TRAIN, assert_user_error, invoke

from nerwin import __version__, api
from nerwin.config import load_config
from nerwin.errors import DataError, NerwinError
from nerwin.model.folder import FILES, load_model

# Small steps so an epoch lasts a second or two and a signal lands in the middle of one.
SLOW = (
    "--set",
    "train.batch_size=2",
    "--set",
    "train.lr=0.03",
    "--set",
    "train.epochs=3",
    "--set",
    "train.dropout=0.2",  # dropout masks must replay exactly on resume too
    "--set",
    "train.patience=10",
)
FAST = ("--set", "train.epochs=1")
TEXT = "The museums in Paris are amazing. She flew from Nairobi to Berlin on Monday."


def nerwin_cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "nerwin", *map(str, args)]


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "NERWIN_CACHE": str(tmp_path / "cache"), **extra}


def nerwin(tmp_path: Path, *args: object, **extra_env: str) -> subprocess.CompletedProcess:
    """Run `python -m nerwin ARGS` in tmp_path (relative data paths must resolve from anywhere)."""
    return subprocess.run(
        nerwin_cmd(*args),
        cwd=tmp_path,
        env=env(tmp_path, **extra_env),
        capture_output=True,
        text=True,
        timeout=240,
    )


def weights(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


def assert_bit_identical(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert sorted(wa) == sorted(wb)
    for key in wa:
        assert wa[key].dtype == wb[key].dtype and wa[key].shape == wb[key].shape, key
        assert np.array_equal(wa[key], wb[key]), f"{key} differs between {a} and {b}"


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run every resumed run must reproduce bit for bit."""
    tmp = tmp_path_factory.mktemp("straight")
    proc = nerwin(tmp, "train", *SLOW, "--out", tmp / "run")
    assert proc.returncode == 0, proc.stderr
    return tmp / "run"


def interrupt_after_first_epoch(
    tmp_path: Path, out: Path, signum: int
) -> subprocess.CompletedProcess:
    """Start a run, wait until epoch 1 is logged and epoch 2 under way, then signal it."""
    stdout, stderr = (tmp_path / "stdout.txt").open("w+"), (tmp_path / "stderr.txt").open("w+")
    proc = subprocess.Popen(
        nerwin_cmd("train", *SLOW, "--out", out),
        cwd=tmp_path,
        env=env(tmp_path),
        stdout=stdout,
        stderr=stderr,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        log = out / "metrics.jsonl"
        while not (log.is_file() and log.read_text().count("\n") >= 1):
            assert proc.poll() is None, "training ended before its first epoch was logged"
            assert time.monotonic() < deadline, "no epoch logged in 120 s"
            time.sleep(0.02)
        time.sleep(0.2)  # into epoch 2 (an epoch takes about a second at batch size 2)
        assert proc.poll() is None, "training finished before it could be interrupted"
        proc.send_signal(signum)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stdout.seek(0)
    stderr.seek(0)
    return subprocess.CompletedProcess(proc.args, code, stdout.read(), stderr.read())


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_resume_interrupted_run_is_bit_identical(
    tmp_path: Path, straight: Path, signum: int, code: int
) -> None:
    out = tmp_path / "run"
    stopped = interrupt_after_first_epoch(tmp_path, out, signum)
    assert stopped.returncode == code, (stopped.returncode, stopped.stderr)
    assert "Traceback" not in stopped.stderr, stopped.stderr
    last = stopped.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and signal.Signals(signum).name in last, stopped.stderr
    assert f"nerwin train --resume {out}" in last, last

    # a complete, resumable checkpoint in the middle of epoch 2; no staging folders left behind
    _, _, meta = load_model(out / "last")
    state = meta["train_state"]
    assert state["epoch"] == 2 and state["step"] > 0, state
    names = {p.name for p in out.iterdir()}
    assert {"config.yaml", "last", "metrics.jsonl", "model"} <= names, names
    assert not [n for n in names if n.startswith(".")], names  # no staging folders left
    assert [m["epoch"] for m in metrics(out)] == [1]

    resumed = nerwin(tmp_path, "train", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {out} at epoch 2" in resumed.stderr
    assert [m["epoch"] for m in metrics(out)] == [1, 2, 3]  # each epoch logged once
    for mine, theirs in zip(metrics(out), metrics(straight)):
        assert (mine["loss"], mine["dev"], mine["best"]) == (
            theirs["loss"],
            theirs["dev"],
            theirs["best"],
        )
    for name in ("last", "model"):
        assert_bit_identical(out / name / "weights.npz", straight / name / "weights.npz")
        assert (out / name / "vocab.txt").read_bytes() == (
            straight / name / "vocab.txt"
        ).read_bytes()


def test_resume_epoch_end_checkpoint_is_loadable(straight: Path) -> None:
    tagger, config, meta = load_model(straight / "last")
    assert meta["train_state"]["epoch"] == 4 and meta["train_state"]["step"] == 0
    assert meta["epoch"] == 3
    assert config.train.epochs == 3 and config.train.batch_size == 2
    assert tagger.probabilities([["Paris", "is", "nice"]]).shape == (3,)


def test_resume_finished_run_changes_nothing(tmp_path: Path, straight: Path) -> None:
    import shutil

    out = tmp_path / "run"
    shutil.copytree(straight, out)
    result = invoke(["train", "--resume", out])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert [m["epoch"] for m in metrics(out)] == [1, 2, 3]
    assert_bit_identical(out / "model" / "weights.npz", straight / "model" / "weights.npz")


@pytest.mark.parametrize("setup", ["empty", "no-checkpoint", "missing"])
def test_resume_without_checkpoint_is_one_error_line(tmp_path: Path, setup: str) -> None:
    out = tmp_path / "run"
    if setup != "missing":
        out.mkdir()
    if setup == "no-checkpoint":  # a run that never finished an epoch
        (out / "config.yaml").write_text("train:\n  epochs: 2\n")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = invoke(["train", "--resume", out])
    assert result.exit_code == 1, (result.exit_code, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert str(out) in lines[0] and "checkpoint" in lines[0]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    "extra",
    [
        ["--set", "train.lr=0.1"],
        ["--seed", "3"],
        ["--force"],
        ["--config", "configs/default.yaml"],
        ["--out", "elsewhere"],
    ],
    ids=["set", "seed", "force", "config", "out"],
)
def test_resume_with_other_options_is_usage_error(
    tmp_path: Path, straight: Path, extra: list[str]
) -> None:
    result = invoke(["train", "--resume", straight, *extra])
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert "--resume" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_resume_init_from_keeps_old_ids_and_adds_new_words(tmp_path: Path) -> None:
    base = tmp_path / "base"
    assert invoke(["train", *FAST, "--set", "model.hidden=[40]", "--out", base]).exit_code == 0
    corpus = tmp_path / "new.txt"
    corpus.write_text(
        "Zanzibar B-LOC\nis O\nwonderful O\n\nWe O\nvisited O\nQuxville B-LOC\n"
        "and O\nParis B-LOC\n.\tO\n",
        encoding="utf-8",
    )
    out = tmp_path / "continued"
    result = invoke(
        [
            "train",
            *FAST,
            "--set",
            f"data.train={corpus}",
            "--set",
            "data.dev=null",
            "--init-from",
            base / "model",
            "--out",
            out,
        ]
    )
    assert result.exit_code == 0, (result.stderr, result.exception)
    old = (base / "model" / "vocab.txt").read_text(encoding="utf-8").splitlines()
    new = (out / "model" / "vocab.txt").read_text(encoding="utf-8").splitlines()
    old_words = [line.rsplit("\t", 1)[0] for line in old]
    new_words = [line.rsplit("\t", 1)[0] for line in new]
    assert new_words[: len(old_words)] == old_words  # same ids for every old word
    assert {"zanzibar", "quxville"} <= set(new_words[len(old_words) :])
    assert "paris" in old_words and "paris" not in new_words[len(old_words) :]
    assert len(new_words) == len(set(new_words))
    tagger, config, _ = load_model(out / "model")
    assert config.model.hidden == (40,)  # the model's settings come from the old model
    assert tagger.model.params["E"].data.shape[0] == len(new_words)


def test_resume_same_seed_in_two_processes_is_identical(tmp_path: Path) -> None:
    outputs = []
    for name, hash_seed in (("a", "1"), ("b", "2")):  # different string hashing per process
        out = tmp_path / name
        proc = nerwin(
            tmp_path,
            "train",
            "--set",
            "train.epochs=2",
            "--seed",
            "7",
            "--out",
            out,
            PYTHONHASHSEED=hash_seed,
        )
        assert proc.returncode == 0, proc.stderr
        pred = nerwin(
            tmp_path,
            "predict",
            "--model",
            out / "model",
            "--format",
            "json",
            "--probs",
            TEXT,
            PYTHONHASHSEED=hash_seed,
        )
        assert pred.returncode == 0, pred.stderr
        assert json.loads(pred.stdout.splitlines()[0])["tokens"]
        outputs.append((out, pred.stdout))
    (a, pred_a), (b, pred_b) = outputs
    for name in ("model", "last"):
        assert_bit_identical(a / name / "weights.npz", b / name / "weights.npz")
        assert (a / name / "vocab.txt").read_bytes() == (b / name / "vocab.txt").read_bytes()
    assert pred_a == pred_b


def test_resume_meta_records_seed_and_versions(tmp_path: Path) -> None:
    from importlib.metadata import version

    out = tmp_path / "run"
    assert invoke(["train", *FAST, "--seed", "11", "--out", out]).exit_code == 0
    for name in ("model", "last"):
        assert set(FILES) <= {p.name for p in (out / name).iterdir()}
        meta = json.loads((out / name / "meta.json").read_text(encoding="utf-8"))
        assert meta["seed"] == 11, name
        versions = meta["versions"]
        assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
        assert versions["nerwin"] == __version__
        assert versions["numpy"] == np.__version__
        for package in ("pyyaml", "typer"):
            assert versions[package] == version(package), package


def test_resume_early_stopped_run_trains_no_further(tmp_path: Path, straight: Path) -> None:
    import shutil

    out = tmp_path / "run"
    shutil.copytree(straight, out)
    meta_path = out / "last" / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["train_state"].update(epoch=2, since_best=99)  # as if patience had run out after epoch 1
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    before = [m["epoch"] for m in metrics(out)]
    result = invoke(["train", "--resume", out])
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert "already finished" in result.stderr
    assert [m["epoch"] for m in metrics(out)] == before
    assert_bit_identical(out / "model" / "weights.npz", straight / "model" / "weights.npz")


def _snapshot(directory: Path) -> dict[str, bytes]:
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    return {str(p.relative_to(directory)): p.read_bytes() for p in files}


def test_resume_checkpoint_without_train_state_is_one_error_line(
    tmp_path: Path, straight: Path
) -> None:
    import shutil

    out = tmp_path / "run"
    shutil.copytree(straight, out)
    meta_path = out / "last" / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    del meta["train_state"]
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    before = _snapshot(out)
    assert_user_error(invoke(["train", "--resume", out]), str(out / "last"), "train_state")
    assert _snapshot(out) == before


def test_resume_force_clears_the_earlier_checkpoint_and_model(
    tmp_path: Path, straight: Path
) -> None:
    import shutil

    from nerwin import api
    from nerwin.config import load_config

    out, outside = tmp_path / "run", tmp_path / "outside"
    shutil.copytree(straight, out)
    shutil.copytree(straight / "model", outside)
    (out / "notes.txt").write_text("mine")
    (out / "linked").symlink_to(outside)  # not a path nerwin writes: left alone
    shutil.copytree(straight / "model", out / ".model.backup-v1")  # the user's hidden copies stay
    shutil.copytree(straight / "last", out / ".last.keep")
    shutil.copytree(
        straight / "model", out / ".model.old"
    )  # an interrupted save's staging folders go
    shutil.copytree(straight / "last", out / ".last.nerwin-new-abcd1234")
    before, kept = _snapshot(outside), _snapshot(out / ".model.backup-v1")
    api.open_run(load_config(None, ["train.epochs=1", "train.seed=3"]), out, force=True)
    # as if the new run died before its first epoch: nothing of the old run may be resumed or used
    assert sorted(p.name for p in out.iterdir()) == [
        ".last.keep",
        ".model.backup-v1",
        "config.yaml",
        "linked",
        "notes.txt",
    ]
    assert (out / "notes.txt").read_text() == "mine" and _snapshot(outside) == before
    assert _snapshot(out / ".model.backup-v1") == kept and len(_snapshot(out / ".last.keep")) == 5
    again = api.resume_run(out)  # nothing of the old run: it starts over with the new config
    assert any("stopped before its first checkpoint" in note for note in again.notes)
    assert again.config.train.seed == 3


@pytest.mark.parametrize(
    "mine",
    [
        "model/notes.txt",
        "last/README",
        "last/sub/x.txt",
        ".model.old/notes.txt",
        ".last.nerwin-new-abcd1234/x",
    ],
)
def test_resume_force_refuses_to_delete_a_file_nerwin_did_not_write(
    tmp_path: Path, straight: Path, mine: str
) -> None:
    import shutil

    out = tmp_path / "run"
    shutil.copytree(straight, out)
    (out / mine).parent.mkdir(parents=True, exist_ok=True)
    (out / mine).write_text("mine")
    before = _snapshot(out)
    result = invoke(["train", *FAST, "--out", out, "--force"])
    first = out / "/".join(
        mine.split("/")[:2]
    )  # the folder's own entry: last/sub, not last/sub/x.txt
    assert_user_error(
        result, f"{first}: not a file nerwin writes; move it out of {first.parent}", "--out"
    )
    assert _snapshot(out) == before


def _link_outside(out: Path, name: str, outside: Path) -> None:
    """Put a link to a file or folder outside the run in place of RUN/name."""
    import shutil

    target = out / name
    if target.is_dir():
        shutil.copytree(target, outside / name)
        shutil.rmtree(target)
    else:
        shutil.copy(target, outside / name)
        target.unlink()
    target.symlink_to(outside / name)


@pytest.mark.parametrize("name", ["metrics.jsonl", "config.yaml", "model", "last", ".model.old"])
@pytest.mark.parametrize("how", ["force", "resume"])
def test_resume_and_force_never_write_through_a_link(
    tmp_path: Path, straight: Path, name: str, how: str
) -> None:
    import shutil

    out, outside = tmp_path / "run", tmp_path / "outside"
    shutil.copytree(straight, out)
    outside.mkdir()
    if name == ".model.old":
        shutil.copytree(straight / "model", out / name)
    _link_outside(out, name, outside)
    meta_path = out / "last" / "meta.json"  # the resumed run has one more epoch to train
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["train_state"]["epoch"] = 3
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    before, links = _snapshot(outside), sorted(p.name for p in out.iterdir())
    args = ["--resume", out] if how == "resume" else [*FAST, "--out", out, "--force"]
    assert_user_error(invoke(["train", *args]), f"{out / name}: a symbolic link")
    assert _snapshot(outside) == before and sorted(p.name for p in out.iterdir()) == links


def test_resume_refuses_a_folder_in_place_of_the_metrics(tmp_path: Path, straight: Path) -> None:
    import shutil

    out = tmp_path / "run"
    shutil.copytree(straight, out)
    (out / "metrics.jsonl").unlink()
    (out / "metrics.jsonl").mkdir()
    meta_path = out / "last" / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["train_state"]["epoch"] = 3
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    before = _snapshot(out)
    assert_user_error(
        invoke(["train", "--resume", out]), f"{out / 'metrics.jsonl'}: not a file nerwin writes"
    )
    assert _snapshot(out) == before and (out / "metrics.jsonl").is_dir()


def test_resume_unwritable_metrics_is_one_error_line(tmp_path: Path, monkeypatch) -> None:
    import builtins
    import errno

    out = tmp_path / "run"
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):
        if Path(str(file)).name == "metrics.jsonl":
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    result = invoke(["train", *FAST, "--out", out])
    monkeypatch.undo()
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"error: {out / 'metrics.jsonl'}: cannot write the metrics (Permission denied)"
    )


def test_resume_force_names_the_file_it_could_not_delete(
    tmp_path: Path, straight: Path, monkeypatch
) -> None:
    import errno
    import shutil

    out = tmp_path / "run"
    shutil.copytree(straight, out)
    real_unlink = Path.unlink

    def refusing_unlink(path: Path, *args, **kwargs):
        if path.name == "weights.npz":
            raise PermissionError(errno.EPERM, "Operation not permitted", str(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", refusing_unlink)
    assert_user_error(
        invoke(["train", *FAST, "--out", out, "--force"]),
        f"{out / 'model' / 'weights.npz'}: cannot write the output directory",
        "Operation not permitted",
    )


def test_resume_init_from_warns_that_aux_weight_is_ignored(run, tmp_path: Path) -> None:
    from nerwin import api
    from nerwin.config import load_config

    config = load_config(None, ["train.epochs=1", "train.aux_weight=0.3"])
    plain = api.open_run(config, tmp_path / "a", init_from=run.model)
    warnings = [n for n in plain.notes if n.startswith("warning: train.aux_weight is ignored")]
    assert len(warnings) == 1 and str(run.model) in warnings[0]
    assert plain.tagger.model.shape.aux_types == ()
    heads = tmp_path / "heads"
    api.train(config, heads)
    continued = api.open_run(config, tmp_path / "b", init_from=heads / "model")
    assert continued.tagger.model.shape.aux_types and not any(
        "aux_weight" in n for n in continued.notes
    )
    quiet = api.open_run(load_config(None, ["train.epochs=1"]), tmp_path / "c", init_from=run.model)
    assert not any("aux_weight" in n for n in quiet.notes)


def test_run_trains_on_several_files_joined(tmp_path: Path) -> None:
    from nerwin.training.run import read_corpus

    config = load_config(None, [f"data.train=[{TRAIN}, {TRAIN}]"])
    joined = read_corpus(config.data.train, config)
    single = read_corpus(str(TRAIN), config)
    assert joined.sentences == single.sentences * 2
    result = api.train(
        load_config(None, [f"data.train=[{TRAIN}, {DEV}]", "train.epochs=1"]), tmp_path / "r"
    )
    assert result.best_epoch == 1


def test_run_missing_variable_path_says_where_it_is_set(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("NERWIN_CONLL2003", raising=False)
    config = load_config(
        None, [f"paths.conll2003={tmp_path}/nowhere", "data.train=${conll2003}/train.txt"]
    )
    with pytest.raises(DataError) as info:
        api.train(config, tmp_path / "run")
    message = str(info.value)
    for needle in (
        "nowhere/train.txt: file not found",
        "paths.conll2003",
        "NERWIN_CONLL2003",
        "Getting CoNLL-2003 and GloVe",
    ):
        assert needle in message, message


def test_run_refuses_a_dev_set_without_locations(tmp_path: Path) -> None:
    dev = tmp_path / "dev.txt"
    dev.write_text("Bill B-PER\nwent O\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="no entity of type LOC"):
        api.train(load_config(None, [f"data.dev={dev}"]), tmp_path / "run")


def test_run_meta_records_the_dev_scores_the_result_reports(tmp_path: Path) -> None:
    import json

    config = load_config(None, ["train.epochs=3", "train.tune_threshold=true"])
    result = api.train(config, tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "model" / "meta.json").read_text())
    assert meta["threshold"] == result.threshold == meta["dev"]["threshold"]
    assert meta["dev"]["f1"] == result.dev.entity.f1
    assert meta["dev"]["epoch"] == result.best_epoch
    assert meta["dev"]["at_configured_threshold"]["threshold"] == 0.5
    at_half = [r.dev.entity.f1 for r in result.reports if r.epoch == result.best_epoch]
    assert meta["dev"]["at_configured_threshold"]["f1"] == at_half[0]  # what the epoch line said
    assert api.evaluate(tmp_path / "run" / "model", DEV).entity.f1 == result.dev.entity.f1


def test_run_two_trainings_on_one_folder_second_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    slow = ["--set", "train.epochs=30", "--set", "train.patience=30"]
    first = subprocess.Popen(
        nerwin_cmd("train", "--out", out, *slow),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (out / "metrics.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = nerwin(tmp_path, "train", "--out", out, "--force")
        assert second.returncode == 1, second.stderr
        assert second.stderr.count("\n") == 1 and "another nerwin train is running" in second.stderr
    finally:
        first.kill()
        first.communicate()
    again = nerwin(tmp_path, "train", "--out", out, "--force", "--set", "train.epochs=1")
    assert again.returncode == 0, again.stderr  # the killed run's lock died with it


def test_run_divergence_says_what_was_kept(tmp_path: Path) -> None:
    from nerwin.errors import TrainingDiverged

    with pytest.raises(TrainingDiverged) as info:
        api.train(load_config(None, ["train.lr=1e9", "model.caps_dim=0"]), tmp_path / "a")
    message = str(info.value)
    assert "best model so far is kept" not in message
    model = tmp_path / "a" / "model"
    assert ("no model was saved" in message) != (f"is in {model}" in message)
    assert ("no model was saved" in message) == (not (model / "meta.json").exists())


def test_run_ensemble_divergence_names_the_member(tmp_path: Path) -> None:
    from nerwin.errors import TrainingDiverged

    config = load_config(None, ["train.lr=1e9", "model.caps_dim=0", "train.ensemble=2"])
    with pytest.raises(TrainingDiverged) as info:
        api.train(config, tmp_path / "e")
    assert str(info.value).startswith("member 1 of 2: training diverged")
    assert "no ensemble model was written" in str(info.value)


def test_run_resume_drops_log_lines_of_epochs_it_runs_again(tmp_path: Path, straight: Path) -> None:
    out = tmp_path / "run"
    assert interrupt_after_first_epoch(tmp_path, out, signal.SIGTERM).returncode == 143
    log = out / "metrics.jsonl"
    lines = log.read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1]
    # as if killed after epoch 2's log line was written but before its checkpoint was
    log.write_text("\n".join([*lines, json.dumps({**json.loads(lines[0]), "epoch": 2})]) + "\n")
    done = nerwin(tmp_path, "train", "--resume", out)
    assert done.returncode == 0, done.stderr
    epochs = [json.loads(line)["epoch"] for line in log.read_text().splitlines()]
    straight_epochs = [
        json.loads(line)["epoch"] for line in (straight / "metrics.jsonl").read_text().splitlines()
    ]
    assert epochs == straight_epochs


def test_run_train_keeps_going_when_its_reader_leaves(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = " ".join(
        map(
            str,
            nerwin_cmd(
                "train", "--out", out, "--set", "train.epochs=4", "--set", "train.patience=4"
            ),
        )
    )
    done = subprocess.run(
        f"{cmd} | head -1", shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.stdout.count("\n") == 1 and done.stdout.startswith("epoch  1")
    assert "Traceback" not in done.stderr and "Broken pipe" not in done.stderr, done.stderr
    epochs = [
        json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()
    ]
    assert epochs == [1, 2, 3, 4]  # it trained to the end after `head` left
    assert (out / "model" / "meta.json").is_file()


def test_resume_refuses_an_edited_run_config(tmp_path: Path, straight: Path) -> None:
    import shutil

    out = tmp_path / "run"
    shutil.copytree(straight, out)
    config = out / "config.yaml"
    assert "  lr: 0.03\n" in config.read_text()
    config.write_text(config.read_text().replace("  lr: 0.03\n", "  lr: 0.1\n"))
    before = _snapshot(out)
    result = invoke(["train", "--resume", out])
    line = assert_user_error(result, "train.lr is 0.1", "trained with 0.03", "own config")
    assert str(config) in line
    assert _snapshot(out) == before


def test_resume_that_fails_leaves_the_folder_free(tmp_path: Path, straight: Path) -> None:
    import shutil

    out = tmp_path / "run"
    shutil.copytree(straight, out)
    (out / "last" / "weights.npz").write_bytes(b"not an npz")
    failed = []
    with pytest.raises(NerwinError) as first:
        api.resume_run(out)
    failed.append(first)  # the traceback (and its frames) stays alive, as in a REPL
    with pytest.raises(NerwinError) as again:
        api.resume_run(out)
    assert "another nerwin train" not in str(again.value)


def test_run_missing_path_set_by_the_environment_says_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NERWIN_CORPUS", str(tmp_path / "elsewhere"))
    config = load_config(None, [f"paths.corpus={tmp_path}", "data.train=${corpus}/train.txt"])
    with pytest.raises(DataError) as info:
        api.train(config, tmp_path / "run")
    assert "$NERWIN_CORPUS" in str(info.value) and "overrides paths.corpus" in str(info.value)
    assert "--set paths.corpus" not in str(info.value)  # that would not help: the variable wins
