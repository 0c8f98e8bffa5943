"""The campaign funnel and progress, laid out for an inline SVG (server-side: no script, no CDN).

Pure arithmetic, no Flask: the template draws what :func:`funnel` returns. Every bar's width is
its share of the selected consumers, so the chart reads as "how many of those we chose got
this far"; failed and skipped sit below the funnel, on the same scale.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Width of the bar area, in SVG user units (labels sit to its left, counts to its right).
BAR_WIDTH = 420
#: Height of one bar and the gap below it.
BAR_HEIGHT = 26
BAR_GAP = 10
#: Left margin for the labels.
LABEL_WIDTH = 110
#: Right margin for the counts.
COUNT_WIDTH = 150


@dataclass(frozen=True)
class Bar:
    """One stage of the funnel: its label, count, share of the selection and geometry."""

    key: str
    label: str
    count: int
    percent: float
    x: int
    y: int
    width: float
    height: int

    @property
    def text_y(self) -> float:
        """Baseline of the bar's label and count."""
        return self.y + self.height * 0.68


@dataclass(frozen=True)
class Funnel:
    """The bars, and the SVG's size."""

    bars: tuple[Bar, ...]
    width: int
    height: int
    base: int

    @property
    def count_x(self) -> int:
        """Where the counts start."""
        return LABEL_WIDTH + BAR_WIDTH + 8


def _percent(count: int, base: int) -> float:
    return round(100.0 * count / base, 1) if base else 0.0


def funnel(
    selected: int, sent: int, delivered: int, read: int, failed: int, skipped: int = 0
) -> Funnel:
    """Selected → sent → delivered → read, then failed and skipped, as bars on one scale."""
    stages = [
        ("selected", "Selected", selected),
        ("sent", "Sent", sent),
        ("delivered", "Delivered", delivered),
        ("read", "Read", read),
        ("failed", "Failed", failed),
        ("skipped", "Skipped", skipped),
    ]
    # On one scale even if a count outruns the selection (it should not; the chart must not
    # draw past its frame if it ever does).
    base = max([selected, *(count for _, _, count in stages)]) or 0
    bars = []
    for row, (key, label, count) in enumerate(stages):
        width = BAR_WIDTH * count / base if base else 0.0
        bars.append(
            Bar(
                key=key,
                label=label,
                count=count,
                percent=_percent(count, selected),
                x=LABEL_WIDTH,
                y=row * (BAR_HEIGHT + BAR_GAP),
                # A zero stays visible as a hairline, so the row does not look missing.
                width=round(max(width, 1.0 if count == 0 else 2.0), 1),
                height=BAR_HEIGHT,
            )
        )
    height = len(bars) * (BAR_HEIGHT + BAR_GAP) - BAR_GAP
    return Funnel(
        bars=tuple(bars), width=LABEL_WIDTH + BAR_WIDTH + COUNT_WIDTH, height=height, base=selected
    )


def progress(done: int, total: int) -> float:
    """Percent of ``total`` that is ``done`` (0 when there is nothing to do), for the bar."""
    if total <= 0:
        return 0.0
    return round(min(100.0, 100.0 * done / total), 1)


__all__ = ["BAR_WIDTH", "Bar", "Funnel", "funnel", "progress"]
