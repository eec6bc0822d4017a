"""Greedy decoding whose answer to a prompt never depends on the other prompts in flight.

HF `generate` pads a batch to its longest prompt and runs until its longest answer ends. Padding
moves logits in the last bits (attention reduces over a different length, matrix kernels see a
different row count), so a prompt's greedy answer can change with its batch mates, and finished
rows keep computing. Here instead:
- prompts are prefilled without padding, alone or packed back to back into one row in which
  each prompt attends only to itself (packing only where the matrix products are seen to give
  each row the same result whatever the number of rows, so that a prompt's cache is the same bit
  for bit either way; rows_independent());
- decoding runs a fixed number of slots; a finished answer frees its slot for the next prompt at
  once (continuous batching), so no answer waits for another;
- every row attends only to its own keys and values, and every projection multiplies exactly
  `slots` rows (idle slots hold a pad token), so a row's arithmetic is the same whichever prompts
  share the step.
An answer therefore depends on the prompt, the model, `max_new_tokens` and the slot count only.
Key/value buffers belong to a request (an answer in progress), not to a slot, so a prompt can be
prefilled before a slot frees up for it.

The model's own decoder layers do all the work; only the attention function is ours (registered
with transformers' AttentionInterface), and it keeps the per-request key/value buffers.
"""
from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

ATTENTION_NAME = "mosaic_it_slots"
# Decoder stacks whose layers call the attention function by name with (query, key, value) of
# the new positions and apply nothing else to keys/values afterwards; sliding windows excluded.
SUPPORTED_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2"})
# Prefill packs: at most this many prompt tokens per forward. Matrix products over many rows use
# the cores better than one short prompt's (1.6x on the README job's prompts, docs/benchmarks.md).
PACK_TOKENS = 2048
# Shorter prompts are prefilled alone: BLAS libraries compute very few rows by other kernels
# (MKL here: 1-3, 5-7 and 9-11 rows give other last bits than the same rows among many).
PACK_MIN_TOKENS = 16


def supports(model: Any, longest_sequence: int) -> bool:
    config = model.config
    window = getattr(config, "sliding_window", None)
    return (config.model_type in SUPPORTED_MODEL_TYPES and hasattr(model, "model")
            and hasattr(model.model, "rotary_emb") and (window is None or window >= longest_sequence))


@dataclass
class SlotState:
    """Key/value buffers per request (an answer in progress) and layer, and what the current
    forward holds: one request per row, or a packed prefill's requests along its single row."""

    layers: int
    keys: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)  # (layer, request) -> buffer
    values: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)
    length: dict[int, int] = field(default_factory=dict)  # tokens already cached per request
    capacity: dict[int, int] = field(default_factory=dict)
    rows: list[int | None] = field(default_factory=list)  # request of each row; None: idle row
    # A packed prefill: (request, start, end) of each prompt along row 0; None: one request per row.
    segments: list[tuple[int, int, int]] | None = None

    def open(self, request: int, capacity: int) -> None:
        self.length[request], self.capacity[request] = 0, capacity

    def close(self, request: int) -> None:
        self.length.pop(request, None)
        self.capacity.pop(request, None)
        for layer in range(self.layers):
            self.keys.pop((layer, request), None)
            self.values.pop((layer, request), None)

    def advance(self, positions: int) -> None:
        for request in self.rows:
            if request is not None:
                self.length[request] += positions

    def buffers(self, layer: int, request: int, key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cache_key = (layer, request)
        if cache_key not in self.keys:
            shape = (1, key.shape[1], self.capacity[request], key.shape[3])
            self.keys[cache_key], self.values[cache_key] = key.new_empty(shape), key.new_empty(shape)
        return self.keys[cache_key], self.values[cache_key]


def slot_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                   attention_mask: Any, scaling: float, dropout: float = 0.0,
                   slot_state: SlotState | None = None, **_: Any) -> tuple[torch.Tensor, None]:
    """query [rows, heads, q, d]; key/value [rows, kv_heads, q, d] hold the new positions only."""
    if slot_state is None:
        raise RuntimeError(f"attention '{ATTENTION_NAME}' runs only inside slots.generate_greedy")
    layer, new = module.layer_idx, query.shape[2]
    if slot_state.segments is not None:
        return _packed_attention(layer, query, key, value, scaling, slot_state), None
    out = query.new_zeros(query.shape)
    for row, request in enumerate(slot_state.rows):
        if request is None:
            continue
        start = slot_state.length[request]
        keys, values = slot_state.buffers(layer, request, key)
        keys[:, :, start : start + new] = key[row : row + 1]
        values[:, :, start : start + new] = value[row : row + 1]
        # A prefill starts from an empty cache, so the causal mask is aligned at position 0.
        out[row : row + 1] = F.scaled_dot_product_attention(
            query[row : row + 1], keys[:, :, : start + new], values[:, :, : start + new],
            is_causal=new > 1, scale=scaling, enable_gqa=True)
    return out.transpose(1, 2).contiguous(), None


