"""Draw a moment as a 1200×630 PNG card (the Open Graph size): what happened, the numbers, the chart.

Pure: a moment and its candles in, PNG bytes out, the same bytes for the same input (no
clock, no randomness), so a card's ETag can be derived from its inputs. Floats appear only
as pixel coordinates; every printed number is formatted from the exact Decimal.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from core.models import Moment, MomentKind, MomentStatus
from streams.storage import Candle

__all__ = ["CARD_SIZE", "KIND_TITLES", "render_card", "short_address"]

CARD_SIZE = (1200, 630)
KIND_TITLES: dict[MomentKind, str] = {
    MomentKind.S2E: "Sold too early",
    MomentKind.BHD: "Bag-holder drawdown",
    MomentKind.BAD_ROUTE: "Bad swap route",
    MomentKind.IDLE_YIELD: "Idle yield left on the table",
    MomentKind.RUG: "Rugged",
}

_BG = (15, 17, 23)
_PANEL = (26, 29, 38)
_TEXT = (236, 238, 243)
_MUTED = (140, 146, 160)
_ACCENT = (255, 92, 92)
_OPEN = (255, 184, 0)
_FINAL = (80, 200, 120)
_LINE = (99, 179, 237)
_WINDOW = (44, 50, 66)
_CHART = (60, 360, 1140, 590)  # left, top, right, bottom


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def short_address(address: str, keep: int = 4) -> str:
    return address if len(address) <= 2 * keep + 1 else f"{address[:keep]}…{address[-keep:]}"


def _pct(value: Decimal) -> str:
    return f"{value * 100:+,.1f}%"


def _usd(value: Decimal) -> str:
    return f"${value:,.2f}"


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _header(draw: ImageDraw.ImageDraw, moment: Moment) -> None:
    draw.text((60, 40), "OOF", font=_font(40), fill=_ACCENT)
    draw.text((170, 48), KIND_TITLES[moment.kind], font=_font(34), fill=_TEXT)
    is_open = moment.status is MomentStatus.OPEN
    badge, colour = ("OPEN", _OPEN) if is_open else ("FINAL", _FINAL)
    left, top, right, bottom = draw.textbbox((0, 0), badge, font=_font(26))
    width = right - left + 32
    draw.rounded_rectangle((1140 - width, 44, 1140, 88), radius=12, outline=colour, width=3)
    draw.text((1140 - width + 16, 50 - top + 4), badge, font=_font(26), fill=colour)
    who = f"wallet {short_address(moment.wallet)}   token {short_address(moment.mint, 6)}   {moment.kind.value}"
    draw.text((60, 104), who, font=_font(24), fill=_MUTED)


def _numbers(draw: ImageDraw.ImageDraw, moment: Moment) -> None:
    columns = (
        ("change", _pct(moment.pct)),
        ("value", _usd(moment.usd_value)),
        ("severity", f"{moment.severity:.2f}"),
    )
    for i, (label, value) in enumerate(columns):
        x = 60 + i * 370
        draw.text((x, 160), label.upper(), font=_font(22), fill=_MUTED)
        draw.text((x, 192), value, font=_font(64), fill=_TEXT if i else _ACCENT)
    # Severity bar: 0..1 across the width of the third column.
    x0, x1 = 60 + 2 * 370, 1140
    draw.rounded_rectangle((x0, 280, x1, 292), radius=6, fill=_PANEL)
    filled = x0 + int((x1 - x0) * float(min(max(moment.severity, Decimal(0)), Decimal(1))))
    if filled > x0:
        draw.rounded_rectangle((x0, 280, filled, 292), radius=6, fill=_ACCENT)
    window = f"window {_when(moment.window_start)} to {_when(moment.window_end)}"
    draw.text((60, 300), window, font=_font(20), fill=_MUTED)


def _chart(draw: ImageDraw.ImageDraw, moment: Moment, candles: Sequence[Candle]) -> None:
    left, top, right, bottom = _CHART
    draw.rectangle(_CHART, fill=_PANEL)
    points = [(c.minute, float(c.close)) for c in candles]
    if not points:
        message = "no price data"
        l, t, r, b = draw.textbbox((0, 0), message, font=_font(32))
        origin = ((left + right - (r - l)) / 2, (top + bottom - (b - t)) / 2 - t)
        draw.text(origin, message, font=_font(32), fill=_MUTED)
        return
    t0 = min(points[0][0], moment.window_start)
    t1 = max(points[-1][0], moment.window_end, t0 + 60)
    low = lo = min(p for _, p in points)
    high = hi = max(p for _, p in points)
    if hi == lo:  # a flat price: draw it mid-height rather than on the floor
        lo, hi = lo - (abs(lo) or 1.0) / 2, hi + (abs(hi) or 1.0) / 2
    span = hi - lo
    pad = 16

    def x_of(t: int) -> float:
        return left + pad + (right - left - 2 * pad) * (t - t0) / (t1 - t0)

    def y_of(price: float) -> float:
        return bottom - pad - (bottom - top - 2 * pad) * (price - lo) / span

    window_left = x_of(moment.window_start)
    draw.rectangle((window_left, top, max(x_of(moment.window_end), window_left + 2), bottom), fill=_WINDOW)
    # One point per pixel column is all the resolution a 1080-px chart has.
    by_column: dict[int, tuple[float, float]] = {}
    for t, price in points:
        x = x_of(t)
        by_column[int(x)] = (x, y_of(price))
    line = [by_column[k] for k in sorted(by_column)]
    if len(line) == 1:
        x, y = line[0]
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=_LINE)
    else:
        draw.line(line, fill=_LINE, width=3, joint="curve")
    draw.text((left + 8, top + 6), f"high {high:,.6g}", font=_font(18), fill=_MUTED)
    draw.text((left + 8, bottom - 26), f"low {low:,.6g}", font=_font(18), fill=_MUTED)


def render_card(moment: Moment, candles: Sequence[Candle]) -> bytes:
    """The card as PNG bytes; `candles` are the mint's one-minute candles around the window."""
    image = Image.new("RGB", CARD_SIZE, _BG)
    draw = ImageDraw.Draw(image)
    _header(draw, moment)
    _numbers(draw, moment)
    _chart(draw, moment, candles)
    draw.text((60, 598), f"detected {_when(moment.detected_at)}   id {moment.id}", font=_font(18), fill=_MUTED)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()
