"""weights.npz of a model folder, read without trusting it.

Only the arrays the model shape expects are read (an ensemble's member k >= 1 under
`member{k}.NAME`), each after its .npy header was checked against the expected shape, a
float32/float64 dtype and the member's size in the archive; a compressed member may expand at
most MAX_EXPANSION times, and the embedding table holds at most MAX_EMBEDDING values. Data is
read in chunks into the array it fills, and must be finite.

From format SHARED_ROWS (3) on, member k >= 1's embedding table is stored as the rows in which
it differs from the first member's E: `member{k}.E.rows` (int32 row ids, strictly increasing,
each below the vocabulary size) and `member{k}.E.values` (those rows). Words never seen in
training keep their pretrained vector in every member, so most rows are shared; the table is
rebuilt bit for bit on load (`shared_rows` writes, `_read_table` reads).

Memory. A large embedding table stored uncompressed (np.savez) is not read into memory but
mapped from the file copy-on-write (MAP_PRIVATE; at least MAP_BYTES): after its check each
chunk's pages are dropped again, so only the rows a caller touches become resident, and the
members of an ensemble map the same file pages (member k >= 1 writes its own rows into its
mapping, which copies just those pages). The arrays behave as ordinary writable arrays; writes
never reach the file; NERWIN_MAP_WEIGHTS=0 reads the tables instead (where a file may vanish
under a running process, as on NFS). A model folder is replaced by saving a new one (nerwin
never rewrites weights.npz in place); changing the file in place while a model is loaded is not
supported.
Resident memory (RSS) counts a file page once per mapping that touched it, and on a file system
with large folios (ext4 on Linux 6.x) touching one row maps the whole folio, up to 2 MB: the
page cache holds the table once, but RSS can show it up to once per member.
"""

from __future__ import annotations

import contextlib
import io
import math
import mmap
import os
import re
import struct
import zipfile
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from nerwin.engine import Tensor
from nerwin.errors import ModelError
from nerwin.model.classifier import ModelShape, WindowClassifier
from nerwin.model.metafile import excerpt

MEMBER_PREFIX = "member{}."  # weights.npz keys of an ensemble's member k >= 1, e.g. member1.W
MEMBER_KEY = re.compile(r"member(\d+)\.")  # the k of a member{k}.NAME key
MAX_EMBEDDING = 1 << 32  # entries of E per member
SHARED_ROWS = 3  # format_version from which member k >= 1 stores E as member{k}.E.rows / .values
ROWS, VALUES = "E.rows", "E.values"  # the names of those arrays after the member{k}. prefix
MAX_EXPANSION = 32  # a compressed array may be this many times its compressed size (+ 1 MiB)
_CHUNK = 16 << 20  # bytes read at a time into an array
MAP_BYTES = 16 << 20  # embedding tables at least this large are mapped, not read
MAP_VARIABLE = "NERWIN_MAP_WEIGHTS"  # 0: read every table into memory instead (e.g. on NFS)
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # a zip member's local header: signature, name, extra
_ZIP_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    KeyError,
    NotImplementedError,
    RuntimeError,
    OverflowError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
)


def read_weights(
    handle: BinaryIO, path: Path, shape: ModelShape, meta: dict[str, Any]
) -> list[dict[str, Tensor]]:
    """Each member's parameters, every array checked against the shape the meta records."""
    expected = _expected_shapes(shape)
    if shape.vocab_size * shape.embedding_dim > MAX_EMBEDDING:
        raise ModelError(
            f"{path}: the embedding table would hold {shape.vocab_size * shape.embedding_dim:,} "
            f"values (at most {MAX_EMBEDDING:,})"
        )
    try:
        archive = zipfile.ZipFile(handle)
    except _ZIP_ERRORS as err:
        raise ModelError(f"{path}: corrupt or truncated weights ({type(err).__name__})") from None
    with archive:
        size = os.fstat(handle.fileno()).st_size
        keys = {n[: -len(".npy")] for n in archive.namelist() if n.endswith(".npy")}
        version = meta["format_version"]
        _check_members(path, keys, meta["members"], version)
        read = _Reader(archive, keys, size, path, handle)
        out: list[dict[str, Tensor]] = []
        for member in range(meta["members"]):
            prefix = MEMBER_PREFIX.format(member) if member else ""
            params = {}
            for name, want in expected.items():
                if name == "E" and member and version >= SHARED_ROWS:
                    array = _read_table(read, prefix, out[0]["E"].data, want)
                else:
                    array = read.array(prefix + name, want, table=name == "E")
                params[name] = Tensor(
                    np.ascontiguousarray(array, dtype=shape.dtype), requires_grad=True, name=name
                )
            out.append(params)
    return out


