"""Charts as inline SVG, drawn from the data: the same picture in HTML and PDF.

Each chart is one small SVG string built from a few `<path>`s (WeasyPrint
lays out a single path far faster than hundreds of rects). Every piece of text
that comes from the data goes through `esc`, so a decision titled `<img ...>`
stays text, and the result is returned as Markup, ready for an autoescaping
template.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from html import escape

from markupsafe import Markup

# Presentation attributes, not CSS classes: WeasyPrint does not apply the page's
# stylesheet inside inline SVG, and attributes look the same in every browser.
FONT = 'font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif" font-size="8"'
AXIS_TEXT = f'{FONT} fill="#5b6472"'
GRID = 'stroke="#e3e6eb" stroke-width="0.6" fill="none"'
AXIS = 'stroke="#8a93a0" stroke-width="0.8" fill="none"'
AREA = 'fill="#9dbbe0" stroke="#1f5fa8" stroke-width="0.7"'
BAND_PERIOD = 'fill="#eef2f7"'
BAND_WINDOW = 'fill="#1f5fa8" fill-opacity="0.35"'
EFFECTIVE = 'stroke="#b3261e" stroke-width="1.2" fill="none"'
EFFECTIVE_TEXT = f'{FONT} fill="#b3261e" font-weight="bold"'
BASELINE = 'stroke="#2d2d2d" stroke-width="1" stroke-dasharray="4 3" fill="none"'
EXPECTED_COLOR = "#b85c00"  # a control baseline's E(t) ...
EXPECTED_BAND_COLOR = "#f6dcbb"  # ... and its band as it looks on white, for legends
EXPECTED = f'stroke="{EXPECTED_COLOR}" stroke-width="1.2" fill="none" stroke-linejoin="round"'
EXPECTED_BAND = 'fill="#e08a1e" fill-opacity="0.3" stroke="none"'
NOTE_TEXT = f'{FONT} fill="#2d2d2d"'
LABEL_BAND = 16  # px above a daily chart's plot, where its effective-date label goes
PALETTE = (
    "#1f5fa8",
    "#e08a1e",
    "#3a9a5b",
    "#8e5cc2",
    "#c2455a",
    "#2aa3b8",
    "#a88a2a",
    "#6b7a8f",
    "#d46fb0",
)
REST = "#c9ced6"  # the unattributed series

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def esc(text: str) -> str:
    return escape(text, quote=True)


def nice_ceiling(value: float) -> float:
    """1, 2, 2.5 or 5 times a power of ten, at least `value` (axis tops people can read)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0):
        if step * power >= value:
            return step * power
    return 10.0 * power


def _num(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _axis_label(value: float) -> str:
    if value >= 1_000_000:
        return _num(value / 1_000_000) + "M"
    if value >= 1_000:
        return _num(value / 1_000) + "k"
    return _num(value)


def _svg_open(kind: str, width: int, height: int) -> list[str]:
    return [
        f'<svg class="chart {kind}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img">'
    ]


def _y_grid(
    parts: list[str],
    left: float,
    right: float,
    y: Callable[[float], float],
    y_max: float,
    fracs: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0),
    unit: str = "",
) -> None:
    """Gridlines with their labels at these fractions of the axis top."""
    for frac in fracs:
        gy = y(y_max * frac)
        parts.append(f'<path {GRID} d="M{left} {gy:.1f}H{right}"/>')
        parts.append(
            f'<text {AXIS_TEXT} x="{left - 4}" y="{gy + 3:.1f}" text-anchor="end">'
            f"{esc(unit)}{_axis_label(y_max * frac)}</text>"
        )


def _zero(parts: list[str], left: float, bottom: float) -> None:
    parts.append(f'<text {AXIS_TEXT} x="{left - 4}" y="{bottom + 3}" text-anchor="end">0</text>')


LABEL_CHAR = 5.0  # a generous width of one axis-label character (8px DejaVu Sans)


