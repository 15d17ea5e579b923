"""PNG charts for the monthly report, drawn with matplotlib's Agg backend (no display).

Labels are Chinese when a CJK font is installed (Noto Sans CJK, WenQuanYi, Source Han,
SimHei, Microsoft YaHei, PingFang); otherwise English, with one warning naming the font
package to install, so a chart never shows empty boxes for characters.
"""

from __future__ import annotations

import functools
import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

log = logging.getLogger("roster_sync.report")

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Source Han Sans SC",
             "Source Han Sans CN", "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "AR PL UMing CN")
COLOURS = {"approved": "#9bb7d4", "actual": "#1f4e79", "over": "#c0392b", "high": "#c0392b", "medium": "#e67e22",
           "info": "#7f8c8d"}


@functools.cache
def cjk_font() -> str | None:
    """The first installed CJK font family, or None."""
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


def _figure(width: float = 7.5, height: float = 3.6):
    font = cjk_font()
    rc = {"font.size": 10, "axes.spines.top": False, "axes.spines.right": False, "axes.unicode_minus": False}
    if font:
        rc["font.family"] = [font, "DejaVu Sans"]
    with plt.rc_context(rc):
        # a bare Figure on an Agg canvas: pyplot's figure manager (a third of the set-up) is not needed
        fig = Figure(figsize=(width, height), dpi=110)
        FigureCanvasAgg(fig)
        ax = fig.subplots()
    return fig, ax, rc


def _save(fig, path) -> str:
    fig.tight_layout()
    # tight_layout leaves a placeholder layout engine behind, and savefig draws the figure once
    # more (without rendering) for any engine: the layout is done, so no engine
    fig.set_layout_engine(None)
    # zlib's fastest level: the charts are flat colour, a few % larger, encoded 3x faster
    fig.savefig(path, format="png", pil_kwargs={"compress_level": 1})
    return str(path)


def paired_bars(path, title: str, labels: list[str], approved: list[float], actual: list[float],
                names: tuple[str, str]) -> str:
    """Approved against actual, one pair of bars per item; the gap written above each pair."""
    fig, ax, rc = _figure(width=max(6.0, 1.1 * len(labels) + 2))
    with plt.rc_context(rc):
        x = range(len(labels))
        w = 0.38
        ax.bar([i - w / 2 for i in x], approved, w, label=names[0], color=COLOURS["approved"])
        ax.bar([i + w / 2 for i in x], actual, w, label=names[1],
                      color=[COLOURS["over"] if a > p else COLOURS["actual"] for a, p in zip(actual, approved)])
        top = max([*approved, *actual, 1])
        for i, (p, a) in enumerate(zip(approved, actual)):
            gap = a - p
            ax.text(i, max(p, a) + top * 0.02, f"{gap:+,.0f}" if gap else "0", ha="center", va="bottom", fontsize=9,
                    color=COLOURS["over"] if gap > 0 else "#333333")
        ax.set_xticks(list(x), labels)
        ax.set_ylim(0, top * 1.15)
        ax.set_title(title)
        ax.legend(frameon=False, loc="upper right")
        ax.yaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))
    return _save(fig, path)


def stacked_against_cap(path, title: str, categories: dict[str, float], cap: float, names: tuple[str, str]) -> str:
    """Headcount stacked by category beside the cap: one glance shows whether the total is over."""
    fig, ax, rc = _figure(width=6.0)
    with plt.rc_context(rc):
        ax.bar([0], [cap], 0.5, color=COLOURS["approved"], label=names[0])
        bottom = 0.0
        palette = ["#1f4e79", "#2e86c1", "#5dade2", "#a9cce3", "#d4e6f1", "#85929e"]
        for i, (cat, n) in enumerate(categories.items()):
            ax.bar([1], [n], 0.5, bottom=bottom, color=palette[i % len(palette)], label=f"{cat} {n:,.0f}")
            bottom += n
        ax.text(1, bottom, f"{bottom:,.0f}", ha="center", va="bottom",
                color=COLOURS["over"] if bottom > cap else "#333333")
        ax.text(0, cap, f"{cap:,.0f}", ha="center", va="bottom")
        ax.set_xticks([0, 1], list(names))
        ax.set_xlim(-0.6, 2.6)
        ax.set_ylim(0, max(cap, bottom, 1) * 1.15)
        ax.set_title(title)
        ax.legend(frameon=False, loc="upper right", fontsize=8)
    return _save(fig, path)


def trend(path, title: str, periods: list[str], series: dict[str, list[int]]) -> str:
    """Findings per period, one line per severity."""
    fig, ax, rc = _figure()
    with plt.rc_context(rc):
        for (name, values), colour in zip(series.items(), [COLOURS["high"], COLOURS["medium"], COLOURS["info"], "#333"]):
            ax.plot(periods, values, marker="o", color=colour, label=name)
            if values:
                ax.annotate(f"{values[-1]:,}", (len(periods) - 1, values[-1]), textcoords="offset points",
                            xytext=(6, 0), va="center", color=colour)
        ax.set_ylim(0, max([1, *[v for vs in series.values() for v in vs]]) * 1.2)
        ax.set_xlim(-0.3, len(periods) - 0.4)
        ax.set_title(title)
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    return _save(fig, path)


def horizontal_bars(path, title: str, labels: list[str], values: list[int], colours: list[str]) -> str:
    """Counts per item, largest on top."""
    fig, ax, rc = _figure(height=max(2.4, 0.32 * len(labels) + 1.0))
    with plt.rc_context(rc):
        y = list(range(len(labels)))[::-1]
        ax.barh(y, values, color=colours)
        for yi, v in zip(y, values):
            ax.text(v, yi, f" {v:,}", va="center")
        ax.set_yticks(y, labels)
        ax.set_xlim(0, max([*values, 1]) * 1.15)
        ax.set_title(title)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    return _save(fig, path)
