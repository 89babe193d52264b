"""Where things live: the project root (bundled corpus), the vector cache, run directories."""

from __future__ import annotations

import os
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def resolve_data_path(path: str) -> Path:
    """`path` as given (relative to the current directory); else under the project root if there."""
    given = Path(path).expanduser()
    if given.exists() or given.is_absolute():
        return given
    bundled = PROJECT_ROOT / given
    return bundled if bundled.exists() else given


def cache_dir() -> Path:
    """The vector cache folder: $NERWIN_CACHE, else $XDG_CACHE_HOME/nerwin, else ~/.cache/nerwin."""
    if os.environ.get("NERWIN_CACHE"):
        return Path(os.environ["NERWIN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nerwin"


def default_run_dir() -> Path:
    """runs/<date-time>, a fresh folder name for each run."""
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")
