"""PNG charts for the monthly report, drawn with Pillow.

Four simple chart kinds (paired bars, a stack against a cap, a trend line, horizontal bars)
drawn straight onto an image: every position is computed here, from the values and the
measured widths of the labels, so there is no layout pass. matplotlib drew the same charts
in about 0.8 s a jurisdiction (two thirds of it laying out text and ticks, twice: once for
``tight_layout``, once to save); a jurisdiction's five charts now take a few hundredths of a
second. The image is drawn at twice its size and reduced, which smooths lines, markers and
text as an anti-aliasing renderer would.

Labels are Chinese when a CJK font is installed (Noto Sans CJK, WenQuanYi, Source Han,
SimHei, Microsoft YaHei, PingFang); otherwise English, with one warning naming the font
package to install, so a chart never shows empty boxes for characters. Fonts are found
through matplotlib's font list (its DejaVu Sans is the fallback).
"""

from __future__ import annotations

import functools
import logging
import math

from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger("roster_sync.report")

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Source Han Sans SC",
             "Source Han Sans CN", "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "AR PL UMing CN")
COLOURS = {"approved": "#9bb7d4", "actual": "#1f4e79", "over": "#c0392b", "high": "#c0392b", "medium": "#e67e22",
           "info": "#7f8c8d"}
PALETTE = ["#1f4e79", "#2e86c1", "#5dade2", "#a9cce3", "#d4e6f1", "#85929e"]   # categories of a stack
INK, MUTED = "#000000", "#333333"
DPI = 110            # pixels per inch of the saved chart (its size in inches is as before)
SCALE = 2            # drawn at twice the size, then reduced: anti-aliasing
FONT_PT, TITLE_PT = 10, 12


@functools.cache
def cjk_font() -> str | None:
    """The first installed CJK font family, or None."""
    from matplotlib import font_manager

    for attempt in range(2):
        installed = {f.name for f in font_manager.fontManager.ttflist}
        for name in CJK_FONTS:
            if name in installed:
                return name
        if attempt == 0:
            # matplotlib caches the font list: a font installed after the cache was built
            # (demo.sh installs one) is found only by looking at the system's font files.
            for path in font_manager.findSystemFonts():
                if any(k in path.lower() for k in ("wqy", "cjk", "sourcehan", "simhei", "msyh", "pingfang")):
                    try:
                        font_manager.fontManager.addfont(path)
                    except (OSError, RuntimeError, ValueError):
                        continue
    log.warning("no CJK font found: the monthly report's charts are labelled in English "
                "(install fonts-noto-cjk or fonts-wqy-microhei for Chinese labels)")
    return None


@functools.cache
def _font_file() -> str:
    """The file of the CJK font, or of matplotlib's DejaVu Sans when there is none."""
    from matplotlib import font_manager

    family = cjk_font() or "DejaVu Sans"
    return font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=True)


@functools.cache
def _font(points: float) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(_font_file(), size=max(1, round(points * DPI / 72 * SCALE)))


def _ticks(top: float, integer: bool, most: int = 9) -> list[float]:
    """Round tick values from 0 to at most ``top``, at most ``most`` steps of them: the smallest
    step of 1, 2, 2.5 or 5 times a power of ten that fits (2.5 not on whole-number axes)."""
    top = max(top, 1e-9)
    raw = top / most
    magnitude = 10 ** math.floor(math.log10(raw))
    steps = [m * magnitude for m in (1, 2, 2.5, 5, 10)]
    if integer:
        steps = [s for s in steps if s >= 1 and float(s).is_integer()] or [1]
    step = next((s for s in steps if s >= raw), steps[-1])
    return [i * step for i in range(int(top / step + 1e-9) + 1)]


