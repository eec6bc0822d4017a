"""stats.png as Pillow draws it: round ticks, bars whose lengths follow the counts, odd inputs."""
import io

import pytest
from PIL import Image

from mosaic_it.mosaic.stats import StatsTally
from mosaic_it.mosaic.stats_png import BAR, SIZE, nice_ticks, plot_stats


@pytest.mark.parametrize(("low", "high", "expected"), [
    (0, 4200, [0, 1000, 2000, 3000, 4000]),
    (0.2, 11.4, [2, 4, 6, 8, 10]),
    (0, 16_000, [0, 5000, 10_000, 15_000]),
    (-64, 2070, [0, 500, 1000, 1500, 2000]),
    (0.6, 1.4, [1]),
    (0, 1, [0, 1]),
    (0, 13, [0, 5, 10]),
    (0, 1500, [0, 250, 500, 750, 1000, 1250, 1500]),
])
def test_ticks_are_whole_round_numbers_inside_the_range(low, high, expected):
    assert nice_ticks(low, high) == expected


def stats_of(samples):
    """stats.json's contents for samples given as (instructions, tokens, strategy, rule)."""
    tally = StatsTally()
    for count, tokens, strategy, rule in samples:
        tally.add({"strategy": strategy, "rule": rule, "epoch": 0}, count, tokens)
    return tally.result()


def bar_pixels(image, x):
    return sum(image.getpixel((x, y)) == BAR for y in range(image.height))


def test_column_heights_follow_the_counts(tmp_path):
    # 120 samples of one instruction, 60 of two, 30 of three: the first panel's columns go 4:2:1.
    stats = stats_of([(1, 10, "format", None)] * 120 + [(2, 20, "format", None)] * 60
                     + [(3, 30, "format", None)] * 30)
    plot_stats(stats, tmp_path / "stats.png")
    image = Image.open(tmp_path / "stats.png").convert("RGB")
    assert image.size == SIZE
    first_panel = [bar_pixels(image, x) for x in range(SIZE[0] // 3)]
    heights = sorted({h for h in first_panel if h}, reverse=True)
    assert len(heights) == 3, heights
    assert heights[0] / heights[1] == pytest.approx(2, abs=0.05)
    assert heights[0] / heights[2] == pytest.approx(4, abs=0.1)


def test_row_lengths_follow_the_counts(tmp_path):
    stats = stats_of([(1, 10, "format", None)] * 90 + [(1, 10, "mask", "ODD")] * 30)
    plot_stats(stats, tmp_path / "stats.png")
    image = Image.open(tmp_path / "stats.png").convert("RGB")
    third = image.crop((2 * SIZE[0] // 3, 0, SIZE[0], SIZE[1]))
    lengths = sorted({sum(third.getpixel((x, y)) == BAR for x in range(third.width))
                      for y in range(third.height)} - {0})
    assert lengths[-1] / lengths[0] == pytest.approx(3, abs=0.05)


@pytest.mark.parametrize("samples", [
    [(1, 7, "format", None)],  # one sample: one column, every token count equal
    [(4, 1999, "order", "REVERSE_LENGTH_WORD_BUT_WITH_A_MUCH_LONGER_NAME")] * 3 + [(10, 2, "format", None)],
    [(count, tokens, "mask", "FIX") for count in range(1, 40) for tokens in (5, 60_000)],
])
def test_any_tally_gives_a_png_and_the_same_bytes_each_time(tmp_path, samples):
    stats = stats_of(samples)
    plot_stats(stats, tmp_path / "a.png")
    plot_stats(stats, tmp_path / "b.png")
    data = (tmp_path / "a.png").read_bytes()
    assert data == (tmp_path / "b.png").read_bytes()
    assert Image.open(io.BytesIO(data)).size == SIZE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]  # no temporary left


@pytest.mark.parametrize(("low", "high", "width"), [(0, 16_600, 250), (0.1, 12.9, 380), (-60, 33_000, 380),
                                                    (0, 170_000, 120), (0, 3, 400)])
def test_x_tick_labels_never_run_into_each_other(low, high, width):
    from mosaic_it.mosaic.stats_png import Chart, label

    chart = Chart()
    ticks = chart.x_ticks(low, high, width)
    assert 1 <= len(ticks) <= 12
    gaps = [(b - a) * width / (high - low) for a, b in zip(ticks, ticks[1:])]
    widest = max(chart.fonts.tick.getlength(label(t)) for t in ticks)
    assert all(gap >= widest + 8 for gap in gaps), (ticks, gaps, widest)