def _packed_attention(layer: int, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scaling: float,
                      state: SlotState) -> torch.Tensor:
    """A packed prefill: each prompt's positions of row 0 attend to that prompt alone, through the
    same call on the same values as its prefill alone."""
    parts = []
    for request, start, end in state.segments or ():
        keys, values = state.buffers(layer, request, key)
        size = end - start
        keys[:, :, :size] = key[:, :, start:end]
        values[:, :, :size] = value[:, :, start:end]
        parts.append(F.scaled_dot_product_attention(query[:, :, start:end], keys[:, :, :size], values[:, :, :size],
                                                    is_causal=size > 1, scale=scaling, enable_gqa=True))
    return torch.cat(parts, dim=2).transpose(1, 2).contiguous()


def _register() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_NAME, slot_attention)


def _hidden(model: Any, ids: torch.Tensor, positions: torch.Tensor, state: SlotState) -> torch.Tensor:
    """The last hidden states of every position, through the model's own layers."""
    inner = model.model
    hidden = inner.embed_tokens(ids)
    cos_sin = inner.rotary_emb(hidden, positions)
    for layer in inner.layers:
        hidden = layer(hidden, attention_mask=None, position_ids=positions, position_embeddings=cos_sin,
                       slot_state=state)
    return hidden


def _logits(model: Any, hidden: torch.Tensor) -> torch.Tensor:
    """Logits of the last position of each row."""
    return model.lm_head(model.model.norm(hidden[:, -1:, :]))[:, -1, :].float()


def _forward(model: Any, ids: torch.Tensor, positions: torch.Tensor, state: SlotState) -> torch.Tensor:
    """Logits of the last position of each row (one request per row)."""
    hidden = _hidden(model, ids, positions, state)
    state.advance(ids.shape[1])
    return _logits(model, hidden)


def rows_independent(model: Any, rows: int = PACK_TOKENS) -> bool:
    """Whether every matrix product of a decoder layer gives a block of rows the same values bit for
    bit alone as among `rows` rows, for blocks from PACK_MIN_TOKENS rows on (probed on random
    inputs at a few sizes and offsets). Only then may prompts be prefilled packed."""
    layer = model.model.layers[0]
    linears = [m for m in layer.modules() if isinstance(m, torch.nn.Linear)]
    if not linears or any(type(m) is not torch.nn.Linear for m in linears):
        return False
    generator = torch.Generator().manual_seed(0)
    seen = set()
    with torch.inference_mode():
        for linear in linears:
            shape = (linear.in_features, linear.out_features, linear.bias is not None)
            if shape in seen:
                continue
            seen.add(shape)
            weight = linear.weight
            x = torch.randn(rows, linear.in_features, generator=generator).to(weight.device, weight.dtype)
            full = linear(x)
            for start, size in ((0, PACK_MIN_TOKENS), (5, PACK_MIN_TOKENS + 1), (37, 23), (101, 64), (300, 101),
                                (rows - 517, 517)):
                if not torch.equal(full[start:start + size], linear(x[start:start + size])):
                    return False
    return True


