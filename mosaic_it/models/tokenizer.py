"""Loading the training tokenizer by name, with the embedded model's as the default."""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from mosaic_it.errors import MosaicItError
from mosaic_it.models.embedded import resolve_tokenizer_path


@lru_cache(maxsize=4)
def load_tokenizer(name: str | None = None, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    path = resolve_tokenizer_path(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise MosaicItError(f"cannot load tokenizer {name!r}: {str(exc).splitlines()[0]}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@lru_cache(maxsize=4)  # one process may validate or augment many times (flows, tests): ~0.15 s a read
def load_counting_tokenizer(name: str | None = None) -> Any:
    """A tokenizer that only counts tokens: the bare Rust `tokenizers.Tokenizer` read from the
    folder's tokenizer.json when there is one (no transformers or torch import, which costs
    seconds), else the full transformers tokenizer. Counts equal the transformers tokenizer's
    without special tokens (tests/test_token_counts.py)."""
    from pathlib import Path

    path = Path(resolve_tokenizer_path(name)) / "tokenizer.json"
    if not path.is_file():
        return load_tokenizer(name)
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def rust_tokenizer(tokenizer: Any) -> Any:
    """The Rust tokenizer behind a transformers tokenizer, or the tokenizer itself if it is one."""
    if hasattr(tokenizer, "encode_batch_fast"):
        return tokenizer
    return getattr(tokenizer, "backend_tokenizer", None)


# Batches of a few thousand keep the encodings' memory bounded without losing batch speed.
COUNT_BATCH = 4096


def count_tokens(tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
    """Token counts (no special tokens) of many texts, encoded in batches by the Rust tokenizer."""
    counts = np.zeros(len(texts), dtype=np.int64)
    backend = rust_tokenizer(tokenizer)
    for start in range(0, len(texts), COUNT_BATCH):
        batch = list(texts[start : start + COUNT_BATCH])
        if backend is not None and hasattr(backend, "encode_batch_fast"):
            # No offsets and no Python-side id lists: only the lengths are needed.
            lengths = [len(e) for e in backend.encode_batch_fast(batch, add_special_tokens=False)]
        else:
            encoded = tokenizer(batch, add_special_tokens=False, return_attention_mask=False)
            lengths = [len(ids) for ids in encoded["input_ids"]]
        counts[start : start + len(batch)] = lengths
    return counts
