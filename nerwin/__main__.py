"""`python -m nerwin` and the `nerwin` console script: the CLI, with output failures as one line."""

from __future__ import annotations

import errno
import sys


def main() -> None:
    """Run the command line; a closed, full or failing stdout is one `error:` line, exit 1."""
    if sys.stdout is None:  # started with stdout closed (`nerwin ... >&-`)
        print("error: standard output is closed; nothing to write the results to", file=sys.stderr)
        raise SystemExit(1)
    if (sys.stdout.encoding or "").lower().replace("-", "") != "utf8":
        sys.stdout.reconfigure(errors="backslashreplace")  # text the terminal cannot show: \xNN
    from nerwin.cli import app

    try:
        app(prog_name="nerwin")
    except BrokenPipeError:  # the reader left: nothing more to say
        _silence_stdout()
    except OSError as err:
        if err.errno == errno.EPIPE:
            _silence_stdout()
            return
        _silence_stdout()
        print(f"error: cannot write the output ({err.strerror or err})", file=sys.stderr)
        raise SystemExit(1) from None


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    main()