def shared_rows(base: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of `table` whose bits differ from `base`'s (same shape and dtype): their ids
    (int32, increasing) and values. `base` with those rows put back is `table`, bit for bit
    (-0.0 and 0.0 count as different)."""
    if base.shape != table.shape or base.dtype != table.dtype or base.ndim != 2:
        raise ValueError(f"tables differ: {base.shape} {base.dtype}, {table.shape} {table.dtype}")
    if base.shape[0] > np.iinfo(np.int32).max:
        raise ValueError(f"{base.shape[0]:,} rows do not fit int32 row ids")
    bits = f"u{base.dtype.itemsize}"
    one = np.ascontiguousarray(base).view(bits)
    two = np.ascontiguousarray(table).view(bits)
    rows = np.flatnonzero((one != two).any(axis=1)).astype(np.int32)
    return rows, np.ascontiguousarray(table[rows])


def _read_table(read: _Reader, prefix: str, base: np.ndarray, want: tuple[int, ...]) -> np.ndarray:
    """Member E of format SHARED_ROWS: `base` (the first member's E) with the rows
    `{prefix}E.rows` replaced by `{prefix}E.values`, every array checked first."""
    vocab_size, dim = want
    rows = read.array(prefix + ROWS, (vocab_size,), index=True)
    where = f"{read.path}: weight {prefix + ROWS}"
    if rows.size and not (
        (rows >= 0).all() and (rows < vocab_size).all() and (rows[1:] > rows[:-1]).all()
    ):
        raise ModelError(
            f"{where}: row ids must be strictly increasing, from 0 to {vocab_size - 1:,}"
        )
    values = read.array(prefix + VALUES, (len(rows), dim))
    table = read.remap(base)
    table[rows] = values
    return table


class _Reader:
    """Reads checked arrays of one open weights.npz (`size`: the file's size in bytes)."""

    def __init__(
        self, archive: zipfile.ZipFile, keys: set[str], size: int, path: Path, handle: BinaryIO
    ):
        self.archive, self.keys, self.size, self.path = archive, keys, size, path
        self.handle = handle
        self.mapped: dict[int, tuple[int, np.dtype, tuple[int, ...]]] = {}  # id(array) -> place

    def array(
        self, key: str, want: tuple[int, ...], index: bool = False, table: bool = False
    ) -> np.ndarray:
        """The array `key` of shape `want`; with `index`, int32 ids of shape (n,), n <= want[0];
        a `table` (an embedding table) is mapped from the file when it can be (module notes)."""
        if key not in self.keys:
            raise ModelError(f"{self.path}: weight {key} is missing")
        info = self.archive.getinfo(key + ".npy")
        mapper = self._map if table else None
        return _read_array(self.archive, info, self.size, self.path, key, want, index, mapper)

    def remap(self, base: np.ndarray) -> np.ndarray:
        """A private copy of `base`: another copy-on-write mapping when `base` is mapped."""
        place = self.mapped.get(id(base))
        if place is None:
            return base.copy()
        return _mapping(self.handle.fileno(), *place)

    def _map(
        self, info: zipfile.ZipInfo, npy_offset: int, dtype: np.dtype, shape: tuple[int, ...]
    ) -> np.ndarray | None:
        """The array mapped from the file (its data at `npy_offset` in the stored member), or
        None when it cannot be (compressed, small, foreign byte order, no mmap)."""
        nbytes = math.prod(shape) * dtype.itemsize
        if info.compress_type != zipfile.ZIP_STORED or nbytes < MAP_BYTES or info.flag_bits & 1:
            return None
        if not dtype.isnative or not hasattr(os, "pread") or os.environ.get(MAP_VARIABLE) == "0":
            return None
        try:
            local = os.pread(self.handle.fileno(), _LOCAL_HEADER.size, info.header_offset)
            if len(local) != _LOCAL_HEADER.size:
                return None
            signature, name_length, extra_length = _LOCAL_HEADER.unpack(local)
            start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
            start += npy_offset
            if signature != b"PK\x03\x04" or start + nbytes > self.size:
                return None
            header = os.pread(self.handle.fileno(), npy_offset, start - npy_offset)
            array = _mapping(self.handle.fileno(), start, dtype, shape)
        except (OSError, ValueError, OverflowError, io.UnsupportedOperation):
            return None
        if len(header) != npy_offset:
            return None
        where = f"{self.path}: weight {info.filename.removesuffix('.npy')}"
        _check_mapped(array, where, zlib.crc32(header), info.CRC)
        self.mapped[id(array)] = (start, dtype, shape)
        return array


def _mapping(fd: int, start: int, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """A writable array over bytes `start`... of file `fd`, mapped copy-on-write."""
    align = start - start % mmap.ALLOCATIONGRANULARITY
    count = math.prod(shape)
    length = start - align + count * dtype.itemsize
    view = mmap.mmap(fd, length, access=mmap.ACCESS_COPY, offset=align)
    if hasattr(mmap, "MADV_RANDOM"):  # rows are read here and there: no read-ahead
        view.madvise(mmap.MADV_RANDOM)
    return np.frombuffer(view, dtype, count, offset=start - align).reshape(shape)


def _check_mapped(array: np.ndarray, where: str, crc: int, expected_crc: int) -> None:
    """Finite values in a mapped array and the zip member's CRC-32 (`crc`: that of the bytes
    before the array), checked a chunk at a time, each chunk's pages dropped again after its
    check (they were only read: the file still holds them)."""
    view = array.base
    while view is not None and not isinstance(view, mmap.mmap):  # array -> memoryview -> mmap
        view = view.obj if isinstance(view, memoryview) else getattr(view, "base", None)
    flat = array.reshape(-1)
    step = max(1, _CHUNK // array.itemsize)
    skip = len(view) - array.nbytes if view is not None else 0  # the bytes before the array
    for first in range(0, len(flat), step):
        chunk = flat[first : first + step]
        crc = zlib.crc32(chunk, crc)
        if not np.isfinite(chunk).all():
            raise ModelError(f"{where}: holds NaN or infinite values")
        if view is not None and hasattr(mmap, "MADV_DONTNEED"):
            low = skip + first * array.itemsize
            high = min(len(view), skip + (first + step) * array.itemsize)
            page = low - low % mmap.PAGESIZE
            with contextlib.suppress(OSError):  # only memory: the check stays valid
                view.madvise(mmap.MADV_DONTNEED, page, high - page)
    if crc != expected_crc:
        raise ModelError(f"{where}: corrupt weights (CRC-32 mismatch)")


def _read_array(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    size: int,
    path: Path,
    key: str,
    want: tuple[int, ...],
    index: bool = False,
    mapper: Any = None,
) -> np.ndarray:
    """One array of weights.npz: its .npy header checked before its data is read (see
    _check_header for `want` and `index`); `mapper(info, offset, dtype, shape)` may map it
    from the file instead (None: read it)."""
    where = f"{path}: weight {key}"
    if info.compress_size > size or info.header_offset > size:
        raise ModelError(f"{where}: corrupt or truncated weights (sizes beyond the file)")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.file_size != info.compress_size:
            raise ModelError(f"{where}: corrupt or truncated weights (sizes disagree)")
    elif info.file_size > MAX_EXPANSION * info.compress_size + (1 << 20):
        raise ModelError(
            f"{where}: compressed {info.file_size / max(info.compress_size, 1):,.0f} times "
            f"(at most {MAX_EXPANSION}); not written by nerwin"
        )
    try:
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise ModelError(f"{where}: unsupported .npy format {version}")
            _check_header(where, shape, dtype, want, index)
            count = math.prod(shape)
            if info.file_size != member.tell() + count * dtype.itemsize:
                raise ModelError(f"{where}: its size does not match its header")
            mapped = (
                None if fortran or mapper is None else mapper(info, member.tell(), dtype, shape)
            )
            if mapped is not None:
                return mapped
            array = np.empty(count, dtype)
            _read_into(member, array.view(np.uint8), where)
    except _ZIP_ERRORS as err:
        raise ModelError(f"{where}: corrupt or truncated weights ({type(err).__name__})") from None
    array = array.reshape(shape[::-1]).T if fortran else array.reshape(shape)
    if not index and not np.isfinite(array).all():
        raise ModelError(f"{where}: holds NaN or infinite values")
    return array


def _check_header(
    where: str, shape: Any, dtype: np.dtype, want: tuple[int, ...], index: bool = False
) -> None:
    """Float32/float64 of shape `want`; with `index`, int32 ids of shape (n,) with n <= want[0]."""
    plain = dtype.fields is None and not dtype.shape
    if index:
        if not (plain and dtype.kind == "i" and dtype.itemsize == 4):
            raise ModelError(f"{where}: dtype {excerpt(str(dtype))} is not int32")
        if len(shape) != 1 or not 0 <= shape[0] <= want[0]:
            raise ModelError(
                f"{where} has shape {excerpt(tuple(shape))}, expected (n,) with n at most "
                f"{want[0]:,} (the vocabulary size)"
            )
        return
    if not (plain and dtype.kind == "f" and dtype.itemsize in (4, 8)):
        raise ModelError(f"{where}: dtype {excerpt(str(dtype))} is not float32 or float64")
    if tuple(shape) != want:
        raise ModelError(f"{where} has shape {excerpt(tuple(shape))}, config expects {want}")


def _read_into(member, out: np.ndarray, where: str) -> None:
    """Fill the bytes `out` from `member`, a chunk at a time (no second copy of the array)."""
    done = 0
    while done < len(out):
        chunk = member.read(min(_CHUNK, len(out) - done))
        if not chunk:
            raise ModelError(f"{where}: corrupt or truncated weights (data ends early)")
        out[done : done + len(chunk)] = np.frombuffer(chunk, np.uint8)
        done += len(chunk)
    if member.read(1):
        raise ModelError(f"{where}: its size does not match its header")


def _check_members(path: Path, keys: set[str], members: int, version: int) -> None:
    """The member{k}. arrays must be those of the members 2..N in meta.json (none in format 1),
    each E stored as the format says (whole before SHARED_ROWS, as rows from then on)."""
    found = sorted({int(m.group(1)) for m in map(MEMBER_KEY.match, keys) if m})
    held = ", ".join(f"member{k}" for k in found[:5]) + (", ..." if len(found) > 5 else "")
    held = held or "none"
    if version < 2 and (members > 1 or found):
        raise ModelError(
            f"{path}: format_version {version} is one model, but meta.json records {members} "
            f"member(s) and the weights hold member arrays: {held}"
        )
    if found != list(range(1, members)):
        raise ModelError(
            f"{path}: meta.json records {members} member(s), but the weights hold "
            f"{1 + len(found)} (member arrays: {held})"
        )
    for k in found:  # one way to store member k's E, the one of the format
        prefix = MEMBER_PREFIX.format(k)
        if version >= SHARED_ROWS and prefix + "E" in keys:
            raise ModelError(
                f"{path}: format_version {version} stores {prefix}E as {prefix}{ROWS} and "
                f"{prefix}{VALUES}, but the weights hold a whole {prefix}E"
            )
        if version < SHARED_ROWS and {prefix + ROWS, prefix + VALUES} & keys:
            raise ModelError(
                f"{path}: the weights hold {prefix}{ROWS} or {prefix}{VALUES}, which only "
                f"format_version {SHARED_ROWS} or later has (meta.json says {version})"
            )


def _expected_shapes(shape: ModelShape) -> dict[str, tuple[int, ...]]:
    """Every parameter's shape (probed on a one-word model: _read_shape bounded its size)."""
    probe = WindowClassifier.initialise(
        ModelShape(**{**asdict(shape), "vocab_size": 1}), np.random.default_rng(0)
    )
    out = {k: t.shape for k, t in probe.params.items()}
    out["E"] = (shape.vocab_size, shape.embedding_dim)
    return out
