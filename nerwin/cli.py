"""The `nerwin` command line: parse arguments, call nerwin.api, render results."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from nerwin import __version__
from nerwin.errors import NerwinError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Train and run window-based location taggers on a small autodiff engine.",
)


OutputFormat = StrEnum("OutputFormat", {f: f for f in ("inline", "conll", "json")})  # predict -f
InputFormat = StrEnum("InputFormat", {"text": "text", "jsonl": "jsonl"})  # predict --input-format


ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--config",
        "-c",
        metavar="FILE|NAME",
        help="YAML config file, or a shipped config's name (default, conll2003, "
        "conll2003-random). Default: built-in defaults on the bundled corpus.",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="KEY=VALUE",
        help="Override a config key, e.g. --set train.lr=0.1 (repeatable).",
    ),
]
ModelOpt = Annotated[
    Path, typer.Option("--model", "-m", metavar="DIR", help="Model directory (RUN/model).")
]
ThresholdOpt = Annotated[
    float | None,
    typer.Option(help="Decision threshold (default: the model's).", min=0.0, max=1.0),
]


def _fail(err: NerwinError) -> None:
    """Print a user error as one line and exit 1."""
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(code=1)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nerwin {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Train and run window-based location taggers on a small autodiff engine."""
    from nerwin.training.heap import keep_freed_memory

    keep_freed_memory()  # this process's per-step arrays reuse heap pages


@app.command()
def train(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", metavar="DIR", help="Run directory (default: runs/<date-time>-<id>)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a run directory that already holds files.")
    ] = False,
    resume: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="Continue the interrupted run in this directory."),
    ] = None,
    init_from: Annotated[
        Path | None,
        typer.Option(
            metavar="MODEL_DIR",
            help="Start from this trained model (RUN/model); new words are added.",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Shortcut for --set train.seed=N.")] = None,
) -> None:
    """Train a location tagger; prints one line per epoch and the best dev scores."""
    from nerwin import api

    overrides = list(set_ or []) + ([f"train.seed={seed}"] if seed is not None else [])
    if resume is not None and (config or overrides or out or force or init_from):
        raise typer.BadParameter(
            "--resume takes the run's own config; drop the other options", param_hint="--resume"
        )
    try:
        with api.blas_threads():
            _train(config, overrides, out, force, resume, init_from)
    except api.TrainingInterrupted as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=130 if err.signal_name == "SIGINT" else 143) from None
    except NerwinError as err:
        _fail(err)


def _train(
    config: str | None,
    overrides: list[str],
    out: Path | None,
    force: bool,
    resume: Path | None,
    init_from: Path | None,
) -> None:
    """Open (or resume) the run, print its notes, a line per epoch and the result."""
    from nerwin import api, render

    if resume is not None:
        run = api.resume_run(resume)
    else:
        run = api.open_run(api.read_config(config, overrides), out, force, init_from)
    for note in run.notes:
        typer.echo(note, err=True)
    for report in run.epochs(render.TqdmProgress()):
        render.echo(render.epoch_line(report))
        for warning in render.diagnostic_warnings(report):
            typer.echo(warning, err=True)
    render.echo(render.result_line(run.finish()))


@app.command()
def evaluate(
    model: ModelOpt,
    data: Annotated[
        Path, typer.Option("--data", "-d", metavar="FILE", help="CoNLL file with gold tags.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    threshold: ThresholdOpt = None,
    location_types: Annotated[
        list[str] | None,
        typer.Option(
            "--location-types",
            metavar="TYPE[,TYPE]",
            help="Entity types that count as locations (default: the model's).",
        ),
    ] = None,
) -> None:
    """Score a trained model on a CoNLL file (conlleval-style report, or --json)."""
    from nerwin import api
    from nerwin.metrics import conlleval_report

    try:
        scores = api.evaluate(model, data, threshold, _types(location_types) or None)
    except NerwinError as err:
        _fail(err)
    typer.echo(json.dumps(scores.to_dict()) if as_json else conlleval_report(scores))


@app.command()
def gradcheck(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            "-m",
            metavar="DIR",
            help="Also check a trained model on a batch of its data.",
        ),
    ] = None,
    eps: Annotated[
        float, typer.Option(help="Central-difference step h.", min=1e-12, max=1.0)
    ] = 1e-4,
    tol: Annotated[float, typer.Option(help="Largest relative error that passes.", min=0.0)] = 1e-6,
) -> None:
    """Check every gradient of the engine and of a window classifier numerically (float64)."""
    from nerwin import api

    try:
        report = api.gradcheck(api.read_config(config, list(set_ or [])), model, eps, tol)
    except NerwinError as err:
        _fail(err)
    for title, results in report.sections:
        typer.echo(f"== {title}")
        for result in results:
            typer.echo(result.line())
    for note in report.notes:
        typer.echo(f"note: {note}")
    failed = f", {report.failed} FAILED" if report.failed else ""
    typer.echo(f"{report.total - report.failed} of {report.total} gradients ok{failed}")
    if report.failed:
        raise typer.Exit(code=1)


