"""Bounded reads of files nerwin does not trust (a model folder, a config from anywhere).

`open_regular` opens only a regular file (never a FIFO, which would block, a device such as
/dev/zero, or a folder), and on request never through a symbolic link, also relative to an open
folder (`dir_fd`), so every file of a folder comes from that folder. `read_limited` checks a
regular file's size before reading anything and never reads more than its limit from a pipe or
device. Errors are OSError with the path and a short reason (`strerror`).

Imports only the standard library.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

READ_LINK = "a symbolic link; nerwin reads only regular files here"
NOT_REGULAR = "not a regular file"
_READ_CHUNK = 1 << 16  # bytes read at a time from a pipe or device, or a file that grew


def open_regular(
    path: str | Path, *, dir_fd: int | None = None, follow_links: bool = False
) -> BinaryIO:
    """Open a regular file for binary reading: never a FIFO, device or folder, and with
    `follow_links` False never through a symbolic link (also not a link to a regular file).

    With `dir_fd`, `path` is a name inside that open folder. OSError names the path and why.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)  # a FIFO would block
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except OSError as err:
        if not follow_links and err.errno in (errno.ELOOP, errno.EMLINK):
            raise OSError(errno.ELOOP, READ_LINK, str(path)) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, NOT_REGULAR, str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_limited(
    path: str | Path,
    limit: int,
    *,
    dir_fd: int | None = None,
    follow_links: bool = True,
    regular_only: bool = True,
) -> bytes:
    """The bytes of the file at `path`, or OSError (EFBIG) when it holds more than `limit`.

    A regular file's size is checked before reading; with `regular_only` False a pipe or
    device (a config given as /dev/stdin) is read up to `limit` + 1 bytes, never further
    (`dir_fd` and `follow_links` apply to regular_only reads).
    """
    if regular_only:
        handle = open_regular(path, dir_fd=dir_fd, follow_links=follow_links)
    else:
        handle = open(path, "rb")  # noqa: SIM115 (closed below)
    with handle:
        status = os.fstat(handle.fileno())
        regular = stat.S_ISREG(status.st_mode)
        if regular and status.st_size > limit:
            raise OSError(errno.EFBIG, _too_large(status.st_size, limit), str(path))
        parts, total = [], 0
        want = status.st_size + 1 if regular else _READ_CHUNK  # never a buffer of `limit` bytes
        while chunk := handle.read(min(want, limit + 1 - total)):
            parts.append(chunk)
            total += len(chunk)
            if total > limit:
                raise OSError(errno.EFBIG, _too_large(None, limit), str(path))
            want = _READ_CHUNK
    return b"".join(parts)


def _too_large(size: int | None, limit: int) -> str:
    if size is None:
        return f"too large: more than {limit:,} bytes"
    return f"too large: {size:,} bytes, at most {limit:,}"
