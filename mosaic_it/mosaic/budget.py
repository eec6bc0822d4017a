"""Token counting for the budget: every record is tokenized once, scaffolding once per distinct string.

Counting a sample as the sum of its pieces' counts is close but not exact, because a tokenizer may
merge or split across a join. Measured on Alpaca with the SmolLM2 tokenizer, the exact count lies
between (sum - 2 per join) and (sum + 0.5 per join). So a sample whose sum plus one token per join
is within budget fits for certain, a sum above budget is treated as not fitting, and only the thin
band between is tokenized exactly.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from mosaic_it.models.tokenizer import count_tokens

SAFE_EXCESS_PER_JOIN = 1


class TokenCounter:
    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        # The Rust tokenizer's encodings give lengths without building Python id lists.
        self._backend = getattr(tokenizer, "backend_tokenizer", None)
        self.count = lru_cache(maxsize=65536)(self.exact)
        self.exact_checks = 0

    def exact(self, text: str) -> int:
        if not text:
            return 0
        if self._backend is not None:
            return len(self._backend.encode(text, add_special_tokens=False))
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_many(self, texts: Sequence[str]) -> np.ndarray:
        return count_tokens(self.tokenizer, texts)

    def sample_fits(self, sides: Sequence[list[str]], known: dict[str, int], budget: int) -> bool:
        """Whether a sample (its instruction and output, each as pieces) fits the budget.

        `known` maps the record texts in the pieces to their token counts, counted in bulk earlier.
        """
        estimate = joins = 0
        for parts in sides:
            present = [p for p in parts if p]
            estimate += sum(known[p] if p in known else self.count(p) for p in present)
            joins += max(0, len(present) - 1)
        if estimate > budget:
            return False
        if estimate + SAFE_EXCESS_PER_JOIN * joins <= budget:
            return True
        self.exact_checks += 1
        return self.sample_tokens(["".join(parts) for parts in sides]) <= budget

    def sample_tokens(self, texts: Sequence[str]) -> int:
        """Exact budget measure of a sample's instruction and output, tokenized apart as training encodes them."""
        return sum(self.exact(text) for text in texts)