@app.command()
def predict(
    texts: Annotated[
        list[str] | None,
        typer.Argument(metavar="TEXT", show_default=False, help="Documents (default: --input)."),
    ] = None,
    model: ModelOpt = ...,
    input_: Annotated[
        list[Path] | None,
        typer.Option("--input", "-i", metavar="FILE", help="Input file ('-' = stdin; repeatable)."),
    ] = None,
    fmt: Annotated[
        OutputFormat,
        typer.Option("--format", "-f", help="Output format (offsets: Unicode code points)."),
    ] = OutputFormat.inline,
    input_format: Annotated[
        InputFormat, typer.Option(help='Each line is a document, or {"id": ..., "text": ...}.')
    ] = InputFormat.text,
    probs: Annotated[bool, typer.Option("--probs", help="Add P(location).")] = False,
    threshold: ThresholdOpt = None,
    pretokenized: Annotated[
        bool, typer.Option("--pretokenized", help="Input is CoNLL columns, not raw text.")
    ] = False,
    word_column: Annotated[int, typer.Option(help="--pretokenized: column of the word.")] = 0,
    cache_mb: Annotated[
        float | None, typer.Option(min=0.0, help="Row cache in MB (default 160; 0 = off).")
    ] = None,
    ids: Annotated[bool, typer.Option("--ids", help="Give file lines ids: FILE:LINE.")] = False,
    scheduler: Annotated[
        str | None, typer.Option(metavar="ADDRESS", help="Tag on this Dask scheduler, into --out.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, metavar="N", help="Tag on N local Dask worker processes.")
    ] = None,
    out: Annotated[Path | None, typer.Option(metavar="DIR", help="Dask: shards' folder.")] = None,
) -> None:
    """Tag location names in text, files or stdin; output follows the input line by line.

    Offsets (json start/end) are Unicode code points, i.e. Python string indices into the text.
    conll opens each document with '-DOCSTART-' (and its JSON-lines id) and a blank line.
    --scheduler/--workers tag --input files (globs too) on Dask, with --ids, into --out shards.
    """
    from nerwin import api, render
    from nerwin.tag.dask import tag_files
    from nerwin.tag.formats import write_documents
    from nerwin.tag.inputs import InputSource

    jsonl, dask = input_format is InputFormat.jsonl, scheduler is not None or workers is not None
    lines = jsonl or ids or dask  # these read file lines (not TEXT), as --pretokenized reads CoNLL
    if (pretokenized or lines) and (texts or (pretokenized and lines)):
        hint = "--pretokenized / --input-format jsonl / --ids / --scheduler / --workers"
        why = "read --input files or stdin, not TEXT; --pretokenized goes with none of the others"
        raise typer.BadParameter(why, param_hint=hint)
    if dask != (out is not None) or (scheduler and workers) or (dask and not input_):
        why = "give one of them, with --input FILE ... and --out DIR (the shards' folder)"
        raise typer.BadParameter(why, param_hint="--scheduler / --workers")
    try:
        if dask:
            where = (model, input_, out, input_format.value, fmt.value, scheduler or workers)
            options = {"threshold": threshold, "probs": probs, "cache_mb": cache_mb}
            return render.echo(str(tag_files(*where, progress=sys.stderr.isatty(), **options)))
        source = InputSource(texts or [], input_ or [])
        docs = source.documents(input_format.value, pretokenized, word_column, ids)
        with render.progress_bar(unit="doc", disable=None if input_ else True) as bar:
            tagged = api.predict(model, docs, threshold, idle=source.idle, cache_mb=cache_mb)
            write_documents(tagged, sys.stdout, fmt.value, probs, bar.update)
    except NerwinError as err:
        _fail(err)
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
        render.silence_stdout()
    except OSError as err:
        typer.echo(f"error: cannot write the output ({err.strerror})", err=True)
        raise typer.Exit(code=1) from None


@app.command()
def explain(
    texts: Annotated[
        list[str] | None,
        typer.Argument(metavar="TEXT", show_default=False, help="Documents (default: stdin)."),
    ] = None,
    model: ModelOpt = ...,
    token: Annotated[
        list[int] | None,
        typer.Option(
            "--token",
            "-t",
            metavar="N",
            help="Explain token N (0-based, counted over the document's tokens; repeatable).",
        ),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Explain every token.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per document.")
    ] = False,
) -> None:
    """Show how each window position drove a token's location score (gradient x input)."""
    from nerwin import api
    from nerwin.tag.explain import render_explanation
    from nerwin.tag.inputs import raw_documents

    if token and all_:
        raise typer.BadParameter("choose --token N or --all, not both", param_hint="--all")
    try:
        documents = api.explain(model, raw_documents(texts or [], []), token, all_)
        for i, doc in enumerate(documents):
            if as_json:
                typer.echo(json.dumps(doc.to_dict(), ensure_ascii=False))
            else:
                typer.echo(("" if i == 0 else "\n") + render_explanation(doc))
    except NerwinError as err:
        _fail(err)


@app.command("data")
def data_(
    train: Annotated[
        Path, typer.Option("--train", metavar="FILE", help="Training corpus (CoNLL columns).")
    ],
    dev: Annotated[
        Path | None,
        typer.Option("--dev", metavar="FILE", help="Dev corpus: OOV rate and overlap with train."),
    ] = None,
    vectors: Annotated[
        Path | None,
        typer.Option("--vectors", metavar="FILE", help="Pretrained vectors: their coverage."),
    ] = None,
    location_types: Annotated[
        list[str] | None,
        typer.Option(
            "--location-types",
            metavar="TYPE[,TYPE]",
            help="Entity types that count as locations (repeatable or comma-separated; LOC).",
        ),
    ] = None,
    word_column: Annotated[int, typer.Option(help="Column of the word.")] = 0,
    tag_column: Annotated[
        int, typer.Option(help="Column of the tag (negative: from the end).")
    ] = -1,
    gazetteer: Annotated[
        list[str] | None,
        typer.Option(metavar="geonames|FILE", help="Place names: coverage of the entities."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Report on a corpus before training; exit 1 listing the problems when it cannot train."""
    from nerwin import api
    from nerwin.data.report import render_report

    types = _types(location_types) or ["LOC"]
    try:
        report = api.data_report(
            train, dev, vectors, types, word_column, tag_column, gazetteer or ()
        )
    except NerwinError as err:
        _fail(err)
    typer.echo(
        json.dumps(report.to_dict(), ensure_ascii=False) if as_json else render_report(report)
    )
    if report.problems:
        typer.echo(f"error: the data cannot train: {'; '.join(report.problems)}", err=True)
        raise typer.Exit(code=1)


@app.command()
def plot(
    run_dir: Annotated[
        Path, typer.Argument(metavar="RUN_DIR", help="Run directory (holds metrics.jsonl).")
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="FILE", help="Image (RUN_DIR/curves.png; .svg, .pdf)."),
    ] = None,
) -> None:
    """Draw loss, dev P/R/F1 (and diagnostics) per epoch to an image; needs matplotlib."""
    from nerwin import api

    try:
        typer.echo(str(api.plot(run_dir, out)))
    except NerwinError as err:
        _fail(err)


def _types(values: list[str] | None) -> list[str]:
    """Entity types from repeated and comma-separated option values."""
    return [t.strip() for value in (values or []) for t in value.split(",") if t.strip()]