def generate_greedy(model: Any, prompts: Sequence[Sequence[int]], max_new_tokens: int | Sequence[int], slots: int,
                    eos_ids: set[int], pad_id: int, on_done: Callable[[int, list[int]], None] | None = None) -> list[list[int]]:
    """Greedy continuation token ids for each prompt (prompt token ids), in the order given.
    An answer ends at the first end-of-sequence token (kept) or after max_new_tokens, one number
    for all prompts or one per prompt (prompts of several evals can then share the slots).
    `on_done(i, tokens)` hears each answer as soon as it is final."""
    _register()
    caps = [max_new_tokens] * len(prompts) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    if len(caps) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(caps)} max_new_tokens")
    device = model.device
    state = SlotState(layers=len(model.model.layers), rows=[None] * slots)
    answers: list[list[int]] = [[] for _ in prompts]
    waiting = deque(range(len(prompts)))
    ready: deque[int] = deque()  # prefilled, first token taken, waiting for a slot
    request: list[int | None] = [None] * slots
    saved = model.config._attn_implementation
    model.config._attn_implementation = ATTENTION_NAME
    try:
        with torch.inference_mode():
            packing = sum(len(p) >= PACK_MIN_TOKENS for p in prompts) > 1 and rows_independent(model)

            def finished(index: int) -> None:
                state.close(index)
                if on_done:
                    on_done(index, answers[index])

            while waiting or ready or any(r is not None for r in request):
                for slot in range(slots):
                    while request[slot] is None and (ready or waiting):
                        if ready:
                            request[slot] = ready.popleft()
                            continue
                        # Prefill ahead, at most a slot count of prompts: later free slots take them.
                        pack = _take_pack(prompts, waiting, slots if packing else 1)
                        for index, first in zip(pack, _prefill(model, [prompts[i] for i in pack], pack,
                                                                [caps[i] for i in pack], state)):
                            answers[index].append(first)
                            if first in eos_ids or len(answers[index]) >= caps[index]:
                                finished(index)
                            else:
                                ready.append(index)
                if all(r is None for r in request):
                    continue
                state.rows = list(request)
                last = [answers[r][-1] if r is not None else pad_id for r in request]
                ids = torch.tensor(last, device=device).view(slots, 1)
                positions = torch.tensor([state.length[r] if r is not None else 0 for r in request],
                                         device=device).view(slots, 1)
                chosen = _forward(model, ids, positions, state).argmax(dim=-1).tolist()
                for slot, index in enumerate(request):
                    if index is None:
                        continue
                    answers[index].append(chosen[slot])
                    if chosen[slot] in eos_ids or len(answers[index]) >= caps[index]:
                        request[slot] = None
                        finished(index)
    finally:
        model.config._attn_implementation = saved
    return answers


def _take_pack(prompts: Sequence[Sequence[int]], waiting: deque[int], most: int) -> list[int]:
    """The next prompts to prefill together: the first waiting one, then those that follow it while
    they fit PACK_TOKENS; a prompt under PACK_MIN_TOKENS goes alone."""
    pack = [waiting.popleft()]
    tokens = len(prompts[pack[0]])
    if tokens < PACK_MIN_TOKENS:
        return pack
    while waiting and len(pack) < most:
        size = len(prompts[waiting[0]])
        if size < PACK_MIN_TOKENS or tokens + size > PACK_TOKENS:
            break
        pack.append(waiting.popleft())
        tokens += size
    return pack


def _prefill(model: Any, prompts: Sequence[Sequence[int]], requests: Sequence[int], caps: Sequence[int],
             state: SlotState) -> list[int]:
    """Run the prompts into their requests' caches, alone or packed into one row; the first token
    of each answer."""
    device = model.device
    for request, prompt, cap in zip(requests, prompts, caps):
        state.open(request, len(prompt) + cap)
    if len(prompts) == 1:
        state.rows = list(requests)
        ids = torch.tensor([list(prompts[0])], device=device)
        positions = torch.arange(len(prompts[0]), device=device).view(1, -1)
        return [int(_forward(model, ids, positions, state).argmax(dim=-1).item())]
    ids = torch.tensor([[token for prompt in prompts for token in prompt]], device=device)
    positions = torch.tensor([[p for prompt in prompts for p in range(len(prompt))]], device=device)
    ends = list(itertools.accumulate(len(prompt) for prompt in prompts))
    state.segments = [(request, end - len(prompt), end) for request, prompt, end in zip(requests, prompts, ends)]
    try:
        hidden = _hidden(model, ids, positions, state)
    finally:
        state.segments = None
    firsts = []
    for request, prompt, end in zip(requests, prompts, ends):
        state.length[request] = len(prompt)
        # One row at a time, as a prompt prefilled alone gets its first token (a one-row product).
        firsts.append(int(_logits(model, hidden[:, :end, :]).argmax(dim=-1).item()))
    return firsts
