"""The monthly report's charts (include.report.charts): round ticks, and nothing drawn off the picture."""

from __future__ import annotations

import pytest
from PIL import Image

from include.report import charts


@pytest.mark.parametrize("top, integer, expected", [
    (713_000, False, [0, 100_000, 200_000, 300_000, 400_000, 500_000, 600_000, 700_000]),
    (54, True, [0, 10, 20, 30, 40, 50]),
    (1.2, True, [0, 1]),
    (12, True, [0, 2, 4, 6, 8, 10, 12]),
    (22.5, False, [0, 2.5, 5, 7.5, 10, 12.5, 15, 17.5, 20, 22.5]),
    (1_400_000, True, [0, 200_000, 400_000, 600_000, 800_000, 1_000_000, 1_200_000, 1_400_000]),
])
def test_ticks_are_round_and_within_the_axis(top, integer, expected):
    assert charts._ticks(top, integer) == expected


def _edges_blank(path) -> bool:
    with Image.open(path) as im:
        im = im.convert("L")
        w, h = im.size
        edges = [im.crop(box) for box in ((0, 0, w, 1), (0, h - 1, w, h), (0, 0, 1, h), (w - 1, 0, w, h))]
        return all(e.getextrema() == (255, 255) for e in edges)


def test_charts_keep_long_labels_and_large_values_inside_the_picture(tmp_path):
    long = "编外人员未纳入实名管理（长标签）"
    drawn = [
        charts.paired_bars(tmp_path / "q.png", "编制核定数与实有人数（按编制类型）", ["行政", long, "中小学教职工"],
                           [86_000, 6_000, 9_620_000], [83_231, 5_757, 9_578_495], ("核定", "实有")),
        charts.stacked_against_cap(tmp_path / "n.png", "编外人员与控制数", {long: 1_111_168, "涉密岗位": 1}, 1_159_884,
                                   ("控制数", "实有")),
        charts.trend(tmp_path / "t.png", "核查问题数量趋势", ["2026-09", "2026-10"],
                     {"高": [20, 1_234_567], "中": [40, 46], long: [2, 3]}),
        charts.horizontal_bars(tmp_path / "c.png", "本期核查问题（按类型）", [long, "超编"], [1_234_567, 3],
                               [charts.COLOURS["high"], charts.COLOURS["medium"]]),
        charts.horizontal_bars(tmp_path / "e.png", "本期核查问题（按类型）", [], [], []),
        charts.paired_bars(tmp_path / "z.png", "领导职数", [], [], [], ("核定", "实有")),
    ]
    for path in drawn:
        with Image.open(path) as im:
            assert im.format == "PNG" and im.width >= 500 and im.height >= 250, path
            assert len(im.convert("RGB").getcolors(1 << 20)) > 20, f"{path} looks blank"
        assert _edges_blank(path), f"{path}: something is drawn over the picture's edge (clipped)"
