"""The on-disk generation cache: a rerun asks the model nothing; a changed setting or model misses."""
from __future__ import annotations

import pytest

from mosaic_it.config.evaluate import EvaluateConfig, GenerationConfig
from mosaic_it.evaluate.backend import hf_generator
from mosaic_it.evaluate.context import EvalContext
from mosaic_it.evaluate.generation_cache import GenerationCache, cached, model_fingerprint

PROMPTS = ["Name a colour.", "Count to three.", "Say hi.", "Name a colour.", "What is rain?"]


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    from mosaic_it.evaluate.model import load_model

    return load_model(str(tiny_llama_dir), "cpu")


class Counting:
    """The real HF generator, counting the prompts that reach it."""

    def __init__(self, model, tokenizer):
        self.inner = hf_generator(model, tokenizer, 0, "chat_template")
        self.prompts: list[str] = []

    def __call__(self, prompts, gen, desc, **options):
        self.prompts += list(prompts)
        return self.inner(prompts, gen, desc, **options)


def behind_cache(tiny, path, counting):
    model, tokenizer = tiny
    render = lambda p: tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False)  # noqa: E731
    return cached(counting, GenerationCache(path), render, "chat_template", "hf", 0)


def test_a_rerun_reads_every_answer_from_disk(tiny, tmp_path):
    gen = GenerationConfig(max_new_tokens=6, batch_size=2)
    path = tmp_path / "cache.jsonl"
    first = Counting(*tiny)
    answers = behind_cache(tiny, path, first)(PROMPTS, gen, "t")
    assert sorted(first.prompts) == ["Count to three.", "Name a colour.", "Say hi.", "What is rain?"]  # duplicate asked once
    assert answers == first.inner(PROMPTS, gen, "t")  # the cache returns what the model says
    again = Counting(*tiny)
    assert behind_cache(tiny, path, again)(PROMPTS, gen, "t") == answers
    assert again.prompts == []
    assert len(path.read_text().splitlines()) == 4


def test_a_changed_setting_misses_and_only_new_prompts_are_generated(tiny, tmp_path):
    path = tmp_path / "cache.jsonl"
    continuous = GenerationConfig(max_new_tokens=6, batching="continuous")
    behind_cache(tiny, path, Counting(*tiny))(PROMPTS[:2], continuous, "t")
    longer = Counting(*tiny)
    behind_cache(tiny, path, longer)(PROMPTS[:2], continuous.model_copy(update={"max_new_tokens": 7}), "t")
    assert sorted(longer.prompts) == sorted(PROMPTS[:2])
    slots = Counting(*tiny)  # continuous batching: the slot count is part of every row's arithmetic
    behind_cache(tiny, path, slots)(PROMPTS[:2], continuous.model_copy(update={"batch_size": 3}), "t")
    assert sorted(slots.prompts) == sorted(PROMPTS[:2])
    static = GenerationConfig(max_new_tokens=6, batching="static")
    behind_cache(tiny, path, Counting(*tiny))(PROMPTS[:2], static, "t")
    batch = Counting(*tiny)  # static batching, greedy: the batch size is not part of the key
    behind_cache(tiny, path, batch)(PROMPTS, static.model_copy(update={"batch_size": 3}), "t")
    assert sorted(batch.prompts) == ["Say hi.", "What is rain?"]


def test_a_torn_or_foreign_line_is_ignored_and_regenerated(tiny, tmp_path):
    path = tmp_path / "cache.jsonl"
    gen = GenerationConfig(max_new_tokens=5)
    answers = behind_cache(tiny, path, Counting(*tiny))(PROMPTS[:3], gen, "t")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], '{"key": "short", "text": "x"}', "[1, 2]", lines[2][:-5]]) + "\n")
    again = Counting(*tiny)
    assert behind_cache(tiny, path, again)(PROMPTS[:3], gen, "t") == answers
    assert len(again.prompts) == 2 and set(again.prompts) < set(PROMPTS[:3])  # all but the intact line


