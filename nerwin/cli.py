"""The `nerwin` command line: parse arguments, call nerwin.api, render results."""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread: fastest for these small matrices here

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from nerwin import __version__
from nerwin.errors import NerwinError
from nerwin.training.heap import keep_freed_memory

keep_freed_memory()  # per-step arrays reuse heap pages instead of faulting in new ones

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    help="Train and run window-based location taggers on a small autodiff engine.",
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML config file (default: built-in defaults, the bundled corpus).",
        dir_okay=False,
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", "-s", help="Override a config key, e.g. --set train.lr=0.1 (repeatable)."
    ),
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
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Train and run window-based location taggers on a small autodiff engine."""


@app.command()
def train(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run directory (default: runs/<date-time>)."),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Overwrite a run directory that already holds files.")
    ] = False,
    resume: Annotated[
        Path | None,
        typer.Option(help="Continue the interrupted run in this directory.", file_okay=False),
    ] = None,
    init_from: Annotated[
        Path | None,
        typer.Option(
            help="Start from this trained model (RUN/model); new words are added.", file_okay=False
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Shortcut for --set train.seed=N.")] = None,
) -> None:
    """Train a location tagger; prints one line per epoch and the best dev scores."""
    from nerwin import api, render
    from nerwin.config import load_config

    overrides = list(set_ or []) + ([f"train.seed={seed}"] if seed is not None else [])
    if resume is not None and (config or overrides or out or force or init_from):
        raise typer.BadParameter(
            "--resume takes the run's own config; drop the other options", param_hint="--resume"
        )
    try:
        if resume is not None:
            run = api.resume_run(resume)
        else:
            run = api.open_run(load_config(config, overrides), out, force, init_from)
        for note in run.notes:
            typer.echo(note, err=True)
        for report in run.epochs(render.TqdmProgress()):
            typer.echo(render.epoch_line(report))
            for warning in render.diagnostic_warnings(report):
                typer.echo(warning, err=True)
        typer.echo(render.result_line(run.finish()))
    except api.TrainingInterrupted as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=130 if err.signal_name == "SIGINT" else 143)
    except NerwinError as err:
        _fail(err)


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model directory (RUN/model).")],
    data: Annotated[Path, typer.Option("--data", "-d", help="CoNLL file with gold tags.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    threshold: Annotated[
        float | None,
        typer.Option(help="Decision threshold (default: the model's).", min=0.0, max=1.0),
    ] = None,
) -> None:
    """Score a trained model on a CoNLL file (conlleval-style report, or --json)."""
    from nerwin import api
    from nerwin.metrics import conlleval_report

    try:
        scores = api.evaluate(model, data, threshold)
    except NerwinError as err:
        _fail(err)
    typer.echo(json.dumps(scores.to_dict()) if as_json else conlleval_report(scores))


@app.command()
def gradcheck(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    model: Annotated[
        Path | None,
        typer.Option("--model", "-m", help="Also check a trained model on a batch of its data."),
    ] = None,
    eps: Annotated[
        float, typer.Option(help="Central-difference step h.", min=1e-12, max=1.0)
    ] = 1e-4,
    tol: Annotated[float, typer.Option(help="Largest relative error that passes.", min=0.0)] = 1e-6,
) -> None:
    """Check every gradient of the engine and of a window classifier numerically (float64)."""
    from nerwin import api
    from nerwin.config import load_config

    try:
        cfg = load_config(config, list(set_ or []))
        report = api.gradcheck(cfg, model, eps, tol)
    except NerwinError as err:
        _fail(err)
    for title, results in report.sections:
        typer.echo(f"== {title}")
        for result in results:
            typer.echo(result.line())
    for note in report.notes:
        typer.echo(f"note: {note}")
    failed = sum(not r.ok for _, results in report.sections for r in results)
    total = sum(len(results) for _, results in report.sections)
    typer.echo(
        f"{total - failed} of {total} gradients ok" + (f", {failed} FAILED" if failed else "")
    )
    if failed:
        raise typer.Exit(code=1)


@app.command()
def predict(
    texts: Annotated[
        list[str] | None,
        typer.Argument(
            help="Text to tag (each argument is a document). Default: --input files, else stdin.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        Path, typer.Option("--model", "-m", help="Model directory (RUN/model).")
    ] = ...,
    input_: Annotated[
        list[Path] | None,
        typer.Option(
            "--input", "-i", help="Input file, one document per line ('-' = stdin; repeatable)."
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="inline, conll or json.")] = "inline",
    probs: Annotated[
        bool, typer.Option("--probs", help="json: add each token's probability.")
    ] = False,
    threshold: Annotated[
        float | None,
        typer.Option(help="Decision threshold (default: the model's).", min=0.0, max=1.0),
    ] = None,
    pretokenized: Annotated[
        bool, typer.Option(help="Input is CoNLL columns (one token per line), not raw text.")
    ] = False,
    word_column: Annotated[int, typer.Option(help="--pretokenized: column of the word.")] = 0,
) -> None:
    """Tag location names in text, files or stdin with a trained model."""
    from nerwin.model.folder import load_model
    from nerwin.render import progress_bar as render_progress
    from nerwin.tag.documents import sentence_document, tag_documents, text_documents
    from nerwin.tag.formats import FORMATS, render
    from nerwin.tag.inputs import conll_sentences, raw_documents

    if fmt not in FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(FORMATS)}", param_hint="--format")
    if pretokenized and texts:
        raise typer.BadParameter(
            "--pretokenized reads CoNLL from --input files or stdin, not TEXT",
            param_hint="--pretokenized",
        )
    try:
        tagger, _, _ = load_model(model)
        if pretokenized:
            docs = map(sentence_document, conll_sentences(input_ or [], word_column))
        else:
            docs = text_documents(raw_documents(texts or [], input_ or []))
        out = sys.stdout
        with render_progress(unit="doc", disable=None if input_ else True) as bar:
            for doc in tag_documents(tagger, docs, threshold):
                out.write(render(doc, fmt, probs))
                bar.update(1)
        out.flush()
    except NerwinError as err:
        _fail(err)
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
        sys.stdout = open(os.devnull, "w")
    except OSError as err:
        typer.echo(f"error: cannot write the output ({err.strerror})", err=True)
        raise typer.Exit(code=1)


@app.command()
def explain(
    texts: Annotated[
        list[str] | None,
        typer.Argument(
            help="Text to explain (each argument is a document). Default: stdin, one document per line.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        Path, typer.Option("--model", "-m", help="Model directory (RUN/model).")
    ] = ...,
    token: Annotated[
        list[int] | None,
        typer.Option(
            "--token",
            "-t",
            help="Explain token N (0-based, counted over the document's tokens; repeatable).",
        ),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Explain every token.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per document.")
    ] = False,
) -> None:
    """Show how each window position drove a token's location score (gradient x input, occlusion)."""
    from nerwin.model.folder import load_model
    from nerwin.tag.explain import Explainer, render_explanation
    from nerwin.tag.inputs import raw_documents

    if token and all_:
        raise typer.BadParameter("choose --token N or --all, not both", param_hint="--all")
    try:
        explainer = Explainer(load_model(model)[0])
        for i, text in enumerate(raw_documents(texts or [], [])):
            doc = explainer.explain(text, token, all_)
            rendered = (
                json.dumps(doc.to_dict(), ensure_ascii=False)
                if as_json
                else render_explanation(doc)
            )
            typer.echo(rendered if as_json or i == 0 else "\n" + rendered)
    except NerwinError as err:
        _fail(err)


