"""Continuous batching (evaluate/slots.py): a greedy answer is the same whatever prompts share its
batch, equals HF generate's, and the static path still serves sampling and other architectures."""
from __future__ import annotations

import json
import threading

import pytest

from mosaic_it.config.evaluate import GenerationConfig
from mosaic_it.evaluate.generate import continuous, generate

PROMPTS = ["Name a colour.", "Count to three, then stop.", "Say hi.", "What is rain made of, and why does it fall?",
           "Write one word.", "List two animals that live in the sea and one that lives in a desert."]


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    from mosaic_it.evaluate.model import load_model

    return load_model(str(tiny_llama_dir), "cpu")


def random_decoder(model_type: str):
    """A random 2-layer decoder whose greedy continuations vary (untied, wide initial weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(model_type, vocab_size=300, hidden_size=64, intermediate_size=128,
                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                  tie_word_embeddings=False, initializer_range=0.2, sliding_window=None)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).eval()


def random_prompts(count: int = 7) -> list[list[int]]:
    import torch

    g = torch.Generator().manual_seed(1)
    return [torch.randint(3, 300, (int(n),), generator=g).tolist() for n in torch.randint(2, 40, (count,), generator=g)]


def assert_equals_hf_generate(model, prompts: list[list[int]], answers: list[list[int]], max_new_tokens: int):
    """HF generate, one prompt at a time (no padding), gives the same tokens."""
    import torch

    for prompt, answer in zip(prompts, answers):
        with torch.inference_mode():
            out = model.generate(torch.tensor([prompt]), max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=2, pad_token_id=0)
        assert out[0, len(prompt):].tolist() == answer


def test_an_answer_does_not_depend_on_its_batch_mates_and_equals_hf_generate():
    from mosaic_it.evaluate.slots import generate_greedy

    model, prompts = random_decoder("llama"), random_prompts()
    together = generate_greedy(model, prompts, 16, 3, {2}, 0)
    assert generate_greedy(model, prompts[::-1], 16, 3, {2}, 0)[::-1] == together
    assert [generate_greedy(model, [p], 16, 3, {2}, 0)[0] for p in prompts] == together
    mixed = generate_greedy(model, [prompts[4], [7] * 60, prompts[1]], 16, 3, {2}, 0)
    assert [mixed[0], mixed[2]] == [together[4], together[1]]
    assert len({tuple(a) for a in together}) == len(prompts)  # real, differing answers
    assert_equals_hf_generate(model, prompts, together, 16)


def test_a_limit_per_prompt_gives_each_answer_what_a_call_with_that_limit_gives():
    from mosaic_it.evaluate.slots import generate_greedy

    model, prompts = random_decoder("llama"), random_prompts()
    caps = [16, 5, 16, 9, 5, 16, 9]
    heard: dict[int, list[int]] = {}
    pooled = generate_greedy(model, prompts, caps, 3, {2}, 0, on_done=lambda i, tokens: heard.setdefault(i, list(tokens)))
    for cap in set(caps):
        alone = generate_greedy(model, [p for p, c in zip(prompts, caps) if c == cap], cap, 3, {2}, 0)
        assert [a for a, c in zip(pooled, caps) if c == cap] == alone
    assert all(len(a) == c or (len(a) < c and a[-1] == 2) for a, c in zip(pooled, caps))
    assert sum(len(a) == c for a, c in zip(pooled, caps)) >= 5  # the limits themselves were reached
    assert heard == dict(enumerate(pooled))  # each answer heard once, final when heard


@pytest.mark.parametrize("model_type", ["mistral", "qwen2"])
def test_the_other_supported_architectures_decode_like_hf_generate(model_type):
    """The same decoder through another architecture's layers (the slot logic is llama's test)."""
    from mosaic_it.evaluate.slots import generate_greedy

    model, prompts = random_decoder(model_type), random_prompts(4)
    together = generate_greedy(model, prompts, 8, 3, {2}, 0)
    assert generate_greedy(model, prompts[::-1], 8, 3, {2}, 0)[::-1] == together
    assert len({tuple(a) for a in together}) == len(prompts)
    assert_equals_hf_generate(model, prompts, together, 8)


def _pack_sizes(monkeypatch) -> list[int]:
    """How many prompts each prefill of generate_greedy took (recorded as it runs)."""
    from mosaic_it.evaluate import slots

    sizes: list[int] = []
    real = slots._prefill

    def spy(model, prompts, *rest):
        sizes.append(len(prompts))
        return real(model, prompts, *rest)

    monkeypatch.setattr(slots, "_prefill", spy)
    return sizes


def test_prompts_prefilled_packed_get_the_answers_they_get_prefilled_alone(monkeypatch):
    from mosaic_it.evaluate import slots

    model = random_decoder("llama")
    prompts = [p * 3 for p in random_prompts()]  # 6 to 117 tokens: most can be packed
    assert slots.rows_independent(model)  # this BLAS: the premise packing checks for
    sizes = _pack_sizes(monkeypatch)
    packed = slots.generate_greedy(model, prompts, 12, 3, {2}, 0)
    assert max(sizes) > 1 and sum(sizes) == len(prompts)
    sizes.clear()
    monkeypatch.setattr(slots, "rows_independent", lambda model: False)
    assert slots.generate_greedy(model, prompts, 12, 3, {2}, 0) == packed and set(sizes) == {1}
    assert_equals_hf_generate(model, prompts, packed, 12)


def test_a_pack_takes_prompts_in_order_within_its_budget_and_short_prompts_go_alone(monkeypatch):
    from collections import deque

    from mosaic_it.evaluate import slots

    monkeypatch.setattr(slots, "PACK_TOKENS", 100)
    prompts = [[1] * 40, [1] * 30, [1] * 20, [1] * 20, [1] * 5, [1] * 50]
    waiting = deque(range(len(prompts)))
    taken = [slots._take_pack(prompts, waiting, 8) for _ in range(4)]
    assert taken == [[0, 1, 2], [3], [4], [5]]  # 90 tokens; then a short one ends the pack and goes alone
    assert slots._take_pack(prompts, deque(range(4)), 2) == [0, 1]  # at most `most` prompts


def test_no_packing_where_a_layer_could_compute_rows_by_their_number(monkeypatch):
    import torch
    import torch.nn.functional as F

    from mosaic_it.evaluate import slots

    model = random_decoder("llama")
    projection = model.model.layers[0].mlp.down_proj
    # A product whose last bits move with the row count, as some BLAS kernels' do.
    projection.forward = lambda x: F.linear(x, projection.weight) * (1 + 1e-6 * (x.shape[0] > 64))
    assert not slots.rows_independent(model)
    sizes = _pack_sizes(monkeypatch)
    slots.generate_greedy(model, [p * 3 for p in random_prompts()], 4, 3, {2}, 0)
    assert set(sizes) == {1}

    class Quantized(torch.nn.Linear):
        """Any projection other than a plain Linear: its kernels are not probed."""

    model = random_decoder("llama")
    old = model.model.layers[0].self_attn.q_proj
    model.model.layers[0].self_attn.q_proj = Quantized(old.in_features, old.out_features, bias=False)
    assert not slots.rows_independent(model)


@pytest.mark.slow
def test_embedded_model_prefilled_packed_has_the_caches_of_prompts_prefilled_alone(embedded_model):
    """Bit for bit: each prompt's keys and values in every layer, and its first token."""
    import torch

    from mosaic_it.evaluate import slots

    model, tokenizer = embedded_model
    assert slots.rows_independent(model)
    prompts = [tokenizer(p * 4, add_special_tokens=False)["input_ids"] for p in PROMPTS]
    layers = len(model.model.layers)
    slots._register()
    saved, model.config._attn_implementation = model.config._attn_implementation, slots.ATTENTION_NAME
    try:
        with torch.inference_mode():
            alone, packed = slots.SlotState(layers), slots.SlotState(layers)
            firsts = [slots._prefill(model, [p], [i], [8], alone)[0] for i, p in enumerate(prompts)]
            assert slots._prefill(model, prompts, list(range(len(prompts))), [8] * len(prompts), packed) == firsts
    finally:
        model.config._attn_implementation = saved
    assert alone.length == packed.length == {i: len(p) for i, p in enumerate(prompts)}
    for key, cached in alone.keys.items():
        size = alone.length[key[1]]
        assert torch.equal(cached[:, :, :size], packed.keys[key][:, :, :size])
        assert torch.equal(alone.values[key][:, :, :size], packed.values[key][:, :, :size])


