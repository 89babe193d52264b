"""rundir: the run folder's checks before --force and --resume, clearing it, config and metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nerwin.config import load_config
from nerwin.errors import NerwinError
from nerwin.files.atomic import LINK, NOT_A_FILE, NOT_A_FOLDER, Refused
from nerwin.training.loop import EpochReport
from nerwin.training.rundir import (
    append_metrics,
    check_out_dir,
    check_outputs,
    clear_outputs,
    create_out_dir,
    model_dirs,
)


def _model(folder: Path) -> Path:
    """A folder holding files a model folder has."""
    folder.mkdir(parents=True)
    for name in ("weights.npz", "meta.json"):
        (folder / name).write_text(name)
    return folder


def _run(root: Path) -> Path:
    """A run folder as an interrupted ensemble leaves it, plus the user's own files."""
    run = root / "run"
    for where in (run, run / "members" / "1", run / "members" / "2"):
        _model(where / "model")
        _model(where / "last")
        (where / "metrics.jsonl").write_text("{}\n")
        (where / "config.yaml").write_text("{}\n")
    _model(run / ".model.old")
    _model(run / ".last.nerwin-new-abc_12")
    (run / "notes.txt").write_text("mine")
    _model(run / ".model.backup")
    (run / "members" / "notes").mkdir()
    return run


def _names(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_rundir_model_dirs_are_model_last_and_their_staging_folders(tmp_path: Path) -> None:
    run = _run(tmp_path)
    assert [p.name for p in model_dirs(run)] == [
        "model",
        ".model.old",
        "last",
        ".last.nerwin-new-abc_12",
    ]
    assert [p.name for p in model_dirs(tmp_path / "none")] == ["model", "last"]


def test_rundir_clear_outputs_deletes_only_what_nerwin_wrote(tmp_path: Path) -> None:
    run = _run(tmp_path)
    clear_outputs(run, keep_members=("2",))
    assert _names(run) == [
        ".model.backup",
        ".model.backup/meta.json",
        ".model.backup/weights.npz",
        "config.yaml",  # create_out_dir writes it anew
        "members",
        "members/2",
        *(f"members/2/{name}" for name in ("config.yaml", "last", "last/meta.json")),
        *(f"members/2/{name}" for name in ("last/weights.npz", "metrics.jsonl", "model")),
        *(f"members/2/{name}" for name in ("model/meta.json", "model/weights.npz")),
        "members/notes",
        "notes.txt",
    ]


def test_rundir_check_out_dir(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(NerwinError, match="exists and is not a directory"):
        check_out_dir(tmp_path / "file", force=True)
    with pytest.raises(NerwinError, match="is not a writable directory"):
        check_out_dir(tmp_path / "file" / "run", force=False)
    run = _run(tmp_path)
    with pytest.raises(NerwinError, match="already holds files; pass --force"):
        check_out_dir(run, force=False)
    check_out_dir(run, force=True)
    check_out_dir(tmp_path / "new" / "run", force=False)


def test_rundir_check_outputs_refuses_others_files_and_links(tmp_path: Path) -> None:
    run = _run(tmp_path)
    (run / "members" / "2" / "last" / "mine.txt").write_text("mine")
    with pytest.raises(Refused) as info:
        check_outputs(run, new_run=True)
    where = run / "members" / "2" / "last" / "mine.txt"
    assert str(info.value) == (
        f"{where}: {NOT_A_FILE}; move it out of {where.parent} or pick another --out"
    )
    check_outputs(run, new_run=False, members=False)  # RUN's own outputs are nerwin's
    (run / "members" / "2" / "last" / "mine.txt").unlink()
    (run / "members" / "3").write_text("a file where a member folder goes")
    with pytest.raises(Refused, match=NOT_A_FOLDER):
        check_outputs(run, new_run=False)
    (run / "members" / "3").unlink()
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").symlink_to(run / "notes.txt")
    with pytest.raises(Refused) as info:
        check_outputs(run, new_run=False)
    assert str(info.value) == f"{run / 'metrics.jsonl'}: {LINK}; move it out of {run}"


def test_rundir_create_out_dir_writes_the_config(tmp_path: Path) -> None:
    config = load_config(None, ["train.epochs=2"])
    create_out_dir(tmp_path / "run", force=False, config=config)
    assert _names(tmp_path / "run") == ["config.yaml"]
    assert load_config(tmp_path / "run" / "config.yaml") == config
    run = _run(tmp_path / "forced")
    create_out_dir(run, force=True, config=config)
    assert load_config(run / "config.yaml") == config and not (run / "model").exists()


def _report(epoch: int) -> EpochReport:
    return EpochReport(epoch, 0.5, 0.3, 1.0, 10.0, None, epoch == 1, False)


def test_rundir_append_metrics_adds_one_line_per_report(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    append_metrics(path, _report(1))
    append_metrics(path, _report(2))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["epoch"], r["best"]) for r in lines] == [(1, True), (2, False)]
    path.unlink()
    path.mkdir()
    with pytest.raises(NerwinError, match="not a file nerwin writes"):
        append_metrics(path, _report(3))
    missing = tmp_path / "none" / "metrics.jsonl"
    with pytest.raises(NerwinError) as info:
        append_metrics(missing, _report(1))
    assert str(info.value) == f"{missing}: cannot write the metrics (No such file or directory)"


def test_rundir_lock_refuses_a_second_run_and_frees_on_release(tmp_path: Path) -> None:
    from nerwin.training.rundir import FolderLock

    first = FolderLock(tmp_path)
    with pytest.raises(NerwinError, match="another nerwin train is running"):
        FolderLock(tmp_path)
    with pytest.raises(NerwinError, match="another nerwin train is running"):
        check_out_dir(tmp_path, force=True)
    first.release()
    FolderLock(tmp_path).release()  # free again


def test_rundir_lock_of_a_killed_process_does_not_block(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import os, sys, pathlib; from nerwin.training.rundir import FolderLock; "
        "FolderLock(pathlib.Path(sys.argv[1])); os.kill(os.getpid(), 9)"
    )
    held = subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False)
    assert held.returncode == -9  # it took the lock and died holding it
    from nerwin.training.rundir import FolderLock

    FolderLock(tmp_path).release()


def test_rundir_refuses_a_run_folder_in_a_model_folder(tmp_path: Path) -> None:
    model = _model(tmp_path / "run" / "model")
    for out in (model, model / "inner"):
        with pytest.raises(NerwinError, match="inside the model folder"):
            check_out_dir(out, force=True)
