"""The plot of a threshold (binary) search, as a researcher reads it.

Panels share the tested value on x (log when the values span decades):

* the metric: one dot per job (green: its value succeeded, red: failed), the
  aggregate per value (a diamond, joined by a line), the target when the success
  rule is a comparison (or the search's margins imply one);
* the success fraction per value with its count (``k/n``): jobs judged a success
  (probabilistic), jobs the rule passes, or the verdicts (bisection); contradicting
  pairs ringed in orange and joined by an arc;
* the posterior over the threshold (probabilistic) or the bracket after each round
  with the values it tested (bisection).

Every panel shades the answer's interval and marks the answer. When the full axis
would squash the decisive values together, a second column zooms on the answer.
Header lines give the answer and what it can't say (outside the range,
contradictions, margin). Drawn on an Agg canvas, without pyplot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runner.grid_points import is_number
from runner.sweep_text import format_value
from runner.threshold_view import ThresholdView, ValueView
from runner.threshold_words import noise_text, threshold_answer, threshold_warnings

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["draw_threshold"]

_GREEN, _RED, _GREY, _ORANGE, _BLUE = "tab:green", "tab:red", "tab:gray", "darkorange", "tab:blue"
_RING: dict[str, Any] = {
    "s": 140,
    "facecolors": "none",
    "edgecolors": _ORANGE,
    "lw": 1.5,
    "zorder": 5,
}


def _color(view: ValueView, counted: str) -> str:
    if counted == "jobs" and view.fraction is not None:
        return _GREEN if view.fraction > 0.5 else _RED if view.fraction < 0.5 else _GREY
    return {True: _GREEN, False: _RED, None: _GREY}[view.verdict]


def _visible(values: Sequence[ValueView], window: tuple[float, float] | None) -> list[ValueView]:
    if window is None:
        return list(values)
    return [v for v in values if window[0] <= v.value <= window[1]]


def _answer_marks(ax: Axes, view: ThresholdView, *, legend: bool) -> None:
    """The interval (shaded), the answer, its failing neighbour and the range ends."""
    s = view.summary

    def label(text: str) -> str:
        return text if legend else f"_{text}"  # a leading underscore keeps it off the legend

    if s.interval is not None and all(is_number(v) for v in s.interval):
        lo, hi = (float(v) for v in s.interval)
        name = "interval"
        if s.method == "probabilistic" and s.confidence is not None:
            name = f"{s.confidence:.0%} credible interval"
        ax.axvspan(lo, hi, color=_BLUE, alpha=0.15, label=label(f"{name} ({lo:.4g}, {hi:.4g})"))
    answer = view.answer
    if answer is not None:
        word = "estimate" if s.method == "probabilistic" else "answer"
        ax.axvline(answer, color=_GREEN, lw=1.6, label=label(f"{word} {view.prop}={answer:.4g}"))
    if s.method != "probabilistic" and s.failed is not None and is_number(s.failed.value):
        ax.axvline(
            float(s.failed.value),
            color=_RED,
            lw=1,
            ls=":",
            label=label(f"failing neighbour {view.prop}={format_value(s.failed.value)}"),
        )
    for i, end in enumerate(s.range or ()):
        if not is_number(end):
            continue
        beyond = s.outside_range == ("below", "above")[i]
        ax.axvline(
            float(end),
            color="darkred" if beyond else "black",
            lw=1.2 if beyond else 0.8,
            ls="--" if beyond else ":",
            label=label(f"threshold may lie {s.outside_range} {end:g}") if beyond else "_range",
        )


def _metric_panel(ax: Axes, view: ThresholdView, shown: list[ValueView], *, legend: bool) -> None:
    xs, ys, colors = [], [], []
    for v in shown:
        for y in v.jobs:
            xs.append(v.value)
            ys.append(y)
            colors.append(_color(v, view.counted))
    if xs:
        ax.scatter(
            xs,
            ys,
            s=16,
            c=colors,
            alpha=0.45,
            lw=0,
            zorder=3,
            label=f"jobs ({len(xs)})" if legend else "_jobs",
        )
    pend = [(v.value, y) for v in shown for y in v.pending]
    if pend:
        ax.scatter(
            [p[0] for p in pend],
            [p[1] for p in pend],
            s=22,
            facecolors="none",
            edgecolors=_GREY,
            zorder=3,
            label="ended, not judged yet" if legend else "_p",
        )
    agg = [v for v in shown if v.aggregate is not None]
    agg_y = [float(v.aggregate) for v in agg if v.aggregate is not None]
    if agg:
        ax.plot(
            [v.value for v in agg],
            agg_y,
            color=_GREY,
            lw=0.8,
            zorder=2,
            label="_line",
        )
        ax.scatter(
            [v.value for v in agg],
            agg_y,
            s=46,
            marker="D",
            c=[_color(v, view.counted) for v in agg],
            edgecolors="black",
            lw=0.7,
            zorder=4,
            label=view.aggregate if legend else f"_{view.aggregate}",
        )
    if view.target is not None:
        source = " (from the margins)" if view.target.source == "margin" else ""
        ax.axhline(
            view.target.value,
            color="black",
            ls="--",
            lw=1,
            label=f"target: {view.metric} {view.target.op} {view.target.value:g}{source}"
            if legend
            else "_target",
        )
    if legend and view.summary.inconsistencies:  # ringed in the panel below
        ax.scatter([], [], label="inconsistent pair", **_RING)
    ax.set_ylabel(str(view.metric))


def _count_labels(ax: Axes, view: ThresholdView, shown: Sequence[ValueView]) -> None:
    """Each value's ``k/n`` above (or below) its marker, where it overlaps no other: once
    the axes' limits are final, the values nearest the answer first."""
    to_points = 72.0 / ax.figure.dpi
    box = ax.get_window_extent()
    left, right = box.x0 * to_points, box.x1 * to_points
    bottom, top = box.y0 * to_points, box.y1 * to_points
    answer = view.answer if view.answer is not None else 0.0
    judged = [v for v in shown if v.fraction is not None]
    if view.counted == "verdicts":  # one verdict: its height and colour say it all
        judged = [v for v in judged if (v.judged or 0) > 1]
    placed: list[tuple[float, float, float]] = []  # (x, y, half width) in points
    for v in sorted(judged, key=lambda v: abs(v.value - answer)):
        text = f"{v.successes}/{v.judged}"
        x, y = (c * to_points for c in ax.transData.transform((v.value, v.fraction or 0.0)))
        half = 2.2 * len(text) + 1
        for lift in (6.0, 15.0, -14.0):
            at = y + lift + 4  # the text's middle: it is 8 points high
            inside = left <= x - half and x + half <= right and bottom <= at - 4 <= top - 8
            clear = all(abs(x - px) >= half + ph or abs(at - py) >= 9 for px, py, ph in placed)
            if inside and clear:
                placed.append((x, at, half))
                ax.annotate(
                    text,
                    (v.value, v.fraction or 0.0),
                    xytext=(0, lift),
                    textcoords="offset points",
                    ha="center",
                    fontsize=7,
                )
                break


