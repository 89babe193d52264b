"""Safe writes, and the refusals that keep nerwin away from files and links it did not write.

- A file is replaced by writing a temporary file beside it (same folder, so the same file
  system), syncing it and renaming it over the old one (`write_file`, `write_bytes`).
- A folder is replaced by filling a hidden staging folder beside it (`.NAME.nerwin-new-*`, with
  the mode a new folder gets: 0777 minus the umask), syncing its files and swapping it in
  (`write_folder`). The swap protocol:

  1. first save: the staging folder is renamed to NAME (one atomic rename);
  2. Linux: `renameat2(RENAME_EXCHANGE)` swaps the staging folder and NAME in one atomic step,
     so NAME always names a complete folder, old or new; the staging name then holds the old
     copy, which is deleted;
  3. elsewhere (or a file system without the exchange): NAME is renamed aside to `.NAME.old`,
     then the staging folder to NAME. Between these two renames NAME is missing; readers then
     take the complete previous copy at `.NAME.old` (`readable_folder`).

  A crash or kill -9 at any step therefore leaves either the old or the new folder readable
  (at NAME, or at `.NAME.old` while NAME is missing), plus at most a leftover staging folder.
  `recover_folder` (run by `--resume`) puts `.NAME.old` back when NAME is missing and deletes
  leftover staging folders.
- An append is synced and never goes through a link (`append_text`).

Nothing here follows a symbolic link or deletes a file it was not told it writes:
`file_problem`, `folder_problem` and `entry_problem` name what would be touched and why,
`Refused` is the error.

Imports only the standard library and nerwin.errors.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import shutil
import stat
import sys
from collections.abc import Callable, Collection
from pathlib import Path

from nerwin.errors import NerwinError

LINK = "a symbolic link; nerwin does not write through links"
NOT_A_FILE = "not a file nerwin writes"
NOT_A_FOLDER = "not a folder nerwin writes"
STAGING_NEW = ".{}.nerwin-new-"  # prefix of the folder a new copy is written in before the swap
STAGING_OLD = ".{}.old"  # where the previous copy waits during the swap
TEMP_TRIES = 100  # random temporary names tried before giving up
TEMP = ".{}.{}.tmp"  # write_file's temporary file: .NAME.RANDOM.tmp beside NAME
_TEMP = re.compile(r"\.(.+)\.[0-9a-f]{8}\.tmp")
RENAME_EXCHANGE = 2  # renameat2 flag (linux/fs.h): swap two paths atomically
_AT_FDCWD = -100

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
        _step("file-written")
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
        temp = path.with_name(TEMP.format(path.name, secrets.token_hex(4)))
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
    swapped in for `target` (see the module docstring for the protocol and what a crash at each
    step leaves). Refused, before anything moves, when `target` or the previous copy's waiting
    place is a link or holds anything but files named in `written`. On any error the staging
    folder is removed and `target` keeps the previous folder.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _new_folder(target)
    try:
        write(staging)
        _step("written")
        for path in staging.iterdir():
            _fsync(path)
        _fsync_folder(staging)
        _step("synced")
        _swap(staging, target, written)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_folder(target.parent)


def _new_folder(target: Path) -> Path:
    """A new empty staging folder `.NAME.nerwin-new-RANDOM` beside `target`, with the mode
    mkdir gives (0777 minus the umask; tempfile.mkdtemp would make it 0700)."""
    for _ in range(TEMP_TRIES):
        folder = target.with_name(STAGING_NEW.format(target.name) + secrets.token_hex(4))
        try:
            folder.mkdir(0o777)
        except FileExistsError:
            continue
        _step("staging")
        return folder
    raise FileExistsError(f"{target.parent}: no free staging name for {target.name}")


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
    if exchange(staging, target):  # target is the new copy, staging the old one
        _step("exchanged")
        _fsync_folder(target.parent)
        with contextlib.suppress(OSError):
            _remove_copy(staging, written)
        return
    remove_written(old, written)
    _step("old-cleared")
    os.replace(target, old)
    _step("set-aside")  # target is missing here: readers take the complete copy at `old`
    try:
        os.replace(staging, target)
    except BaseException:
        with contextlib.suppress(OSError):  # put the previous copy back where it was
            os.replace(old, target)
        raise
    _step("replaced")
    _fsync_folder(target.parent)
    with contextlib.suppress(OSError):  # the new copy is in place; the next swap removes the old
        _remove_copy(old, written)


def _remove_copy(folder: Path, written: Collection[str]) -> None:
    """remove_written, with a crash point after the first file (tests kill the process there)."""
    for name in written:
        remove_file(folder / name)
        _step("removing")
    remove_written(folder, written)  # write_file's temporary files too, then the folder


def exchange(a: Path, b: Path) -> bool:
    """Swap the paths `a` and `b` in one atomic step (Linux renameat2 with RENAME_EXCHANGE).

    False, changing nothing, where the system or the file system cannot (another OS, an old
    kernel or C library, a file system without the flag); OSError for other failures.
    """
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(code, os.strerror(code), str(b))


_RENAMEAT2: list = []  # the C function once looked up ([None] where there is none)


def _renameat2() -> Callable[..., int] | None:
    if not _RENAMEAT2:
        function = None
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                function = ctypes.CDLL(None, use_errno=True).renameat2
                function.argtypes = [ctypes.c_int, ctypes.c_char_p] * 2 + [ctypes.c_uint]
                function.restype = ctypes.c_int
        _RENAMEAT2.append(function)
    return _RENAMEAT2[0]


def _step(name: str) -> None:
    """A named point of a save; does nothing (the crash tests replace it to kill the process)."""


def readable_folder(target: Path) -> Path:
    """Where a reader finds the folder `target`: `target` itself, or, while a save that sets the
    previous copy aside was stopped between its two renames (NAME missing), `.NAME.old`."""
    target = Path(target)
    if os.path.lexists(target):
        return target
    old = target.with_name(STAGING_OLD.format(target.name))
    return old if is_real_dir(old) else target


def recover_folder(target: Path, written: Collection[str], required: Collection[str]) -> bool:
    """Clean up after a save of `target` that was killed: put the previous copy back from
    `.NAME.old` when `target` is missing and the copy holds every `required` file, then delete
    the leftover staging folders (only the files named in `written`; anything else stays, and
    the folder with it) and write_file's temporary files in `target`. True when the copy was
    put back.

    Call it only after folder_problem found nothing foreign in `target` and its staging folders.
    """
    target = Path(target)
    old = target.with_name(STAGING_OLD.format(target.name))
    restored = False
    if (
        not os.path.lexists(target)
        and is_real_dir(old)
        and all((old / name).is_file() and not (old / name).is_symlink() for name in required)
    ):
        os.replace(old, target)
        restored = True
    parent = target.parent
    names = sorted(p.name for p in parent.iterdir()) if is_real_dir(parent) else []
    for name in names:
        if is_staging(name, target.name):
            remove_written(parent / name, written)
    if is_real_dir(target):  # a write_file into the folder that was killed before its rename
        for entry in list(target.iterdir()):
            if is_temp(entry.name, written):
                remove_file(entry)
    _fsync_folder(parent)
    return restored


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
        ours = entry.name in written or is_temp(entry.name, written)
        if not ours or entry.is_symlink() or not entry.is_file():
            return entry, NOT_A_FILE
    return None


def is_temp(name: str, written: Collection[str]) -> bool:
    """True when `name` is a temporary file write_file makes for one of the files `written`
    (left behind when the process was killed during that write)."""
    match = _TEMP.fullmatch(name)
    return match is not None and match.group(1) in written


def is_real_dir(path: Path) -> bool:
    """A folder that is not a link (links are never followed out of nerwin's folders)."""
    return path.is_dir() and not path.is_symlink()


def remove_file(path: Path) -> None:
    """Delete `path` if it is a plain file; a link or anything else stays."""
    if path.is_file() and not path.is_symlink():
        path.unlink()


def remove_written(folder: Path, written: Collection[str]) -> None:
    """Delete the plain files named in `written` (and write_file's temporary files for them)
    from `folder`, then the folder if it is empty.

    A linked folder or file is left as it is.
    """
    if not is_real_dir(folder):
        return
    for name in written:
        remove_file(folder / name)
    for entry in folder.iterdir():
        if is_temp(entry.name, written):
            remove_file(entry)
    remove_if_empty(folder)


def remove_if_empty(folder: Path) -> None:
    """Delete `folder` if it is a real, empty folder."""
    if is_real_dir(folder) and not any(folder.iterdir()):
        folder.rmdir()
