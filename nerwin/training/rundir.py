"""The run folder: what training writes there, and the checks that keep it off everything else.

A run folder holds `metrics.jsonl`, `config.yaml`, `model/` (the best epoch), `last/` (the
checkpoint) and the staging folders of their saves; an ensemble's adds `members/K/` with the
same files for each member. `--force` clears exactly these, once every input was read; before
reading anything, `--force` and `--resume` refuse when one of them is a link or holds a file
nerwin did not write. Other files in the run folder stay.
"""

from __future__ import annotations

import fcntl
import json
import os
import weakref
from collections.abc import Callable
from pathlib import Path

from nerwin.config import Config, config_to_dict, load_config, save_config
from nerwin.errors import NerwinError
from nerwin.files import atomic
from nerwin.model.folder import WRITTEN
from nerwin.training.loop import EpochReport

CHECKPOINT = "last"  # the last epoch's model doubles as the resumable checkpoint
MEMBERS_DIR = "members"  # an ensemble's member runs: RUN/members/1, RUN/members/2, ...
METRICS = "metrics.jsonl"
CONFIG = "config.yaml"
RUN_FILES = (METRICS, CONFIG)  # the files training writes into a run folder


class FolderLock:
    """An advisory lock (flock) on a run folder itself, held while a run trains in it.

    A second run on the same folder is refused at once; the kernel drops the lock when the
    process ends, however it ends, so the folder of a dead run never stays locked.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise NerwinError(
                f"{folder}: another nerwin train is running in this run folder; wait for it to "
                "end or pick another --out"
            ) from None
        self.release = weakref.finalize(self, os.close, fd)  # also when the run is collected


def release(lock: FolderLock | None) -> None:
    """Let another run use the folder, if a lock is held (it also goes with the process)."""
    if lock is not None:
        lock.release()


def check_out_dir(out_dir: Path, force: bool) -> FolderLock | None:
    """Refuse, before any work, an output path that is a file, lies under a file or inside a
    model folder, holds a run, or is in use by another run (whose lock it then holds)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise NerwinError(f"{out_dir}: exists and is not a directory; choose another --out")
    _refuse_model_folder(out_dir)
    lock = FolderLock(out_dir) if out_dir.is_dir() else None
    try:
        _check_existing(out_dir, force)
    except BaseException:
        release(lock)
        raise
    return lock


def _check_existing(out_dir: Path, force: bool) -> None:
    """The checks of check_out_dir past the lock: a run already there, an unwritable parent."""
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


def _refuse_model_folder(out_dir: Path) -> None:
    """A run folder in (or inside) a model folder would overwrite that model's config.yaml."""
    for folder in (out_dir.absolute(), *out_dir.absolute().parents):
        if (folder / "meta.json").is_file() and (folder / "weights.npz").is_file():
            raise NerwinError(
                f"{out_dir}: is inside the model folder {folder}; a run there would overwrite "
                "that model's files; pick another --out"
            )


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
    out_dir: Path,
    force: bool,
    config: Config,
    keep_members: tuple[str, ...] = (),
    lock: FolderLock | None = None,
) -> FolderLock:
    """Create the run folder (checked by check_out_dir) and lock it if not yet locked, clear old
    outputs if forced, and save the config; returns the lock the run holds."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if lock is None:
            lock = FolderLock(out_dir)
            ours = MEMBERS_DIR if keep_members else None  # an ensemble's member 1 is made first
            if not force and any(p.name != ours for p in out_dir.iterdir()):  # taken since check
                lock.release()
                raise NerwinError(
                    f"{out_dir}: another run started writing here; pick another --out"
                )
        if force:
            clear_outputs(out_dir, keep_members)
        atomic.write_file(out_dir / CONFIG, lambda temp: save_config(config, temp))
    except OSError as err:
        raise NerwinError(
            f"{err.filename or out_dir}: cannot write the output directory {out_dir} "
            f"({err.strerror})"
        ) from None
    return lock


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


def drop_metrics(path: Path, drop: Callable[[dict], bool]) -> None:
    """Rewrite a metrics.jsonl atomically without the records `drop` picks (lines that are not
    JSON objects stay as they are)."""
    try:
        lines = path.read_bytes().splitlines(keepends=True) if path.is_file() else []
        kept = [line for line in lines if not drop(_record(line))]
        if len(kept) < len(lines):
            atomic.write_bytes(path, b"".join(kept))
    except OSError as err:
        raise NerwinError(f"{path}: cannot rewrite the metrics ({err.strerror or err})") from None


def _record(line: bytes) -> dict:
    """One metrics.jsonl line as a dict ({} when it is not a JSON object)."""
    try:
        record = json.loads(line)
    except ValueError:  # also undecodable bytes
        return {}
    return record if isinstance(record, dict) else {}


def metric_epoch(record: dict) -> int:
    """A metrics line's epoch (0 when it has none)."""
    epoch = record.get("epoch")
    return epoch if isinstance(epoch, int) else 0


def same_config(run_config: Path, config: Config, checkpoint: Path) -> None:
    """--resume continues with the run's config.yaml: refuse when it no longer matches the
    checkpoint's copy (an edit to either would mix two configs in one run)."""
    if not run_config.is_file():
        return
    try:
        written = config_to_dict(load_config(run_config))
    except NerwinError as err:
        raise NerwinError(f"{err}; --resume needs the run's own config.yaml") from None
    saved = config_to_dict(config)
    for section in saved:
        for key in saved[section] if isinstance(saved[section], dict) else ():
            if written.get(section, {}).get(key) != saved[section][key]:
                raise NerwinError(
                    f"{run_config}: {section}.{key} is {written.get(section, {}).get(key)!r} but "
                    f"the checkpoint {checkpoint} was trained with {saved[section][key]!r}; "
                    "--resume continues a run with its own config: undo the edit, or start a "
                    "new run (--force or another --out)"
                )
