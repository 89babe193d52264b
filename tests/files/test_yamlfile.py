"""yamlfile: one reader for config files, with the messages config and model folders report."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerwin.files.yamlfile import NOT_SECTIONS, YamlFileError, read_sections


def _file(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "config.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _error(path: Path, empty_ok: bool = False) -> YamlFileError:
    with pytest.raises(YamlFileError) as info:
        read_sections(path, empty_ok)
    assert "\n" not in str(info.value) and info.value.path == path
    return info.value


def test_yamlfile_reads_the_sections(tmp_path: Path) -> None:
    path = _file(tmp_path, "train:\n  lr: 0.1\nmodel: {hidden: [20, 10]}\n")
    assert read_sections(path) == {"train": {"lr": 0.1}, "model": {"hidden": [20, 10]}}


def test_yamlfile_empty_file_is_empty_only_when_allowed(tmp_path: Path) -> None:
    path = _file(tmp_path, "# nothing set\n")
    assert read_sections(path, empty_ok=True) == {}
    err = _error(path)
    assert str(err) == err.brief == f"{path}: {NOT_SECTIONS}" and err.cause is None


def test_yamlfile_not_a_mapping(tmp_path: Path) -> None:
    err = _error(_file(tmp_path, "- train\n- model\n"), empty_ok=True)
    assert (
        str(err)
        == f"{tmp_path / 'config.yaml'}: expected a mapping of sections (data, model, train)"
    )


def test_yamlfile_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = _file(tmp_path, "train:\n  lr: 0.1\n  epochs: [1, 2\n")
    err = _error(path)
    assert str(err).startswith(f"{path}:") and "YAML syntax error:" in str(err)
    line = str(err)[len(str(path)) + 1 :].split(":")[0]
    assert line.isdigit() and int(line) >= 3
    assert err.brief == f"{path}: unreadable ({type(err.cause).__name__})"


def test_yamlfile_bad_tag_value_is_a_yaml_error(tmp_path: Path) -> None:
    path = _file(tmp_path, "train:\n  lr: !!float abc\n")
    err = _error(path)
    assert str(err).startswith(f"{path}: YAML error: ValueError: ")
    assert err.brief == f"{path}: unreadable (ValueError)"


def test_yamlfile_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    err = _error(missing)
    assert str(err) == f"{missing}: cannot read config (No such file or directory)"
    assert err.brief == f"{missing}: unreadable (FileNotFoundError)"
    binary = _file(tmp_path, b"train:\n  lr: \xff\n")
    err = _error(binary)
    assert str(err) == f"{binary}: cannot read config (UnicodeDecodeError)"
    assert err.brief == f"{binary}: unreadable (UnicodeDecodeError)"


# --- untrusted input: bounded reading and composing ----------------------------------------------

BILLION_LAUGHS = "".join(
    ['a: &a ["lol"' + ', "lol"' * 8 + "]\n"]
    + [
        f"{b}: &{b} [" + ", ".join(f"*{a}" for _ in range(9)) + "]\n"
        for a, b in zip("abcdefgh", "bcdefghi")
    ]
)


def test_yamlfile_alias_bomb_is_refused_while_composing(tmp_path: Path) -> None:
    """400 bytes that expand to 9^9 strings: refused by count, before anything is built."""
    import time

    assert len(BILLION_LAUGHS) < 450
    path = _file(tmp_path, BILLION_LAUGHS)
    started = time.perf_counter()
    err = _error(path)
    assert time.perf_counter() - started < 2
    assert str(err).startswith(f"{path}:") and "aliases expand the document beyond" in str(err)
    assert "lol" not in str(err) and err.brief == str(err)


def test_yamlfile_self_referring_alias_is_refused(tmp_path: Path) -> None:
    err = _error(_file(tmp_path, "train: &t\n  lr: 0.1\n  again: *t\n"))
    assert "refers to a value that contains it" in str(err)


def test_yamlfile_small_aliases_and_merge_keys_still_work(tmp_path: Path) -> None:
    path = _file(tmp_path, "model: &m {hidden: [20, 10]}\nbase: &b {lr: 0.1}\ntrain:\n  <<: *b\n")
    assert read_sections(path) == {
        "model": {"hidden": [20, 10]},
        "base": {"lr": 0.1},
        "train": {"lr": 0.1},
    }


def test_yamlfile_endless_or_huge_files_are_not_read(tmp_path: Path) -> None:
    from pathlib import Path as P

    big = tmp_path / "big.yaml"
    with open(big, "wb") as handle:
        handle.truncate(4 << 30)  # sparse 4 GiB
    err = _error(big)
    assert "too large" in str(err) and "4,294,967,296 bytes" in str(err)
    if P("/dev/zero").exists():
        with pytest.raises(YamlFileError, match="too large") as info:
            read_sections(P("/dev/zero"))
        assert "\n" not in str(info.value)


def test_yamlfile_errors_quote_little_of_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path, "train:\n  lr: !!float " + "x" * 5000 + "\n")
    err = _error(path)
    assert len(str(err)) < 300 + len(str(path))
