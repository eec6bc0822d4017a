"""The properties of an instruction that rules refer to, defined once for engine and verifier."""
from __future__ import annotations


def word_count(text: str) -> int:
    return len(text.split())


def char_count(text: str) -> int:
    return len(text)


def first_letter(text: str) -> str | None:
    """The first alphabetic character, case-folded; None when there is no Latin letter a-z first."""
    for char in text:
        if char.isalpha():
            folded = char.casefold()
            # Alphabetical order is only unambiguous to a reader for the Latin alphabet.
            return folded if "a" <= folded <= "z" and len(folded) == 1 else None
    return None
