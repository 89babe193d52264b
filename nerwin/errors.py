"""The errors nerwin raises for problems a user can cause; the CLI prints them as one line."""

from __future__ import annotations

from pathlib import Path


class NerwinError(Exception):
    """Base of every user-facing error: the message is one actionable line."""


class ConfigError(NerwinError):
    """A config file, key or value is wrong; lists every problem at once."""


class DataError(NerwinError):
    """A corpus, vector file or text input is unreadable or malformed."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        where = self.path or ""
        if line is not None:
            where = f"{where}:{line}" if where else f"line {line}"
        super().__init__(f"{where}: {message}" if where else message)


class ModelError(NerwinError):
    """A model directory is missing, corrupt or from an incompatible version."""


class TrainingDiverged(NerwinError):
    """The loss became NaN or infinite during training."""

    def __init__(
        self, step: int, lr: float, loss: float, epoch: int | None = None, outcome: str = ""
    ):
        self.step, self.lr, self.loss, self.epoch, self.outcome = step, lr, loss, epoch, outcome
        where = f"step {step}" + (f" (epoch {epoch})" if epoch is not None else "")
        super().__init__(
            f"training diverged at {where}: loss is {loss} with lr={lr:g}; lower train.lr"
            + (f"; {outcome}" if outcome else "")
        )

    def told(self, outcome: str, prefix: str = "") -> TrainingDiverged:
        """The same error, saying what was kept (and, with `prefix`, which member diverged)."""
        err = TrainingDiverged(self.step, self.lr, self.loss, self.epoch, outcome)
        err.args = (prefix + str(err),)
        return err
