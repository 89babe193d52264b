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
