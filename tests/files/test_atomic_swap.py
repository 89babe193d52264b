"""atomic: a whole folder at every step of a swap, recovery after a kill, modes; bounded reads."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from nerwin.files import atomic, bounded

WRITTEN = ("a.txt", "b.txt")


def _fill(text: str):
    def fill(staging: Path) -> None:
        (staging / "a.txt").write_text(text)
        (staging / "b.txt").write_text(text.upper())

    return fill


def _content(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


@pytest.fixture(params=["exchange", "two renames"])
def protocol(request, monkeypatch) -> str:
    """Run a test with the atomic exchange and with the fallback of two renames."""
    if request.param == "exchange":
        if not atomic._renameat2():
            pytest.skip("no renameat2 on this system")
    else:
        monkeypatch.setattr(atomic, "exchange", lambda a, b: False)
    return request.param


def test_atomic_swap_leaves_a_complete_folder_at_every_step(
    tmp_path: Path, monkeypatch, protocol: str
) -> None:
    """At each step of a replacing save, readers find the old or the new folder, complete."""
    target = tmp_path / "last"
    atomic.write_folder(target, _fill("old"), WRITTEN)
    old, new = {"a.txt": "old", "b.txt": "OLD"}, {"a.txt": "new", "b.txt": "NEW"}
    seen: list[tuple[str, dict[str, str]]] = []

    def look(step: str) -> None:
        seen.append((step, _content(atomic.readable_folder(target))))

    monkeypatch.setattr(atomic, "_step", look)
    atomic.write_folder(target, _fill("new"), WRITTEN)
    steps = [step for step, _ in seen]
    assert "staging" in steps and "synced" in steps
    assert ("exchanged" in steps) == (protocol == "exchange")
    assert ("set-aside" in steps) == (protocol == "two renames")
    for step, content in seen:
        assert content in (old, new), step
    assert seen[-1][1] == new and _content(target) == new
    assert [p.name for p in tmp_path.iterdir()] == ["last"]


def test_atomic_first_save_is_one_rename(tmp_path: Path, monkeypatch) -> None:
    steps: list[str] = []
    monkeypatch.setattr(atomic, "_step", steps.append)
    atomic.write_folder(tmp_path / "model", _fill("one"), WRITTEN)
    assert steps == ["staging", "written", "synced"]
    assert _content(tmp_path / "model") == {"a.txt": "one", "b.txt": "ONE"}


def test_atomic_exchange_swaps_two_folders(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    (tmp_path / "x" / "from-x").write_text("x")
    if not atomic.exchange(tmp_path / "x", tmp_path / "y"):
        pytest.skip("no atomic exchange on this system or file system")
    assert [p.name for p in (tmp_path / "y").iterdir()] == ["from-x"]
    assert list((tmp_path / "x").iterdir()) == []
    with pytest.raises(FileNotFoundError):
        atomic.exchange(tmp_path / "x", tmp_path / "missing")


def test_atomic_readable_folder_takes_the_copy_set_aside(tmp_path: Path) -> None:
    target = tmp_path / "last"
    assert atomic.readable_folder(target) == target  # nothing at all: the reader reports it
    (tmp_path / ".last.old").mkdir()
    assert atomic.readable_folder(target) == tmp_path / ".last.old"
    target.mkdir()
    assert atomic.readable_folder(target) == target


def test_atomic_recover_folder_puts_the_copy_back_and_clears_staging(tmp_path: Path) -> None:
    """What a save killed between its two renames leaves: NAME missing, the old copy aside, the
    new one staged; recovery restores the old copy and deletes the staging folder."""
    atomic.write_folder(tmp_path / "last", _fill("old"), WRITTEN)
    os.replace(tmp_path / "last", tmp_path / ".last.old")
    staging = tmp_path / ".last.nerwin-new-1a2b3c4d"
    staging.mkdir()
    _fill("new")(staging)
    (tmp_path / ".last.nerwin-new-99999999").mkdir()  # killed before it held anything
    (tmp_path / ".model.nerwin-new-12345678").mkdir()  # another target's: not this one's business
    assert atomic.recover_folder(tmp_path / "last", WRITTEN, WRITTEN)
    assert _content(tmp_path / "last") == {"a.txt": "old", "b.txt": "OLD"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.nerwin-new-12345678", "last"]
    assert not atomic.recover_folder(tmp_path / "last", WRITTEN, WRITTEN)  # nothing left to do


def test_atomic_recover_folder_drops_a_stale_copy_and_keeps_others_files(tmp_path: Path) -> None:
    atomic.write_folder(tmp_path / "last", _fill("new"), WRITTEN)
    (tmp_path / ".last.old").mkdir()
    (tmp_path / ".last.old" / "a.txt").write_text("half")  # a removal that was killed
    staging = tmp_path / ".last.nerwin-new-abcdef12"
    staging.mkdir()
    (staging / "a.txt").write_text("x")
    (staging / "notes.txt").write_text("mine")
    assert not atomic.recover_folder(tmp_path / "last", WRITTEN, WRITTEN)
    assert _content(tmp_path / "last") == {"a.txt": "new", "b.txt": "NEW"}
    assert not (tmp_path / ".last.old").exists()
    assert _content(staging) == {"notes.txt": "mine"}  # only nerwin's files go


def test_atomic_recover_folder_keeps_an_incomplete_copy_out(tmp_path: Path) -> None:
    (tmp_path / ".last.old").mkdir()
    (tmp_path / ".last.old" / "a.txt").write_text("half")
    assert not atomic.recover_folder(tmp_path / "last", WRITTEN, WRITTEN)
    assert not (tmp_path / "last").exists()


def test_atomic_folders_get_the_usual_mode(tmp_path: Path) -> None:
    """model/ and last/ are made like any folder (0777 minus the umask), not 0700."""
    previous = os.umask(0o022)
    try:
        atomic.write_folder(tmp_path / "model", _fill("one"), WRITTEN)
        assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o755
        atomic.write_folder(tmp_path / "model", _fill("two"), WRITTEN)
        assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o755
        assert stat.S_IMODE((tmp_path / "model" / "a.txt").stat().st_mode) == 0o644
        os.umask(0o077)
        atomic.write_folder(tmp_path / "last", _fill("one"), WRITTEN)
        assert stat.S_IMODE((tmp_path / "last").stat().st_mode) == 0o700
    finally:
        os.umask(previous)


def test_atomic_write_file_temporaries_count_as_nerwins(tmp_path: Path) -> None:
    """A kill during write_file leaves .NAME.RANDOM.tmp: nerwin's to clear, not a foreign file."""
    folder = tmp_path / "model"
    atomic.write_folder(folder, _fill("one"), WRITTEN)
    (folder / ".a.txt.0123abcd.tmp").write_text("half")
    assert atomic.folder_problem(folder, WRITTEN) is None
    (folder / ".notes.txt.0123abcd.tmp").write_text("x")
    assert atomic.folder_problem(folder, WRITTEN) == (
        folder / ".notes.txt.0123abcd.tmp",
        atomic.NOT_A_FILE,
    )
    (folder / ".notes.txt.0123abcd.tmp").unlink()
    atomic.write_folder(folder, _fill("two"), WRITTEN)
    assert _content(folder) == {"a.txt": "two", "b.txt": "TWO"}
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


