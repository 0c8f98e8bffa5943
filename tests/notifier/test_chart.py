"""The funnel's layout: to scale, inside its frame, and sane for an empty campaign."""

from __future__ import annotations

from notifier.web import chart


def test_bars_are_to_scale_of_the_selection():
    funnel = chart.funnel(selected=200, sent=150, delivered=100, read=50, failed=20, skipped=10)
    widths = {bar.key: bar.width for bar in funnel.bars}
    assert widths["selected"] == chart.BAR_WIDTH
    assert widths["sent"] == chart.BAR_WIDTH * 0.75
    assert widths["read"] == chart.BAR_WIDTH * 0.25
    assert [bar.percent for bar in funnel.bars] == [100.0, 75.0, 50.0, 25.0, 10.0, 5.0]
    ys = [bar.y for bar in funnel.bars]
    assert ys == sorted(ys) and ys[-1] + chart.BAR_HEIGHT == funnel.height


def test_an_empty_campaign_and_odd_counts_stay_inside_the_frame():
    empty = chart.funnel(0, 0, 0, 0, 0)
    assert all(bar.width == 1.0 and bar.percent == 0.0 for bar in empty.bars)
    odd = chart.funnel(selected=10, sent=12, delivered=0, read=0, failed=0)
    assert max(bar.width for bar in odd.bars) == chart.BAR_WIDTH
    assert chart.progress(5, 0) == 0.0 and chart.progress(15, 10) == 100.0
    assert chart.progress(1, 3) == 33.3
