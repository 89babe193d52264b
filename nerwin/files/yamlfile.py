"""Reading config files: YAML holding a mapping of sections; one-line errors name the file.

A config is small and may come from anyone (a model folder's config.yaml is untrusted input),
so reading is bounded: at most MAX_BYTES are read (a regular file's size is checked first; a
pipe or device such as /dev/zero is read no further than that), and a document whose aliases
expand to more than MAX_NODES values is refused while it is composed, before anything is
built from it (a 400-byte "billion laughs" expands to 10^9 values). Aliases that refer to
themselves are refused too. Error messages quote nothing of the file but a line number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nerwin.errors import NerwinError
from nerwin.files import bounded

# What PyYAML's safe loader raises besides YAMLError (bad !!float/!!int/!!bool tags, deep nesting)
VALUE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, RecursionError)
NOT_SECTIONS = "expected a mapping of sections (data, model, train)"
MAX_BYTES = 1 << 20  # a config file larger than this (1 MiB) is refused unread
MAX_NODES = 10_000  # values a document may expand to, aliases counted at their full size


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
        """`PATH: unreadable (ErrorType)`, or the message when the file held no mapping or
        expands too far."""
        if self.cause is None or isinstance(self.cause, TooLarge):
            return str(self)
        return f"{self.path}: unreadable ({type(self.cause).__name__})"


class TooLarge(yaml.YAMLError):
    """A document whose aliases expand beyond MAX_NODES values, or refer to themselves."""

    def __init__(self, problem: str, mark: yaml.Mark | None):
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


class BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader that counts, while composing, how many values each node expands to
    (an alias counts as the whole node it names) and stops past MAX_NODES."""

    def __init__(self, stream: str | bytes):
        super().__init__(stream)
        self._expanded: dict[int, int] = {}  # id(node) -> values it expands to

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        alias = self.check_event(yaml.AliasEvent)
        mark = self.peek_event().start_mark
        node = super().compose_node(parent, index)
        size = self._expanded.get(id(node))
        if alias and size is None:  # the alias names a node still being composed: a loop
            raise TooLarge("an alias refers to a value that contains it", mark)
        if size is None:
            size = 1 + sum(self._expanded[id(child)] for child in _children(node))
            self._expanded[id(node)] = size
        if size > MAX_NODES:
            raise TooLarge(
                f"aliases expand the document beyond {MAX_NODES:,} values; "
                "write the values out instead of aliasing them",
                mark,
            )
        return node


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_text(text: str | bytes) -> Any:
    """yaml.safe_load, bounded as the module docstring says (TooLarge beyond the bound)."""
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_sections(path: Path, empty_ok: bool = False) -> dict[str, Any]:
    """The mapping a YAML file holds ({} for an empty file when `empty_ok`), or YamlFileError."""
    try:
        data = bounded.read_limited(path, MAX_BYTES, regular_only=False)
    except OSError as err:
        raise YamlFileError(f"{path}: cannot read config ({_reason(err)})", path, err) from None
    return parse_sections(data, path, empty_ok)


def parse_sections(data: bytes, path: Path, empty_ok: bool = False) -> dict[str, Any]:
    """The mapping the YAML `data` read from `path` holds (see read_sections)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise YamlFileError(f"{path}: cannot read config ({_reason(err)})", path, err) from None
    try:
        raw = load_text(text)
    except VALUE_ERRORS as err:
        message = f"{path}: YAML error: {type(err).__name__}: {_excerpt(str(err))}"
        raise YamlFileError(message, path, err) from None
    except TooLarge as err:
        where = f":{err.problem_mark.line + 1}" if err.problem_mark is not None else ""
        raise YamlFileError(f"{path}{where}: {err.problem}", path, err) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        message = f"{path}{where}: YAML syntax error: {_excerpt(problem)}"
        raise YamlFileError(message, path, err) from None
    if raw is None and empty_ok:
        return {}
    if not isinstance(raw, dict):
        raise YamlFileError(f"{path}: {NOT_SECTIONS}", path)
    return raw


def _excerpt(text: str, limit: int = 200) -> str:
    """`text` on one line, control characters escaped, cut to `limit` characters."""
    flat = "".join(c if c.isprintable() else repr(c)[1:-1] for c in " ".join(text.split()))
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _reason(err: OSError | UnicodeDecodeError) -> str:
    return err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
