"""One checker per IFEval instruction id: `response, **kwargs -> bool`, registered by id.

Semantics follow the IFEval paper's verifiable instructions; a relation is either
"less than" (count < N) or "at least" (count >= N).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable

from mosaic_it.evaluate.ifeval.text import count_sentences, count_words, detect_language

Checker = Callable[..., bool]
CHECKERS: dict[str, Checker] = {}


def check(instruction_id: str) -> Callable[[Checker], Checker]:
    def register(fn: Checker) -> Checker:
        CHECKERS[instruction_id] = fn
        return fn

    return register


def compare(count: int, relation: str, target: int) -> bool:
    if relation == "less than":
        return count < target
    if relation == "at least":
        return count >= target
    raise ValueError(f"unknown relation {relation!r}")


# --- keywords -------------------------------------------------------------------------------
@check("keywords:existence")
def keywords_exist(response: str, keywords: list[str]) -> bool:
    return all(re.search(re.escape(k), response, re.IGNORECASE) for k in keywords)


@check("keywords:forbidden_words")
def no_forbidden_words(response: str, forbidden_words: list[str]) -> bool:
    return not any(re.search(r"\b" + re.escape(w) + r"\b", response, re.IGNORECASE) for w in forbidden_words)


@check("keywords:frequency")
def keyword_frequency(response: str, keyword: str, frequency: int, relation: str) -> bool:
    return compare(len(re.findall(re.escape(keyword), response, re.IGNORECASE)), relation, frequency)


@check("keywords:letter_frequency")
def letter_frequency(response: str, letter: str, let_frequency: int, let_relation: str) -> bool:
    return compare(response.lower().count(letter.lower()), let_relation, let_frequency)


# --- language and case ----------------------------------------------------------------------
@check("language:response_language")
def response_language(response: str, language: str) -> bool:
    detected = detect_language(response)
    return detected is None or detected == language  # undecidable text is not held against it


@check("change_case:english_lowercase")
def english_lowercase(response: str) -> bool:
    return response.islower() and detect_language(response) in ("en", None)


@check("change_case:english_capital")
def english_capital(response: str) -> bool:
    return response.isupper() and detect_language(response) in ("en", None)


@check("change_case:capital_word_frequency")
def capital_words(response: str, capital_frequency: int, capital_relation: str) -> bool:
    capitals = [w for w in re.findall(r"\b\w+\b", response) if w.isupper()]
    return compare(len(capitals), capital_relation, capital_frequency)


# --- length ---------------------------------------------------------------------------------
@check("length_constraints:number_words")
def number_words(response: str, num_words: int, relation: str) -> bool:
    return compare(count_words(response), relation, num_words)


@check("length_constraints:number_sentences")
def number_sentences(response: str, num_sentences: int, relation: str) -> bool:
    return compare(count_sentences(response), relation, num_sentences)


@check("length_constraints:number_paragraphs")
def number_paragraphs(response: str, num_paragraphs: int) -> bool:
    """Paragraphs are separated by the markdown divider ***; only the ends may be empty."""
    paragraphs = re.split(r"\s?\*\*\*\s?", response)
    inner_empty = any(not p.strip() for p in paragraphs[1:-1])
    count = sum(1 for p in paragraphs if p.strip())
    return not inner_empty and count == num_paragraphs


@check("length_constraints:nth_paragraph_first_word")
def nth_paragraph_first_word(response: str, num_paragraphs: int, nth_paragraph: int, first_word: str) -> bool:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", response) if p.strip()]
    if len(paragraphs) != num_paragraphs or nth_paragraph > len(paragraphs):
        return False
    words = paragraphs[nth_paragraph - 1].split()
    word = re.sub(r"^\W+|\W+$", "", words[0]).lower() if words else ""
    return word == first_word.lower()


# --- detectable content and format ----------------------------------------------------------
@check("detectable_content:number_placeholders")
def placeholders(response: str, num_placeholders: int) -> bool:
    return len(re.findall(r"\[.*?\]", response)) >= num_placeholders


@check("detectable_content:postscript")
def postscript(response: str, postscript_marker: str) -> bool:
    marker = postscript_marker.strip().lower()
    patterns = {"p.s.": r"\s*p\.\s?s\..*$", "p.p.s": r"\s*p\.\s?p\.\s?s.*$"}
    pattern = patterns.get(marker, r"\s*" + re.escape(marker) + r".*$")
    return bool(re.search(pattern, response.lower(), re.MULTILINE))


@check("detectable_format:number_bullet_lists")
def bullet_lists(response: str, num_bullets: int) -> bool:
    stars = re.findall(r"^\s*\*[^\*].*$", response, re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", response, re.MULTILINE)
    return len(stars) + len(dashes) == num_bullets


@check("detectable_format:number_highlighted_sections")
def highlighted_sections(response: str, num_highlights: int) -> bool:
    single = [h for h in re.findall(r"\*[^\n\*]*\*", response) if h.strip("*").strip()]
    double = [h for h in re.findall(r"\*\*[^\n\*]*\*\*", response) if h.strip("*").strip()]
    return len(single) + len(double) >= num_highlights


@check("detectable_format:title")
def title(response: str) -> bool:
    return any(t.strip() for t in re.findall(r"<<([^\n]+)>>", response))


@check("detectable_format:json_format")
def json_format(response: str) -> bool:
    text = response.strip()
    text = re.sub(r"^```(?:json)?\s*", "", text, flags=re.IGNORECASE)
    text = re.sub(r"\s*```$", "", text).strip()
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@check("detectable_format:multiple_sections")
def multiple_sections(response: str, section_spliter: str, num_sections: int) -> bool:
    sections = re.split(r"\s?" + re.escape(section_spliter) + r"\s?\d+\s?", response)
    return len(sections) - 1 >= num_sections


@check("detectable_format:constrained_response")
def constrained_response(response: str) -> bool:
    options = ("My answer is yes.", "My answer is no.", "My answer is maybe.")
    return any(option in response.strip() for option in options)


# --- combinations, start and end ------------------------------------------------------------
@check("combination:repeat_prompt")
def repeat_prompt(response: str, prompt_to_repeat: str) -> bool:
    return response.strip().lower().startswith(prompt_to_repeat.strip().lower())


@check("combination:two_responses")
def two_responses(response: str) -> bool:
    parts = [p.strip() for p in response.split("******")]
    answers = [p for p in parts if p]
    inner_empty = any(not p for p in parts[1:-1])
    return len(answers) == 2 and not inner_empty and answers[0] != answers[1]


@check("punctuation:no_comma")
def no_comma(response: str) -> bool:
    return "," not in response


@check("startend:end_checker")
def ends_with(response: str, end_phrase: str) -> bool:
    return response.strip().lower().endswith(end_phrase.strip().lower())


@check("startend:quotation")
def quotation(response: str) -> bool:
    text = response.strip()
    return len(text) > 1 and text[0] == '"' and text[-1] == '"'