def label_every(labels: Sequence[str], slot: float) -> int:
    """Label every k-th slot so labels never touch: 24 months fit a 640px chart as 12."""
    widest = max((len(label) for label in labels), default=0) * LABEL_CHAR + 4
    return max(1, math.ceil(widest / slot)) if slot > 0 else 1


def _x_labels(
    parts: list[str], left: float, right: float, bottom: float, slot: float, labels: Sequence[str]
) -> None:
    """The x axis line, and a centred label per slot (every k-th when they would touch)."""
    parts.append(f'<path {AXIS} d="M{left} {bottom}H{right}"/>')
    every = label_every(labels, slot)
    last = len(labels) - 1
    for i, label in enumerate(labels):
        if (last - i) % every:  # counted back from the newest month, which always shows
            continue
        cx = left + i * slot + slot / 2
        parts.append(
            f'<text {AXIS_TEXT} x="{cx:.1f}" y="{bottom + 12}" text-anchor="middle">'
            f"{esc(label)}</text>"
        )


@dataclass(frozen=True)
class Baseline:
    label: str
    daily: Fraction  # expected contacts per day before the decision
    start: date  # drawn from here (the lookback's first day) to the chart's end


@dataclass(frozen=True)
class Expected:
    """A control baseline's counterfactual (SPEC 4b): each day's E(t) and its band."""

    label: str  # written at the line's end when a chart has several
    days: dict[date, tuple[float, float, float]]  # day -> (expected, band low, band high)


def _expected(
    parts: list[str],
    line: Expected,
    days: list[date],
    x: Callable[[date], float],
    y: Callable[[float], float],
    label_at: float | None,
) -> None:
    """The band as one filled path through the days' midpoints, then E(t) over it."""
    drawn = [d for d in days if d in line.days]
    if not drawn:
        return
    half = (x(drawn[0] + timedelta(days=1)) - x(drawn[0])) / 2
    top = [f"{x(d) + half:.1f} {y(line.days[d][2]):.1f}" for d in drawn]
    low = [f"{x(d) + half:.1f} {y(line.days[d][1]):.1f}" for d in reversed(drawn)]
    parts.append(f'<path {EXPECTED_BAND} d="M{"L".join(top + low)}Z"/>')
    mid = [f"{x(d) + half:.1f} {y(line.days[d][0]):.1f}" for d in drawn]
    parts.append(f'<path {EXPECTED} d="M{"L".join(mid)}"/>')
    if label_at is not None:
        ly = y(line.days[drawn[-1]][0]) - 3
        parts.append(
            f'<text {NOTE_TEXT} x="{label_at}" y="{ly:.1f}" text-anchor="end">'
            f"{esc(line.label)}</text>"
        )


