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
    from nerwin.render import silence_stdout

    try:
        app(prog_name="nerwin")
    except BrokenPipeError:  # the reader left: nothing more to say
        silence_stdout()
    except OSError as err:
        if err.errno == errno.EPIPE:
            silence_stdout()
            return
        silence_stdout()
        print(f"error: cannot write the output ({err.strerror or err})", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
