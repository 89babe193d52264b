"""nerwin: window-based location taggers on a small reverse-mode autodiff engine.

    import nerwin
    tagger = nerwin.load("runs/demo/model")
    doc = tagger.tag("The museums in Paris are amazing.")
    doc.entities      # (Entity(text='Paris', start=15, end=20, probability=0.99...),)

Importing nerwin changes no process-wide state; each call limits BLAS to $NERWIN_THREADS
threads (default 1) while it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = ("load", "train", "evaluate", "read_config")
_TYPES = {
    "LocationTagger": "nerwin.tag.pipeline",
    "Document": "nerwin.tag.pipeline",
    "Token": "nerwin.tag.pipeline",
    "Entity": "nerwin.tag.documents",
    "Config": "nerwin.config",
    "Scores": "nerwin.metrics",
    "TrainResult": "nerwin.training.run",
    "NerwinError": "nerwin.errors",
}
__all__ = [*_API, *_TYPES, "__version__"]

if TYPE_CHECKING:
    from nerwin.api import evaluate, load, read_config, train  # noqa: F401
    from nerwin.config import Config  # noqa: F401
    from nerwin.errors import NerwinError  # noqa: F401
    from nerwin.metrics import Scores  # noqa: F401
    from nerwin.tag.documents import Entity  # noqa: F401
    from nerwin.tag.pipeline import Document, LocationTagger, Token  # noqa: F401
    from nerwin.training.run import TrainResult  # noqa: F401


def __getattr__(name: str) -> Any:
    """The public API, imported on first use (so `import nerwin` stays fast)."""
    import importlib

    if name in _API:
        return getattr(importlib.import_module("nerwin.api"), name)
    if name in _TYPES:
        return getattr(importlib.import_module(_TYPES[name]), name)
    raise AttributeError(f"module 'nerwin' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