def test_generate_uses_continuous_batching_with_the_tokenizer_and_order_kept(tiny):
    model, tokenizer = tiny
    gen = GenerationConfig(max_new_tokens=6, batch_size=4, cache_dir=None)
    answers = generate(model, tokenizer, PROMPTS, gen)
    static = [generate(model, tokenizer, [p], gen.model_copy(update={"batching": "static"}))[0] for p in PROMPTS]
    assert answers == static and len(answers) == len(PROMPTS)


def test_sampling_and_unsupported_models_take_the_static_path(tiny):
    model, _ = tiny
    assert continuous(model, GenerationConfig())
    assert not continuous(model, GenerationConfig(temperature=0.7))
    assert not continuous(model, GenerationConfig(batching="static"))
    saved = model.config.model_type
    try:
        model.config.model_type = "gpt2"
        assert not continuous(model, GenerationConfig())
    finally:
        model.config.model_type = saved


def test_a_prompt_that_ends_at_once_and_a_one_token_budget(tiny):
    model, tokenizer = tiny
    from mosaic_it.evaluate.slots import generate_greedy

    ids = [tokenizer("Hello there", add_special_tokens=False)["input_ids"]] * 3
    first = generate_greedy(model, ids, 1, 2, {tokenizer.eos_token_id}, tokenizer.pad_token_id)
    assert [len(a) for a in first] == [1, 1, 1] and first[0] == first[1] == first[2]
    # an end-of-sequence token as the very first choice ends that answer and frees its slot
    eos_first = generate_greedy(model, ids, 5, 2, {first[0][0]}, tokenizer.pad_token_id)
    assert eos_first == [first[0]] * 3