@app.command("data")
def data_(
    train: Annotated[Path, typer.Option("--train", help="Training corpus (CoNLL columns).")],
    dev: Annotated[
        Path | None, typer.Option("--dev", help="Dev corpus: OOV rate and overlap with train.")
    ] = None,
    vectors: Annotated[
        Path | None,
        typer.Option("--vectors", help="Pretrained vectors: coverage of the training vocabulary."),
    ] = None,
    location_types: Annotated[
        list[str] | None,
        typer.Option(
            "--location-types",
            help="Entity types that count as locations (repeatable or comma-separated; default LOC).",
        ),
    ] = None,
    word_column: Annotated[int, typer.Option(help="Column of the word.")] = 0,
    tag_column: Annotated[
        int, typer.Option(help="Column of the tag (negative counts from the end).")
    ] = -1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Report on a corpus before training; exit 1 listing the problems when it cannot train."""
    from nerwin.data.report import data_report, render_report

    types = [
        t.strip() for value in (location_types or ["LOC"]) for t in value.split(",") if t.strip()
    ]
    try:
        report = data_report(train, dev, vectors, types, word_column, tag_column)
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
        Path, typer.Argument(help="Run directory (holds metrics.jsonl).", show_default=False)
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Image file (default: RUN_DIR/curves.png; .svg and .pdf work too).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Draw loss, dev P/R/F1 (and diagnostics) per epoch to an image; needs matplotlib."""
    from nerwin.training.plot import plot_run

    try:
        typer.echo(str(plot_run(run_dir, out)))
    except NerwinError as err:
        _fail(err)
