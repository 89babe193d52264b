"""Learning curves of a run: loss, dev P/R/F1 and any diagnostics per epoch, drawn to an image.

matplotlib is an optional extra (`plot`); it is imported only when drawing, without pyplot, so
no GUI backend or global figure state is involved.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

from nerwin.errors import NerwinError
from nerwin.files import atomic
from nerwin.training.curves import (
    Curves,
    Series,
    best_f1,
    member_curves,
    merge_members,
    read_metrics,
)
from nerwin.training.labels import member_prefix, readable

DEFAULT_NAME = "curves.png"
INSTALL_HINT = (
    "nerwin plot needs matplotlib, an optional extra: python -m pip install "
    '"matplotlib>=3.8" (or python -m pip install -e ".[plot]" in a clone)'
)
PANEL_TITLES = {
    "diagnostics": "Hidden units (fraction of the layer)",
    "grad_norm": "Gradient norm per parameter",
    "update_ratio": "Update size / weight size per SGD step",
    "scores": "Location score s of sampled dev windows",
}  # known diagnostics groups
MEMBER_MARKERS = "os^Dv<>ph*"  # an ensemble member's marker in the diagnostics panels
LOG_SPAN = 100.0  # a diagnostics panel uses a log axis when its positive values span this factor


class PlotUnavailable(NerwinError):
    """matplotlib is not installed."""


def plot_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Draw RUN_DIR's learning curves to `out` (default RUN_DIR/curves.png); return the path.

    The format follows the suffix of `out` (png without one); the file is replaced atomically.
    """
    run_dir = Path(run_dir)
    members = member_curves(read_metrics(run_dir))
    target = Path(out) if out is not None else run_dir / DEFAULT_NAME
    title, summary = str(run_dir.resolve().name), _model_score(run_dir)
    if list(members) == [0]:
        figure = draw_curves(members[0], title, summary)
    else:
        figure = draw_members(members, title, summary)
    image = io.BytesIO()
    try:
        figure.savefig(image, format=target.suffix[1:] or "png", dpi=110)
        atomic.write_bytes(target, image.getvalue())
    except (OSError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise NerwinError(f"{target}: cannot write the figure ({reason})") from None
    return target


def _model_score(run_dir: Path) -> str | None:
    """The saved model's dev F1 as RUN/model/meta.json records it (the number `train` printed
    last), e.g. "model (epoch 3): dev location F1 94.43 at threshold 0.41"; None if absent."""
    try:
        dev = json.loads((run_dir / "model" / "meta.json").read_text(encoding="utf-8"))["dev"]
        text = (
            f"model (epoch {int(dev['epoch'])}): dev location F1 {100 * float(dev['f1']):.2f} "
            f"at threshold {float(dev['threshold']):.2f}"
        )
        other = dev.get("at_configured_threshold") or {}
        if other and float(other["threshold"]) != float(dev["threshold"]):
            text += (
                f" ({100 * float(other['f1']):.2f} at {float(other['threshold']):.2f}, as plotted)"
            )
        return text
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _informative(series: dict[str, Series]) -> dict[str, Series]:
    """The series with at least one non-zero value (an all-zero line says nothing)."""
    return {k: v for k, v in series.items() if any(x not in (None, 0.0) for x in v)}


def _panels(diagnostics: dict[str, dict[str, Series]]) -> list[tuple[str, dict[str, Series]]]:
    """The diagnostics panels worth drawing: those with an informative series."""
    kept = [(panel, _informative(series)) for panel, series in diagnostics.items()]
    return [(panel, series) for panel, series in kept if series]


def _matplotlib():
    """(Figure, MaxNLocator), or PlotUnavailable with the install command."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise PlotUnavailable(INSTALL_HINT) from None
    return Figure, MaxNLocator


def draw_curves(curves: Curves, title: str = "", summary: str | None = None):
    """A matplotlib Figure: loss, dev scores and one panel per diagnostics group."""
    panels = _panels(curves.diagnostics)
    figure, axes = _figure(2 + len(panels))
    _draw_loss(axes[0], curves)
    _draw_dev(axes[1], curves)
    for ax, (panel, series) in zip(axes[2:], panels):
        _draw_diagnostics(ax, panel, series, curves)
    _epoch_axes(axes, curves.epochs, has_dev=bool(curves.dev))
    figure.suptitle(f"{title}: {summary}" if summary else _headline(curves, title))
    return figure


def draw_members(members: dict[int, Curves], title: str = "", summary: str | None = None):
    """A Figure for an ensemble: loss and dev F1 with a curve per member, then the diagnostics."""
    merged = merge_members(members)
    panels = _panels(merged.diagnostics)
    figure, axes = _figure(2 + len(panels))
    _draw_member_loss(axes[0], members)
    _draw_member_dev(axes[1], members)
    for ax, (panel, series) in zip(axes[2:], panels):
        _draw_diagnostics(ax, panel, series, merged)
    _epoch_axes(axes, merged.epochs, has_dev=any(c.dev for c in members.values()))
    figure.suptitle(f"{title}: {summary}" if summary else _member_headline(members, title))
    return figure


def _figure(n: int):
    """A Figure with n panels in two columns, and its visible axes."""
    Figure, _ = _matplotlib()
    cols = 1 if n == 1 else 2
    rows = math.ceil(n / cols)
    figure = Figure(figsize=(6.2 * cols, 4.0 * rows), layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return figure, axes[:n]


def _epoch_axes(axes, epochs: list[int], has_dev: bool) -> None:
    """Whole-epoch x axes and a grid on every panel (not on an empty dev panel)."""
    _, MaxNLocator = _matplotlib()
    first, last = min(epochs), max(epochs)
    for ax in axes:
        if ax is axes[1] and not has_dev:
            continue
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if first == last:  # one epoch: keep the axis on whole epochs
            ax.set_xlim(first - 0.5, last + 0.5)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)


def _member_headline(members: dict[int, Curves], title: str) -> str:
    text = f"{title}: ensemble of {len(members)}"
    best = [best_f1(c) for c in members.values()]
    if None in best:
        return text
    epochs = ", ".join(str(c.best_epoch) for c in members.values())
    scores = ", ".join(f"{100 * f1:.2f}" for f1 in best)
    return f"{text}, best epochs {epochs}, members' dev location F1 {scores}"


def _headline(curves: Curves, title: str) -> str:
    best = best_f1(curves)
    if best is None:
        return f"{title}: {len(curves.epochs)} epoch(s)"
    return f"{title}: best epoch {curves.best_epoch}, dev location F1 {100 * best:.2f}"


def _values(series: Series, scale: float = 1.0) -> list[float]:
    return [math.nan if v is None else scale * v for v in series]


def _mark_best(ax, curves: Curves) -> None:
    if curves.best_epoch is not None:
        ax.axvline(
            curves.best_epoch,
            color="0.5",
            linestyle=":",
            linewidth=1.2,
            label=f"best epoch ({curves.best_epoch})",
        )


def _draw_loss(ax, curves: Curves) -> None:
    ax.plot(
        curves.epochs, _values(curves.loss), marker="o", color="tab:blue", label="training loss"
    )
    ax.set_title("Training loss (mean cross-entropy per window)")
    ax.set_ylabel("loss")
    _mark_best(ax, curves)
    lrs = {v for v in curves.lr if v is not None}
    handles, labels = ax.get_legend_handles_labels()
    if len(lrs) > 1:  # a decaying learning rate gets its own axis
        twin = ax.twinx()
        twin.plot(
            curves.epochs,
            _values(curves.lr),
            color="tab:gray",
            linestyle="--",
            label="learning rate",
        )
        twin.set_ylabel("learning rate")
        more = twin.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    elif lrs:
        ax.text(
            0.98,
            0.97,
            f"lr {lrs.pop():g}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            color="0.4",
        )
    ax.legend(handles, labels, loc="center right")


def _draw_member_loss(ax, members: dict[int, Curves]) -> None:
    ax.set_title("Training loss per member (mean cross-entropy per window)")
    ax.set_ylabel("loss")
    for i, (member, curves) in enumerate(members.items()):
        ax.plot(
            curves.epochs,
            _values(curves.loss),
            marker="o",
            color=f"C{i % 10}",
            label=f"member {member}",
        )
    ax.legend(loc="best")


def _draw_member_dev(ax, members: dict[int, Curves]) -> None:
    ax.set_title("Dev locations: entity F1 per member")
    if not any(c.dev for c in members.values()):
        _no_dev(ax)
        return
    ax.set_ylabel("%")
    for i, (member, curves) in enumerate(members.items()):
        f1 = curves.dev.get("entity f1")
        if f1 is None:
            continue
        colour = f"C{i % 10}"
        ax.plot(curves.epochs, _values(f1, 100), marker="o", color=colour, label=f"member {member}")
        best = best_f1(curves)
        if best is not None:
            ax.plot(
                [curves.best_epoch],
                [100 * best],
                marker="*",
                markersize=13,
                color=colour,
                markeredgecolor="black",
                markeredgewidth=0.6,
                linestyle="none",
            )
    ax.legend(loc="best", framealpha=0.9)


def _no_dev(ax) -> None:
    """An empty dev panel that says why."""
    ax.text(
        0.5,
        0.5,
        "no dev set (data.dev: null)",
        transform=ax.transAxes,
        ha="center",
        va="center",
        color="0.4",
    )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_ylabel("")


_DEV_STYLE = {  # series -> (label, colour, line style, marker)
    "entity precision": ("Precision", "tab:orange", "-", "s"),
    "entity recall": ("Recall", "tab:green", "-", "^"),
    "entity f1": ("F1", "tab:red", "-", "o"),
    "token f1": ("token F1", "tab:purple", "--", None),
}


def _draw_dev(ax, curves: Curves) -> None:
    ax.set_title("Dev locations: entity precision, recall, F1")
    ax.set_ylabel("%")
    if not curves.dev:
        _no_dev(ax)
        return
    for name, (label, color, style, marker) in _DEV_STYLE.items():
        if name in curves.dev:
            ax.plot(
                curves.epochs,
                _values(curves.dev[name], 100),
                color=color,
                linestyle=style,
                marker=marker,
                label=label,
            )
    best = best_f1(curves)
    if best is None:
        _mark_best(ax, curves)
    else:
        ax.axvline(curves.best_epoch, color="0.5", linestyle=":", linewidth=1.2)
        ax.plot(
            [curves.best_epoch],
            [100 * best],
            marker="*",
            markersize=15,
            color="tab:red",
            markeredgecolor="black",
            markeredgewidth=0.6,
            linestyle="none",
            label=f"best epoch {curves.best_epoch}: F1 {100 * best:.2f}",
        )
    ax.legend(loc="best", framealpha=0.9)


def _draw_diagnostics(ax, panel: str, series: dict[str, Series], curves: Curves) -> None:
    """A line per series; X.p10 with X.p90 become a band, X.p50 a dashed line; a colour per X
    (the same X of each ensemble member, "member K X", shares a colour and gets its own marker)."""
    ax.set_title(PANEL_TITLES.get(panel, panel.replace("_", " ")))
    colours = {}
    for name, values in series.items():
        stem, _, stat = name.rpartition(".")
        member, own = member_prefix(stem or name)
        colour = colours.setdefault(own, f"C{len(colours) % 10}")
        marker = MEMBER_MARKERS[(member - 1) % len(MEMBER_MARKERS)] if member else "."
        if stat == "p90" and f"{stem}.p10" in series:
            continue
        if stat == "p10" and f"{stem}.p90" in series:
            ax.fill_between(
                curves.epochs,
                _values(values),
                _values(series[f"{stem}.p90"]),
                color=colour,
                alpha=0.15,
                label=readable(name),
            )
        else:
            ax.plot(
                curves.epochs,
                _values(values),
                marker=marker,
                color=colour,
                label=readable(name),
                linestyle="--" if stat == "p50" else "-",
            )
    positive = [v for values in series.values() for v in values if v is not None and v > 0]
    if (
        positive
        and len(positive) == sum(v is not None for vs in series.values() for v in vs)
        and max(positive) >= LOG_SPAN * min(positive)
    ):
        ax.set_yscale("log")
    _mark_best(ax, curves)
    ax.legend(fontsize="small", loc="best", ncols=2 if len(series) > 6 else 1)
