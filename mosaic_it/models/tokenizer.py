"""Loading the training tokenizer by name, with the embedded model's as the default."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

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