# --- bounded reads -------------------------------------------------------------------------------


def test_atomic_read_limited_checks_the_size_first(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with open(path, "wb") as handle:
        handle.truncate(10 << 30)  # sparse: 10 GiB that nobody should read
    with pytest.raises(OSError) as info:
        bounded.read_limited(path, 1 << 20)
    assert info.value.errno == errno.EFBIG and "10,737,418,240 bytes" in info.value.strerror
    path.write_bytes(b"x" * 10)
    assert bounded.read_limited(path, 10) == b"x" * 10


def test_atomic_read_limited_stops_on_endless_devices() -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    with pytest.raises(OSError, match="not a regular file"):
        bounded.read_limited("/dev/zero", 1 << 20)
    with pytest.raises(OSError) as info:
        bounded.read_limited("/dev/zero", 1 << 20, regular_only=False)
    assert info.value.errno == errno.EFBIG


def test_atomic_open_regular_refuses_links_fifos_and_folders(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("top secret")
    (tmp_path / "link.txt").symlink_to(tmp_path / "secret.txt")
    os.mkfifo(tmp_path / "fifo")  # opening it for reading would block without O_NONBLOCK
    with pytest.raises(OSError, match="symbolic link"):
        bounded.open_regular(tmp_path / "link.txt")
    with bounded.open_regular(tmp_path / "link.txt", follow_links=True) as handle:
        assert handle.read() == b"top secret"
    with pytest.raises(OSError, match="not a regular file"):
        bounded.open_regular(tmp_path / "fifo")
    with pytest.raises(IsADirectoryError):
        bounded.open_regular(tmp_path)
    folder = os.open(tmp_path, os.O_RDONLY)
    try:
        with bounded.open_regular("secret.txt", dir_fd=folder) as handle:
            assert handle.read() == b"top secret"
        with pytest.raises(OSError, match="symbolic link"):
            bounded.read_limited("link.txt", 100, dir_fd=folder, follow_links=False)
    finally:
        os.close(folder)
