"""Which attention kernel a model runs, and the varlen path that keeps packed samples apart.

A packed row holds several samples back to back; its position ids restart at 0 for each.
transformers' own sdpa and eager paths turn that into a dense block-diagonal mask over the
whole row, so attention costs (sum of lengths)^2. Here `sdpa` and `eager` are registered under
names of our own whose forward cuts the row at every position reset and attends within each
sample (causal), so attention costs the sum of squared sample lengths and no row-sized mask is
ever built. `flash_attention_2` already does exactly that (varlen kernel with cu_seqlens from
the position ids). Rows with a padding mask, and generation with a KV cache, take the stock
path unchanged.
"""
from __future__ import annotations

import importlib.util
import weakref
from typing import Any, Literal

import torch
import torch.nn.functional as F

from mosaic_it.errors import MosaicItError

AttnImplementation = Literal["sdpa", "flash_attention_2", "eager"]
VARLEN_NAMES = {"sdpa": "mosaic_sdpa_varlen", "eager": "mosaic_eager_varlen"}


class _LastSpans:
    """The spans of the last position-id tensor seen. Every layer of one forward (and the
    recomputed ones of its backward) gets the same tensor, and reading the cuts costs a host
    sync: on a GPU, one per forward instead of one per layer."""

    def __init__(self) -> None:
        self.source: weakref.ref[torch.Tensor] | None = None
        self.version = -1
        self.spans: list[tuple[int, int]] | None = None

    def get(self, position_ids: torch.Tensor) -> list[tuple[int, int]] | None:
        if position_ids.is_inference():  # keeps no version counter to tell an in-place change
            return find_spans(position_ids)
        if self.source is None or self.source() is not position_ids or self.version != position_ids._version:
            self.spans = find_spans(position_ids)
            self.source, self.version = weakref.ref(position_ids), position_ids._version
        return self.spans


_last_spans = _LastSpans()


def sample_spans(position_ids: torch.Tensor | None) -> list[tuple[int, int]] | None:
    """[start, end) of every sample of a single packed row; None unless the row holds several."""
    if position_ids is None or position_ids.dim() != 2 or position_ids.shape[0] != 1:
        return None
    return _last_spans.get(position_ids)


def find_spans(position_ids: torch.Tensor) -> list[tuple[int, int]] | None:
    row = position_ids[0]
    starts = [0] + (torch.nonzero(row[1:] - row[:-1] != 1).flatten() + 1).tolist()
    if len(starts) == 1:
        return None
    return list(zip(starts, starts[1:] + [row.numel()]))


def _attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, eager: bool,
            scaling: float | None, dropout: float) -> torch.Tensor:
    """Causal attention within one sample: [1, heads, n, d] in, [1, n, heads, d] out."""
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    if eager:
        n = query.shape[2]
        weights = torch.matmul(query, key.transpose(2, 3)) * (scaling or query.shape[-1] ** -0.5)
        future = torch.ones(n, n, dtype=torch.bool, device=query.device).triu(1)
        weights = weights.masked_fill(future, torch.finfo(weights.dtype).min)
        weights = F.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
        weights = F.dropout(weights, p=dropout, training=dropout > 0)
        out = torch.matmul(weights, value)
    else:
        out = F.scaled_dot_product_attention(query, key, value, is_causal=True, dropout_p=dropout,
                                             scale=scaling)
    return out.transpose(1, 2)


def _varlen_forward(stock: str) -> Any:
    eager = stock == "eager"

    def forward(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                **kwargs: Any) -> tuple[torch.Tensor, None]:
        if attention_mask is None and query.shape[2] == key.shape[2]:
            drop = dropout if module.training else 0.0
            out = _attend_per_sample(query, key, value, kwargs.get("position_ids"), eager, scaling, drop)
            if out is not None:
                return out, None
        # unpacked rows, padded batches, cached decoding: transformers' own path
        return _stock_forward(stock, module, query, key, value, attention_mask, scaling, dropout, **kwargs)

    return forward


@torch.compiler.disable  # the cuts are read on the host: traced, each packing would compile anew
def _attend_per_sample(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                       position_ids: torch.Tensor | None, eager: bool, scaling: float | None,
                       dropout: float) -> torch.Tensor | None:
    """Causal attention within each sample of a packed row; None for a row that is one sample (sdpa)."""
    spans = sample_spans(position_ids)
    if spans is None and eager:  # our mask builder skipped the plain causal mask
        spans = [(0, query.shape[2])]
    if spans is None:
        return None
    parts = [_attend(query[:, :, s:e], key[:, :, s:e], value[:, :, s:e], eager, scaling, dropout) for s, e in spans]
    return torch.cat(parts, dim=1).contiguous()


def _stock_forward(stock: str, module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                   attention_mask: torch.Tensor | None, scaling: float | None, dropout: float,
                   **kwargs: Any) -> tuple[torch.Tensor, Any]:
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    if stock == "sdpa":
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling,
                                      dropout=dropout, **kwargs)
    groups = query.shape[1] // key.shape[1]
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    weights = torch.matmul(query, key.transpose(2, 3)) * (scaling or query.shape[-1] ** -0.5)
    if attention_mask is not None:
        weights = weights + attention_mask[:, :, :, : key.shape[-2]]
    weights = F.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def _varlen_mask(stock: str) -> Any:
    def build(*args: Any, **kwargs: Any) -> Any:
        from transformers.masking_utils import eager_mask, sdpa_mask

        if kwargs.get("attention_mask") is None and kwargs.get("q_length") == kwargs.get("kv_length"):
            return None  # no padding, no cache: the forward masks causally per sample itself
        return (eager_mask if stock == "eager" else sdpa_mask)(*args, **kwargs)

    return build


def register_varlen() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    for stock, name in VARLEN_NAMES.items():
        AttentionInterface.register(name, _varlen_forward(stock))
        AttentionMaskInterface.register(name, _varlen_mask(stock))


def keeps_samples_apart(model: Any) -> bool:
    """Whether the model's attention cuts a packed row at its position resets (see above)."""
    return getattr(model.config, "_attn_implementation", None) in {*VARLEN_NAMES.values(), "flash_attention_2"}


def resolve(setting: AttnImplementation) -> str:
    """The name to hand to transformers for a `*.attn_implementation` setting."""
    if setting == "flash_attention_2":
        if importlib.util.find_spec("flash_attn") is None:
            raise MosaicItError("attn_implementation=flash_attention_2 needs the flash-attn package "
                                "(pip install 'mosaic-it[gpu]' on a CUDA machine); use sdpa otherwise")
        if not torch.cuda.is_available():
            raise MosaicItError("attn_implementation=flash_attention_2 needs a CUDA device; use sdpa on CPU")
        return setting
    register_varlen()
    return VARLEN_NAMES[setting]

