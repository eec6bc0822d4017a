"""stats.png: three bar charts of stats.json, drawn with Pillow.

matplotlib drew them before, at about 1.2 CPU-seconds of every augment run: 0.6 s importing it,
in a helper process while the packing competed for the cores, then 0.5 s laying out and drawing
after the last sample. Bars, lines and text are all these charts need; Pillow imports in 0.1 s
and draws them in a few hundredths.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from mosaic_it.atomic import atomic_path

SIZE = (1500, 420)
BAR = (31, 119, 180)
INK = (40, 40, 40)
GRID = (228, 228, 228)
MARGIN = 14
TICK = 5
PAD = 0.04  # room beyond the data at each end of an axis, as a share of its span
Box = tuple[int, int, int, int]  # left, top, right, bottom, in pixels


class Fonts(NamedTuple):
    title: Any
    label: Any
    tick: Any


@lru_cache(maxsize=1)
def plotting() -> Fonts:
    """Pillow and its fonts, loaded: all plot_stats() needs (a helper process loads them early).
    The typeface is Pillow's own embedded one: no font file is looked up on the machine."""
    from PIL import ImageFont

    return Fonts(ImageFont.load_default(16), ImageFont.load_default(13), ImageFont.load_default(12))


def nice_ticks(low: float, high: float, most: int = 7) -> list[int]:
    """Whole-number ticks within [low, high] at a round step (1, 2, 2.5 or 5 times a power of ten)."""
    raw = max((high - low) / (most - 1), 1.0)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw and m * power == int(m * power))
    first = math.ceil(low / step) * step
    return [int(first + i * step) for i in range(int((high - first) / step + 1e-9) + 1)]


class Scale(NamedTuple):
    """Data values from low to high onto pixels from start to end (end < start for a rising y)."""
    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> int:
        return round(self.start + (value - self.low) * (self.end - self.start) / (self.high - self.low))


def padded(low: float, high: float) -> tuple[float, float]:
    span = (high - low) or 1.0
    return low - PAD * span, high + PAD * span


def label(value: int) -> str:
    return f"{value:,}"


def shortened(text: str, font: Any, room: float) -> str:
    """The text, cut short with an ellipsis where it is wider than `room` pixels."""
    if font.getlength(text) <= room:
        return text
    while len(text) > 1 and font.getlength(text + "\u2026") > room:
        text = text[:-1]
    return text + "\u2026"


