"""Safe writes, and the refusals that keep nerwin away from files and links it did not write.

- A file is replaced by writing a temporary file beside it (same folder, so the same file
  system), syncing it and renaming it over the old one (`write_file`, `write_bytes`).
- A folder is replaced by filling a hidden staging folder beside it (`.NAME.nerwin-new-*`),
  syncing its files and swapping it in; the previous folder waits as `.NAME.old` until the new
  one is in place (`write_folder`).
- An append is synced and never goes through a link (`append_text`).

A crash or kill -9 at any moment leaves the previous file or folder readable. Nothing here
follows a symbolic link or deletes a file it was not told it writes: `file_problem`,
`folder_problem` and `entry_problem` name what would be touched and why, `Refused` is the error.

Imports only the standard library and nerwin.errors.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Collection
from pathlib import Path

from nerwin.errors import NerwinError

LINK = "a symbolic link; nerwin does not write through links"
NOT_A_FILE = "not a file nerwin writes"
NOT_A_FOLDER = "not a folder nerwin writes"
STAGING_NEW = ".{}.nerwin-new-"  # prefix of the folder a new copy is written in before the swap
STAGING_OLD = ".{}.old"  # where the previous copy waits during the swap
TEMP_TRIES = 100  # random temporary names tried before giving up

Problem = tuple[Path, str]  # (path, why nerwin may not touch it)


class Refused(NerwinError):
    """nerwin would write through a link or replace or delete something it did not write."""

    def __init__(self, problem: Problem, hint: str = ""):
        self.path, self.why = problem
        super().__init__(f"{self.path}: {self.why}; move it out of {self.path.parent}{hint}")


# --- files ---------------------------------------------------------------------------------------


def write_file(path: Path, write: Callable[[Path], object]) -> None:
    """Replace the file at `path` by what `write(temp)` writes at the temporary path it is given.

    `write` must write exactly that path (np.savez given a path without .npz adds the suffix:
    pass it an open file). The temporary file gets the permissions of the file it replaces, or
    those open() gives a new file. It is synced and renamed over `path`; on any error it is
    removed and `path` is as it was. A link at `path` is replaced, never written through.
    """
    path = Path(path)
    temp = _new_temp(path)
    try:
        write(temp)
        _fsync(temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def write_bytes(path: Path, data: bytes) -> None:
    """Replace the file at `path` by `data` (see write_file)."""
    write_file(path, lambda temp: temp.write_bytes(data))


def write_text(path: Path, text: str) -> None:
    """Replace the file at `path` by `text` in UTF-8 (see write_file)."""
    write_file(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def append_text(path: Path, text: str) -> None:
    """Append `text` (UTF-8) to the file at `path`, created if missing, and sync it.

    Refused when `path` is a link or not a file; the open itself does not follow a link either.
    """
    problem = file_problem(Path(path))
    if problem:
        raise Refused(problem)
    with open(path, "a", encoding="utf-8", opener=_open_no_follow) as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _new_temp(path: Path) -> Path:
    """A new empty file `.NAME.RANDOM.tmp` beside `path`, with the mode `path` should end with."""
    for _ in range(TEMP_TRIES):
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # umask applies
        except FileExistsError:
            continue
        except OSError as err:  # about the folder: name the file being written, not the temp
            raise type(err)(err.errno, err.strerror, str(path)) from None
        try:
            if path.is_file() and not path.is_symlink():
                os.chmod(temp, stat.S_IMODE(path.stat().st_mode))
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return temp
    raise FileExistsError(f"{path.parent}: no free temporary name for {path.name}")


def _open_no_follow(path: str, flags: int) -> int:
    """os.open for open(): a link at `path` is an error instead of being followed."""
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o666)


def _fsync(path: Path) -> None:
    """Flush a file's data to disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename) to disk, where the system allows it."""
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


# --- folders -------------------------------------------------------------------------------------


def write_folder(target: Path, write: Callable[[Path], object], written: Collection[str]) -> None:
    """Replace the folder `target` by the files `write(staging)` writes into a staging folder.

    The staging folder is new and hidden beside `target`; its files are synced, then it is
    swapped in for `target`. Refused, before anything moves, when `target` or the previous
    copy's waiting place is a link or holds anything but files named in `written`. On any
    error the staging folder is removed and `target` keeps the previous folder.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_NEW.format(target.name), dir=target.parent))
    try:
        write(staging)
        for path in staging.iterdir():
            _fsync(path)
        _fsync_folder(staging)
        _swap(staging, target, written)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_folder(target.parent)


def _swap(staging: Path, target: Path, written: Collection[str]) -> None:
    """Put `staging` in place of `target`; the old copy stays whole until the new one is in."""
    old = target.with_name(STAGING_OLD.format(target.name))
    for folder in (target, old):
        problem = folder_problem(folder, written)
        if problem:
            raise Refused(problem)
    if not target.exists():
        os.replace(staging, target)
        return
    remove_written(old, written)
    os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        with contextlib.suppress(OSError):  # put the previous copy back where it was
            os.replace(old, target)
        raise
    with contextlib.suppress(OSError):  # the new copy is in place; the next swap removes the old
        remove_written(old, written)


def is_staging(name: str, target: str) -> bool:
    """True when `name` is a folder write_folder stages `target` in (the new or the old copy)."""
    new = re.escape(STAGING_NEW.format(target)) + r"[a-z0-9_]+"
    return name == STAGING_OLD.format(target) or re.fullmatch(new, name) is not None


# --- what nerwin may touch -----------------------------------------------------------------------


def file_problem(path: Path) -> Problem | None:
    """Why nerwin may not write the file `path` (a link, or something else than a file), or None."""
    if path.is_symlink():
        return path, LINK
    if path.exists() and not path.is_file():
        return path, NOT_A_FILE
    return None


def entry_problem(path: Path) -> Problem | None:
    """Why nerwin may not write into the folder `path` (a link, or not a folder), or None."""
    if path.is_symlink():
        return path, LINK
    if path.exists() and not path.is_dir():
        return path, NOT_A_FOLDER
    return None


def folder_problem(folder: Path, written: Collection[str]) -> Problem | None:
    """Why nerwin may not replace or clear `folder` (see entry_problem; or it holds an entry
    that is not a plain file named in `written`), or None."""
    problem = entry_problem(folder)
    if problem or not folder.exists():
        return problem
    for entry in sorted(folder.iterdir()):
        if entry.name not in written or entry.is_symlink() or not entry.is_file():
            return entry, NOT_A_FILE
    return None


def is_real_dir(path: Path) -> bool:
    """A folder that is not a link (links are never followed out of nerwin's folders)."""
    return path.is_dir() and not path.is_symlink()


def remove_file(path: Path) -> None:
    """Delete `path` if it is a plain file; a link or anything else stays."""
    if path.is_file() and not path.is_symlink():
        path.unlink()


def remove_written(folder: Path, written: Collection[str]) -> None:
    """Delete the plain files named in `written` from `folder`, then the folder if it is empty.

    A linked folder or file is left as it is.
    """
    if not is_real_dir(folder):
        return
    for name in written:
        remove_file(folder / name)
    remove_if_empty(folder)


def remove_if_empty(folder: Path) -> None:
    """Delete `folder` if it is a real, empty folder."""
    if is_real_dir(folder) and not any(folder.iterdir()):
        folder.rmdir()
