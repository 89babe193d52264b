"""atomic: file and folder replacement, synced appends, and the refusals to touch others' files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from nerwin.files import atomic
from nerwin.files.atomic import LINK, NOT_A_FILE, NOT_A_FOLDER, Refused

WRITTEN = ("a.txt", "b.txt")


def _snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry under folder: file bytes, or the target of a link."""
    return {
        str(p.relative_to(folder)): str(p.readlink()) if p.is_symlink() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_symlink() or p.is_file()
    }


def _fill(text: str):
    """A write_folder filler that writes a.txt and b.txt."""

    def fill(staging: Path) -> None:
        (staging / "a.txt").write_text(text)
        (staging / "b.txt").write_text(text.upper())

    return fill


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- files ---------------------------------------------------------------------------------------


def test_atomic_write_bytes_replaces_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    atomic.write_bytes(path, b"one\n")
    umask = os.umask(0)
    os.umask(umask)
    assert path.read_bytes() == b"one\n" and _mode(path) == 0o666 & ~umask  # as open() makes it
    path.chmod(0o640)
    atomic.write_text(path, "two\n")
    assert path.read_text() == "two\n" and _mode(path) == 0o640  # the replaced file's mode
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]


def test_atomic_write_file_that_fails_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")

    def half_then_fail(temp: Path) -> None:
        temp.write_bytes(b"ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic.write_file(path, half_then_fail)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_atomic_write_file_failed_rename_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError(18, "Invalid cross-device link", str(src))

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="cross-device"):
        atomic.write_bytes(path, b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_atomic_write_file_replaces_a_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("mine")
    link = tmp_path / "cache.npz"
    link.symlink_to(outside)
    atomic.write_bytes(link, b"new")
    assert outside.read_text() == "mine"
    assert not link.is_symlink() and link.read_bytes() == b"new"


def test_atomic_append_text_creates_appends_and_refuses_links(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    atomic.append_text(path, "1\n")
    atomic.append_text(path, "2\n")
    assert path.read_text() == "1\n2\n"
    outside = tmp_path / "outside.txt"
    outside.write_text("mine")
    link = tmp_path / "linked.jsonl"
    link.symlink_to(outside)
    with pytest.raises(Refused) as info:
        atomic.append_text(link, "3\n")
    assert str(info.value) == f"{link}: {LINK}; move it out of {tmp_path}"
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(Refused, match=NOT_A_FILE):
        atomic.append_text(tmp_path / "folder.jsonl", "3\n")
    assert outside.read_text() == "mine"


# --- folders -------------------------------------------------------------------------------------


def test_atomic_write_folder_creates_then_replaces(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "model"
    atomic.write_folder(target, _fill("one"), WRITTEN)
    assert _snapshot(target) == {"a.txt": b"one", "b.txt": b"ONE"}
    atomic.write_folder(target, _fill("two"), WRITTEN)
    assert _snapshot(target) == {"a.txt": b"two", "b.txt": b"TWO"}
    assert [p.name for p in target.parent.iterdir()] == ["model"]  # no staging or old copy left


def test_atomic_write_folder_stages_under_its_own_names(tmp_path: Path) -> None:
    seen = []

    def fill(staging: Path) -> None:
        seen.append(staging.name)
        _fill("x")(staging)

    atomic.write_folder(tmp_path / "last", fill, WRITTEN)
    assert len(seen) == 1 and atomic.is_staging(seen[0], "last")
    assert not atomic.is_staging(seen[0], "model")
    assert atomic.is_staging(".model.old", "model")
    for name in (".model.backup", ".model.old.1", "model", ".model.nerwin-new-", ".last.old"):
        assert not atomic.is_staging(name, "model"), name


def test_atomic_write_folder_that_fails_keeps_the_previous_folder(tmp_path: Path) -> None:
    target = tmp_path / "model"
    atomic.write_folder(target, _fill("one"), WRITTEN)

    def fail(staging: Path) -> None:
        (staging / "a.txt").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic.write_folder(target, fail, WRITTEN)
    assert _snapshot(target) == {"a.txt": b"one", "b.txt": b"ONE"}
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_atomic_write_folder_puts_the_previous_folder_back_when_the_swap_fails(
    tmp_path: Path, monkeypatch
) -> None:
    target = tmp_path / "model"
    atomic.write_folder(target, _fill("one"), WRITTEN)
    real_replace, calls = os.replace, []
    monkeypatch.setattr(atomic, "exchange", lambda a, b: False)  # the two-rename fallback

    def second_fails(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:  # target -> .model.old went through; staging -> target fails
            raise OSError(28, "No space left on device", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", second_fails)
    with pytest.raises(OSError, match="No space"):
        atomic.write_folder(target, _fill("two"), WRITTEN)
    monkeypatch.undo()
    assert calls[0] == ("model", ".model.old") and calls[2] == (".model.old", "model")
    assert _snapshot(target) == {"a.txt": b"one", "b.txt": b"ONE"}
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


@pytest.mark.parametrize("where", ["model", ".model.old"])
def test_atomic_write_folder_refuses_a_file_it_did_not_write(tmp_path: Path, where: str) -> None:
    target = tmp_path / "model"
    atomic.write_folder(target, _fill("one"), WRITTEN)
    (tmp_path / where).mkdir(exist_ok=True)
    (tmp_path / where / "notes.txt").write_text("mine")
    before = _snapshot(tmp_path)
    with pytest.raises(Refused) as info:
        atomic.write_folder(target, _fill("two"), WRITTEN)
    assert info.value.path == tmp_path / where / "notes.txt" and info.value.why == NOT_A_FILE
    assert _snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"model", where})


def test_atomic_write_folder_never_writes_through_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    atomic.write_folder(outside, _fill("one"), WRITTEN)
    run = tmp_path / "run"
    run.mkdir()
    (run / "model").symlink_to(outside)
    with pytest.raises(Refused, match="symbolic link"):
        atomic.write_folder(run / "model", _fill("two"), WRITTEN)
    assert _snapshot(outside) == {"a.txt": b"one", "b.txt": b"ONE"}
    assert [p.name for p in run.iterdir()] == ["model"]


# --- what nerwin may touch -----------------------------------------------------------------------


def test_atomic_problems_name_links_and_foreign_entries(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "file")
    missing = tmp_path / "missing"
    assert atomic.file_problem(tmp_path / "file") is None and atomic.file_problem(missing) is None
    assert atomic.file_problem(tmp_path / "dir") == (tmp_path / "dir", NOT_A_FILE)
    assert atomic.file_problem(tmp_path / "link") == (tmp_path / "link", LINK)
    assert atomic.entry_problem(tmp_path / "dir") is None and atomic.entry_problem(missing) is None
    assert atomic.entry_problem(tmp_path / "file") == (tmp_path / "file", NOT_A_FOLDER)
    assert atomic.entry_problem(tmp_path / "link") == (tmp_path / "link", LINK)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    assert atomic.folder_problem(folder, WRITTEN) is None
    assert atomic.folder_problem(missing, WRITTEN) is None
    (folder / "b.txt").symlink_to(tmp_path / "file")
    assert atomic.folder_problem(folder, WRITTEN) == (folder / "b.txt", NOT_A_FILE)


def test_atomic_remove_written_deletes_only_its_own_plain_files(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    (folder / "b.txt").symlink_to(tmp_path / "kept.txt")
    (tmp_path / "kept.txt").write_text("mine")
    (folder / "notes.txt").write_text("mine")
    atomic.remove_written(folder, WRITTEN)
    assert sorted(p.name for p in folder.iterdir()) == ["b.txt", "notes.txt"]
    (folder / "b.txt").unlink()
    (folder / "notes.txt").unlink()
    (folder / "a.txt").write_text("x")
    atomic.remove_written(folder, WRITTEN)
    assert not folder.exists()  # emptied: the folder goes too
    linked = tmp_path / "linked"
    linked.symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.txt").write_text("x")
    atomic.remove_written(linked, WRITTEN)
    assert (tmp_path / "real" / "a.txt").read_text() == "x"  # a linked folder is never entered


def test_atomic_refused_message_names_the_path_and_the_way_out(tmp_path: Path) -> None:
    err = Refused((tmp_path / "x", LINK), " or pick another --out")
    assert str(err) == f"{tmp_path / 'x'}: {LINK}; move it out of {tmp_path} or pick another --out"


def test_atomic_write_into_a_missing_folder_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "none" / "config.yaml"
    with pytest.raises(FileNotFoundError) as info:
        atomic.write_text(path, "x")
    assert info.value.filename == str(path)
