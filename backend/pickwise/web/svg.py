"""Small charts drawn on the server as inline SVG: readable without JavaScript.

Every piece of text is escaped here. The content security policy forbids style attributes, so
geometry uses SVG presentation attributes and colours come from classes in dashboard.css.
Each chart carries a <title> and <desc> for screen readers, every mark a <title> tooltip, and
the page always shows the same numbers in a table as well.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 720
FONT_SIZE = 12


def _text(value: object) -> str:
    return escape(str(value), quote=True)


def _fmt(value: float) -> str:
    """Coordinates with two decimals: short, and no locale or exponent surprises."""
    return f"{value:.2f}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values from at or below `low` to at or above `high`, about `count` steps of
    1, 2 or 5 × 10^k."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else [0.0]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    # + 0.0 turns -0.0 into 0.0
    return [round(index * step, 10) + 0.0 for index in range(first, last + 1)]


def _tick_label(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.3g}"


def _svg(width: float, height: float, title: str, description: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {_fmt(width)} {_fmt(height)}" '
        f'width="100%" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'font-size="{FONT_SIZE}" preserveAspectRatio="xMinYMin meet">'
        f"<title>{_text(title)}</title><desc>{_text(description)}</desc>" + "".join(body) + "</svg>"
    )


def _shorten(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


# --- stacked bar -------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    label: str
    value: int
    css_class: str  # e.g. "seg-done"; the colour lives in dashboard.css


def stacked_bar(segments: Sequence[Segment], *, title: str) -> Markup:
    """One horizontal bar split into parts (e.g. pairs done / in progress / open)."""
    total = sum(max(segment.value, 0) for segment in segments)
    height, bar = 56.0, 28.0
    body = []
    x = 0.0
    legend_x = 0.0
    for segment in segments:
        share = segment.value / total if total else 0.0
        width = WIDTH * share
        label = f"{segment.label}: {segment.value:,} ({share:.0%})"
        if width > 0:
            body.append(
                f'<rect class="{_text(segment.css_class)}" x="{_fmt(x)}" y="0" '
                f'width="{_fmt(width)}" height="{_fmt(bar)}"><title>{_text(label)}</title></rect>'
            )
        x += width
        body.append(
            f'<rect class="{_text(segment.css_class)}" x="{_fmt(legend_x)}" y="{_fmt(bar + 10)}" '
            f'width="10" height="10"/>'
            f'<text x="{_fmt(legend_x + 14)}" y="{_fmt(bar + 19)}">{_text(label)}</text>'
        )
        legend_x += 14 + 7.0 * len(label) + 18
    if total == 0:
        body.insert(
            0, f'<rect class="seg-empty" x="0" y="0" width="{WIDTH}" height="{_fmt(bar)}"/>'
        )
    description = "; ".join(f"{s.label}: {s.value:,}" for s in segments)
    return _svg(max(WIDTH, legend_x), height, title, description, body)


# --- bars over time ----------------------------------------------------------------------


def column_chart(points: Sequence[tuple[str, int]], *, title: str, unit: str) -> Markup:
    """Vertical bars, one per labelled point (e.g. judgments per day), with a y axis."""
    left, right, top, bottom = 44.0, 8.0, 8.0, 22.0
    height = 180.0
    plot_width, plot_height = WIDTH - left - right, height - top - bottom
    peak = max((value for _, value in points), default=0)
    ticks = nice_ticks(0.0, float(max(peak, 1)), 4)
    scale_top = max(ticks[-1], 1.0)
    body = []
    for tick in ticks:
        y = top + plot_height * (1 - tick / scale_top)
        body.append(
            f'<line class="grid" x1="{_fmt(left)}" x2="{_fmt(WIDTH - right)}" '
            f'y1="{_fmt(y)}" y2="{_fmt(y)}"/>'
            f'<text class="axis" x="{_fmt(left - 6)}" y="{_fmt(y + 4)}" '
            f'text-anchor="end">{_text(_tick_label(tick))}</text>'
        )
    band = plot_width / max(len(points), 1)
    for position, (label, value) in enumerate(points):
        bar_height = plot_height * value / scale_top
        x = left + position * band + band * 0.1
        body.append(
            f'<rect class="bar" x="{_fmt(x)}" y="{_fmt(top + plot_height - bar_height)}" '
            f'width="{_fmt(max(band * 0.8, 0.5))}" height="{_fmt(bar_height)}">'
            f"<title>{_text(label)}: {value:,} {_text(unit)}</title></rect>"
        )
    if points:
        label_y = height - 6
        body.append(
            f'<text class="axis" x="{_fmt(left)}" y="{_fmt(label_y)}">{_text(points[0][0])}</text>'
        )
        if len(points) > 1:
            body.append(
                f'<text class="axis" x="{_fmt(WIDTH - right)}" y="{_fmt(label_y)}" '
                f'text-anchor="end">{_text(points[-1][0])}</text>'
            )
    description = f"{len(points)} points, highest {peak:,} {unit}"
    return _svg(WIDTH, height, title, description, body)


# --- estimates with intervals ------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    label: str
    value: float | None
    lower: float | None = None
    upper: float | None = None


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def interval_chart(
    rows: Sequence[Estimate],
    *,
    title: str,
    reference: float | None = None,
    reference_label: str = "",
    value_format: str = "{:.0f}",
) -> Markup:
    """One row per estimate: a dot with whiskers from lower to upper, a shared x axis and an
    optional reference line (e.g. 0 for weights, 1000 for scores). Rows without a value are
    listed with "no estimate"."""
    label_width, right, top, row_height = 170.0, 16.0, 8.0, 24.0
    axis_height = 34.0
    plot_left, plot_right = label_width + 10, WIDTH - right
    values = _finite([v for row in rows for v in (row.value, row.lower, row.upper)])
    if reference is not None:
        values.append(reference)
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 1.0, high + 1.0
    ticks = nice_ticks(low, high, 5)
    low, high = min(low, ticks[0]), max(high, ticks[-1])

    def x_of(value: float) -> float:
        return plot_left + (plot_right - plot_left) * (value - low) / (high - low)

    height = top + row_height * len(rows) + axis_height
    plot_bottom = top + row_height * len(rows)
    body = []
    for tick in ticks:
        x = x_of(tick)
        body.append(
            f'<line class="grid" x1="{_fmt(x)}" x2="{_fmt(x)}" y1="{_fmt(top)}" '
            f'y2="{_fmt(plot_bottom)}"/>'
            f'<text class="axis" x="{_fmt(x)}" y="{_fmt(plot_bottom + 16)}" '
            f'text-anchor="middle">{_text(_tick_label(tick))}</text>'
        )
    if reference is not None:
        x = x_of(reference)
        body.append(
            f'<line class="reference" x1="{_fmt(x)}" x2="{_fmt(x)}" y1="{_fmt(top)}" '
            f'y2="{_fmt(plot_bottom)}"><title>{_text(reference_label)}</title></line>'
        )
    for position, row in enumerate(rows):
        y = top + row_height * position + row_height / 2
        body.append(
            f'<text x="{_fmt(label_width)}" y="{_fmt(y + 4)}" text-anchor="end">'
            f"<title>{_text(row.label)}</title>{_text(_shorten(row.label, 26))}</text>"
        )
        body.append(_interval_marks(row, y, x_of, plot_left, value_format))
    description = "; ".join(_describe(row, value_format) for row in rows)
    return _svg(WIDTH, height, title, description, body)


def _describe(row: Estimate, value_format: str) -> str:
    if row.value is None or not math.isfinite(row.value):
        return f"{row.label}: no estimate"
    text = f"{row.label}: {value_format.format(row.value)}"
    if row.lower is not None and row.upper is not None:
        text += f" ({value_format.format(row.lower)} to {value_format.format(row.upper)})"
    return text


def _interval_marks(
    row: Estimate, y: float, x_of: Callable[[float], float], plot_left: float, value_format: str
) -> str:
    tooltip = f"<title>{_text(_describe(row, value_format))}</title>"
    if row.value is None or not math.isfinite(row.value):
        return f'<text class="axis" x="{_fmt(plot_left)}" y="{_fmt(y + 4)}">no estimate</text>'
    marks = ['<g class="estimate">', tooltip]
    if row.lower is not None and row.upper is not None:
        x1, x2 = x_of(row.lower), x_of(row.upper)
        marks.append(
            f'<line class="whisker" x1="{_fmt(x1)}" x2="{_fmt(x2)}" '
            f'y1="{_fmt(y)}" y2="{_fmt(y)}"/>'
            f'<line class="whisker" x1="{_fmt(x1)}" x2="{_fmt(x1)}" '
            f'y1="{_fmt(y - 5)}" y2="{_fmt(y + 5)}"/>'
            f'<line class="whisker" x1="{_fmt(x2)}" x2="{_fmt(x2)}" '
            f'y1="{_fmt(y - 5)}" y2="{_fmt(y + 5)}"/>'
        )
    marks.append(f'<circle class="dot" cx="{_fmt(x_of(row.value))}" cy="{_fmt(y)}" r="4.5"/>')
    marks.append("</g>")
    return "".join(marks)
