"""Package versions recorded with every run, for reproducibility."""

from __future__ import annotations

import platform
from importlib import metadata


def versions() -> dict[str, str]:
    """Versions of Python, nerwin and the packages that affect results."""
    found = {"python": platform.python_version()}
    for name in ("nerwin", "numpy", "pyyaml", "typer"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "unknown"
    return found
