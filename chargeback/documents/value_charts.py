"""The CS-value report's own charts: money per customer, which can fall below zero.

What customers ordered per customer is money (refunds can make it negative),
so this chart has a zero line anywhere on its axis and says in its title what
the axis measures. (It replaced a bar chart drawn from zero up, titled in orders.)

A bar that cannot be drawn says why in its place: None is "n/a" (a horizon not
yet observable), a text is its own label ("no customers": the group is empty),
written upright so it fits a narrow bar.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

from chargeback.documents.charts import AXIS, AXIS_TEXT, GRID, esc, label_every, nice_ceiling


def _tick(value: float) -> str:
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def money_bars(
    groups: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float | str | None]]],
    axis_title: str,
    width: int = 640,
    height: int = 170,
) -> Markup:
    """Bars per group (an outcome) for each series (a horizon).

    A value is a bar (float), None (not yet observable: "n/a") or a label to
    write instead of a bar ("no customers").
    """
    left, right, top, bottom_axis = 58, width - 6, 8, height - 18
    values = [v for _, _, vs in series for v in vs if isinstance(v, float | int)]
    high = nice_ceiling(max(max(values, default=0.0), 0.0)) if values else 1.0
    low_raw = min(min(values, default=0.0), 0.0)
    low = -nice_ceiling(-low_raw) if low_raw < 0 else 0.0
    if max(values, default=0.0) <= 0 and low < 0:
        high = 0.0
    span = (high - low) or 1.0

    def y(v: float) -> float:
        return bottom_axis - (bottom_axis - top) * (v - low) / span

    parts = [
        f'<svg class="chart money-bars" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img">'
    ]
    ticks = sorted({low, low / 2, 0.0, high / 2, high})
    for tick in ticks:
        gy = y(tick)
        parts.append(f'<path {AXIS if tick == 0 else GRID} d="M{left} {gy:.1f}H{right}"/>')
        parts.append(
            f'<text {AXIS_TEXT} x="{left - 4}" y="{gy + 3:.1f}" text-anchor="end">'
            f"{esc(_tick(tick))}</text>"
        )
    mid = (top + bottom_axis) / 2
    parts.append(
        f'<text {AXIS_TEXT} x="10" y="{mid:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 10 {mid:.1f})">{esc(axis_title)}</text>'
    )
    slot = (right - left) / max(1, len(groups))
    bar = slot * 0.8 / max(1, len(series))
    zero = y(0.0)
    for s, (color, _, vs) in enumerate(series):
        for g, v in enumerate(vs):
            x0 = left + g * slot + slot * 0.1 + s * bar
            if v is None:
                parts.append(
                    f'<text {AXIS_TEXT} x="{x0 + bar / 2:.1f}" y="{zero - 3:.1f}" '
                    f'text-anchor="middle">n/a</text>'
                )
                continue
            if isinstance(v, str):
                # upright, from the zero line into the larger side of the plot
                up = zero - top >= bottom_axis - zero
                tx, ty = x0 + bar / 2 + 3, zero - 3 if up else zero + 3
                parts.append(
                    f'<text {AXIS_TEXT} x="{tx:.1f}" y="{ty:.1f}" '
                    f'text-anchor="{"start" if up else "end"}" '
                    f'transform="rotate(-90 {tx:.1f} {ty:.1f})">{esc(v)}</text>'
                )
                continue
            top_y, bottom_y = sorted((y(v), zero))
            parts.append(
                f'<rect fill="{esc(color)}" x="{x0:.1f}" y="{top_y:.1f}" '
                f'width="{max(bar - 1, 0.5):.1f}" height="{max(bottom_y - top_y, 0.5):.1f}"/>'
            )
    every = label_every(groups, slot)
    for g, label in enumerate(groups):
        if g % every:
            continue
        cx = left + g * slot + slot / 2
        parts.append(
            f'<text {AXIS_TEXT} x="{cx:.1f}" y="{bottom_axis + 12}" text-anchor="middle">'
            f"{esc(label)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
