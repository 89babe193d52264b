"""The run folder: what training writes there, and the checks that keep it off everything else.

A run folder holds `metrics.jsonl`, `config.yaml`, `model/` (the best epoch), `last/` (the
checkpoint) and the staging folders of their saves; an ensemble's adds `members/K/` with the
same files for each member. `--force` clears exactly these, once every input was read; before
reading anything, `--force` and `--resume` refuse when one of them is a link or holds a file
nerwin did not write. Other files in the run folder stay.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from nerwin.config import Config, save_config
from nerwin.errors import NerwinError
from nerwin.files import atomic
from nerwin.model.folder import WRITTEN
from nerwin.training.loop import EpochReport

CHECKPOINT = "last"  # the last epoch's model doubles as the resumable checkpoint
MEMBERS_DIR = "members"  # an ensemble's member runs: RUN/members/1, RUN/members/2, ...
METRICS = "metrics.jsonl"
CONFIG = "config.yaml"
RUN_FILES = (METRICS, CONFIG)  # the files training writes into a run folder


def check_out_dir(out_dir: Path, force: bool) -> None:
    """Refuse, before any work, an output path that is a file, lies under a file, or holds a run."""
    if out_dir.exists() and not out_dir.is_dir():
        raise NerwinError(f"{out_dir}: exists and is not a directory; choose another --out")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise NerwinError(
            f"{out_dir}: already holds files; pass --force to overwrite, "
            "--resume to continue it, or another --out"
        )
    ancestor = out_dir.absolute()
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise NerwinError(
            f"{out_dir}: cannot write the output directory ({ancestor} is not a writable directory)"
        )
    if force and out_dir.is_dir():
        check_outputs(out_dir, new_run=True)


def check_outputs(run_dir: Path, new_run: bool, members: bool = True) -> None:
    """Refuse (atomic.Refused), before anything is deleted or written, output paths that are
    links or hold others' files; `members`: also look into RUN/members/K."""
    problem = _output_problem(run_dir, members)
    if problem:
        raise atomic.Refused(problem, " or pick another --out" if new_run else "")


def _output_problem(run_dir: Path, members: bool) -> atomic.Problem | None:
    """The first path nerwin would write through a link or delete another's file at, with why."""
    for name in RUN_FILES:
        problem = atomic.file_problem(run_dir / name)
        if problem:
            return problem
    for folder in model_dirs(run_dir):
        problem = atomic.folder_problem(folder, WRITTEN)
        if problem:
            return problem
    folder = run_dir / MEMBERS_DIR
    if not members or not (folder.is_symlink() or folder.is_dir()):
        return None  # a plain file named "members" is not nerwin's: it stays untouched
    if folder.is_symlink():
        return folder, atomic.LINK
    return next(filter(None, map(_member_problem, sorted(folder.iterdir()))), None)


def _member_problem(member: Path) -> atomic.Problem | None:
    """What _output_problem finds in one RUN/members entry (only numbered ones are nerwin's)."""
    if not member.name.isdigit():
        return None
    return atomic.entry_problem(member) or _output_problem(member, members=False)


def model_dirs(run_dir: Path) -> list[Path]:
    """RUN/model, RUN/last and the staging folders of their saves."""
    names = sorted(p.name for p in run_dir.iterdir()) if run_dir.is_dir() else []
    return [
        run_dir / name
        for model in ("model", CHECKPOINT)
        for name in (model, *(n for n in names if atomic.is_staging(n, model)))
    ]


def create_out_dir(
    out_dir: Path, force: bool, config: Config, keep_members: tuple[str, ...] = ()
) -> None:
    """Create the run folder (checked by check_out_dir), clear old outputs if forced, and save
    the config."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if force:
            clear_outputs(out_dir, keep_members)
        atomic.write_file(out_dir / CONFIG, lambda temp: save_config(config, temp))
    except OSError as err:
        raise NerwinError(
            f"{err.filename or out_dir}: cannot write the output directory {out_dir} "
            f"({err.strerror})"
        ) from None


def clear_outputs(out_dir: Path, keep_members: tuple[str, ...] = ()) -> None:
    """Delete what nerwin wrote in out_dir (metrics, model, checkpoint, members); others stay."""
    atomic.remove_file(out_dir / METRICS)
    for folder in model_dirs(out_dir):  # with the staging folders of an interrupted save
        atomic.remove_written(folder, WRITTEN)
    members = out_dir / MEMBERS_DIR
    if not atomic.is_real_dir(members):
        return
    for member in sorted(members.iterdir()):
        if member.name.isdigit() and member.name not in keep_members and atomic.is_real_dir(member):
            clear_outputs(member)
            atomic.remove_file(member / CONFIG)
            atomic.remove_if_empty(member)
    atomic.remove_if_empty(members)


def append_metrics(path: Path, report: EpochReport) -> None:
    """Append one epoch's line to a metrics.jsonl (synced), or NerwinError naming the file."""
    try:
        atomic.append_text(path, json.dumps(report.to_dict()) + "\n")
    except OSError as err:
        raise NerwinError(f"{path}: cannot write the metrics ({err.strerror or err})") from None