def _or_half(fraction: float | None) -> float:
    return 0.5 if fraction is None else fraction


def _fraction_panel(ax: Axes, view: ThresholdView, shown: list[ValueView]) -> None:
    judged = [v for v in shown if v.fraction is not None]
    ax.scatter(
        [v.value for v in judged],
        [v.fraction or 0.0 for v in judged],
        s=[16 + 6 * min(v.judged or 1, 16) for v in judged],  # the area grows with the count
        zorder=3,
        c=[_color(v, view.counted) for v in judged],
        label="success fraction",
    )
    ax.axhline(0.5, color=_GREY, lw=0.5, ls=":")
    ax.set_ylim(-0.15, 1.35)
    ax.set_yticks([0, 0.5, 1])
    ax.set_ylabel(
        {
            "jobs": "jobs succeeded",
            "rule": "jobs passing\nthe rule",
            "verdicts": "verdicts:\nsuccess",
        }[view.counted],
        fontsize=8,
    )
    at = {v.value: v.fraction for v in view.values}
    rings_x: list[float] = []
    rings_y: list[float] = []
    for pair in view.summary.inconsistencies:
        if not (is_number(pair.success) and is_number(pair.failure)):
            continue
        ends = [float(pair.success), float(pair.failure)]
        rings_x += ends
        rings_y += [_or_half(at.get(x)) for x in ends]
        # A bracket over the pair (a line, so it is clipped to the panel like the data).
        ax.plot(
            [ends[0], ends[0], ends[1], ends[1]],
            [1.04, 1.13, 1.13, 1.04],
            color=_ORANGE,
            lw=1.2,
            label="_pair",
        )
        state = "resolved" if pair.resolved else "unresolved"
        ax.text(
            sum(ends) / 2,
            1.16,
            f"contradiction ({state})",
            color=_ORANGE,
            fontsize=7,
            ha="center",
            va="bottom",
            clip_on=True,
        )
    if rings_x:
        ax.scatter(rings_x, rings_y, label="inconsistent pair", **_RING)


