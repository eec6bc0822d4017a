"""What the Prefect artifacts and the compare metrics show: readable numbers, no empty tables, deltas
only where a difference is a result."""
from __future__ import annotations

from mosaic_it.evaluate.compare import has_delta
from tasks.common import markdown_table, readable
from tasks.train import cost_rows


def test_numbers_read_as_a_person_writes_them():
    assert [readable(v) for v in (1234567.0, 12.0, 0.000123456, 3.14159, 15234.56, True)] == [
        "1,234,567", "12", "0.0001235", "3.142", "15,235", "True"]


def test_an_empty_table_is_left_out_and_cells_are_formatted():
    assert markdown_table({}) == "" and markdown_table([]) == ""
    assert markdown_table([{"rule": "order/ALPHA", "n": 2.0, "score": None}]) == (
        "| rule | n | score |\n|---|---|---|\n| order/ALPHA | 2 |  |")


def test_the_cost_table_has_two_columns_and_units():
    metrics = {"cost/usd": 0.0123456, "cost/wall_seconds": 75.25, "memory/peak_bytes": 3 * 2**20,
               "tokens/padding_fraction": 0.125, "throughput/tokens_per_second": 1530.4, "train/final_loss": 2.5}
    assert cost_rows(metrics) == [
        {"metric": "cost/usd", "value": "$0.0123"}, {"metric": "cost/wall_seconds", "value": "75.2 s"},
        {"metric": "throughput/tokens_per_second", "value": "1,530"},
        {"metric": "memory/peak_bytes", "value": "3.0 MiB"}, {"metric": "tokens/padding_fraction", "value": "12.5%"}]


def test_deltas_are_for_results_not_counts_durations_or_sizes():
    results = ("heldout/loss", "mosaic_following/order_kendall_tau", "ifeval/prompt_strict", "cost/usd",
               "train/final_loss", "by_rule/order/ALPHA/format")
    others = ("params/total", "tokens/real", "data/truncated", "train/steps", "train/samples",
              "mosaic_following/probes", "mosaic_following/order_ranked", "ifeval/prompts", "heldout/seconds",
              "cost/wall_seconds", "cost/eval_device_seconds", "by_rule/order/ALPHA/n")
    assert [k for k in results + others if has_delta(k)] == list(results)
