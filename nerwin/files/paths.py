"""Where things live: the bundled corpus and configs, the vector cache, run directories."""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

from nerwin.errors import ConfigError, NerwinError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INSTALLED_ROOT = Path(__file__).resolve().parents[1] / "bundled"  # data/ and configs/ in a wheel
CONFIG_SUFFIXES = (".yaml", ".yml")
PATH_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_-]*)\}")  # ${conll2003} in data paths


def resource_root() -> Path:
    """The folder holding data/default and configs: the installed package's copy, else the
    source checkout (an editable install)."""
    return INSTALLED_ROOT if INSTALLED_ROOT.is_dir() else PROJECT_ROOT


def resolve_data_path(path: str) -> Path:
    """`path` as given (relative to the current directory), else the bundled file if it exists."""
    given = Path(path).expanduser()
    if given.exists() or given.is_absolute():
        return given
    bundled = resource_root() / given
    return bundled if bundled.exists() else given


def shipped_configs() -> dict[str, Path]:
    """The configs that ship with nerwin, by name (`default`, `conll2003`, ...)."""
    folder = resource_root() / "configs"
    found = sorted(folder.glob("*.y*ml")) if folder.is_dir() else []
    return {p.stem: p for p in found if p.suffix in CONFIG_SUFFIXES}


def find_config(name: str) -> Path:
    """A config file: the path as given if it exists, else a shipped config of that name."""
    given = Path(name).expanduser()
    if given.exists() or given.suffix in CONFIG_SUFFIXES or len(given.parts) > 1:
        return given  # a missing file is reported by the reader, naming the path
    shipped = shipped_configs()
    if name in shipped:
        return shipped[name]
    names = ", ".join(shipped) or "none"
    raise ConfigError(
        f"{name}: no such config file, nor a shipped config of that name (shipped: {names})"
    )


def cache_dir() -> Path:
    """The vector cache folder: $NERWIN_CACHE, else $XDG_CACHE_HOME/nerwin, else ~/.cache/nerwin."""
    if os.environ.get("NERWIN_CACHE"):
        return Path(os.environ["NERWIN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nerwin"


def default_run_dir(parent: Path = Path("runs")) -> Path:
    """A new, empty runs/<date-time>-<4 hex>, created here: runs started at once never share one."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            folder = parent / f"{stamp}-{secrets.token_hex(2)}"
            try:
                folder.mkdir()  # atomic: fails if another process took the name first
                return folder
            except FileExistsError:
                continue
    except OSError as err:
        raise NerwinError(
            f"{parent}: cannot create a run folder ({err.strerror}); pass --out DIR"
        ) from None
    raise NerwinError(f"{parent}: no free run folder name for {stamp}; pass --out DIR")


def expand_variables(template: str, named: dict[str, str]) -> str:
    """`template` with each ${name} replaced by $NERWIN_<NAME>, else named[name] (else kept)."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        return os.environ.get(path_variable(name)) or named.get(name, match.group(0))

    return PATH_VARIABLE.sub(value, template)


def path_variable(name: str) -> str:
    """The environment variable that overrides paths.<name>: NERWIN_<NAME>."""
    return "NERWIN_" + name.upper().replace("-", "_")