def _bottom_panel(ax: Axes, view: ThresholdView) -> None:
    if view.posterior:
        xs = [x for x, _ in view.posterior]
        ps = [p for _, p in view.posterior]
        ax.vlines(xs, 0, ps, color=_BLUE, lw=3, label="posterior")
        ax.set_ylabel("P(threshold\n= value)", fontsize=8)
        ax.set_ylim(0, max(ps) * 1.15 or 1)
        if view.beyond >= 0.001:
            ax.text(
                0.01,
                0.92,
                f"P(beyond the range) = {view.beyond:.3f}",
                transform=ax.transAxes,
                fontsize=7,
                va="top",
                color="darkred",
            )
        return
    for r, lo, hi in view.brackets:
        ax.hlines(r, lo, hi, color=_BLUE, lw=2, alpha=0.5, label="bracket" if r == 1 else "_b")
    for verdict, marker, color in ((True, "o", _GREEN), (False, "x", _RED), (None, "s", _GREY)):
        chosen = [
            (float(t.value), t.round)
            for t in view.summary.points
            if t.success is verdict and t.round is not None
        ]
        if chosen:
            ax.scatter(
                [x for x, _ in chosen],
                [r for _, r in chosen],
                s=24,
                marker=marker,
                color=color,
                zorder=3,
                label={True: "success", False: "failure", None: "inconclusive"}[verdict],
            )
    ax.set_ylabel("round", fontsize=8)
    rounds = sorted({r for r, _, _ in view.brackets})
    if rounds:
        ax.set_ylim(rounds[-1] + 0.7, rounds[0] - 0.7)  # round 1 on top
        ax.set_yticks(rounds if len(rounds) <= 12 else rounds[:: len(rounds) // 12 + 1])


def _zoom_limits(ax: Axes, view: ThresholdView, shown: list[ValueView]) -> None:
    ys = [y for v in shown for y in [*v.jobs, *v.pending]]
    ys += [v.aggregate for v in shown if v.aggregate is not None]
    if view.target is not None:
        ys.append(view.target.value)
    if ys:
        lo, hi = min(ys), max(ys)
        pad = 0.12 * (hi - lo) or 0.05 * (abs(hi) or 1)
        ax.set_ylim(lo - pad, hi + pad)


def _plain_ticks(ax: Axes) -> None:
    """A log axis zoomed within a decade: a few plain ticks, not 2.94x10^-3 on every minor.

    Evenly spaced on the log axis (evenly spaced values, as a linear locator gives, crowd
    into one end and their labels run together), each rounded to two significant digits."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    lo, hi = sorted(ax.get_xlim())
    if not 0 < lo < hi:
        return
    ticks = sorted({float(f"{lo * (hi / lo) ** (i / 4):.2g}") for i in range(1, 4)})
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.4g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _header(view: ThresholdView) -> tuple[list[str], list[str]]:
    s = view.summary
    state = "" if s.status == "done" else f" ({s.status})"
    first = f"{s.search}: threshold of {view.prop}{state}, {s.method or 'bisection'}"
    answer = threshold_answer(s)
    seen = sum(len(v.jobs) + len(v.pending) + v.failed_jobs for v in view.values)
    jobs = max(s.num_jobs or 0, seen)
    more = [f"{s.rounds} round(s)" if s.rounds else "", f"{jobs} job(s)" if jobs else ""]
    second = "; ".join([answer, ", ".join(m for m in more if m)])
    noise = noise_text(s)
    return [first, second, *([noise] if noise else [])], threshold_warnings(s)


def draw_threshold(figure_factory: Any, view: ThresholdView) -> Figure:
    """The figure of :func:`runner.threshold_view.threshold_view`'s ``view``.

    ``figure_factory(width, height)`` makes the (canvas-attached) figure. Each axes is
    labelled ``metric``, ``fraction``, ``posterior`` or ``rounds``, with `` zoom`` for
    the column around the answer.
    """
    rows = (["metric"] if view.metric else []) + ["fraction"]
    if view.posterior:
        rows.append("posterior")
    elif view.brackets:
        rows.append("rounds")
    heights = {"metric": 3.0, "fraction": 1.3, "posterior": 1.6, "rounds": 1.8}
    windows: list[tuple[float, float] | None] = [None] + ([view.zoom] if view.zoom else [])
    titles, warnings = _header(view)
    header_in = 0.3 + 0.2 * (len(titles) + len(warnings))
    height = sum(heights[r] for r in rows) + header_in + 0.5
    figure = figure_factory(13.0 if view.zoom else 8.5, height)
    grid = figure.add_gridspec(
        len(rows),
        len(windows),
        height_ratios=[heights[r] for r in rows],
        width_ratios=[3, 2][: len(windows)],
        top=1 - header_in / height,
        bottom=0.5 / height,
        left=0.09 if view.zoom is None else 0.07,  # room for a two-line y label
        right=0.98,
        hspace=0.12,
        wspace=0.14,
    )
    counting: list[tuple[Axes, list[ValueView]]] = []
    for col, window in enumerate(windows):
        shown = _visible(view.values, window)
        first_ax = None
        for row, kind in enumerate(rows):
            ax = figure.add_subplot(
                grid[row, col], sharex=first_ax, label=kind + (" zoom" if window else "")
            )
            first_ax = first_ax or ax
            legend = window is None
            _answer_marks(
                ax,
                view,
                legend=legend
                and kind == "metric"
                or (legend and kind == "fraction" and not view.metric),
            )
            if kind == "metric":
                _metric_panel(ax, view, shown, legend=legend)
            elif kind == "fraction":
                _fraction_panel(ax, view, shown)
                if window is None and view.zoom is not None:  # the zoom counts its own
                    lo, hi = view.zoom
                    counting.append((ax, [v for v in shown if not lo <= v.value <= hi]))
                else:
                    counting.append((ax, shown))
            else:
                _bottom_panel(ax, view)
            if view.log:
                ax.set_xscale("log")
            if window is not None:
                ax.set_xlim(*window)
                if view.log:
                    _plain_ticks(ax)
                if kind == "metric":
                    _zoom_limits(ax, view, shown)
            if row == 0:
                ax.set_title("around the answer" if window else "every tested value", fontsize=9)
            if row < len(rows) - 1:
                ax.tick_params(axis="x", which="both", labelbottom=False)
            else:
                ax.set_xlabel(view.prop + (" (log scale)" if view.log else ""))
            ax.grid(alpha=0.25)
            if legend and (kind != "fraction" or not view.metric):
                ax.legend(loc="best", fontsize=7, framealpha=0.85)
    for ax, shown in counting:
        _count_labels(ax, view, shown)
    top = 1 - 0.15 / height
    for i, line in enumerate(titles):
        figure.text(
            0.01,
            top - i * 0.2 / height,
            line,
            va="top",
            ha="left",
            fontsize=11 if i == 0 else 9,
            weight="bold" if i == 0 else "normal",
        )
    for i, line in enumerate(warnings):
        figure.text(
            0.01,
            top - (len(titles) + i) * 0.2 / height,
            line,
            va="top",
            ha="left",
            fontsize=8.5,
            color="darkred" if not line.startswith("margin") else "black",
        )
    return figure
