"""prompt_format=vicuna gives the token ids and loss mask FastChat's Vicuna v1.1 training gives."""
from __future__ import annotations

import pytest

from mosaic_it.models.embedded import resolve_tokenizer_path
from mosaic_it.train.data import IGNORE, VICUNA_SYSTEM, encode, render_prompt

RECORD = {"instruction": "Name two primes.", "input": "Below ten, please.", "output": "Two and seven."}
USER_TURN = "Name two primes.\nBelow ten, please."


@pytest.fixture(scope="module")
def llama_style_tokenizer():
    """The embedded BPE with Llama's special tokens: <s> added in front of every text, </s> as EOS."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_tokenizer_path(None), bos_token="<s>", eos_token="</s>",
                                         add_bos_token=True)


def fastchat_v11(tokenizer) -> tuple[list[int], list[int]]:
    """FastChat's preprocessing of one Vicuna v1.1 conversation, step by step.

    conv.get_prompt() with sep_style ADD_COLON_TWO, sep " " and sep2 "</s>"; then the whole
    conversation tokenised in one call (the tokenizer adds BOS), BOS masked, each turn's
    instruction masked up to and including "ASSISTANT: " less the lone space token that
    the whole-text tokenisation merges into the answer's first token.
    """
    sep, sep2 = " ", tokenizer.eos_token
    conversation = VICUNA_SYSTEM + sep + "USER: " + USER_TURN + sep + "ASSISTANT: " + RECORD["output"] + sep2
    ids = tokenizer(conversation)["input_ids"]
    labels = list(ids)
    cur_len = 1
    labels[:cur_len] = [IGNORE] * cur_len
    for turn in conversation.split(sep2):
        if not turn:
            break
        turn_len = len(tokenizer(turn)["input_ids"])  # its BOS stands in for the turn's closing </s>
        instruction, _ = turn.split(sep + "ASSISTANT: ")
        instruction_len = len(tokenizer(instruction + sep + "ASSISTANT: ")["input_ids"]) - 2
        labels[cur_len:cur_len + instruction_len] = [IGNORE] * instruction_len
        cur_len += turn_len
    labels[cur_len:] = [IGNORE] * (len(labels) - cur_len)
    return ids, labels


def test_vicuna_ids_and_mask_match_fastchat_with_a_llama_style_tokenizer(llama_style_tokenizer):
    tok = llama_style_tokenizer
    # FastChat's "- 2" assumes "ASSISTANT: " ends in a lone space token: true for this tokenizer too.
    assert tok.decode(tok("x ASSISTANT: ", add_special_tokens=False)["input_ids"][-1]) == " "
    expected_ids, expected_labels = fastchat_v11(tok)
    example, truncated = encode(RECORD, tok, "vicuna", 512)
    assert not truncated
    assert example.input_ids == expected_ids
    assert example.labels == expected_labels
    # What that means, spelled out: BOS first, the loss starts at " Two" and ends with </s>.
    assert example.input_ids[0] == tok.bos_token_id and example.input_ids[-1] == tok.eos_token_id
    first = next(i for i, label in enumerate(example.labels) if label != IGNORE)
    assert tok.decode(example.input_ids[first]) == " Two"
    assert tok.decode(example.input_ids[:first]) == f"<s>{VICUNA_SYSTEM} USER: {USER_TURN} ASSISTANT:"
    assert tok.decode([t for t in example.labels if t != IGNORE]) == " Two and seven.</s>"


def test_generation_prompt_is_exactly_what_preceded_the_answer_in_training(llama_style_tokenizer,
                                                                          embedded_tokenizer):
    for tok in (llama_style_tokenizer, embedded_tokenizer):
        example, _ = encode(RECORD, tok, "vicuna", 512)
        first = next(i for i, label in enumerate(example.labels) if label != IGNORE)
        prompt = render_prompt(USER_TURN, tok, "vicuna")
        assert tok(prompt, add_special_tokens=False)["input_ids"] == example.input_ids[:first]


def test_a_tokenizer_without_automatic_bos_gets_none(embedded_tokenizer):
    # SmolLM2's tokenizer adds no special tokens by itself, so FastChat's call would add no BOS.
    tok = embedded_tokenizer
    example, _ = encode(RECORD, tok, "vicuna", 512)
    conversation = f"{VICUNA_SYSTEM} USER: {USER_TURN} ASSISTANT: Two and seven.{tok.eos_token}"
    assert example.input_ids == tok(conversation)["input_ids"]
    assert tok.decode([t for t in example.labels if t != IGNORE]) == " Two and seven." + tok.eos_token


def test_truncation_keeps_the_fastchat_prefix(llama_style_tokenizer):
    full, _ = encode(RECORD, llama_style_tokenizer, "vicuna", 512)
    cut, truncated = encode(RECORD, llama_style_tokenizer, "vicuna", len(full) - 2)
    assert truncated and cut.input_ids == full.input_ids[:-2] and cut.labels == full.labels[:-2]
