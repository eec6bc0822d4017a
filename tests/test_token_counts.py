"""Exact token counts without tokenizing whole samples: `mosaic.tokens`, verify's recount, stats."""
from __future__ import annotations

import json
import random

import pytest

from mosaic_it.config.augment import AugmentConfig
from mosaic_it.errors import InputFileError
from mosaic_it.jsonl import iter_jsonl, write_jsonl
from mosaic_it.mosaic.augment import run_augment
from mosaic_it.mosaic.budget import SampleCounter, TokenCounter
from mosaic_it.mosaic.segments import splits_are_exact
from mosaic_it.mosaic.sources import load_source_records
from mosaic_it.mosaic.verify import check_sample, verify_file
from mosaic_it.records import instruction_text

# Joins that make GPT-2 pre-tokens merge or split differently: spaces, newlines, punctuation runs,
# a contraction's tail, digits.
AWKWARD_JOINS = ["", " ", "  ", "\n", "\n\n", " x", "x", "'s", "1. ", "(2)\n", "<BEGIN>", "**END**", ".", "9"]
# Long pieces that are not record texts, cut on the fly like meta-instructions.
LONG_PIECES = ["Answer every instruction below, in the order given. Wrap each answer in <A> and </A>.",
               "  starts with spaces and is long enough to be cut on the fly, ends with them  ",
               "no-space-anywhere-in-this-piece-but-longer-than-the-threshold-for-cutting"]


@pytest.fixture(scope="module")
def texts(sample_data) -> list[str]:
    records = json.loads(sample_data.read_text(encoding="utf-8"))[:300]
    return [instruction_text(r) for r in records] + [r["output"] for r in records] + ["word", "a b", " lead", "trail "]


def random_samples(texts: list[str], n: int, seed: int) -> list[list[list[str]]]:
    rng = random.Random(seed)
    samples = []
    for _ in range(n):
        pieces = []
        for _ in range(rng.randint(1, 6)):
            pieces += [rng.choice(AWKWARD_JOINS), rng.choice(texts)]
        if rng.random() < 0.5:
            pieces.insert(rng.randrange(len(pieces) + 1), rng.choice(LONG_PIECES))
        samples.append([pieces, [rng.choice(AWKWARD_JOINS), *reversed(pieces), rng.choice(AWKWARD_JOINS)]])
    return samples


def whole_counts(counter: TokenCounter, samples) -> list[int]:
    return [counter.sample_tokens(["".join(side) for side in sides]) for sides in samples]


def piecewise_counts(exact: SampleCounter, samples) -> list[int]:
    return [sum(exact.side_tokens(side) for side in sides) for sides in samples]


def test_counts_from_cut_texts_equal_tokenizing_the_whole_sample(embedded_tokenizer, texts):
    counter = TokenCounter(embedded_tokenizer)
    exact = SampleCounter(counter, texts)
    assert splits_are_exact(embedded_tokenizer) and len(exact.shorts) > 0.9 * len(set(texts))
    samples = random_samples(texts, 400, seed=0)
    assert piecewise_counts(exact, samples) == whole_counts(counter, samples)


def test_a_tokenizer_whose_cuts_are_not_safe_is_counted_whole(embedded_tokenizer, texts):
    import copy

    from tokenizers import pre_tokenizers

    prefixed = copy.deepcopy(embedded_tokenizer.backend_tokenizer)
    prefixed.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)  # a space before every piece
    counter = TokenCounter(prefixed)
    exact = SampleCounter(counter, texts)
    assert not splits_are_exact(prefixed) and exact.shorts == {}
    samples = random_samples(texts, 50, seed=1)
    assert piecewise_counts(exact, samples) == whole_counts(counter, samples)


def test_the_bare_counting_tokenizer_counts_like_the_transformers_one(embedded_tokenizer, texts):
    from mosaic_it.models.tokenizer import load_counting_tokenizer

    bare = load_counting_tokenizer(None)
    assert type(bare).__module__.startswith("tokenizers")
    assert TokenCounter(bare).count_many(texts).tolist() == TokenCounter(embedded_tokenizer).count_many(texts).tolist()


@pytest.fixture(scope="module")
def augmented(tmp_path_factory, sample_data):
    folder = tmp_path_factory.mktemp("tokens")
    source = folder / "train.jsonl"
    write_jsonl(source, json.loads(sample_data.read_text(encoding="utf-8"))[:300])
    cfg = AugmentConfig(input=str(source), output=str(folder / "mosaic.jsonl"), stats_dir=str(folder / "stats"),
                        epochs=2, max_tokens=700)
    run_augment(cfg, show_progress=False)
    return cfg


def test_every_sample_records_its_exact_token_count(augmented, embedded_tokenizer):
    counter = TokenCounter(embedded_tokenizer)
    samples = list(iter_jsonl(augmented.output))
    assert [s["mosaic"]["tokens"] for s in samples] == whole_counts(counter, [[[s["instruction"]], [s["output"]]] for s in samples])
    assert verify_file(augmented.output, augmented.input, None, show_progress=False).ok


def test_verify_catches_a_wrong_or_missing_token_count(augmented, embedded_tokenizer):
    records = load_source_records(augmented.input)
    counter = TokenCounter(embedded_tokenizer)
    sample = next(iter_jsonl(augmented.output))
    assert check_sample(sample, records, counter) == []
    sample["mosaic"]["tokens"] += 1
    assert check_sample(sample, records, counter) == [
        f"recorded token count {sample['mosaic']['tokens']} differs from the exact count {sample['mosaic']['tokens'] - 1}"]
    del sample["mosaic"]["tokens"]
    assert any("recorded token count None" in p for p in check_sample(sample, records, counter))


def test_stats_never_tokenizes(augmented, monkeypatch, tmp_path):
    import mosaic_it.models.tokenizer as tokenizer_module
    from mosaic_it.mosaic.stats import run_stats

    def refuse(*args, **kwargs):
        raise AssertionError("stats loaded a tokenizer")

    monkeypatch.setattr(tokenizer_module, "load_tokenizer", refuse)
    monkeypatch.setattr(tokenizer_module, "load_counting_tokenizer", refuse)
    samples = list(iter_jsonl(augmented.output))
    stats = run_stats(augmented.output, tmp_path / "stats")
    recorded = [s["mosaic"]["tokens"] for s in samples]
    assert stats["tokens_per_sample"]["total"] == sum(recorded)
    assert stats["tokens_per_sample"]["max"] == max(recorded)
    assert sum(stats["tokens_per_sample"]["histogram"]["counts"]) == len(samples)


def test_stats_on_a_file_without_token_counts_names_the_line(augmented, tmp_path):
    from mosaic_it.mosaic.stats import run_stats

    samples = list(iter_jsonl(augmented.output))
    del samples[1]["mosaic"]["tokens"]
    old = tmp_path / "old.jsonl"
    write_jsonl(old, samples)
    with pytest.raises(InputFileError, match=r"old.jsonl:2: .*mosaic.tokens"):
        run_stats(old, tmp_path / "stats")
