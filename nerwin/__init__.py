"""nerwin: window-based location taggers on a small reverse-mode autodiff engine."""

__version__ = "0.1.0"
