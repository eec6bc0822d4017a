"""Samples are written with orjson (mosaic_it.mosaic.augment.write_samples): byte for byte what
write_jsonl writes with json.dumps, for every kind of character a record can hold."""
from __future__ import annotations

from mosaic_it.jsonl import write_jsonl
from mosaic_it.mosaic.augment import write_samples

# Every control character, quotes, backslashes, the line and paragraph separators, a BOM, DEL,
# C1 controls, non-BMP characters, HTML-ish characters json.dumps leaves alone.
ODD = "".join(map(chr, range(0x300))) + "\u2028\u2029\ufeff\U0001f600\U0010fffd\\\"'/<>&\x7f\x80\x9f"


def test_samples_are_written_exactly_as_json_dumps_writes_them(tmp_path):
    samples = [
        {"instruction": ODD, "input": "", "output": ODD[::-1], "count": 2,
         "mosaic": {"source_ids": [0, 51923], "rule": None, "rule_args": {"k": 1, "sequence": [2, 1]},
                    "format": {"numbering": "{i}. ", "begin_tag": "<|BEGIN|>"}, "meta_instruction": "Say \"hi\"\n",
                    "tokens": 2**40, "epoch": 0}},
        {"instruction": "中文 ✓", "input": "", "output": "", "count": 1, "mosaic": {"source_ids": [-1], "empty": {}}},
    ]
    assert write_samples(tmp_path / "fast.jsonl", iter(samples)) == write_jsonl(tmp_path / "slow.jsonl", samples) == 2
    assert (tmp_path / "fast.jsonl").read_bytes() == (tmp_path / "slow.jsonl").read_bytes()
