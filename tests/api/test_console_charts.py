"""The console's server-side SVG charts: escaping, empty data, marks that match the data."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from api.console.charts import BarRow, LineSeries, bar_chart, empty_chart, line_chart, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script> & «ёлки» \'q\''


def parse(markup: str) -> ET.Element:
    """The chart as XML: a well-formed SVG element, or the test fails."""
    root = ET.fromstring(str(markup))
    assert root.tag == f"{SVG}svg"
    return root


def marks(root: ET.Element, tag: str, *css: str) -> list[ET.Element]:
    """Elements ``tag`` with every class of ``css``."""
    return [e for e in root.iter(f"{SVG}{tag}") if set(css) <= set((e.get("class") or "").split())]


def test_a_script_label_comes_out_as_text_in_bars_and_lines():
    bars = str(bar_chart([BarRow(HOSTILE, 3, 1)], title=HOSTILE))
    lines = str(line_chart([HOSTILE, "b"], [LineSeries(HOSTILE, [1, 2])], title=HOSTILE))
    for svg in (bars, lines, str(empty_chart(HOSTILE, HOSTILE))):
        assert "<script" not in svg
        assert "&lt;script&gt;" in svg
        assert '"x"' not in svg and "&quot;x&quot;" in svg
        root = parse(svg)
        texts = "".join(root.itertext())
        assert "<script>" in texts  # the parsed text is the label itself, not markup
    root = parse(bars)
    assert {e.get("data-label") for e in marks(root, "rect", "bar")} == {HOSTILE}


def test_control_characters_are_dropped_and_the_svg_stays_well_formed():
    svg = bar_chart([BarRow("a\x00b\x1fc", 1)], title="t\x07")
    root = parse(svg)
    assert [e.get("data-label") for e in marks(root, "rect", "bar")] == ["abc"]


def test_chart_ids_are_reduced_to_safe_characters():
    root = parse(bar_chart([BarRow("a", 1)], title="t", chart_id='x" onload="evil()'))
    assert re.fullmatch(r"[a-z0-9_-]+", root.get("id"))
    assert root.get("onload") is None


@pytest.mark.parametrize("chart", [
    lambda: bar_chart([], title="По темам"),
    lambda: line_chart([], [LineSeries("a", [])], title="По дням"),
    lambda: line_chart(["01.04", "02.04"], [LineSeries("a", [None, None])], title="По дням"),
    lambda: empty_chart("Пусто"),
])
def test_empty_data_gives_a_no_data_chart(chart):
    svg = chart()
    root = parse(svg)
    assert root.get("data-empty") == "true"
    assert "нет данных" in "".join(root.itertext())
    assert not marks(root, "rect", "bar") and not marks(root, "path", "line")


def test_bars_match_the_rows_two_per_row_when_compared():
    rows = [BarRow("Невский", 26, 20), BarRow("Кировский", 20, 0), BarRow("Пушкинский", 0, 5)]
    root = parse(bar_chart(rows, title="По территориям", chart_id="t"))
    assert root.get("data-rows") == "3" and root.get("data-series") == "2"
    current = marks(root, "rect", "bar", "current")
    previous = marks(root, "rect", "bar", "previous")
    assert [(e.get("data-label"), float(e.get("data-value"))) for e in current] == \
        [("Невский", 26), ("Кировский", 20), ("Пушкинский", 0)]
    assert [float(e.get("data-value")) for e in previous] == [20, 0, 5]
    widths = [float(e.get("width")) for e in current]
    assert widths[2] == 0 and widths[0] > widths[1] > 0
    assert widths[0] / widths[1] == pytest.approx(26 / 20, rel=0.02)
    assert "Текущий период" in "".join(root.itertext())


def test_a_single_series_has_one_bar_per_row():
    root = parse(bar_chart([BarRow("a", 1), BarRow("b", 2)], title="t"))
    assert len(marks(root, "rect", "bar")) == 2 and root.get("data-series") == "1"
    assert not marks(root, "rect", "bar", "previous")


def test_long_labels_are_shortened_on_screen_but_kept_whole_in_titles():
    label = "Повреждения или неисправность элементов уличной инфраструктуры " * 3
    root = parse(bar_chart([BarRow(label, 1)], title="t"))
    shown = [e.text for e in root.iter(f"{SVG}text") if e.get("class") == "label"]
    assert shown[0].endswith("…") and len(shown[0]) < len(label)
    assert label.strip() in "".join(root.itertext())  # the row's <title> has it whole


def test_lines_have_a_path_per_series_and_a_point_per_value():
    days = ["01.04", "02.04", "03.04", "04.04"]
    root = parse(line_chart(days, [LineSeries("Текущий", [3, 5, None, 4]),
                                   LineSeries("Предыдущий", [1, 1, 2, 0])],
                            title="По дням", target=4, target_label="цель"))
    paths = marks(root, "path", "line")
    assert [p.get("data-label") for p in paths] == ["Текущий", "Предыдущий"]
    assert paths[0].get("d").count("M") == 2  # the gap breaks the line
    points = marks(root, "circle", "point")
    assert len(points) == 7
    assert [float(p.get("data-value")) for p in points[:3]] == [3, 5, 4]
    assert marks(root, "line", "target")


def test_percent_charts_format_shares_the_russian_way():
    svg = str(line_chart(["янв 2021"], [LineSeries("Доля", [0.5])], title="t", percent=True,
                         y_max=1.0))
    assert "50,0\u202f%" in svg and "100,0\u202f%" in svg


def test_nice_ticks_cover_the_top_with_round_steps():
    assert nice_ticks(26) == [0, 10, 20, 30]
    assert nice_ticks(2, integer=True) == [0, 1, 2]
    assert nice_ticks(0.93) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert nice_ticks(0) == [0, 1]
    for top in (1, 7, 99, 240, 12345):
        ticks = nice_ticks(top)
        assert ticks[-1] >= top and len(ticks) <= 7
