"""Augmentation end to end: budget, epochs, determinism, provenance round trip through verify."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from mosaic_it.config.augment import AugmentConfig
from mosaic_it.jsonl import iter_jsonl, write_jsonl
from mosaic_it.mosaic.augment import run_augment
from mosaic_it.models.tokenizer import count_tokens
from mosaic_it.mosaic.budget import TokenCounter
from mosaic_it.mosaic.verify import check_sample, verify_file
from mosaic_it.mosaic.sources import load_source_records


@pytest.fixture(scope="module")
def records_file(tmp_path_factory, sample_data):
    records = json.loads(sample_data.read_text(encoding="utf-8"))[:400]
    path = tmp_path_factory.mktemp("src") / "train.jsonl"
    write_jsonl(path, records)
    return path


def augment(tmp_path, source, **overrides) -> tuple[AugmentConfig, list[dict]]:
    cfg = AugmentConfig(input=str(source), output=str(tmp_path / "mosaic.jsonl"), **overrides)
    report = run_augment(cfg, show_progress=False)
    samples = list(iter_jsonl(cfg.output))
    assert report.samples == len(samples)
    return cfg, samples


def test_every_sample_verifies_and_respects_the_budget(tmp_path, records_file, embedded_tokenizer):
    cfg, samples = augment(tmp_path, records_file, epochs=2, max_tokens=512)
    assert {s["mosaic"]["max_tokens"] for s in samples} == {512}
    report = verify_file(cfg.output, records_file, None, show_progress=False)  # the recorded budget
    assert report.samples == len(samples) and report.ok, report.violations
    assert not verify_file(cfg.output, records_file, None, 64, show_progress=False).ok
    counter = TokenCounter(embedded_tokenizer)
    assert max(counter.sample_tokens((s["instruction"], s["output"])) for s in samples) <= 512
    assert {s["mosaic"]["strategy"] for s in samples} == {"format", "order", "mask"}


def test_each_epoch_uses_every_record_at_most_once(tmp_path, records_file):
    _, samples = augment(tmp_path, records_file, epochs=3, max_tokens=4096)
    for epoch in range(3):
        used = [i for s in samples if s["mosaic"]["epoch"] == epoch for i in s["mosaic"]["source_ids"]]
        assert len(used) == len(set(used)) == 400  # nothing too long here, so all are used


def test_provenance_fields_match_the_sample(tmp_path, records_file):
    records = load_source_records(records_file)
    _, samples = augment(tmp_path, records_file, epochs=1)
    for sample in samples:
        meta = sample["mosaic"]
        assert sample["count"] == len(meta["source_ids"]) and sample["input"] == ""
        assert set(meta["response_ids"]) <= set(meta["source_ids"])
        for record_id in meta["response_ids"]:
            assert records[record_id]["output"] in sample["output"]
        for record_id in meta["source_ids"]:
            assert records[record_id]["instruction"] in sample["instruction"]


def test_same_seed_is_byte_identical_and_another_seed_differs(tmp_path, records_file):
    first = tmp_path / "a"
    second = tmp_path / "b"
    third = tmp_path / "c"
    for folder, seed in ((first, 7), (second, 7), (third, 8)):
        folder.mkdir()
        augment(folder, records_file, epochs=1, seed=seed)
    assert (first / "mosaic.jsonl").read_bytes() == (second / "mosaic.jsonl").read_bytes()
    assert (first / "mosaic.jsonl").read_bytes() != (third / "mosaic.jsonl").read_bytes()


@pytest.mark.parametrize("mode", ["uniform", "fix_max", "max_length", "exp", "pareto", "lognormal", "logistic2"])
def test_every_wrap_mode_verifies(tmp_path, records_file, mode):
    cfg, samples = augment(tmp_path, records_file, epochs=1, wrap_mode=mode, max_instructions=6, max_tokens=1024)
    assert verify_file(cfg.output, records_file, None, 1024, show_progress=False).ok
    counts = Counter(s["count"] for s in samples)
    if mode == "fix_max":
        # Only the budget or the end of the epoch stops a sample short of K.
        assert counts.most_common(1)[0][0] == 6
    if mode == "max_length":
        assert max(counts) > 6


def test_a_record_longer_than_the_budget_is_skipped_and_counted(tmp_path):
    records = [{"instruction": f"Say {i}.", "input": "", "output": f"{i}"} for i in range(20)]
    records.insert(5, {"instruction": "Repeat this.", "input": "", "output": "word " * 400})
    source = tmp_path / "src.jsonl"
    write_jsonl(source, records)
    cfg = AugmentConfig(input=str(source), output=str(tmp_path / "m.jsonl"), epochs=2, max_tokens=128)
    report = run_augment(cfg, show_progress=False)
    samples = list(iter_jsonl(cfg.output))
    assert report.skipped_too_long == 2  # once per epoch
    assert all(5 not in s["mosaic"]["source_ids"] for s in samples)
    assert sum(s["count"] for s in samples) == 2 * 20


def test_verify_catches_tampering(tmp_path, records_file, embedded_tokenizer):
    records = load_source_records(records_file)
    counter = TokenCounter(embedded_tokenizer)
    _, samples = augment(tmp_path, records_file, epochs=1, strategy="order")
    ordered = next(s for s in samples if s["mosaic"]["rule"] == "REVERSE")
    assert check_sample(ordered, records, counter, 2048) == []

    swapped = json.loads(json.dumps(ordered))
    swapped["mosaic"]["response_ids"] = swapped["mosaic"]["response_ids"][::-1]
    assert any("do not follow" in p for p in check_sample(swapped, records, counter, 2048))

    untagged = json.loads(json.dumps(ordered))
    untagged["output"] = untagged["output"].replace("\n\n", "\n", 1)
    assert check_sample(untagged, records, counter, 2048)

    assert any("exceed the budget" in p for p in check_sample(ordered, records, counter, 10))


def test_verify_catches_a_masked_answer_that_leaks(tmp_path, records_file, embedded_tokenizer):
    records = load_source_records(records_file)
    counter = TokenCounter(embedded_tokenizer)
    _, samples = augment(tmp_path, records_file, epochs=1, strategy="mask")
    masked = next(s for s in samples if s["mosaic"]["strategy"] == "mask")
    meta = masked["mosaic"]
    hidden = next(p for p, i in enumerate(meta["source_ids"]) if i not in meta["response_ids"])
    layout = meta["format"]
    segment = (layout["numbering"] or "").format(i=hidden + 1) + layout["begin_tag"]
    segment += records[meta["source_ids"][hidden]]["output"] + layout["end_tag"]
    leaked = json.loads(json.dumps(masked))
    leaked["output"] += layout["response_separator"] + segment
    problems = check_sample(leaked, records, counter, 2048)
    assert any("appears in the output" in p for p in problems)
    assert any("differs from its re-rendering" in p for p in problems)


def test_a_masked_response_equal_to_an_answered_one_is_not_a_leak(embedded_tokenizer):
    """Found by hypothesis: untagged numbering, and the masked record's response equals the
    answered one's, so its rendering is in the output once, as the answered record's."""
    records = [{"instruction": "0", "input": "", "output": "0"}, {"instruction": "0", "input": "0", "output": "0"}]
    meta = {"source_ids": [1, 0], "strategy": "mask", "rule": "WORD_LONG", "response_ids": [0], "epoch": 1,
            "rule_args": {"k": 1},
            "format": {"numbering": None, "begin_tag": "<<RESPONSE>>", "end_tag": "<<END RESPONSE>>",
                       "instruction_separator": "\n\n", "response_separator": "\n\n\n",
                       "meta_position": "after", "meta_separator": "\n\n"},
            "meta_instruction": "Mark the start of each answer with <<RESPONSE>> and its end with <<END RESPONSE>>. "
                                "Leave the 1 wordiest instruction(s) unanswered.", "max_tokens": 80}
    sample = {"instruction": "0\n0\n\n0\n\n" + meta["meta_instruction"], "input": "",
              "output": "<<RESPONSE>>0<<END RESPONSE>>", "count": 2, "mosaic": meta}
    counter = TokenCounter(embedded_tokenizer)
    meta["tokens"] = counter.count(sample["instruction"]) + counter.count(sample["output"])
    assert check_sample(sample, records, counter) == []
    twice = json.loads(json.dumps(sample))
    twice["output"] += meta["format"]["response_separator"] + "<<RESPONSE>>0<<END RESPONSE>>"
    assert any("appears in the output" in p for p in check_sample(twice, records, counter))


# Files the one-parse reader must read as read_records does (first list), and files it must leave
# to read_records (second list), which then reads them or names the faulty line.
_READ_IN_ONE_PARSE = {
    "array": b'[{"instruction": "a", "input": "", "output": "b"}, {"instruction": "c", "output": "d", "x": 1}]',
    "array with BOM, CRLF and unicode": b'\xef\xbb\xbf[\r\n {"instruction": "\\u00e9t\\u00e9 \xf0\x9f\x98\x80",'
                                        b' "input": "i", "output": "\\ud83d\\ude00"}\r\n]\r\n',
    "lines": b'{"instruction": "a", "input": "", "output": "b"}\n\n  \n{"instruction": "c", "output": "d"}\r\n',
    "one line, duplicate key": b'{"instruction": "a", "instruction": "z", "output": "b"}',
    "huge integer elsewhere": b'{"instruction": "a", "output": "b", "n": 123456789012345678901234567890}\n',
}
_LEFT_TO_READ_RECORDS = {
    "chat record": b'[{"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}]',
    "lone surrogate": b'[{"instruction": "a\\ud800", "output": "b"}]',
    "NaN elsewhere": b'{"instruction": "a", "output": "b", "score": NaN}\n',
    "blank output": b'[{"instruction": "a", "output": "b"},\n {"instruction": "c", "output": "  "}]',
    "null input": b'{"instruction": "a", "input": null, "output": "b"}\n',
    "broken line": b'{"instruction": "a", "output": "b"}\n{"instruction": \n',
    "not an object": b'{"instruction": "a", "output": "b"}\n[1, 2]\n',
    "empty array": b'[]',
}


def _read_record_by_record(path):
    from mosaic_it.mosaic import sources

    fast, sources._all_usable = sources._all_usable, lambda path: None
    try:
        return sources.load_source_records(path)
    except Exception as exc:  # noqa: BLE001 - the error itself is compared
        return f"{type(exc).__name__}: {exc}"
    finally:
        sources._all_usable = fast


@pytest.mark.parametrize("name", list(_READ_IN_ONE_PARSE) + list(_LEFT_TO_READ_RECORDS))
def test_one_parse_reads_what_read_records_reads(tmp_path, name):
    from mosaic_it.mosaic.sources import _all_usable

    path = tmp_path / "records.json"
    path.write_bytes(_READ_IN_ONE_PARSE.get(name) or _LEFT_TO_READ_RECORDS[name])
    assert (_all_usable(path) is not None) == (name in _READ_IN_ONE_PARSE)
    try:
        got = load_source_records(path)
    except Exception as exc:  # noqa: BLE001
        got = f"{type(exc).__name__}: {exc}"
    assert got == _read_record_by_record(path)
    if name == "chat record":
        assert got == [{"instruction": "a", "input": "", "output": "b"}]
    if name == "blank output":
        assert "records.json:2: record 1 is unusable" in got


def test_one_parse_reads_the_bundled_sample_as_read_records(sample_data):
    from mosaic_it.mosaic.sources import _all_usable

    assert _all_usable(sample_data) == _read_record_by_record(sample_data)


def test_verify_counts_in_batches_what_each_sample_counts_alone(tmp_path, records_file, embedded_tokenizer, monkeypatch):
    from mosaic_it.mosaic import verify

    records = load_source_records(records_file)
    counter = TokenCounter(embedded_tokenizer)
    cfg, samples = augment(tmp_path, records_file, epochs=1, max_tokens=512)
    for line in (2, 9, 10, len(samples)):  # in several batches of 7, at their edges too
        samples[line - 1]["mosaic"]["tokens"] += 1
    tampered = tmp_path / "tampered.jsonl"
    write_jsonl(tampered, samples)
    refused = samples[11]["output"]  # a batch the tokenizer refuses is counted sample by sample
    batched = []

    def count_or_refuse(tokenizer, texts):
        batched.append(len(texts))
        if refused in texts:
            raise ValueError("refused")
        return count_tokens(tokenizer, texts)

    monkeypatch.setattr(verify, "CHECK_BATCH", 7)
    monkeypatch.setattr(verify, "count_tokens", count_or_refuse)
    report = verify_file(tampered, records_file, None, show_progress=False)
    alone = [f"{tampered}:{line}: {problem}"
             for line, sample in enumerate(samples, 1) for problem in check_sample(sample, records, counter)]
    assert report.samples == len(samples) and report.violation_count == len(alone) == 4
    assert report.violations == alone and all("differs from the exact count" in v for v in alone)
    assert batched[:2] == [14, 14] and len(batched) == -(-len(samples) // 7)
