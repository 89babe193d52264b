"""Reading config files: YAML holding a mapping of sections; one-line errors name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nerwin.errors import NerwinError

# What PyYAML's safe loader raises besides YAMLError (bad !!float/!!int/!!bool tags, deep nesting)
VALUE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, RecursionError)
NOT_SECTIONS = "expected a mapping of sections (data, model, train)"


class YamlFileError(NerwinError):
    """A config file that cannot be read or parsed, or holds no mapping.

    The message explains it (with the line of a syntax error); `brief` names only the kind of
    error, as a model folder reports its config.yaml.
    """

    def __init__(self, message: str, path: Path, cause: BaseException | None = None):
        super().__init__(message)
        self.path, self.cause = path, cause

    @property
    def brief(self) -> str:
        """`PATH: unreadable (ErrorType)`, or the message when the file held no mapping."""
        if self.cause is None:
            return str(self)
        return f"{self.path}: unreadable ({type(self.cause).__name__})"


def read_sections(path: Path, empty_ok: bool = False) -> dict[str, Any]:
    """The mapping a YAML file holds ({} for an empty file when `empty_ok`), or YamlFileError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise YamlFileError(f"{path}: cannot read config ({_reason(err)})", path, err) from None
    try:
        raw = yaml.safe_load(text)
    except VALUE_ERRORS as err:
        message = f"{path}: YAML error: {type(err).__name__}: {str(err)[:200]}"
        raise YamlFileError(message, path, err) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise YamlFileError(f"{path}{where}: YAML syntax error: {problem}", path, err) from None
    if raw is None and empty_ok:
        return {}
    if not isinstance(raw, dict):
        raise YamlFileError(f"{path}: {NOT_SECTIONS}", path)
    return raw


def _reason(err: OSError | UnicodeDecodeError) -> str:
    return err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