def daily_chart(
    counts: dict[date, int],
    start: date,
    end: date,
    effective: date,
    window: tuple[date, date | None],
    period: tuple[date, date],
    baselines: Sequence[Baseline] = (),
    width: int = 640,
    height: int = 132,
    expected: Sequence[Expected] = (),
) -> Markup:
    """Daily matched contacts from `start` to `end`, effective date and baselines marked;
    a control baseline's expected line and band drawn over the counts.

    The effective date's label sits in a band above the plot, so it never covers
    a bar; baselines are named in the chart's legend (statements.py), not on it.
    """
    left, right, top, bottom = 34, width - 6, LABEL_BAND, height - 22
    days = (end - start).days + 1
    values = [counts.get(start + timedelta(days=i), 0) for i in range(days)]
    levels = [float(b.daily) for b in baselines]
    shown = [start + timedelta(days=i) for i in range(days)]
    tops = [max(e.days[d][0], e.days[d][2]) for e in expected for d in shown if d in e.days]
    y_max = nice_ceiling(max([*values, *levels, *tops, 1]))
    step = (right - left) / days

    def x(d: date) -> float:
        return left + (d - start).days * step

    def y(v: float) -> float:
        return bottom - (bottom - top) * v / y_max

    parts = _svg_open("daily", width, height)
    # the statement's month, then the rule window, as bands behind the data
    p0, p1 = max(period[0], start), min(period[1], end)
    if p0 <= p1:
        parts.append(
            f'<rect {BAND_PERIOD} x="{x(p0):.1f}" y="{top}" '
            f'width="{x(p1) + step - x(p0):.1f}" height="{bottom - top}"/>'
        )
    w0 = max(window[0], start)
    w1 = end if window[1] is None else min(window[1], end)
    if w0 <= w1:
        parts.append(
            f'<rect {BAND_WINDOW} x="{x(w0):.1f}" y="{bottom + 1}" '
            f'width="{x(w1) + step - x(w0):.1f}" height="4"/>'
        )
    _y_grid(parts, left, right, y, y_max, (0.5, 1.0))
    _zero(parts, left, bottom)
    # the data: one stepped area path
    d = [f"M{left} {bottom}"]
    for i, v in enumerate(values):
        x0 = left + i * step
        d.append(f"L{x0:.1f} {y(v):.1f}L{x0 + step:.1f} {y(v):.1f}")
    d.append(f"L{right} {bottom}Z")
    parts.append(f'<path {AREA} d="{"".join(d)}"/>')
    for line in expected:
        _expected(parts, line, shown, x, y, right if len(expected) > 1 else None)
    for b, level in zip(baselines, levels, strict=True):
        bx = x(max(b.start, start))
        by = y(level)
        parts.append(f'<path {BASELINE} d="M{bx:.1f} {by:.1f}H{right}"/>')
    if start <= effective <= end:
        ex = x(effective)
        parts.append(f'<path {EFFECTIVE} d="M{ex:.1f} {top - 3}V{bottom}"/>')
        anchor = "start" if ex < (left + right) / 2 else "end"
        dx = 3 if anchor == "start" else -3
        parts.append(
            f'<text {EFFECTIVE_TEXT} x="{ex + dx:.1f}" y="{top - 4}" text-anchor="{anchor}">'
            f"effective {effective.isoformat()}</text>"
        )
    # x axis: month starts
    parts.append(f'<path {AXIS} d="M{left} {bottom}H{right}"/>')
    month = date(start.year, start.month, 1)
    labels = []
    while month <= end:
        if month >= start:
            labels.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    every = max(math.ceil(len(labels) / 12), label_every(["Mmm 2026"], 28 * step))
    year = 0
    for i, m in enumerate(labels):
        mx = x(m)
        parts.append(f'<path {AXIS} d="M{mx:.1f} {bottom}V{bottom + 6}"/>')
        if i % every == 0:  # the year on the first label drawn, and where it changes
            text = MONTHS[m.month - 1] + (f" {m.year}" if m.year != year else "")
            year = m.year
            parts.append(f'<text {AXIS_TEXT} x="{mx + 2:.1f}" y="{bottom + 15}">{esc(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_bars(
    columns: Sequence[str],
    series: Sequence[tuple[str, Sequence[Decimal]]],
    width: int = 640,
    height: int = 190,
) -> Markup:
    """Monthly totals stacked by series, each given as (colour, values)."""
    left, right, top, bottom = 46, width - 6, 10, height - 18
    totals = [sum((s[1][i] for s in series), Decimal(0)) for i in range(len(columns))]
    y_max = nice_ceiling(float(max(totals, default=Decimal(0))))
    slot = (right - left) / max(1, len(columns))
    bar = slot * 0.7

    def y(v: float) -> float:
        return bottom - (bottom - top) * v / y_max

    parts = _svg_open("bars", width, height)
    _y_grid(parts, left, right, y, y_max)
    _zero(parts, left, bottom)
    for index, (color, values) in enumerate(series):
        d = []
        for i, v in enumerate(values):
            if v <= 0:
                continue
            below = sum((s[1][i] for s in series[:index]), Decimal(0))
            x0 = left + i * slot + (slot - bar) / 2
            y0, y1 = y(float(below + v)), y(float(below))
            d.append(f"M{x0:.1f} {y1:.1f}V{y0:.1f}h{bar:.1f}V{y1:.1f}Z")
        if d:
            parts.append(f'<path fill="{esc(color)}" d="{"".join(d)}"/>')
    _x_labels(parts, left, right, bottom, slot, columns)
    parts.append("</svg>")
    return Markup("".join(parts))


