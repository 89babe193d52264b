"""`python -m nerwin` runs the command-line interface."""

from nerwin.cli import app

app(prog_name="nerwin")
