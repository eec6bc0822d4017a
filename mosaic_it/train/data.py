"""From instruction records to token ids whose loss mask covers only the response."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mosaic_it.errors import InputFileError, MosaicItError
from mosaic_it.records import instruction_text

IGNORE = -100  # label value cross-entropy skips
# Records per batched tokenizer call: bounds the per-token offsets a call holds at paper scale
# (tens of millions of tokens) while each call stays long enough to cost no Python per text.
ENCODE_CHUNK = 1024

# FastChat's Vicuna v1.1 conversation template: this system sentence, roles USER/ASSISTANT,
# " " after the system sentence and the user turn, the end-of-sequence token after the answer
# ("</s>" for the Llama tokenizer of the paper; other tokenizers close the turn with their own).
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE on prompt tokens, the token itself on response tokens

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class EncodeStats:
    records: int = 0
    truncated: int = 0  # longer than max_length: the response was cut
    dropped: int = 0  # the prompt alone filled max_length: nothing left to learn from
    extra: dict[str, Any] = field(default_factory=dict)


def load_records(path: str | Path, max_records: int | None = None) -> list[dict[str, str]]:
    """Read records or mosaic samples, keeping instruction/input/output.

    The same reader as validate (mosaic_it.data.ingest: JSON array or JSON Lines, UTF-8 with an
    optional BOM), but training takes clean data only: the first record without string instruction
    and output (and a string input, if any) stops it with the file and line.
    """
    from mosaic_it.data.ingest import read_records

    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "training data not found (run the earlier stages first?)")
    records = []
    for record in read_records(path).records:
        fields = record.fields or {}
        if record.fault is not None or not all(isinstance(fields.get(k), str) for k in ("instruction", "input", "output")):
            reason = record.fault or "needs string fields instruction and output (and input, if present)"
            raise InputFileError(path, f"unusable record ({reason}); run `mosaic-it validate` first", record.line)
        records.append({"instruction": fields["instruction"], "input": fields["input"], "output": fields["output"]})
        if max_records is not None and len(records) >= max_records:
            break
    return records


def leading_bos(tokenizer: Any) -> str:
    """The BOS text a tokenizer puts before every text by itself (Llama's <s>), else ''.

    FastChat tokenises the whole conversation with the tokenizer's defaults, so a Vicuna sample
    starts with BOS exactly when the tokenizer adds one.
    """
    ids = tokenizer("", add_special_tokens=True)["input_ids"]
    adds = bool(ids) and tokenizer.bos_token_id is not None and ids[0] == tokenizer.bos_token_id
    return tokenizer.bos_token if adds else ""


def render_prompt(instruction: str, tokenizer: Any, prompt_format: str) -> str:
    """The text a model sees before it starts answering (tokenise it without adding special tokens)."""
    if prompt_format == "vicuna":
        # No space after "ASSISTANT:": in training it is part of the answer's first token.
        return f"{leading_bos(tokenizer)}{VICUNA_SYSTEM} USER: {instruction} ASSISTANT:"
    messages = [{"role": "user", "content": instruction}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def render_pair(record: dict[str, str], tokenizer: Any, prompt_format: str) -> tuple[str, str]:
    """Chat template: (prompt, response) where response is the output plus the end-of-turn marker."""
    instruction = instruction_text(record)
    prompt = render_prompt(instruction, tokenizer, prompt_format)
    output = record["output"]
    messages = [{"role": "user", "content": instruction}, {"role": "assistant", "content": output}]
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt + output):
        raise MosaicItError(
            "the tokenizer's chat template does not render the answer right after the prompt; "
            "use train.prompt_format=vicuna"
        )
    # Whitespace after the end-of-turn token separates turns; it is not part of the answer.
    end_of_turn = full[len(prompt) + len(output):].rstrip()
    return prompt, output + end_of_turn


def vicuna_pairs(records: list[dict[str, str]], tokenizer: Any) -> list[tuple[list[int], list[int]]]:
    """FastChat v1.1 tokenisation: the whole conversation in one call, loss from after "ASSISTANT:".

    The answer's first token carries the space before it (" Two"), as when FastChat tokenises
    the conversation whole; the loss covers the answer and the end-of-sequence token.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise MosaicItError("train.prompt_format=vicuna needs a fast tokenizer (character offsets); "
                            "use chat_template")
    prompts = [render_prompt(instruction_text(record), tokenizer, "vicuna") for record in records]
    texts = [f"{prompt} {record['output']}{tokenizer.eos_token}" for prompt, record in zip(prompts, records)]
    encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, return_attention_mask=False)
    pairs = []
    for prompt, ids, offsets in zip(prompts, encoded["input_ids"], encoded["offset_mapping"]):
        start = next((i for i, (begin, _) in enumerate(offsets) if begin >= len(prompt)), len(ids))
        pairs.append((ids, [IGNORE] * start + ids[start:]))
    return pairs


def chat_pairs(records: list[dict[str, str]], tokenizer: Any, prompt_format: str) -> list[tuple[list[int], list[int]]]:
    """Prompt and response tokenised apart, so the loss mask falls exactly between them."""
    rendered = [render_pair(record, tokenizer, prompt_format) for record in records]
    prompts = tokenizer([prompt for prompt, _ in rendered], add_special_tokens=False,
                        return_attention_mask=False)["input_ids"]
    responses = tokenizer([response for _, response in rendered], add_special_tokens=False,
                          return_attention_mask=False)["input_ids"]
    return [(prompt + response, [IGNORE] * len(prompt) + response) for prompt, response in zip(prompts, responses)]


def encode_many(records: list[dict[str, str]], tokenizer: Any, prompt_format: str,
                max_length: int) -> list[tuple[Example | None, bool]]:
    """(example, truncated) per record; the example is None when the prompt leaves no room.
    Records go through the tokenizer in batched calls: the same ids as one call per record,
    without a round trip through Python per text."""
    results: list[tuple[Example | None, bool]] = []
    for start in range(0, len(records), ENCODE_CHUNK):
        chunk = records[start : start + ENCODE_CHUNK]
        pairs = (vicuna_pairs(chunk, tokenizer) if prompt_format == "vicuna"
                 else chat_pairs(chunk, tokenizer, prompt_format))
        results.extend(_fit(ids, labels, max_length) for ids, labels in pairs)
    return results


def _fit(ids: list[int], labels: list[int], max_length: int) -> tuple[Example | None, bool]:
    truncated = len(ids) > max_length
    ids, labels = ids[:max_length], labels[:max_length]
    return (Example(ids, labels) if any(label != IGNORE for label in labels) else None), truncated


def encode(record: dict[str, str], tokenizer: Any, prompt_format: str, max_length: int) -> tuple[Example | None, bool]:
    return encode_many([record], tokenizer, prompt_format, max_length)[0]


def encode_all(records: list[dict[str, str]], tokenizer: Any, prompt_format: str, max_length: int) -> tuple[list[Example], EncodeStats]:
    stats = EncodeStats(records=len(records))
    examples = []
    for example, truncated in encode_many(records, tokenizer, prompt_format, max_length):
        stats.truncated += int(truncated and example is not None)
        if example is None:
            stats.dropped += 1
        else:
            examples.append(example)
    if not examples:
        raise MosaicItError(f"every prompt is longer than train.max_length={max_length}")
    return examples, stats