@pytest.mark.slow
def test_embedded_model_answers_match_todays_static_batches_token_for_token(shared_data, embedded_model):
    """The issue's check: on the embedded model, continuous batching gives the same greedy tokens
    as HF generate over one padded static batch (6 IFEval prompts of 39 to 86 tokens, 32 new
    tokens; the fifth answer ends early, freeing its slot)."""
    model, tokenizer = embedded_model
    rows = (json.loads(line) for line in (shared_data / "eval" / "ifeval_input_data.jsonl").open())
    prompts = [row["prompt"] for _, row in zip(range(6), rows)]
    gen = GenerationConfig(max_new_tokens=32, batch_size=6, cache_dir=None, batching="continuous")
    static = generate(model, tokenizer, prompts, gen.model_copy(update={"batching": "static"}))
    assert generate(model, tokenizer, prompts, gen) == static
    lengths = [len(tokenizer(answer, add_special_tokens=False)["input_ids"]) for answer in static]
    assert max(lengths) >= 31 and min(lengths) < 16  # full-length answers beside one that stopped early


@pytest.fixture
def two_torch_threads():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the suite's workers run on one: the forked path needs two
    yield
    torch.set_num_threads(before)


def test_two_processes_give_the_answers_of_one(two_torch_threads, can_fork, monkeypatch):
    """Half the prompts answered in a forked child on one thread, half here on one thread: the
    answers of one process, in order, each heard once, and the caller's thread count restored."""
    import os

    import torch

    from mosaic_it.evaluate import forked_slots
    from mosaic_it.evaluate.slots import generate_greedy

    model = random_decoder("llama")
    prompts = random_prompts(12)
    caps = [16, 9, 16, 4] * 3
    started = []
    start = forked_slots._Child.start.__func__
    monkeypatch.setattr(forked_slots._Child, "start", classmethod(
        lambda cls, job: started.append(os.getpid()) or start(cls, job)))
    heard: dict[int, list[int]] = {}
    answers = forked_slots.generate_greedy_forked(model, prompts, caps, 3, {2}, 0,
                                                  on_done=lambda i, tokens: heard.setdefault(i, list(tokens)))
    assert started, "no child was forked"
    assert answers == generate_greedy(model, prompts, caps, 3, {2}, 0)
    assert heard == dict(enumerate(answers)) and torch.get_num_threads() == 2