class Chart:
    def __init__(self, size: tuple[int, int] = SIZE) -> None:
        from PIL import Image, ImageDraw

        self.image = Image.new("RGB", size, "white")
        self.draw = ImageDraw.Draw(self.image)
        self.fonts = plotting()

    def text_height(self, font: Any) -> int:
        top, bottom = font.getbbox("Hg0")[1::2]
        return bottom - top

    def vertical_label(self, text: str, x: int, y: int) -> None:
        """Text turned a quarter left, centred on (x, y)."""
        from PIL import Image, ImageDraw

        font = self.fonts.label
        left, top, right, bottom = font.getbbox(text)
        mask = Image.new("L", (right - left, bottom - top))
        ImageDraw.Draw(mask).text((-left, -top), text, font=font, fill=255)
        mask = mask.transpose(Image.Transpose.ROTATE_90)
        self.image.paste(INK, (x - mask.width // 2, y - mask.height // 2), mask)

    def frame(self, box: Box, title: str, left_room: int, bottom_room: int) -> Box:
        """Draw a panel's title; the area left for its plot."""
        x0, y0, x1, y1 = box
        self.draw.text(((x0 + x1) // 2, y0), title, font=self.fonts.title, fill=INK, anchor="mt")
        return x0 + left_room, y0 + self.text_height(self.fonts.title) + 12, x1 - MARGIN, y1 - bottom_room

    def axes(self, area: Box, x: Scale, y: Scale, x_ticks: Sequence[int],
             y_ticks: Sequence[int], x_label: str, y_label: str | None) -> None:
        draw, tick_font = self.draw, self.fonts.tick
        left, top, right, bottom = area
        draw.rectangle(area, outline=INK)
        for value in x_ticks:
            at = x(value)
            draw.line((at, bottom, at, bottom + TICK), fill=INK)
            draw.text((at, bottom + TICK + 3), label(value), font=tick_font, fill=INK, anchor="mt")
        for value in y_ticks:
            at = y(value)
            draw.line((left - TICK, at, left, at), fill=INK)
            draw.text((left - TICK - 4, at), label(value), font=tick_font, fill=INK, anchor="rm")
        below = bottom + TICK + 3 + self.text_height(tick_font) + 8
        draw.text(((left + right) // 2, below), x_label, font=self.fonts.label, fill=INK, anchor="mt")
        if y_label:
            widest = max((tick_font.getlength(label(v)) for v in y_ticks), default=0)
            at = left - TICK - 4 - widest - 6 - self.text_height(self.fonts.label) / 2
            self.vertical_label(y_label, round(at), (top + bottom) // 2)

    def x_ticks(self, low: float, high: float, width: int) -> list[int]:
        """Round ticks, as many as fit side by side across `width` pixels (2 to 12)."""
        apart = self.fonts.tick.getlength(label(round(max(abs(low), abs(high))))) + 16  # the widest, and a gap
        return nice_ticks(low, high, most=max(2, min(12, int(width // apart) + 1)))

    def bottom_room(self) -> int:
        return TICK + 3 + self.text_height(self.fonts.tick) + 8 + self.text_height(self.fonts.label) + 6

    def columns(self, box: Box, bars: Sequence[tuple[float, float, int]], title: str,
                x_label: str) -> None:
        """A column per (left, right, height), in data units, over sample counts."""
        top_value = max(height for _, _, height in bars) * (1 + PAD) or 1
        y_ticks = nice_ticks(0, top_value)
        widest = max(self.fonts.tick.getlength(label(v)) for v in y_ticks)
        left_room = round(MARGIN + self.text_height(self.fonts.label) + 6 + widest + 4 + TICK)
        area = self.frame(box, title, left_room, self.bottom_room())
        x = Scale(*padded(min(b[0] for b in bars), max(b[1] for b in bars)), area[0], area[2])
        y = Scale(0, top_value, area[3], area[1])
        for value in y_ticks[1:]:
            self.draw.line((area[0], y(value), area[2], y(value)), fill=GRID)
        for start, end, height in bars:
            if height:
                self.draw.rectangle((x(start), y(height), x(end) - 1, area[3]), fill=BAR)
        self.axes(area, x, y, self.x_ticks(x.low, x.high, area[2] - area[0]), y_ticks, x_label, "samples")

    def rows(self, box: Box, values: dict[str, int], title: str, x_label: str) -> None:
        """A bar per named count, in the given order from the top."""
        tick_font = self.fonts.tick
        room = (box[2] - box[0]) // 2 - MARGIN - 4 - TICK  # for the names: at most half the panel
        names = [shortened(name, tick_font, room) for name in values]
        left_room = round(MARGIN + max(map(tick_font.getlength, names)) + 4 + TICK)
        area = self.frame(box, title, left_room, self.bottom_room())
        x = Scale(0, max(values.values()) * (1 + PAD) or 1, area[0], area[2])
        band = (area[3] - area[1]) / len(values)
        x_ticks = self.x_ticks(0, x.high, area[2] - area[0])
        for value in x_ticks[1:]:
            self.draw.line((x(value), area[1], x(value), area[3]), fill=GRID)
        for row, (name, value) in enumerate(zip(names, values.values())):
            middle = area[1] + band * (row + 0.5)
            if value:
                bar = (area[0], round(middle - 0.4 * band), x(value), round(middle + 0.4 * band) - 1)
                self.draw.rectangle(bar, fill=BAR)
            self.draw.line((area[0] - TICK, round(middle), area[0], round(middle)), fill=INK)
            self.draw.text((area[0] - TICK - 4, round(middle)), name, font=tick_font, fill=INK, anchor="rm")
        self.axes(area, x, Scale(0, 1, area[3], area[1]), x_ticks, [], x_label, None)


def plot_stats(stats: dict[str, Any], path: str | Path) -> None:
    """stats.png of stats.json's contents (at least one sample)."""
    chart = Chart()
    width, height = chart.image.size
    third = width // 3
    boxes = [(i * third + MARGIN, MARGIN, (i + 1) * third - MARGIN, height - MARGIN) for i in range(3)]
    instructions, tokens = stats["instructions_per_sample"], stats["tokens_per_sample"]
    hist = instructions["histogram"]
    chart.columns(boxes[0], [(e - 0.4, e + 0.4, n) for e, n in zip(hist["edges"], hist["counts"])],
                  f"Instructions per sample (mean {instructions['mean']:.2f})", "instructions")
    hist = tokens["histogram"]
    chart.columns(boxes[1], list(zip(hist["edges"], hist["edges"][1:], hist["counts"])),
                  f"Tokens per sample (mean {tokens['mean']:,.0f}, max {tokens['max']:,})", "tokens")
    chart.rows(boxes[2], stats["per_rule"], f"Samples per strategy:rule ({stats['samples']:,} in all)", "samples")
    with atomic_path(path) as tmp:
        chart.image.save(tmp, format="PNG")