def test_a_symlinked_cache_file_is_refused(tiny, tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("")
    (tmp_path / "cache.jsonl").symlink_to(target)
    with pytest.raises(OSError):
        behind_cache(tiny, tmp_path / "cache.jsonl", Counting(*tiny))(PROMPTS[:1], GenerationConfig(max_new_tokens=3), "t")
    assert target.read_text() == ""


def test_another_model_has_another_fingerprint(tiny):
    import torch

    model, tokenizer = tiny
    before = model_fingerprint(model, tokenizer)
    assert model_fingerprint(model, tokenizer) == before
    weight = next(model.parameters())
    with torch.no_grad():
        weight[0, 0] += 1.0
        changed = model_fingerprint(model, tokenizer)
        weight[0, 0] -= 1.0
    assert changed != before


def test_eval_context_uses_the_configured_cache_and_none_disables_it(tiny, tmp_path):
    model, tokenizer = tiny
    gen = {"max_new_tokens": 4, "cache_dir": str(tmp_path / "gens")}
    cfg = EvaluateConfig(backend="hf", device="cpu", generation=gen)
    counting = Counting(model, tokenizer)
    answers = EvalContext(cfg, model, tokenizer, tmp_path, generator=counting).generate(PROMPTS, "t")
    files = list((tmp_path / "gens").iterdir())
    assert [f.name for f in files] == [f"{model_fingerprint(model, tokenizer)}.jsonl"]
    rerun = Counting(model, tokenizer)
    assert EvalContext(cfg, model, tokenizer, tmp_path, generator=rerun).generate(PROMPTS, "t") == answers
    assert rerun.prompts == []
    off = Counting(model, tokenizer)
    no_cache = cfg.model_copy(update={"generation": cfg.generation.model_copy(update={"cache_dir": None})})
    assert EvalContext(no_cache, model, tokenizer, tmp_path, generator=off).generate(PROMPTS, "t") == answers
    assert off.prompts == PROMPTS


def test_cached_static_generation_meets_the_batches_of_one_uncached_call(tiny, tmp_path, monkeypatch):
    import mosaic_it.evaluate.generation_cache as generation_cache

    monkeypatch.setattr(generation_cache, "APPEND_EVERY", 2)  # appends between batches
    prompts = ["A much longer question about the weather today?", "Hi", "Count from one to ten slowly.", "Why?",
               "Name two colours and one animal.", "Ok"]
    gen = GenerationConfig(max_new_tokens=8, batch_size=2, batching="static")
    counting = Counting(*tiny)
    answers = behind_cache(tiny, tmp_path / "c.jsonl", counting)(prompts, gen, "t")
    assert answers == counting.inner(prompts, gen, "t")
    assert len(counting.prompts) == len(prompts) and counting.prompts[0] == prompts[0]  # longest first


def test_prefetch_answers_every_eval_in_one_call_with_the_answers_of_one_call_per_eval(tiny, tmp_path):
    from mosaic_it.evaluate.context import PromptSet

    model, tokenizer = tiny
    requests = [PromptSet(PROMPTS[:4], "a"), PromptSet(PROMPTS[2:], "b", max_new_tokens=9)]
    for cache_dir in (None, str(tmp_path / "gens")):
        cfg = EvaluateConfig(backend="hf", device="cpu", generation={"max_new_tokens": 5, "cache_dir": cache_dir})
        apart = [EvalContext(cfg.model_copy(update={"generation": cfg.generation.model_copy(update={"cache_dir": None})}),
                             model, tokenizer, tmp_path).ask(r) for r in requests]
        counting = Counting(model, tokenizer)
        ctx = EvalContext(cfg, model, tokenizer, tmp_path, generator=counting)
        ctx.prefetch(requests)
        # A prompt under one limit is asked once, under two limits twice.
        asked = ["Count to three.", "Name a colour.", "Name a colour.", "Say hi.", "Say hi.", "What is rain?"]
        assert sorted(counting.prompts) == asked
        assert [ctx.ask(r) for r in requests] == apart
        assert len(counting.prompts) == 6 and ctx.prefetched  # the evals themselves asked nothing more


def test_prefetch_leaves_static_batching_to_each_eval(tiny, tmp_path):
    from mosaic_it.evaluate.context import PromptSet

    model, tokenizer = tiny
    cfg = EvaluateConfig(backend="hf", device="cpu", generation={"max_new_tokens": 4, "batching": "static", "cache_dir": None})
    counting = Counting(model, tokenizer)
    ctx = EvalContext(cfg, model, tokenizer, tmp_path, generator=counting)
    ctx.prefetch([PromptSet(PROMPTS[:2], "a"), PromptSet(PROMPTS[2:], "b")])
    assert counting.prompts == [] and not ctx.prefetched  # pooling would change its batches


def test_answers_finished_before_a_failure_are_kept(tiny, tmp_path, monkeypatch):
    import mosaic_it.evaluate.generation_cache as generation_cache

    monkeypatch.setattr(generation_cache, "APPEND_EVERY", 2)
    model, tokenizer = tiny
    gen = GenerationConfig(max_new_tokens=6, batch_size=2, batching="continuous")
    inner = hf_generator(model, tokenizer, 0, "chat_template")

    def failing_after_three(prompts, gen, desc, on_answer=None, **options):
        def hear(index, answer):
            if hear.count == 3:
                raise KeyboardInterrupt
            hear.count += 1
            on_answer(index, answer)
        hear.count = 0
        return inner(prompts, gen, desc, on_answer=hear, **options)

    path = tmp_path / "cache.jsonl"
    with pytest.raises(KeyboardInterrupt):
        behind_cache(tiny, path, failing_after_three)(PROMPTS, gen, "t")
    assert len(path.read_text().splitlines()) == 3  # two appended on the way, the third on the way out
    again = Counting(*tiny)
    assert behind_cache(tiny, path, again)(PROMPTS, gen, "t") == inner(PROMPTS, gen, "t")
    assert len(again.prompts) == 1  # four distinct prompts, three kept