def test_prompts_a_failed_child_left_are_answered_here(two_torch_threads, can_fork, monkeypatch):
    import os

    from mosaic_it.evaluate import forked_slots
    from mosaic_it.evaluate.slots import generate_greedy

    model = random_decoder("llama")
    prompts = random_prompts(10)
    answer_in_child = forked_slots._answer_in_child

    def dies_after_two(model, prompts, caps, indices, slots, eos_ids, pad_id, send):
        sent = []

        def send_then_die(index, tokens):
            send(index, tokens)
            sent.append(index)
            if len(sent) == 2:
                os._exit(3)

        answer_in_child(model, prompts, caps, indices, slots, eos_ids, pad_id, send_then_die)

    monkeypatch.setattr(forked_slots, "_answer_in_child", dies_after_two)
    heard: list[int] = []
    answers = forked_slots.generate_greedy_forked(model, prompts, [12] * 10, 3, {2}, 0,
                                                  on_done=lambda i, tokens: heard.append(i))
    assert answers == generate_greedy(model, prompts, 12, 3, {2}, 0)
    assert sorted(heard) == list(range(10))


def test_one_thread_or_few_prompts_stay_in_one_process(two_torch_threads, monkeypatch):
    import torch

    from mosaic_it.evaluate import forked_slots

    model = random_decoder("llama")
    monkeypatch.setattr(forked_slots._Child, "start", classmethod(lambda cls, job: pytest.fail("forked")))
    forked_slots.generate_greedy_forked(model, random_prompts(forked_slots.FORK_AT_PROMPTS - 1), [4] * (forked_slots.FORK_AT_PROMPTS - 1), 3, {2}, 0)
    release = threading.Event()
    worker = threading.Thread(target=release.wait)  # not a daemon: a Prefect worker's, say
    worker.start()
    try:
        forked_slots.generate_greedy_forked(model, random_prompts(12), [4] * 12, 3, {2}, 0)
    finally:
        release.set()
        worker.join()
    torch.set_num_threads(1)
    forked_slots.generate_greedy_forked(model, random_prompts(12), [4] * 12, 3, {2}, 0)


def test_a_daemon_thread_such_as_mlflow_s_sampler_does_not_keep_the_child_from_forking(two_torch_threads, can_fork,
                                                                                      monkeypatch):
    from mosaic_it.evaluate import forked_slots
    from mosaic_it.evaluate.slots import generate_greedy

    model = random_decoder("llama")
    prompts = random_prompts(10)
    started = []
    start = forked_slots._Child.start.__func__
    monkeypatch.setattr(forked_slots._Child, "start", classmethod(lambda cls, job: started.append(1) or start(cls, job)))
    release = threading.Event()
    sampler = threading.Thread(target=release.wait, daemon=True)
    sampler.start()
    try:
        answers = forked_slots.generate_greedy_forked(model, prompts, [8] * 10, 3, {2}, 0)
    finally:
        release.set()
        sampler.join()
    assert started and answers == generate_greedy(model, prompts, 8, 3, {2}, 0)


def test_a_failure_here_stops_the_child_and_is_raised(two_torch_threads, can_fork, monkeypatch):
    """Where hearing an answer fails (a full disk under the generation cache, say), the error
    reaches the caller and the child is gone, not left decoding."""
    import os

    from mosaic_it.evaluate import forked_slots

    children = []
    start = forked_slots._Child.start.__func__

    def recorded(cls, job):
        child = start(cls, job)
        children.append(child.pid)
        return child

    monkeypatch.setattr(forked_slots._Child, "start", classmethod(recorded))

    def fails(index, tokens):
        raise OSError("no space left on device")

    with pytest.raises(OSError, match="no space"):
        forked_slots.generate_greedy_forked(random_decoder("llama"), random_prompts(10), [12] * 10, 3, {2}, 0,
                                            on_done=fails)
    assert len(children) == 1
    with pytest.raises(ChildProcessError):
        os.waitpid(children[0], os.WNOHANG)  # killed and reaped