def _number(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() or abs(v) >= 100 else f"{v:,.1f}"


class _Chart:
    """One chart: a white image of ``width`` x ``height`` inches, drawn in final-pixel
    coordinates (scaled by :data:`SCALE` underneath), with one plot area (the axes)."""

    def __init__(self, width: float, height: float):
        self.w, self.h = round(width * DPI), round(height * DPI)
        self.image = Image.new("RGB", (self.w * SCALE, self.h * SCALE), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.box = (0.0, 0.0, float(self.w), float(self.h))   # the plot area: left, top, right, bottom
        self.x_range = self.y_range = (0.0, 1.0)

    # -- measuring and drawing, in final pixels
    @staticmethod
    def width(text: str, points: float = FONT_PT) -> float:
        return _font(points).getlength(text) / SCALE

    @staticmethod
    def line_height(points: float = FONT_PT) -> float:
        return points * DPI / 72 * 1.25

    def text(self, x: float, y: float, text: str, points: float = FONT_PT, fill: str = INK, anchor: str = "mm") -> None:
        """``anchor``: Pillow's two letters (horizontal l/m/r, vertical a (top)/m/s (baseline)/d)."""
        self.draw.text((x * SCALE, y * SCALE), text, font=_font(points), fill=fill, anchor=anchor)

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: str) -> None:
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        if x1 > x0 and y1 > y0:   # nothing for a zero value; at least a pixel for a small one
            x0, y0 = x0 * SCALE, y0 * SCALE
            self.draw.rectangle([x0, y0, max(x0, x1 * SCALE - 1), max(y0, y1 * SCALE - 1)], fill=fill)

    def line(self, points: list[tuple[float, float]], fill: str, width: float = 1.0) -> None:
        self.draw.line([(x * SCALE, y * SCALE) for x, y in points], fill=fill, width=max(1, round(width * SCALE)),
                       joint="curve")

    def dot(self, x: float, y: float, radius: float, fill: str) -> None:
        r = radius * SCALE
        self.draw.ellipse([x * SCALE - r, y * SCALE - r, x * SCALE + r, y * SCALE + r], fill=fill)

    # -- the plot area, in data coordinates
    def axes(self, left: float, top: float, right: float, bottom: float, x_range, y_range) -> None:
        self.box, self.x_range, self.y_range = (left, top, self.w - right, self.h - bottom), x_range, y_range

    def px(self, x: float) -> float:
        (a, b), (l, _, r, _) = self.x_range, self.box
        return l + (x - a) / (b - a) * (r - l)

    def py(self, y: float) -> float:
        (a, b), (_, t, _, bt) = self.y_range, self.box
        return bt - (y - a) / (b - a) * (bt - t)

    def title(self, text: str) -> None:
        l, t, r, _ = self.box
        self.text((l + r) / 2, t - 8, text, TITLE_PT, anchor="md")

    def spines(self) -> None:
        l, t, r, b = self.box
        self.line([(l, t), (l, b), (r, b)], INK, 0.8)

    def y_ticks(self, positions: list[float], labels: list[str]) -> None:
        l = self.box[0]
        for y, text in zip(positions, labels):
            self.line([(l - 4, self.py(y)), (l, self.py(y))], INK, 0.8)
            self.text(l - 7, self.py(y), text, anchor="rm")

    def x_ticks(self, positions: list[float], labels: list[str]) -> None:
        b = self.box[3]
        for x, text in zip(positions, labels):
            self.line([(self.px(x), b), (self.px(x), b + 4)], INK, 0.8)
            self.text(self.px(x), b + 7, text, anchor="ma")

    def legend(self, entries: list[tuple[str, str, str]], x: float, y: float, points: float = FONT_PT) -> None:
        """Entries (kind "bar" or "line", colour, text) listed downwards from (x, y), their left edge at x."""
        step = self.line_height(points) * 1.1
        for i, (kind, colour, text) in enumerate(entries):
            cy = y + step * i + step / 2
            if kind == "line":
                self.line([(x, cy), (x + 28, cy)], colour, 1.5)
                self.dot(x + 14, cy, 4, colour)
            else:
                self.rect(x, cy - 5, x + 28, cy + 5, colour)
            self.text(x + 36, cy, text, points, anchor="lm")

    @staticmethod
    def legend_width(entries, points: float = FONT_PT) -> float:
        return 36 + max((_Chart.width(t, points) for _, _, t in entries), default=0)

    def save(self, path) -> str:
        # zlib's fastest level: the charts are flat colour, a few % larger, encoded 3x faster
        self.image.reduce(SCALE).save(path, format="PNG", compress_level=1)
        return str(path)


def _y_margin(ticks: list[float]) -> float:
    return 14 + max(_Chart.width(_number(v)) for v in ticks)


def paired_bars(path, title: str, labels: list[str], approved: list[float], actual: list[float],
                names: tuple[str, str]) -> str:
    """Approved against actual, one pair of bars per item; the gap written above each pair."""
    chart = _Chart(max(6.0, 1.1 * len(labels) + 2), 3.6)
    top = max([*approved, *actual, 1])
    ticks = _ticks(top * 1.15, integer=False)
    n, w = len(labels), 0.38
    chart.axes(_y_margin(ticks), 40, 12, 30, (-0.5 - 0.1, max(n, 1) - 0.5 + 0.1), (0, top * 1.15))
    chart.title(title)
    base = chart.py(0)
    for i, (p, a) in enumerate(zip(approved, actual)):
        chart.rect(chart.px(i - w), chart.py(p), chart.px(i), base, COLOURS["approved"])
        chart.rect(chart.px(i), chart.py(a), chart.px(i + w), base, COLOURS["over"] if a > p else COLOURS["actual"])
        gap = a - p
        chart.text(chart.px(i), chart.py(max(p, a) + top * 0.02), f"{gap:+,.0f}" if gap else "0", 9,
                   COLOURS["over"] if gap > 0 else MUTED, anchor="md")
    chart.spines()
    chart.y_ticks(ticks, [_number(v) for v in ticks])
    chart.x_ticks(list(range(n)), labels)
    entries = [("bar", COLOURS["approved"], names[0]), ("bar", COLOURS["actual"], names[1])]
    chart.legend(entries, chart.box[2] - chart.legend_width(entries) - 8, chart.box[1] + 4)
    return chart.save(path)


def stacked_against_cap(path, title: str, categories: dict[str, float], cap: float, names: tuple[str, str]) -> str:
    """Headcount stacked by category beside the cap: one glance shows whether the total is over."""
    chart = _Chart(6.0, 3.6)
    total = float(sum(categories.values()))
    top = max(cap, total, 1) * 1.15
    ticks = _ticks(top, integer=False)
    chart.axes(_y_margin(ticks), 40, 12, 30, (-0.6, 2.6), (0, top))
    chart.title(title)
    base = chart.py(0)
    chart.rect(chart.px(-0.25), chart.py(cap), chart.px(0.25), base, COLOURS["approved"])
    entries, bottom = [("bar", COLOURS["approved"], names[0])], 0.0
    for i, (category, n) in enumerate(categories.items()):
        colour = PALETTE[i % len(PALETTE)]
        chart.rect(chart.px(0.75), chart.py(bottom + n), chart.px(1.25), chart.py(bottom), colour)
        entries.append(("bar", colour, f"{category} {n:,.0f}"))
        bottom += n
    chart.text(chart.px(1), chart.py(bottom) - 2, f"{bottom:,.0f}", fill=COLOURS["over"] if bottom > cap else MUTED,
               anchor="md")
    chart.text(chart.px(0), chart.py(cap) - 2, f"{cap:,.0f}", anchor="md")
    chart.spines()
    chart.y_ticks(ticks, [_number(v) for v in ticks])
    chart.x_ticks([0, 1], list(names))
    chart.legend(entries, chart.box[2] - chart.legend_width(entries, 8) - 8, chart.box[1] + 4, points=8)
    return chart.save(path)


def trend(path, title: str, periods: list[str], series: dict[str, list[int]]) -> str:
    """Findings per period, one line per severity; the legend to the right of the plot."""
    chart = _Chart(7.5, 3.6)
    colours = [COLOURS["high"], COLOURS["medium"], COLOURS["info"], "#333"]
    entries = [("line", colour, name) for name, colour in zip(series, colours)]
    top = max([1, *[v for vs in series.values() for v in vs]]) * 1.2
    ticks = _ticks(top, integer=True)
    # the last values are written right of their points, the legend right of them
    gap = 14 + max((chart.width(f"{vs[-1]:,}") for vs in series.values() if vs), default=0)
    chart.axes(_y_margin(ticks), 40, gap + chart.legend_width(entries) + 12, 30, (-0.3, max(len(periods), 1) - 0.4),
               (0, top))
    chart.title(title)
    for (name, values), colour in zip(series.items(), colours):
        points = [(chart.px(i), chart.py(v)) for i, v in enumerate(values)]
        if len(points) > 1:
            chart.line(points, colour, 1.5)
        for x, y in points:
            chart.dot(x, y, 4, colour)
        if points:
            chart.text(points[-1][0] + 8, points[-1][1], f"{values[-1]:,}", fill=colour, anchor="lm")
    chart.spines()
    chart.y_ticks(ticks, [_number(v) for v in ticks])
    chart.x_ticks(list(range(len(periods))), periods)
    chart.legend(entries, chart.box[2] + gap, chart.box[1])
    return chart.save(path)


def horizontal_bars(path, title: str, labels: list[str], values: list[int], colours: list[str]) -> str:
    """Counts per item, largest on top."""
    n = len(labels)
    chart = _Chart(7.5, max(2.4, 0.32 * n + 1.0))
    top = max([*values, 1]) * 1.15
    ticks = _ticks(top, integer=True)
    left = 14 + max([chart.width(t) for t in labels] + [0])
    # right of the plot: half the last tick's label, and room for the longest bar's count
    right = max(12.0, chart.width(_number(ticks[-1])) / 2 + 4)
    widest = max([*values, 0])
    spare = (chart.w - left - right) * (1 - widest / top)
    right += max(0.0, chart.width(f"{widest:,}") + 12 - spare) / (1 - widest / top)   # the plot narrows by as much
    chart.axes(left, 40, right, 30, (0, top), (-0.5 - 0.6, max(n, 1) - 0.5 + 0.6))
    room = chart.box[2] - chart.box[0]
    while len(ticks) > 2 and len(ticks) * (max(chart.width(_number(v)) for v in ticks) + 12) > room:
        ticks = _ticks(top, integer=True, most=len(ticks) - 2)   # fewer labels than would overlap
    chart.title(title)
    for i, (v, colour) in enumerate(zip(values, colours)):
        y = n - 1 - i          # the first item on top
        chart.rect(chart.px(0), chart.py(y + 0.4), chart.px(v), chart.py(y - 0.4), colour)
        chart.text(chart.px(v) + 4, chart.py(y), f"{v:,}", anchor="lm")
    chart.spines()
    chart.y_ticks([n - 1 - i for i in range(n)], labels)
    chart.x_ticks(ticks, [_number(v) for v in ticks])
    return chart.save(path)

