"""The properties of an instruction that rules refer to, defined once for engine and verifier."""
from __future__ import annotations

from functools import lru_cache

# Augment asks for the same record's key again in every epoch and in every rule it tries.
MEMO_SIZE = 1 << 17


@lru_cache(maxsize=MEMO_SIZE)
def word_count(text: str) -> int:
    return len(text.split())


def char_count(text: str) -> int:
    return len(text)


@lru_cache(maxsize=MEMO_SIZE)
def first_letter(text: str) -> str | None:
    """The first alphabetic character, case-folded; None when there is no Latin letter a-z first."""
    for char in text:
        if char.isalpha():
            folded = char.casefold()
            # Alphabetical order is only unambiguous to a reader for the Latin alphabet.
            return folded if "a" <= folded <= "z" and len(folded) == 1 else None
    return None
