"""Counting words, sentences and paragraphs without NLTK data, so IFEval runs fully offline."""
from __future__ import annotations

import re
from functools import lru_cache

WORD = re.compile(r"\w+")
# A period after these does not end a sentence.
ABBREVIATIONS = (
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "inc", "ltd", "co",
    "no", "fig", "approx", "dept", "est", "u.s", "a.m", "p.m",
)
SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n")


def count_words(text: str) -> int:
    return len(WORD.findall(text))


def split_sentences(text: str) -> list[str]:
    """A rule-based splitter: end punctuation, then space, then a capital or digit."""
    pieces, start = [], 0
    for match in SENTENCE_END.finditer(text):
        before = text[start : match.start()].rstrip("\"')]")
        last_word = before.split()[-1].lower().rstrip(".") if before.split() else ""
        if before.endswith(".") and (last_word in ABBREVIATIONS or re.fullmatch(r"[a-z]", last_word)):
            continue
        pieces.append(text[start : match.start()])
        start = match.end()
    pieces.append(text[start:])
    return [p.strip() for p in pieces if p.strip()]


def count_sentences(text: str) -> int:
    return len(split_sentences(text))


@lru_cache(maxsize=1)
def _language_detector():
    from langdetect import DetectorFactory, detect

    DetectorFactory.seed = 0  # langdetect is random unless seeded
    return detect


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language (langdetect ships its profiles), None if undecidable."""
    from langdetect.lang_detect_exception import LangDetectException

    try:
        return _language_detector()(text)
    except LangDetectException:
        return None
