"""Greedy decoding whose answer to a prompt never depends on the other prompts in flight.

HF `generate` pads a batch to its longest prompt and runs until its longest answer ends. Padding
moves logits in the last bits (attention reduces over a different length, matrix kernels see a
different row count), so a prompt's greedy answer can change with its batch mates, and finished
rows keep computing. Here instead:
- each prompt is prefilled alone, without padding;
- decoding runs a fixed number of slots; a finished answer frees its slot for the next prompt at
  once (continuous batching), so no answer waits for another;
- every row attends only to its own keys and values, and every projection multiplies exactly
  `slots` rows (idle slots hold a pad token), so a row's arithmetic is the same whichever prompts
  share the step.
An answer therefore depends on the prompt, the model, `max_new_tokens` and the slot count only.

The model's own decoder layers do all the work; only the attention function is ours (registered
with transformers' AttentionInterface), and it keeps the per-slot key/value buffers.
"""
from __future__ import annotations

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


def supports(model: Any, longest_sequence: int) -> bool:
    config = model.config
    window = getattr(config, "sliding_window", None)
    return (config.model_type in SUPPORTED_MODEL_TYPES and hasattr(model, "model")
            and hasattr(model.model, "rotary_emb") and (window is None or window >= longest_sequence))


@dataclass
class SlotState:
    """Key/value buffers per slot and layer, and which slot each row of the current forward is."""

    layers: int
    keys: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)
    values: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)
    length: dict[int, int] = field(default_factory=dict)  # tokens already cached per slot
    capacity: dict[int, int] = field(default_factory=dict)
    rows: list[int | None] = field(default_factory=list)  # slot of each row; None: idle row

    def open(self, slot: int, capacity: int) -> None:
        self.length[slot], self.capacity[slot] = 0, capacity
        for layer in range(self.layers):
            self.keys.pop((layer, slot), None)
            self.values.pop((layer, slot), None)

    def advance(self, positions: int) -> None:
        for slot in self.rows:
            if slot is not None:
                self.length[slot] += positions


def slot_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                   attention_mask: Any, scaling: float, dropout: float = 0.0,
                   slot_state: SlotState | None = None, **_: Any) -> tuple[torch.Tensor, None]:
    """query [rows, heads, q, d]; key/value [rows, kv_heads, q, d] hold the new positions only."""
    if slot_state is None:
        raise RuntimeError(f"attention '{ATTENTION_NAME}' runs only inside slots.generate_greedy")
    layer, new = module.layer_idx, query.shape[2]
    out = query.new_zeros(query.shape)
    for row, slot in enumerate(slot_state.rows):
        if slot is None:
            continue
        start = slot_state.length[slot]
        cache_key = (layer, slot)
        if cache_key not in slot_state.keys:
            shape = (1, key.shape[1], slot_state.capacity[slot], key.shape[3])
            slot_state.keys[cache_key] = key.new_empty(shape)
            slot_state.values[cache_key] = value.new_empty(shape)
        keys, values = slot_state.keys[cache_key], slot_state.values[cache_key]
        keys[:, :, start : start + new] = key[row : row + 1]
        values[:, :, start : start + new] = value[row : row + 1]
        # A prefill starts from an empty cache, so the causal mask is aligned at position 0.
        out[row : row + 1] = F.scaled_dot_product_attention(
            query[row : row + 1], keys[:, :, : start + new], values[:, :, : start + new],
            is_causal=new > 1, scale=scaling, enable_gqa=True)
    return out.transpose(1, 2).contiguous(), None


def _register() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_NAME, slot_attention)


def _forward(model: Any, ids: torch.Tensor, positions: torch.Tensor, state: SlotState) -> torch.Tensor:
    """Logits of the last position of each row, through the model's own layers."""
    inner = model.model
    hidden = inner.embed_tokens(ids)
    cos_sin = inner.rotary_emb(hidden, positions)
    for layer in inner.layers:
        hidden = layer(hidden, attention_mask=None, position_ids=positions, position_embeddings=cos_sin,
                       slot_state=state)
    state.advance(ids.shape[1])
    return model.lm_head(inner.norm(hidden[:, -1:, :]))[:, -1, :].float()


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
    request: list[int | None] = [None] * slots
    saved = model.config._attn_implementation
    model.config._attn_implementation = ATTENTION_NAME
    try:
        with torch.inference_mode():
            while waiting or any(r is not None for r in request):
                for slot in range(slots):
                    while request[slot] is None and waiting:
                        index = waiting.popleft()
                        if _prefill(model, prompts[index], slot, state, answers[index], caps[index], eos_ids):
                            request[slot] = index
                        elif on_done:
                            on_done(index, answers[index])
                if all(r is None for r in request):
                    continue
                state.rows = [slot if request[slot] is not None else None for slot in range(slots)]
                last = [answers[r][-1] if r is not None else pad_id for r in request]
                ids = torch.tensor(last, device=device).view(slots, 1)
                positions = torch.tensor([state.length.get(s, 0) if request[s] is not None else 0
                                          for s in range(slots)], device=device).view(slots, 1)
                chosen = _forward(model, ids, positions, state).argmax(dim=-1).tolist()
                for slot, index in enumerate(request):
                    if index is None:
                        continue
                    answers[index].append(chosen[slot])
                    if chosen[slot] in eos_ids or len(answers[index]) >= caps[index]:
                        request[slot] = None
                        if on_done:
                            on_done(index, answers[index])
    finally:
        model.config._attn_implementation = saved
    return answers


def _prefill(model: Any, prompt: Sequence[int], slot: int, state: SlotState, answer: list[int],
             max_new_tokens: int, eos_ids: set[int]) -> bool:
    """Run the prompt alone into `slot` and take its first token; False when the answer is done."""
    state.open(slot, len(prompt) + max_new_tokens)
    state.rows = [slot]
    ids = torch.tensor([list(prompt)], device=model.device)
    positions = torch.arange(len(prompt), device=model.device).view(1, -1)
    answer.append(int(_forward(model, ids, positions, state).argmax(dim=-1).item()))
    return answer[-1] not in eos_ids and len(answer) < max_new_tokens