def month_label(period: str) -> str:
    """'2026-05' -> 'May 2026'."""
    return f"{MONTHS[int(period[5:7]) - 1]} {period[:4]}"


def short_month(period: str) -> str:
    """'2026-05' -> 'May 26'."""
    return f"{MONTHS[int(period[5:7]) - 1]} {period[2:4]}"


def line_chart(
    columns: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    width: int = 640,
    height: int = 170,
    unit: str = "",
) -> Markup:
    """One line per series, given as (colour, label, values); None leaves a gap."""
    left, right, top, bottom = 46, width - 90, 10, height - 18
    values = [v for _, _, vs in series for v in vs if v is not None]
    y_max = nice_ceiling(max(values, default=1.0))
    slot = (right - left) / max(1, len(columns))

    def y(v: float) -> float:
        return bottom - (bottom - top) * v / y_max

    parts = _svg_open("lines", width, height)
    _y_grid(parts, left, right, y, y_max, unit=unit)
    _zero(parts, left, bottom)
    ends: list[tuple[float, float, str, str]] = []  # (x, y, colour, label) of each line's end
    for color, label, vs in series:
        d: list[str] = []
        pen_up = True
        last: tuple[float, float] | None = None
        for i, v in enumerate(vs):
            if v is None:
                pen_up = True
                continue
            px, py = left + i * slot + slot / 2, y(v)
            d.append(f"{'M' if pen_up else 'L'}{px:.1f} {py:.1f}")
            pen_up = False
            last = (px, py)
        if d:
            parts.append(
                f'<path fill="none" stroke="{esc(color)}" stroke-width="1.6" d="{"".join(d)}"/>'
            )
        if last is not None:
            ends.append((last[0], last[1], color, label))
    # end labels, nudged apart so lines that finish close together stay readable
    ends.sort(key=lambda e: e[1])
    placed: list[float] = []
    for ex, ey, color, label in ends:
        ly = max(ey + 3, placed[-1] + 9) if placed else ey + 3
        placed.append(ly)
        parts.append(
            f'<text {FONT} fill="{esc(color)}" x="{ex + 6:.1f}" y="{ly:.1f}">{esc(label)}</text>'
        )
    _x_labels(parts, left, right, bottom, slot, columns)
    parts.append("</svg>")
    return Markup("".join(parts))


def hbars(
    rows: Sequence[tuple[str, float, str]],
    width: int = 640,
    row_height: int = 16,
    color: str = "#1f5fa8",
) -> Markup:
    """Horizontal bars: (label, value, value as printed), longest first as given."""
    label_w, right = 210, width - 70
    height = max(1, len(rows)) * row_height + 4
    top = max((v for _, v, _ in rows), default=0.0) or 1.0
    parts = _svg_open("hbars", width, height)
    for i, (label, value, shown) in enumerate(rows):
        y0 = 2 + i * row_height
        w = max(0.0, (right - label_w) * value / top)
        text = label if len(label) <= 40 else label[:39] + "…"
        parts.append(
            f'<text {AXIS_TEXT} x="{label_w - 6}" y="{y0 + row_height * 0.68:.1f}" '
            f'text-anchor="end">{esc(text)}</text>'
        )
        parts.append(
            f'<rect fill="{esc(color)}" x="{label_w}" y="{y0 + 2}" width="{w:.1f}" '
            f'height="{row_height - 5}"/>'
        )
        parts.append(
            f'<text {NOTE_TEXT} x="{label_w + w + 4:.1f}" y="{y0 + row_height * 0.68:.1f}">'
            f"{esc(shown)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
