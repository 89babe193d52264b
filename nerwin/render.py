"""Text for the terminal: epoch lines, results, and a tqdm progress bar on stderr."""

from __future__ import annotations

import os
import sys

from tqdm import tqdm

from nerwin.training.loop import EpochReport


class TqdmProgress:
    """One tqdm bar per epoch on stderr; silent when stderr is not a terminal."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def start(self, epoch: int, total: int) -> None:
        """Open the bar for one epoch."""
        self.bar = tqdm(
            total=total,
            desc=f"epoch {epoch}",
            unit="win",
            unit_scale=True,
            leave=False,
            file=sys.stderr,
            disable=None,
            dynamic_ncols=True,
        )

    def advance(self, windows: int, loss: float) -> None:
        """Move the bar and show the latest loss."""
        if self.bar is not None:
            self.bar.update(windows)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def close(self) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


_stdout_failed = False  # set once stdout could not be written: print nothing more


def echo(line: str) -> None:
    """Print a result line to stdout; once its reader has gone (a closed pipe), print nothing."""
    global _stdout_failed
    if _stdout_failed:
        return
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_failed = True
        silence_stdout()
    except OSError as err:  # a full disk: say so once, and the run goes on
        _stdout_failed = True
        silence_stdout()
        print(
            f"warning: cannot write to stdout ({err.strerror or err}); training goes on, "
            "its results are in the run folder",
            file=sys.stderr,
        )


def silence_stdout() -> None:
    """Send the rest of stdout to /dev/null (the reader left, e.g. `| head -1`), quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor to point elsewhere
        pass


def progress_bar(unit: str, disable: bool | None = None) -> tqdm:
    """A counter on stderr (silent off a terminal), e.g. documents tagged from files."""
    return tqdm(unit=unit, file=sys.stderr, disable=disable, leave=False, dynamic_ncols=True)


def epoch_line(report: EpochReport) -> str:
    """One summary line per epoch."""
    dev = ""
    if report.dev is not None:
        e = report.dev.entity
        dev = f"  dev P {100 * e.precision:5.2f} R {100 * e.recall:5.2f} F1 {100 * e.f1:5.2f}"
    mark = "  *best" if report.best else ""
    member = f"member {report.member}  " if report.member else ""
    return (
        f"{member}epoch {report.epoch:>2}  loss {report.loss:.4f}{dev}  "
        f"{report.seconds:5.1f}s  {report.windows_per_s:,.0f} win/s{mark}"
    )


def diagnostic_warnings(report: EpochReport) -> list[str]:
    """The epoch's training-health warnings, one line each."""
    found = report.diagnostics.warnings if report.diagnostics is not None else []
    return [f"warning: epoch {report.epoch}: {w}" for w in found]


def result_line(result) -> str:
    """The run's outcome and where the model is: the dev F1 its meta.json records."""
    where = result.out_dir / "model"
    if result.dev is None:
        return f"done in {result.seconds:.1f}s (no dev set); model saved to {where}"
    e = result.dev.entity
    if result.member_epochs:
        epochs = ", ".join(map(str, result.member_epochs))
        head = f"ensemble of {len(result.member_epochs)} (best epochs {epochs})"
    else:
        head = f"best epoch {result.best_epoch}"
    return (
        f"{head}: dev LOC F1 {100 * e.f1:.2f} (P {100 * e.precision:.2f}, "
        f"R {100 * e.recall:.2f}) at threshold {result.threshold:.2f}{_configured(result)}; "
        f"{result.seconds:.1f}s; model saved to {where}"
    )


def _configured(result) -> str:
    """The F1 at the configured threshold (the epoch lines' one), when the stored one differs."""
    other = (result.dev_record or {}).get("at_configured_threshold")
    if not other or other["threshold"] == result.threshold:
        return ""
    return f" ({100 * other['f1']:.2f} at the epoch lines' {other['threshold']:.2f})"
